import { cidrsOverlap, fromBigInt, parseAddress, parseCidr } from './address.js';
import { removingClaim } from './claims.js';
import {
  type Change,
  type ClusterState,
  checkObjectName,
  emptyChange,
  ingressNetwork,
  lookup,
} from './cluster-state.js';
import { invalid, MeshError } from './errors.js';
import type { Fields } from './fields.js';
import { newId } from './ids.js';
import { defaultGateway, makePool } from './ipam.js';
import type { AddrPools, Network } from './types.js';

/** What a user asks for when creating a network (`docker network create`'s options). */
export interface NetworkSpec {
  readonly name: string;
  readonly subnet: string;
  readonly gateway?: string;
  readonly vipRange?: string;
  readonly attachable: boolean;
  readonly ingress: boolean;
  readonly internal: boolean;
  readonly labels: Record<string, string>;
  readonly options: Record<string, string>;
}

/** Docker's default: the underlay MTU the overlay is sized for (its interfaces get 50 bytes less). */
export const defaultMtu = 1500;

export function readNetworkSpec(f: Fields): NetworkSpec {
  const driver = f.string('driver', 'overlay');
  if (driver !== 'overlay')
    throw invalid(`${f.at('driver')}: only the overlay driver is supported (got "${driver}")`);
  const spec: NetworkSpec = {
    name: f.string('name'),
    subnet: f.string('subnet', ''),
    gateway: f.optionalString('gateway'),
    vipRange: f.optionalString('vipRange'),
    attachable: f.bool('attachable', false),
    ingress: f.bool('ingress', false),
    internal: f.bool('internal', false),
    labels: f.record('labels'),
    options: f.record('options'),
  };
  f.done();
  return spec;
}

const knownOptions = new Set(['encrypted', 'com.docker.network.driver.mtu']);

/** Validates a network spec against the cluster and returns the write that creates it. */
export function createNetwork(state: ClusterState, spec: NetworkSpec, now: string, id = newId()): Change {
  checkObjectName(spec.name, 'network name');
  for (const n of state.networks.values()) {
    if (n.name === spec.name)
      throw new MeshError('already_exists', `network with name ${spec.name} already exists`);
  }
  if (spec.ingress) {
    const existing = ingressNetwork(state);
    if (existing)
      throw new MeshError('already_exists', `ingress network (${existing.id}) is already present`);
    if (spec.attachable) throw invalid('ingress network cannot be attachable');
  }
  for (const key of Object.keys(spec.options)) {
    if (!knownOptions.has(key)) throw invalid(`unknown network option "${key}"`);
  }
  let mtu = defaultMtu;
  const mtuText = spec.options['com.docker.network.driver.mtu'];
  if (mtuText !== undefined) {
    mtu = Number(mtuText);
    if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) {
      throw invalid(`invalid mtu "${mtuText}": must be an integer between 576 and 65535`);
    }
  }
  const subnet = parseCidr(spec.subnet || freeSubnet(state));
  if (subnet.family === 4 && subnet.prefix > 30)
    throw invalid(`invalid subnet ${spec.subnet}: too small (at most /30)`);
  if (subnet.family === 6 && subnet.prefix > 126)
    throw invalid(`invalid subnet ${spec.subnet}: too small (at most /126)`);
  for (const n of state.networks.values()) {
    if (cidrsOverlap(subnet, parseCidr(n.subnet))) {
      throw new MeshError(
        'already_exists',
        `invalid pool request: Pool overlaps with other one on this address space (${subnet.text} overlaps network ${n.name} ${n.subnet})`,
      );
    }
  }
  const gateway = spec.gateway ? parseAddress(spec.gateway).text : defaultGateway(subnet.text);
  const pool = makePool(subnet.text, gateway, spec.vipRange);
  const g = parseAddress(gateway);
  if (g.family !== subnet.family || g.value <= subnet.first || g.value > subnet.last) {
    throw invalid(`ipam configuration: subnet ${subnet.text} does not contain gateway ${gateway}`);
  }
  const network: Omit<Network, 'version'> = {
    id,
    name: spec.name,
    driver: 'overlay',
    subnet: subnet.text,
    gateway,
    ...(spec.vipRange ? { vipRange: pool.range.text } : {}),
    attachable: spec.attachable,
    ingress: spec.ingress,
    internal: spec.internal,
    encrypted: 'encrypted' in spec.options,
    mtu,
    vni: freeVni(state),
    labels: spec.labels,
    createdAt: now,
    updatedAt: now,
  };
  const change = emptyChange();
  change.puts.push({ kind: 'networks', id, value: network });
  return change;
}

