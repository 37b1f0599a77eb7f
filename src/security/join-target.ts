import type { Node } from '../model/types.js';

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1';
}

/**
 * Where another node reaches `n`'s management API to join or renew: its join listener (on its
 * advertise address, when the API itself listens on loopback only), else its API listen address,
 * with a wildcard replaced by its advertise address. A loopback API is reachable only from its own
 * host, so it is a target only when the node advertises a loopback address too (nodes sharing a
 * host); otherwise the reason is returned, for the error a joining node prints.
 */
export function joinTarget(n: Node): { target: string } | { reason: string } {
  const m = /^(.*):(\d+)$/.exec(n.joinListen ?? n.apiListen);
  if (!m) return { reason: `${n.name} has not published its API address` };
  let host = (m[1] as string).replace(/^\[|\]$/g, '');
  if (host === '0.0.0.0' || host === '::' || host === '') host = n.advertiseAddr;
  if (isLoopback(host) && !isLoopback(n.advertiseAddr))
    return {
      reason: `${n.name} serves its API only on ${n.apiListen}; start it with --api-listen ${n.advertiseAddr}:${m[2]} (and --api-token or --api-tls)`,
    };
  return { target: host.includes(':') ? `[${host}]:${m[2]}` : `${host}:${m[2]}` };
}
