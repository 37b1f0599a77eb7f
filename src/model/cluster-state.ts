import { addressClaim, type ClaimIndex } from './claims.js';
import { MeshError } from './errors.js';
import type { Kind } from './kinds.js';
import type {
  ClusterInfo,
  Container,
  Meta,
  Network,
  Node,
  NodeHeartbeat,
  Service,
  Task,
  TaskHealth,
} from './types.js';

/** Everything the cluster store holds, as typed maps keyed by id. */
export interface ClusterState {
  readonly cluster: ClusterInfo | undefined;
  readonly networks: ReadonlyMap<string, Network>;
  readonly services: ReadonlyMap<string, Service>;
  readonly tasks: ReadonlyMap<string, Task>;
  readonly containers: ReadonlyMap<string, Container>;
  readonly nodes: ReadonlyMap<string, Node>;
  readonly heartbeats: ReadonlyMap<string, NodeHeartbeat>;
  readonly health: ReadonlyMap<string, TaskHealth>;
  /** Unique things held (names, addresses, slots): kept by the mirror, absent in hand-built states. */
  readonly claims?: ClaimIndex;
}

export { type Kind, kinds } from './kinds.js';

/** A write computed by a pure operation, applied by the controller as one store transaction. */
export interface Change {
  readonly puts: { kind: Kind; id: string; value: object; lease?: boolean }[];
  readonly deletes: { kind: Kind; id: string }[];
  /** Objects that must still be at these versions (0 = must not exist) for the write to apply. */
  readonly expect: { kind: Kind; id: string; version: number }[];
  /** Claims that must not be held when the write applies (a `removing/...` fence of what it uses). */
  readonly guards: string[];
  /**
   * A claim to take in a write of its own before this change: the controller takes it, catches up,
   * recomputes the change (so it sees every writer that got in before the fence) and then applies
   * it, giving the fence up in the same transaction. Removals use it so no new user appears meanwhile.
   */
  fence?: string;
}

export function emptyChange(): Change {
  return { puts: [], deletes: [], expect: [], guards: [] };
}

export function emptyState(): ClusterState {
  return {
    cluster: undefined,
    networks: new Map(),
    services: new Map(),
    tasks: new Map(),
    containers: new Map(),
    nodes: new Map(),
    heartbeats: new Map(),
    health: new Map(),
  };
}

/** Strips the store-derived version before an object is written back. */
export function stored<T extends Meta>(obj: T): Omit<T, 'version'> {
  const { version: _version, ...rest } = obj;
  return rest;
}

/**
 * Finds an object by full id, exact name, or unique id prefix: the lookup order the docker CLI uses.
 */
export function lookup<T extends Meta & { name: string }>(
  objects: ReadonlyMap<string, T>,
  ref: string,
  what: string,
): T {
  const byId = objects.get(ref);
  if (byId) return byId;
  for (const o of objects.values()) if (o.name === ref) return o;
  const prefixed = [...objects.values()].filter((o) => o.id.startsWith(ref));
  if (prefixed.length === 1 && ref.length >= 1) return prefixed[0] as T;
  if (prefixed.length > 1)
    throw new MeshError('invalid_argument', `${what} ${ref} is ambiguous (${prefixed.length} matches)`);
  throw new MeshError('not_found', `${what} ${ref} not found`);
}

/** The addresses in use on one network, as IPAM reads them. */
export interface AddressesInUse {
  has(address: string): boolean;
  readonly size: number;
  /** Where a first-free scan of a range may start, and where the last one ended (claim index). */
  readonly hint?: {
    from(range: string): bigint | undefined;
    found(range: string, value: bigint): void;
  };
}

/**
 * Every address in use on a network: VIPs, task and container addresses, nodes' own addresses. From the claim index
 * when the state has one (constant time per lookup), else by a scan.
 */
export function usedAddresses(state: ClusterState, networkId: string): AddressesInUse {
  const claims = state.claims;
  if (claims) {
    return {
      has: (a) => claims.has(addressClaim(networkId, a)),
      size: claims.count(`addr/${networkId}`),
      hint: {
        from: (range) => claims.scanFrom(`addr/${networkId}`, range),
        found: (range, value) => claims.scanned(`addr/${networkId}`, range, value),
      },
    };
  }
  const used = new Set<string>();
  for (const s of state.services.values()) {
    for (const n of s.networks) if (n.network === networkId && n.vip) used.add(n.vip);
    if (s.ingress?.network === networkId) used.add(s.ingress.vip);
  }
  for (const t of state.tasks.values()) {
    for (const a of t.addresses) if (a.network === networkId) used.add(a.address);
  }
  for (const c of state.containers.values()) {
    for (const a of c.addresses) if (a.network === networkId) used.add(a.address);
  }
  for (const n of state.nodes.values()) {
    const a = n.overlayAddresses?.[networkId];
    if (a) used.add(a);
  }
  return used;
}

export function ingressNetwork(state: ClusterState): Network | undefined {
  for (const n of state.networks.values()) if (n.ingress) return n;
  return undefined;
}

const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const objectName = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/** Service names and aliases must be DNS labels: they are what clients resolve. */
export function checkDnsName(name: string, what: string): string {
  if (!dnsLabel.test(name)) {
    throw new MeshError(
      'invalid_argument',
      `invalid ${what} "${name}": use 1-63 letters, digits and '-', not starting or ending with '-'`,
    );
  }
  return name;
}

/** Network and container names follow Docker's object-name rule. */
export function checkObjectName(name: string, what: string): string {
  if (!objectName.test(name)) {
    throw new MeshError(
      'invalid_argument',
      `invalid ${what} "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`,
    );
  }
  return name;
}

/**
 * Whether a claim is taken in `state`: from its index when it has one (the mirror's), else by
 * the scan `fallback` (states built by hand in tests and benchmarks).
 */
export function claimed(state: ClusterState, key: string, fallback: () => boolean): boolean {
  return state.claims ? state.claims.has(key) : fallback();
}
