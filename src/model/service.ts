import { canonicalAddress } from './address.js';
import { removingClaim } from './claims.js';
import {
  type Change,
  type ClusterState,
  checkDnsName,
  emptyChange,
  ingressNetwork,
  lookup,
  stored,
  usedAddresses,
} from './cluster-state.js';
import { invalid, MeshError } from './errors.js';
import type { Fields } from './fields.js';
import { newId } from './ids.js';
import { allocate, checkRequested, makePool } from './ipam.js';
import { checkNameFree } from './names.js';
import type { Healthcheck, Network, PortConfig, Service, ServiceNetwork } from './types.js';

/** A service as a user specifies it: everything but ids, VIPs and timestamps. */
export type ServiceSpec = Omit<
  Service,
  'id' | 'version' | 'createdAt' | 'updatedAt' | 'networks' | 'ingress'
> & {
  /** `vip`: a fixed VIP on that network (moby#24170), refused when taken; else one is allocated. */
  readonly networks: readonly { network: string; aliases: readonly string[]; vip?: string }[];
};

/** Defaults chosen to beat Docker's: a first probe in seconds, not after a 30 s interval. */
export const defaultHealthcheck: Healthcheck = {
  type: 'none',
  path: '/',
  intervalMs: 5000,
  timeoutMs: 2000,
  retries: 3,
  startPeriodMs: 0,
  unhealthyIntervalMs: 1000,
};

/** An hour: far above the 900 s after which IPVS silently drops idle connections in Docker. */
export const defaultIdleTimeoutMs = 3_600_000;
/** Docker's default stop grace period. */
export const defaultDrainMs = 10_000;

/** Docker assigns published ports from this range when none is given. */
const autoPortFirst = 30000;
const autoPortLast = 32767;

export function readServiceSpec(f: Fields): ServiceSpec {
  const h = f.object('healthcheck');
  const healthcheck: Healthcheck = {
    type: h.oneOf('type', ['none', 'tcp', 'http'], 'none'),
    path: h.string('path', defaultHealthcheck.path),
    intervalMs: h.duration('interval', defaultHealthcheck.intervalMs),
    timeoutMs: h.duration('timeout', defaultHealthcheck.timeoutMs),
    retries: h.int('retries', defaultHealthcheck.retries, 1, 100),
    startPeriodMs: h.duration('startPeriod', defaultHealthcheck.startPeriodMs),
    unhealthyIntervalMs: h.duration('unhealthyInterval', defaultHealthcheck.unhealthyIntervalMs),
  };
  h.done();
  if (healthcheck.intervalMs < 100) throw invalid(`${h.at('interval')}: must be at least 100ms`);
  if (healthcheck.unhealthyIntervalMs < 100)
    throw invalid(`${h.at('unhealthyInterval')}: must be at least 100ms`);
  if (!healthcheck.path.startsWith('/')) throw invalid(`${h.at('path')}: must start with /`);
  const spec: ServiceSpec = {
    name: f.string('name'),
    ...(f.has('image') ? { image: f.string('image') } : {}),
    mode: f.oneOf('mode', ['replicated', 'global'], 'replicated'),
    endpointMode: f.oneOf('endpointMode', ['vip', 'dnsrr'], 'vip'),
    networks: f.list('networks').map((n) => {
      const vip = n.optionalString('vip');
      const v = { network: n.string('network'), aliases: n.strings('aliases'), ...(vip ? { vip } : {}) };
      n.done();
      return v;
    }),
    ports: f.list('ports').map((p) => {
      const v: PortConfig = {
        published: p.int('published', 0, 0, 65535),
        target: p.int('target', 0, 1, 65535),
        protocol: p.oneOf('protocol', ['tcp', 'udp'], 'tcp'),
        mode: p.oneOf('mode', ['ingress', 'host'], 'ingress'),
        ...(p.has('traffic')
          ? { traffic: p.oneOf('traffic', ['cluster', 'local'] as const, 'cluster') }
          : {}),
        ...(p.has('hostIp') ? { hostIp: hostAddress(p.string('hostIp'), p.at('hostIp')) } : {}),
      };
      if (!p.has('target') && v.target === 0) throw invalid(`${p.at('target')}: is required`);
      p.done();
      return v;
    }),
    expose: f.raw('expose') === undefined ? [] : readPorts(f, 'expose'),
    healthcheck,
    lb: f.oneOf('lb', ['round-robin', 'least-conn', 'p2c', 'source-ip'], 'round-robin'),
    localFirst: f.bool('localFirst', false),
    ...(f.has('publishNotReady') ? { publishNotReady: f.bool('publishNotReady', false) } : {}),
    proxyProtocol: f.oneOf('proxyProtocol', ['none', 'v1', 'v2'], 'none'),
    idleTimeoutMs: f.duration('idleTimeout', defaultIdleTimeoutMs),
    drainMs: f.duration('drain', defaultDrainMs),
    maxConnsPerTask: f.int('maxConnsPerTask', 0, 0, 1_000_000),
    labels: f.record('labels'),
  };
  f.done();
  return spec;
}