/** Swarm's default address pool: 10.0.0.0/8 in /24s (`docker swarm init --default-addr-pool`). */
export const swarmAddrPools: AddrPools = { pools: ['10.0.0.0/8'], maskLength: 24 };

/** Checks pools and a mask length: CIDR blocks each at least as big as the subnets cut from them. */
export function checkAddrPools(pools: readonly string[], maskLength: number): void {
  if (pools.length === 0) throw invalid('at least one address pool is needed');
  for (const p of pools) {
    const c = parseCidr(p);
    const max = c.family === 4 ? 30 : 126;
    if (maskLength < c.prefix || maskLength > max)
      throw invalid(`mask length ${maskLength} does not fit pool ${c.text} (from /${c.prefix} to /${max})`);
  }
}

/**
 * The first subnet of the cluster's address pools that overlaps no network, as swarm's allocator
 * hands them out. Two networks created at once may pick the same one: the subnet is a claim, so
 * the second write fails and recomputes with the next.
 */
function freeSubnet(state: ClusterState): string {
  const { pools, maskLength } = state.cluster?.addrPools ?? swarmAddrPools;
  const taken = [...state.networks.values()].map((n) => parseCidr(n.subnet));
  for (const p of pools) {
    const pool = parseCidr(p);
    const size = 1n << BigInt((pool.family === 4 ? 32 : 128) - maskLength);
    for (let first = pool.first; first + size - 1n <= pool.last; first += size) {
      const last = first + size - 1n;
      const clash = taken.find((t) => t.family === pool.family && t.first <= last && first <= t.last);
      // Skip past the network in the way rather than one subnet at a time.
      if (clash) {
        first = ((clash.last - pool.first) / size) * size + pool.first;
        continue;
      }
      return `${fromBigInt(first, pool.family)}/${maskLength}`;
    }
  }
  throw new MeshError(
    'exhausted',
    'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network',
  );
}

/** libnetwork's overlay VNIs start at 4096 (below are left for other uses); 2^24 - 1 is the last. */
const firstVni = 4096;
const lastVni = 0xffffff;

/** The lowest VNI no network has: allocated once, stored with the network, claimed so it is unique. */
export function freeVni(state: ClusterState): number {
  const used = new Set<number>();
  for (const n of state.networks.values()) if (n.vni) used.add(n.vni);
  for (let vni = firstVni; vni <= lastVni; vni++) if (!used.has(vni)) return vni;
  throw new MeshError('exhausted', 'no VXLAN network identifier is free');
}

/** Removes a network nobody uses; the ingress network only while no service publishes through it. */
export function removeNetwork(state: ClusterState, ref: string): Change {
  const net = lookup(state.networks, ref, 'network');
  if (net.ingress) {
    for (const s of state.services.values()) {
      if (s.ports.some((p) => p.mode === 'ingress')) {
        throw new MeshError(
          'failed_precondition',
          `ingress network cannot be removed because service ${s.id} depends on it`,
        );
      }
    }
  }
  for (const s of state.services.values()) {
    if (s.networks.some((n) => n.network === net.id)) {
      throw new MeshError('failed_precondition', `network ${net.id} is in use by service ${s.id}`);
    }
  }
  for (const c of state.containers.values()) {
    if (c.addresses.some((a) => a.network === net.id)) {
      // A standalone container's attachment is a network-attachment task in swarmkit.
      throw new MeshError('failed_precondition', `network ${net.id} is in use by task ${c.id}`);
    }
  }
  const change = emptyChange();
  change.deletes.push({ kind: 'networks', id: net.id });
  change.expect.push({ kind: 'networks', id: net.id, version: net.version });
  // Nodes give up their own addresses on it, as Docker removes each node's lb endpoint.
  for (const n of state.nodes.values()) {
    if (!n.overlayAddresses?.[net.id]) continue;
    const { [net.id]: _gone, ...kept } = n.overlayAddresses;
    const { version: _v, overlayAddresses: _all, ...rest } = n;
    const value = Object.keys(kept).length > 0 ? { ...rest, overlayAddresses: kept } : rest;
    change.puts.push({ kind: 'nodes', id: n.id, value });
  }
  // No service or container may join it between the checks above and the delete.
  change.fence = removingClaim('networks', net.id);
  return change;
}
