import ipaddr from 'ipaddr.js';
import { toBigInt } from '../model/address.js';
import type { DnsView, NetworkZone } from './view.js';

/**
 * The networks a client sees, from its source address: the networks of the endpoint holding
 * that address, else the networks whose subnet holds it. A client in no subnet (the host, an
 * operator) sees every non-internal network when the policy is `all`, none when it is `none`.
 */
export function scopeOf(view: DnsView, address: string, unscoped: 'all' | 'none'): readonly NetworkZone[] {
  let addr = address;
  if (addr.startsWith('::ffff:') && addr.includes('.')) addr = addr.slice(7);
  let nets = view.endpointNetworks.get(addr);
  if (!nets && ipaddr.isValid(addr)) {
    const parsed = ipaddr.parse(addr);
    const family = parsed.kind() === 'ipv4' ? 4 : 6;
    const value = toBigInt(parsed);
    nets = view.subnets
      .filter((s) => s.cidr.family === family && value >= s.cidr.first && value <= s.cidr.last)
      .map((s) => s.id);
    if (nets.length === 0) nets = undefined;
  }
  if (!nets) return unscoped === 'all' ? view.zones.filter((z) => !z.internal) : [];
  const mine = new Set(nets);
  // Docker's order: user networks first (zones are in that order); ingress has no zone at all.
  return view.zones.filter((z) => mine.has(z.id));
}

/** A stable key for a scope, so answers can be cached per scope rather than per client. */
export function scopeKey(zones: readonly NetworkZone[]): string {
  return zones.map((z) => z.id).join(',');
}
