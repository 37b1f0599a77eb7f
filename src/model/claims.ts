import { parseAddress } from './address.js';
import type { Kind } from './kinds.js';
import type { Container, Network, Node, Service, Task } from './types.js';

/**
 * Claims: what must be unique across the cluster (a name, an address on a network, a slot, a
 * published port), each as a key that exactly one object holds. A write takes the claims of what
 * it puts with create-if-absent compares in the same transaction, and gives up those of what it
 * deletes, so two writers that want the same thing conflict and writers on different objects
 * never do. Claims are derived from the objects, never written by hand, so they cannot drift.
 */
export function claimsOf(kind: Kind, value: object | undefined): string[] {
  if (!value) return [];
  switch (kind) {
    case 'services':
      return serviceClaims(value as Service);
    case 'tasks':
      return taskClaims(value as Task);
    case 'containers':
      return containerClaims(value as Container);
    case 'networks':
      return networkClaims(value as Network);
    case 'nodes':
      return Object.entries((value as Node).overlayAddresses ?? {}).map(([n, a]) => addressClaim(n, a));
    default:
      return [];
  }
}

export const addressClaim = (network: string, address: string): string => `addr/${network}/${address}`;
export const nameClaim = (kind: 'services' | 'tasks' | 'containers' | 'networks', name: string): string =>
  `name/${kind}/${name}`;
export const vniClaim = (vni: number): string => `vni/${vni}`;
export const slotClaim = (service: string, slot: number): string => `slot/${service}/${slot}`;
export const globalClaim = (service: string, node: string): string => `global/${service}/${node}`;
/** A host-mode published port (`8080/tcp`) on one node: one task holds it, as one process binds it. */
export const hostPortClaim = (node: string, port: string): string => `hostport/${node}/${port}`;
/** A name answered on one network: service names, aliases and container names share it. */
export const dnsClaim = (network: string, name: string): string => `dns/${network}/${name.toLowerCase()}`;
/** Held while a network or service is being removed: new users of it must not appear meanwhile. */
export const removingClaim = (kind: 'networks' | 'services', id: string): string => `removing/${kind}/${id}`;

function serviceClaims(s: Service): string[] {
  const out = [nameClaim('services', s.name)];
  for (const n of s.networks ?? []) {
    if (n.vip) out.push(addressClaim(n.network, n.vip));
    for (const name of new Set([s.name, ...n.aliases].map((x) => x.toLowerCase())))
      out.push(dnsClaim(n.network, name));
  }
  if (s.ingress) out.push(addressClaim(s.ingress.network, s.ingress.vip));
  for (const p of s.ports ?? [])
    if (p.mode === 'ingress') out.push(`port/${p.hostIp ? `${p.hostIp}/` : ''}${p.published}/${p.protocol}`);
  return out;
}

function taskClaims(t: Task): string[] {
  const out = [nameClaim('tasks', t.name)];
  out.push(t.slot > 0 ? slotClaim(t.service, t.slot) : globalClaim(t.service, t.node));
  for (const a of t.addresses ?? []) out.push(addressClaim(a.network, a.address));
  for (const p of t.hostPorts ?? []) out.push(hostPortClaim(t.node, p));
  return out;
}

function containerClaims(c: Container): string[] {
  const out = [nameClaim('containers', c.name)];
  const names = new Set([c.name, ...(c.aliases ?? [])].map((x) => x.toLowerCase()));
  for (const a of c.addresses ?? []) {
    out.push(addressClaim(a.network, a.address));
    for (const n of names) out.push(dnsClaim(a.network, n));
  }
  return out;
}

function networkClaims(n: Network): string[] {
  const out = [nameClaim('networks', n.name), `subnet/${n.subnet}`];
  if (n.ingress) out.push('ingress');
  if (n.vni) out.push(vniClaim(n.vni));
  return out;
}

/** The part of a claim that groups it for counting: `addr/<network>` for an address. */
function groupOf(key: string): string {
  return key.slice(0, key.lastIndexOf('/'));
}

/**
 * Every claim the visible objects hold, plus those that writes in flight from this node hold
 * (so concurrent local writers pick different addresses and slots instead of colliding).
 */
export class ClaimIndex {
  private readonly owners = new Map<string, string>();
  private readonly counts = new Map<string, number>();
  private readonly pending = new Map<string, number>();
  private readonly pendingCounts = new Map<string, number>();
  /**
   * Where first-free scans (addresses, slots) may start: per group and range, every candidate of
   * the range below the hint is taken. Giving a claim up lowers the hint to it, so allocation
   * stays first-free and costs a few steps however many are taken.
   */
  private readonly hints = new Map<string, Map<string, bigint>>();

  has(key: string): boolean {
    return this.owners.has(key) || this.pending.has(key);
  }

  /** `kind/id` of the visible object holding `key`. */
  owner(key: string): string | undefined {
    return this.owners.get(key);
  }

  /** How many claims, visible or in flight, share a group (addresses in use on a network). */
  count(group: string): number {
    return (this.counts.get(group) ?? 0) + (this.pendingCounts.get(group) ?? 0);
  }

  /** The value a first-free scan of `range` in `group` may start from, if known. */
  scanFrom(group: string, range: string): bigint | undefined {
    return this.hints.get(group)?.get(range);
  }

  /** A scan of `range` in `group` found every candidate below `value` taken. */
  scanned(group: string, range: string, value: bigint): void {
    let ranges = this.hints.get(group);
    if (!ranges) {
      ranges = new Map();
      this.hints.set(group, ranges);
    }
    ranges.set(range, value);
  }

  /** A claim was given up: scans of its group must look at it again. */
  private freed(key: string): void {
    const cut = key.lastIndexOf('/');
    const ranges = this.hints.get(key.slice(0, cut));
    if (!ranges) return;
    const text = key.slice(cut + 1);
    const value = key.startsWith('addr/') ? parseAddress(text).value : BigInt(Number(text) || 0);
    for (const [range, hint] of ranges) if (value < hint) ranges.set(range, value);
  }

  /** An object changed from `before` to `after` (either may be absent). */
  replace(kind: Kind, id: string, before: object | undefined, after: object | undefined): void {
    const owner = `${kind}/${id}`;
    const kept = new Set(claimsOf(kind, after));
    for (const key of claimsOf(kind, before)) {
      if (kept.has(key) || this.owners.get(key) !== owner) continue;
      this.owners.delete(key);
      this.bump(groupOf(key), -1);
      this.freed(key);
    }
    for (const key of kept) {
      if (this.owners.has(key)) continue;
      this.owners.set(key, owner);
      this.bump(groupOf(key), 1);
    }
  }

  /** Marks claims a write in flight takes; `release` when it is visible or failed. */
  hold(keys: readonly string[]): void {
    for (const k of keys) {
      bump(this.pending, k, 1);
      bump(this.pendingCounts, groupOf(k), 1);
    }
  }

  release(keys: readonly string[]): void {
    for (const k of keys) {
      bump(this.pending, k, -1);
      bump(this.pendingCounts, groupOf(k), -1);
      this.freed(k);
    }
  }

  private bump(group: string, by: number): void {
    bump(this.counts, group, by);
  }
}

function bump(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}