/** A `hostIp` to publish on: one address, written canonically (so `::1` and `0::1` are one). */
function hostAddress(text: string, at: string): string {
  const a = canonicalAddress(text);
  if (!a) throw invalid(`${at}: "${text}" is not an IP address`);
  if (a === '0.0.0.0' || a === '::') throw invalid(`${at}: give one address; leave it out for all of them`);
  return a;
}

/**
 * A stored service back in the JSON shape `readServiceSpec` takes: what an update starts from
 * (meshctl's flags, or a Docker spec that has no words for meshd's own settings).
 */
export function specJsonOf(s: Service): Record<string, unknown> & {
  networks: { network: string; aliases: string[] }[];
  ports: PortConfig[];
  healthcheck: Record<string, unknown>;
} {
  const h = s.healthcheck;
  return {
    name: s.name,
    ...(s.image ? { image: s.image } : {}),
    mode: s.mode,
    endpointMode: s.endpointMode,
    networks: s.networks.map((n) => ({ network: n.network, aliases: [...n.aliases] })),
    ports: s.ports.map((p) => ({ ...p })),
    expose: [...s.expose],
    healthcheck: {
      type: h.type,
      path: h.path,
      interval: h.intervalMs,
      timeout: h.timeoutMs,
      retries: h.retries,
      startPeriod: h.startPeriodMs,
      unhealthyInterval: h.unhealthyIntervalMs,
    },
    lb: s.lb,
    localFirst: s.localFirst,
    ...(s.publishNotReady !== undefined ? { publishNotReady: s.publishNotReady } : {}),
    proxyProtocol: s.proxyProtocol,
    idleTimeout: s.idleTimeoutMs,
    drain: s.drainMs,
    maxConnsPerTask: s.maxConnsPerTask,
    labels: { ...s.labels },
  };
}

function readPorts(f: Fields, key: string): number[] {
  const v = f.raw(key);
  if (!Array.isArray(v) || v.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    throw invalid(`${f.at(key)}: must be a list of ports (1-65535)`);
  }
  return v as number[];
}

/**
 * Docker's port rules: no dnsrr with ingress publishing, unique published ports per protocol.
 * Ports published on one address (`hostIp`) share a number with ports on other addresses, never
 * with one on every address.
 */
