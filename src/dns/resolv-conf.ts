import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { parseHostPort } from '../config/listen.js';
import type { Upstream } from './upstream.js';

/** Docker forwards to at most three upstreams; so do we. */
export const maxUpstreams = 3;

/** The nameservers of /etc/resolv.conf, as Docker takes the host's. */
export function systemNameservers(path = '/etc/resolv.conf'): string[] {
  try {
    return readFileSync(path, 'utf8')
      .split('\n')
      .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
      .filter((x): x is string => x !== undefined);
  } catch {
    return [];
  }
}

/** The addresses of this host: every 127.x and ::1, and each interface's. */
function isLocalAddress(host: string): boolean {
  if (host.startsWith('127.') || host === '::1' || host === 'localhost') return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address === host));
}

/** Whether `hp` is one of meshd's own DNS listen addresses (a wildcard listen holds every local one). */
export function isSelf(hp: { host: string; port: number }, self: { host: string; port: number }): boolean {
  if (hp.port !== self.port) return false;
  if (hp.host === self.host) return true;
  return (self.host === '0.0.0.0' || self.host === '::') && isLocalAddress(hp.host);
}

/**
 * Parses `IP[:PORT]` entries, leaving out meshd's own addresses: forwarding to itself would loop
 * until the upstream timeout, then SERVFAIL. `onSelf` hears of each one left out.
 */
export function toUpstreams(
  entries: readonly string[],
  self: { host: string; port: number } | undefined,
  onSelf: (entry: string) => void = () => {},
): Upstream[] {
  const out: Upstream[] = [];
  for (const e of entries) {
    const hp = parseHostPort(e, 'dns.upstreams', 53);
    if (self && isSelf(hp, self)) {
      onSelf(e);
      continue;
    }
    out.push({ host: hp.host, port: hp.port, label: `${hp.host}:${hp.port}` });
    if (out.length === maxUpstreams) break;
  }
  return out;
}
