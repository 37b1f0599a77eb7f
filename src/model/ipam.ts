import { type Cidr, cidrContains, fromBigInt, parseAddress, parseCidr } from './address.js';
import type { AddressesInUse } from './cluster-state.js';
import { invalid, MeshError } from './errors.js';

/**
 * Address management for one network: hands out addresses from the subnet (or a sub-range), never
 * the network, broadcast or gateway address, never one already in use. Pure: the caller passes
 * the set of addresses in use, derived from the stored objects, so there is no separate
 * allocation table to drift out of step with them.
 */
export interface Pool {
  readonly subnet: Cidr;
  readonly range: Cidr;
  readonly gateway: string;
}

export function makePool(subnet: string, gateway: string, range?: string): Pool {
  const s = parseCidr(subnet);
  const r = range ? parseCidr(range) : s;
  if (r.first < s.first || r.last > s.last)
    throw invalid(`subnet ${s.text} does not contain range ${r.text}`);
  return { subnet: s, range: r, gateway };
}

/** The default gateway Docker picks: the first host address of the subnet. */
export function defaultGateway(subnet: string): string {
  const s = parseCidr(subnet);
  return fromBigInt(s.first + 1n, s.family);
}

/** Whether an address may ever be handed out in this subnet. */
function reserved(pool: Pool, value: bigint): boolean {
  const { subnet } = pool;
  if (value === subnet.first) return true;
  // A /31 or /32 (v4) has no broadcast to spare; bigger v4 subnets reserve the last address.
  if (subnet.family === 4 && subnet.prefix < 31 && value === subnet.last) return true;
  return fromBigInt(value, subnet.family) === pool.gateway;
}

/** Checks an address a user asked for: inside the subnet, not reserved, not taken. */
export function checkRequested(pool: Pool, address: string, used: AddressesInUse, network: string): string {
  const a = parseAddress(address);
  if (!cidrContains(pool.subnet, a.text)) {
    throw invalid(`address ${a.text} is not in subnet ${pool.subnet.text} of network ${network}`);
  }
  if (reserved(pool, a.value)) throw invalid(`address ${a.text} is reserved in network ${network}`);
  if (used.has(a.text))
    throw new MeshError('already_exists', `address ${a.text} is already in use in network ${network}`);
  return a.text;
}

/**
 * Allocates the first free address of the range. (Swarm allocates serially, after the address
 * handed out last; meshd keeps first-free because tasks and containers often bring addresses of
 * their own from an engine that numbers from the start of the subnet, and a VIP placed after the
 * last of them would take the address the engine hands out next.)
 */
export function allocate(pool: Pool, used: AddressesInUse, network: string): string {
  const { range, subnet } = pool;
  const size = range.last - range.first + 1n;
  // Addresses in use bound the scan: after used.size + 3 candidates one must be free, or none is.
  const limit = size < BigInt(used.size + 4) ? size : BigInt(used.size + 4);
  // Every address below the hint is taken: start there (the claim index keeps it honest).
  const from = used.hint?.from(range.text);
  const start = from !== undefined && from > range.first && from <= range.last ? from : range.first;
  for (let value = start, i = 0n; value <= range.last && i < limit; value++, i++) {
    if (reserved(pool, value)) continue;
    const text = fromBigInt(value, subnet.family);
    if (used.has(text)) continue;
    used.hint?.found(range.text, value);
    return text;
  }
  throw new MeshError('exhausted', `no available IP addresses in network ${network} (${range.text})`);
}
