import { hostname } from 'node:os';
import { parseCidr } from '../model/address.js';
import { invalid } from '../model/errors.js';
import { Fields } from '../model/fields.js';
import { checkAddrPools, type NetworkSpec, readNetworkSpec } from '../model/network.js';
import { readServiceSpec, type ServiceSpec } from '../model/service.js';
import { type HostPort, parseHostPort } from './listen.js';

/** Where the cluster state lives. */
export type StoreSetting =
  | { readonly kind: 'memory' }
  | { readonly kind: 'file'; readonly path: string }
  | {
      readonly kind: 'etcd';
      readonly endpoints: readonly string[];
      /** TLS to etcd (`etcds://`): the CA that signed etcd's certificate, and our client pair. */
      readonly tls?: { readonly ca: string; readonly cert?: string; readonly key?: string };
    };

/** A declared group of tasks: `count` tasks of `service` on this node, or the given addresses. */
export interface DeclaredTasks {
  readonly service: string;
  readonly count: number;
  readonly ips: readonly string[];
}

/** Every static setting, validated once at start; nothing here changes while meshd runs. */
export interface Settings {
  readonly node: {
    readonly name: string;
    readonly advertiseAddr: string;
    readonly datapathAddr: string;
    readonly stateDir: string;
  };
  readonly store: StoreSetting;
  readonly storePrefix: string;
  readonly api: { readonly listen: HostPort; readonly token: string; readonly tls: boolean };
  readonly dns: {
    readonly listen: HostPort | undefined;
    readonly ttl: number;
    readonly domain: string;
    readonly upstreams: readonly string[];
    readonly upstreamTimeoutMs: number;
    readonly recursionAllowed: readonly string[];
    readonly unscopedClients: 'all' | 'none';
    readonly cacheEntries: number;
    readonly serveStaleMs: number;
    readonly maxInflight: number;
    readonly tcpMaxConnections: number;
    readonly tcpIdleTimeoutMs: number;
    readonly tcpMaxPerClient: number;
    readonly tcpMaxLifetimeMs: number;
  };
  readonly mesh: {
    readonly publishAddr: string;
    readonly dataListen: HostPort;
    /** What other nodes dial for this node's data plane (behind NAT, a relay); default dataListen. */
    readonly dataAdvertise: string | undefined;
    readonly connectTimeoutMs: number;
    readonly connectRetries: number;
    readonly ejectMs: number;
    readonly panic: 'refuse' | 'all';
    readonly maxConnsPerListener: number;
    readonly udpFlows: number;
    readonly udpIdleTimeoutMs: number;
    readonly keepAliveMs: number;
    readonly manageVipInterfaces: boolean;
    readonly shutdownGraceMs: number;
    /** How tasks on other nodes are reached: directly, or through their node's data-plane port. */
    readonly remoteTasks: 'auto' | 'direct' | 'dataplane';
    /** What serves published ports and VIPs: nftables DNAT, the userspace proxy, or each port's best. */
    readonly dataplane: 'auto' | 'kernel' | 'userspace';
    /** Whether a clean stop removes meshd's nftables tables (`keep`: connections flow across a restart). */
    readonly kernelStateOnStop: 'remove' | 'keep';
  };
  readonly metrics: { readonly listen: HostPort | undefined };
  readonly cluster: {
    readonly ingressSubnet: string;
    readonly leaseTtlSeconds: number;
    /** Where networks created without `--subnet` get theirs, as `docker swarm init --default-addr-pool`. */
    readonly defaultAddrPool: readonly string[];
    readonly defaultAddrPoolMaskLength: number;
  };
  readonly declare: {
    readonly networks: readonly NetworkSpec[];
    readonly services: readonly ServiceSpec[];
    readonly tasks: readonly DeclaredTasks[];
    /** Start a tiny HTTP/UDP echo backend for every declared task, so a first run has something to reach. */
    readonly sampleBackends: boolean;
  };
  readonly log: { readonly level: 'debug' | 'info' | 'warn' | 'error' };
  readonly security: { readonly joinToken: string | undefined; readonly certRotationMs: number };
  /** A container engine whose labelled containers become tasks (`--provider docker`). */
  readonly provider: {
    readonly kind: 'none' | 'docker';
    readonly dockerSocket: string;
    /** A service made from labels is removed once its last container has been gone this long. */
    readonly serviceGraceMs: number;
  };
}

/** Loopback and private ranges: recursion for local clients, never an open resolver. */
const defaultRecursionAllowed = [
  '127.0.0.0/8',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '::1/128',
  'fc00::/7',
];

