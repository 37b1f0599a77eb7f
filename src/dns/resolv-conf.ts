import { readFileSync } from 'node:fs';
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

/** Parses `IP[:PORT]` entries, leaving out meshd's own address (it must not forward to itself). */
export function toUpstreams(
  entries: readonly string[],
  self: { host: string; port: number } | undefined,
): Upstream[] {
  const out: Upstream[] = [];
  for (const e of entries) {
    const hp = parseHostPort(e, 'dns.upstreams', 53);
    if (self && hp.host === self.host && hp.port === self.port) continue;
    out.push({ host: hp.host, port: hp.port, label: `${hp.host}:${hp.port}` });
    if (out.length === maxUpstreams) break;
  }
  return out;
}