function checkPorts(state: ClusterState, spec: ServiceSpec, selfId: string | undefined): PortConfig[] {
  const ports: PortConfig[] = [];
  const taken = new Map<string, { svc: Service | undefined; mode: string; hostIp?: string }[]>();
  const users = (key: string) => taken.get(key) ?? [];
  const overlaps = (a: string | undefined, b: string | undefined) => !a || !b || a === b;
  for (const s of state.services.values()) {
    if (s.id === selfId) continue;
    for (const p of s.ports) {
      const key = `${p.published}/${p.protocol}`;
      taken.set(key, [...users(key), { svc: s, mode: p.mode, ...(p.hostIp ? { hostIp: p.hostIp } : {}) }]);
    }
  }
  const seen = new Map<string, (string | undefined)[]>();
  for (const p of spec.ports) {
    if (p.mode === 'ingress' && spec.endpointMode === 'dnsrr') {
      throw invalid("EndpointSpec: port published with ingress mode can't be used with dnsrr mode");
    }
    let published = p.published;
    // Without a number, one is assigned from 30000-32767, host mode included (as Docker does).
    if (published === 0) published = autoPort(taken, seen, p.protocol);
    const key = `${published}/${p.protocol}`;
    if ((seen.get(key) ?? []).some((ip) => overlaps(ip, p.hostIp)))
      throw invalid('EndpointSpec: duplicate published ports provided');
    seen.set(key, [...(seen.get(key) ?? []), p.hostIp]);
    const clash = users(key).filter((u) => overlaps(u.hostIp, p.hostIp));
    const ingressUser = clash.find((u) => u.mode === 'ingress')?.svc;
    if (ingressUser) {
      throw new MeshError(
        'already_exists',
        `port '${published}' is already in use by service '${ingressUser.name}' (${ingressUser.id}) as an ingress port`,
      );
    }
    // Several host-mode services may share a port (they run on different nodes); ingress may not.
    const hostUser = clash.find((u) => u.mode === 'host')?.svc;
    if (p.mode === 'ingress' && hostUser) {
      throw new MeshError(
        'already_exists',
        `port '${published}' is already in use by service '${hostUser.name}' (${hostUser.id}) as a host-published port`,
      );
    }
    ports.push({ ...p, published });
  }
  if (ports.some((p) => p.mode === 'ingress') && !ingressNetwork(state)) {
    throw new MeshError(
      'failed_precondition',
      'service needs ingress network, but no ingress network is present',
    );
  }
  return ports;
}

function autoPort(
  taken: ReadonlyMap<string, unknown>,
  seen: ReadonlyMap<string, unknown>,
  protocol: string,
): number {
  for (let port = autoPortFirst; port <= autoPortLast; port++) {
    const key = `${port}/${protocol}`;
    if (!seen.has(key) && !taken.has(key)) return port;
  }
  throw new MeshError('exhausted', `no free published port in ${autoPortFirst}-${autoPortLast}`);
}

/** Resolves network refs, checks aliases, and keeps (or allocates) one VIP per network in vip mode. */
function attachNetworks(
  state: ClusterState,
  spec: ServiceSpec,
  previous: Service | undefined,
): ServiceNetwork[] {
  const out: ServiceNetwork[] = [];
  const seen = new Set<string>();
  for (const att of spec.networks) {
    const net: Network = lookup(state.networks, att.network, 'network');
    if (net.ingress)
      throw invalid(`Service cannot be explicitly attached to the ingress network "${net.name}"`);
    if (seen.has(net.id)) throw invalid(`network ${net.name} is listed twice`);
    seen.add(net.id);
    for (const a of att.aliases) checkDnsName(a, 'network alias');
    const self = previous ? { kind: 'service' as const, id: previous.id } : undefined;
    checkNameFree(state, net, spec.name, 'service name', self);
    for (const a of att.aliases) checkNameFree(state, net, a, 'network alias', self);
    let vip: string | undefined;
    if (att.vip && spec.endpointMode !== 'vip')
      throw invalid(`a fixed VIP (${att.vip}) needs endpoint mode vip, not ${spec.endpointMode}`);
    if (spec.endpointMode === 'vip') {
      vip = previous?.networks.find((n) => n.network === net.id)?.vip;
      if (att.vip && att.vip !== vip) {
        const pool = makePool(net.subnet, net.gateway, net.vipRange);
        vip = checkRequested(pool, att.vip, usedAddresses(state, net.id), net.name);
      } else if (!vip) {
        vip = allocate(
          makePool(net.subnet, net.gateway, net.vipRange),
          usedAddresses(state, net.id),
          net.name,
        );
      }
    }
    out.push({ network: net.id, aliases: [...new Set(att.aliases)], ...(vip ? { vip } : {}) });
  }
  return out;
}

/**
 * The service's VIP on the ingress network while it publishes a port in ingress mode (swarmkit
 * attaches such a service to ingress): kept across updates, allocated from ingress's IPAM.
 */
function ingressOf(
  state: ClusterState,
  ports: readonly PortConfig[],
  previous: Service | undefined,
): Service['ingress'] {
  const net = ingressNetwork(state);
  if (!net || !ports.some((p) => p.mode === 'ingress')) return undefined;
  if (previous?.ingress?.network === net.id) return previous.ingress;
  const vip = allocate(
    makePool(net.subnet, net.gateway, net.vipRange),
    usedAddresses(state, net.id),
    net.name,
  );
  return { network: net.id, vip };
}