/** Parses `memory`, `file:PATH` or `etcd://H:P[,H:P]`. */
export function parseStore(text: string, what: string): StoreSetting {
  if (text === 'memory') return { kind: 'memory' };
  if (text.startsWith('file:') && text.length > 5) return { kind: 'file', path: text.slice(5) };
  if (text.startsWith('etcd://') || text.startsWith('etcds://')) {
    const secure = text.startsWith('etcds://');
    const endpoints = text
      .slice(secure ? 8 : 7)
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean);
    if (endpoints.length === 0) throw invalid(`${what}: etcd:// needs at least one HOST:PORT`);
    for (const e of endpoints) parseHostPort(e, what);
    return { kind: 'etcd', endpoints: endpoints.map((e) => `${secure ? 'https' : 'http'}://${e}`) };
  }
  throw invalid(`${what}: "${text}" is not memory, file:PATH or etcd://HOST:PORT[,HOST:PORT]`);
}

function optionalListen(f: Fields, key: string, def: string): HostPort | undefined {
  const v = f.string(key, def);
  return v === '' || v === 'off' ? undefined : parseHostPort(v, f.at(key));
}

/** Reads the whole configuration object (YAML merged with flags) into Settings. */
export function readSettings(raw: unknown): Settings {
  const f = Fields.of(raw, '');
  const node = f.object('node');
  const advertiseAddr = node.string('advertiseAddr', '127.0.0.1');
  const settingsNode = {
    name: node.string('name', hostname()),
    advertiseAddr,
    datapathAddr: node.string('datapathAddr', advertiseAddr),
    stateDir: node.string('stateDir', 'var'),
  };
  node.done();
  let store = parseStore(f.string('store', `file:${settingsNode.stateDir}/store.json`), 'store');
  const storeTls = f.object('storeTls');
  const tls = {
    ca: storeTls.optionalString('ca'),
    cert: storeTls.optionalString('cert'),
    key: storeTls.optionalString('key'),
  };
  storeTls.done();
  if (store.kind === 'etcd' && store.endpoints[0]?.startsWith('https://')) {
    if (!tls.ca)
      throw invalid("storeTls.ca: etcds:// needs the CA file that signed etcd's certificate (--store-ca)");
    if (!!tls.cert !== !!tls.key)
      throw invalid('storeTls: give both cert and key (--store-cert, --store-key) or neither');
    store = { ...store, tls: { ca: tls.ca, ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}) } };
  }
  const storePrefix = f.string('storePrefix', '/meshd/v1/');
  if (!storePrefix.endsWith('/')) throw invalid('storePrefix: must end with /');

  const api = f.object('api');
  const apiSettings = {
    listen: parseHostPort(api.string('listen', '127.0.0.1:2377'), api.at('listen')),
    token: api.string('token', ''),
    tls: api.bool('tls', false),
  };
  api.done();

  const dns = f.object('dns');
  const dnsSettings: Settings['dns'] = {
    listen: optionalListen(dns, 'listen', '127.0.0.1:1053'),
    ttl: dns.int('ttl', 5, 0, 86400),
    domain: dns.string('domain', 'meshd').replace(/\.$/, '').toLowerCase(),
    upstreams: dns.strings('upstreams'),
    upstreamTimeoutMs: dns.duration('upstreamTimeout', 2000),
    recursionAllowed: dns.has('recursionAllowed') ? dns.strings('recursionAllowed') : defaultRecursionAllowed,
    unscopedClients: dns.oneOf('unscopedClients', ['all', 'none'], 'all'),
    cacheEntries: dns.int('cacheEntries', 10_000, 0, 10_000_000),
    serveStaleMs: dns.duration('serveStale', 300_000),
    maxInflight: dns.int('maxInflight', 1024, 1, 100_000),
    tcpMaxConnections: dns.int('tcpMaxConnections', 256, 1, 100_000),
    tcpIdleTimeoutMs: dns.duration('tcpIdleTimeout', 10_000),
    // Unbound and CoreDNS cap connections per client too: one client cannot take the whole pool.
    tcpMaxPerClient: dns.int('tcpMaxPerClient', 16, 1, 100_000),
    // Trickling a byte resets the idle timer, never this one.
    tcpMaxLifetimeMs: dns.duration('tcpMaxLifetime', 120_000),
  };
  for (const u of dnsSettings.upstreams) parseHostPort(u, dns.at('upstreams'), 53);
  for (const r of dnsSettings.recursionAllowed) {
    try {
      parseCidr(r);
    } catch {
      throw invalid(`${dns.at('recursionAllowed')}: "${r}" is not a CIDR block`);
    }
  }
  dns.done();

  const mesh = f.object('mesh');
  const meshSettings: Settings['mesh'] = {
    publishAddr: mesh.string('publishAddr', '0.0.0.0'),
    dataListen: parseHostPort(
      mesh.string('dataListen', `${settingsNode.datapathAddr}:4789`),
      mesh.at('dataListen'),
    ),
    dataAdvertise: mesh.optionalString('dataAdvertise'),
    connectTimeoutMs: mesh.duration('connectTimeout', 2000),
    connectRetries: mesh.int('connectRetries', 3, 0, 10),
    ejectMs: mesh.duration('eject', 5000),
    panic: mesh.oneOf('panic', ['refuse', 'all'], 'refuse'),
    maxConnsPerListener: mesh.int('maxConnsPerListener', 10_000, 1, 1_000_000),
    udpFlows: mesh.int('udpFlows', 10_000, 1, 1_000_000),
    udpIdleTimeoutMs: mesh.duration('udpIdleTimeout', 30_000),
    keepAliveMs: mesh.duration('keepAlive', 60_000),
    manageVipInterfaces: mesh.bool('manageVipInterfaces', true),
    shutdownGraceMs: mesh.duration('shutdownGrace', 10_000),
    remoteTasks: mesh.oneOf('remoteTasks', ['auto', 'direct', 'dataplane'], 'auto'),
    dataplane: mesh.oneOf('dataplane', ['auto', 'kernel', 'userspace'], 'auto'),
    kernelStateOnStop: mesh.oneOf('kernelStateOnStop', ['remove', 'keep'], 'remove'),
  };
  mesh.done();

  const metrics = f.object('metrics');
  const metricsSettings = { listen: optionalListen(metrics, 'listen', '127.0.0.1:9377') };
  metrics.done();

  const cluster = f.object('cluster');
  const clusterSettings = {
    ingressSubnet: cluster.string('ingressSubnet', '10.0.0.0/24'),
    leaseTtlSeconds: Math.max(1, Math.round(cluster.duration('leaseTtl', 5000) / 1000)),
    defaultAddrPool: cluster.has('defaultAddrPool') ? cluster.strings('defaultAddrPool') : ['10.0.0.0/8'],
    defaultAddrPoolMaskLength: maskLength(
      cluster.raw('defaultAddrPoolMaskLength'),
      cluster.at('defaultAddrPoolMaskLength'),
    ),
  };
  try {
    parseCidr(clusterSettings.ingressSubnet);
  } catch (err) {
    throw invalid(`${cluster.at('ingressSubnet')}: ${(err as Error).message}`);
  }
  try {
    checkAddrPools(clusterSettings.defaultAddrPool, clusterSettings.defaultAddrPoolMaskLength);
  } catch (err) {
    throw invalid(`${cluster.at('defaultAddrPool')}: ${(err as Error).message}`);
  }
  cluster.done();

  const declare = f.object('declare');
  const declareSettings: Settings['declare'] = {
    networks: declare.list('networks').map(readNetworkSpec),
    services: declare.list('services').map(readServiceSpec),
    tasks: declare.list('tasks').map((t) => {
      const v = { service: t.string('service'), count: t.int('count', 1, 0, 10_000), ips: t.strings('ips') };
      t.done();
      return v;
    }),
    sampleBackends: declare.bool('sampleBackends', false),
  };
  declare.done();

  const provider = f.object('provider');
  const dockerHost = provider.string('dockerHost', process.env.DOCKER_HOST || 'unix:///var/run/docker.sock');
  if (!dockerHost.startsWith('unix://')) {
    throw invalid(`${provider.at('dockerHost')}: only unix:// sockets are supported (got "${dockerHost}")`);
  }
  const providerSettings = {
    kind: provider.oneOf('kind', ['none', 'docker'], 'none'),
    dockerSocket: dockerHost.slice(7),
    serviceGraceMs: provider.duration('serviceGrace', 60_000),
  };
  provider.done();

  const security = f.object('security');
  const securitySettings = {
    joinToken: security.optionalString('joinToken'),
    certRotationMs: security.duration('certRotation', 12 * 3_600_000),
  };
  if (securitySettings.certRotationMs < 2000)
    throw invalid(`${security.at('certRotation')}: must be at least 2s`);
  security.done();

  const log = f.object('log');
  const logSettings = { level: log.oneOf('level', ['debug', 'info', 'warn', 'error'], 'info') };
  log.done();
  f.done();
  return {
    node: settingsNode,
    store,
    storePrefix,
    api: apiSettings,
    dns: dnsSettings,
    mesh: meshSettings,
    metrics: metricsSettings,
    cluster: clusterSettings,
    declare: declareSettings,
    log: logSettings,
    provider: providerSettings,
    security: securitySettings,
  };
}

/** A mask length from YAML (a number) or a flag (its text): an integer from 1 to 128, 24 when unset. */
function maskLength(v: unknown, at: string): number {
  if (v === undefined || v === null) return 24;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 128)
    throw invalid(`${at}: must be a prefix length from 1 to 128`);
  return n;
}
