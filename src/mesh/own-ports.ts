import { networkInterfaces } from 'node:os';
import { type HostPort, parseHostPort } from '../config/listen.js';
import type { Settings } from '../config/settings.js';

/** An address meshd itself listens on (its API, metrics, DNS or data plane). */
export interface OwnListen {
  readonly host: string;
  readonly port: number;
}

/** Whether `host` is an address of this host: loopback, or one of its interfaces'. */
function isLocal(host: string): boolean {
  if (host.startsWith('127.') || host === '::1' || host.startsWith('::ffff:127.')) return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address === host));
}

/**
 * Whether `host:port` is one of meshd's own listeners. The mesh never routes to them, nor does
 * the data plane splice to them: a task registered at a node's API address would otherwise turn
 * a published port into a remote door to the management API, past its loopback exemption.
 */
export function isOwnListener(own: readonly OwnListen[], host: string, port: number): boolean {
  for (const l of own) {
    if (l.port !== port) continue;
    if (l.host === host) return true;
    if ((l.host === '0.0.0.0' || l.host === '::') && isLocal(host)) return true;
  }
  return false;
}

/** A node's own listeners (API, DNS, metrics), as configured and as bound (port 0 resolved). */
export function ownListeners(
  s: Settings,
  bound: { readonly api: string; readonly dns: string; readonly metrics: string },
): HostPort[] {
  const out: HostPort[] = [s.api.listen];
  if (s.dns.listen) out.push(s.dns.listen);
  if (s.metrics.listen) out.push(s.metrics.listen);
  for (const b of [bound.api, bound.dns, bound.metrics]) if (b) out.push(parseHostPort(b, 'bound', 0));
  return out;
}