export function createService(state: ClusterState, spec: ServiceSpec, now: string, id = newId()): Change {
  checkDnsName(spec.name, 'service name');
  for (const s of state.services.values()) {
    if (s.name === spec.name) {
      throw new MeshError(
        'already_exists',
        `name conflicts with an existing object: service ${spec.name} already exists`,
      );
    }
  }
  const ports = checkPorts(state, spec, undefined);
  const networks = attachNetworks(state, spec, undefined);
  const ingress = ingressOf(state, ports, undefined);
  const service: Omit<Service, 'version'> = {
    ...spec,
    id,
    networks,
    ports,
    ...(ingress ? { ingress } : {}),
    createdAt: now,
    updatedAt: now,
  };
  const change = emptyChange();
  change.puts.push({ kind: 'services', id, value: service });
  for (const n of networks) change.guards.push(removingClaim('networks', n.network));
  if (ingress) change.guards.push(removingClaim('networks', ingress.network));
  return change;
}

/**
 * Replaces a service's spec. `version` is the version the caller read (Docker's `?version=`),
 * so two concurrent updates cannot silently overwrite each other.
 */
export function updateService(
  state: ClusterState,
  ref: string,
  spec: ServiceSpec,
  version: number | undefined,
  now: string,
): Change {
  const current = lookup(state.services, ref, 'service');
  if (version !== undefined && version !== current.version) {
    throw new MeshError(
      'conflict',
      `update out of sequence: service ${current.name} is at version ${current.version}, not ${version}`,
    );
  }
  if (spec.name !== current.name) throw invalid('service name cannot be changed');
  if (spec.mode !== current.mode) throw invalid('service mode cannot be changed');
  const ports = checkPorts(state, spec, current.id);
  const networks = attachNetworks(state, spec, current);
  const ingress = ingressOf(state, ports, current);
  const kept = new Set(networks.map((n) => n.network));
  const change = emptyChange();
  // Tasks keep addresses only on networks the service still has.
  for (const t of state.tasks.values()) {
    if (t.service !== current.id) continue;
    const addresses = t.addresses.filter((a) => kept.has(a.network));
    if (addresses.length !== t.addresses.length) {
      change.puts.push({ kind: 'tasks', id: t.id, value: { ...stored(t), addresses, updatedAt: now } });
    }
  }
  const service: Omit<Service, 'version'> = {
    ...spec,
    id: current.id,
    networks,
    ports,
    ...(ingress ? { ingress } : {}),
    createdAt: current.createdAt,
    updatedAt: now,
  };
  change.puts.push({ kind: 'services', id: current.id, value: service });
  change.expect.push({ kind: 'services', id: current.id, version: current.version });
  for (const n of networks) change.guards.push(removingClaim('networks', n.network));
  if (ingress) change.guards.push(removingClaim('networks', ingress.network));
  // Leaving a network rewrites the tasks' addresses: a task registered meanwhile must be seen.
  if (current.networks.some((n) => !kept.has(n.network)))
    change.fence = removingClaim('services', current.id);
  return change;
}

/** Removes a service and its tasks, as `docker service rm` does. */
export function removeService(state: ClusterState, ref: string): Change {
  const svc = lookup(state.services, ref, 'service');
  const change = emptyChange();
  change.deletes.push({ kind: 'services', id: svc.id });
  for (const t of state.tasks.values()) {
    if (t.service === svc.id) {
      change.deletes.push({ kind: 'tasks', id: t.id });
      change.deletes.push({ kind: 'health', id: t.id });
    }
  }
  change.expect.push({ kind: 'services', id: svc.id, version: svc.version });
  // No task may be registered for it between reading its tasks and deleting them.
  change.fence = removingClaim('services', svc.id);
  return change;
}

/** The spec of an existing service, for read-modify-write updates. */
export function specOf(svc: Service, state: ClusterState): ServiceSpec {
  const { id: _i, version: _v, createdAt: _c, updatedAt: _u, networks, ...rest } = svc;
  return {
    ...rest,
    networks: networks.map((n) => ({
      network: state.networks.get(n.network)?.name ?? n.network,
      aliases: n.aliases,
    })),
  };
}
