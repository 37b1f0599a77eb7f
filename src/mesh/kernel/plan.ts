import { isIPv6 } from 'node:net';
import type { LbPolicy } from '../../model/types.js';
import type { Endpoint } from '../endpoint.js';
import type { ListenerSpec } from '../routes.js';

/** Which path serves a published port or a VIP on this node. */
export type Plane = 'kernel' | 'userspace';

/** What one address family's table is called in nft. */
export type Family = 'ip' | 'ip6';

/** Where one kernel rule sends a new connection: a task address, and its port when it is rewritten. */
export interface KernelTarget {
  readonly task: string;
  readonly addr: string;
  /** Absent for a VIP: like Docker's VIP, every port goes to the same port of the task. */
  readonly port?: number;
  /** The task is on another node: masquerade, so its reply comes back through this node. */
  readonly masquerade: boolean;
}

/**
 * One thing the kernel balances: a published port (on every local address, or on the publish
 * address) or a VIP (every port and both protocols). Equal entries produce equal rules, so an
 * update sends only the entries that differ.
 */
export interface KernelEntry {
  readonly key: string;
  readonly family: Family;
  readonly service: string;
  /** Metrics label: the published port, or `*` for a VIP's every port. */
  readonly port: string;
  readonly proto: 'tcp' | 'udp' | 'any';
  readonly match: { readonly vip: string } | { readonly publish: number; readonly addr?: string };
  readonly pick: 'inc' | 'random' | 'jhash';
  /** How long connections to a task that left may go on (the service's drain period). */
  readonly drainMs: number;
  /** Tasks to send new connections to; empty: new connections are refused. */
  readonly targets: readonly KernelTarget[];
}

const wildcard = new Set(['0.0.0.0', '::', '']);

function pickOf(lb: LbPolicy): KernelEntry['pick'] | undefined {
  if (lb === 'round-robin') return 'inc';
  if (lb === 'source-ip') return 'jhash';
  return undefined;
}

function isLoopback(addr: string): boolean {
  return addr.startsWith('127.') || addr === '::1';
}

/**
 * Why a listener must stay in userspace, or undefined when the kernel can serve it. The kernel
 * only rewrites addresses: anything that reads or holds the stream (PROXY protocol, least-conn and
 * p2c, per-task caps, the encrypted data plane) or that the kernel cannot route (tasks on loopback
 * addresses, a family other than the VIP's) stays in the proxy.
 */
export function userspaceReason(spec: ListenerSpec): string | undefined {
  const svc = spec.route.service;
  if (svc.proxyProtocol !== 'none') return 'PROXY protocol';
  if (
    spec.kind === 'publish' &&
    svc.ports.some((p) => p.published === spec.port && p.protocol === spec.proto && p.hostIp)
  )
    return 'published on one address';
  if (!pickOf(svc.lb)) return `${svc.lb} balancing`;
  if (svc.maxConnsPerTask > 0) return 'a per-task connection cap';
  const v6 = isIPv6(spec.host) || (wildcard.has(spec.host) && spec.host === '::');
  for (const e of spec.route.panicPicker.endpoints) {
    if (e.via) return "tasks reached through the data plane's tunnels";
    if (isLoopback(e.host)) return 'task addresses on loopback';
    if (isIPv6(e.host) !== v6) return 'task addresses of another family';
  }
  return undefined;
}

function targets(eps: readonly Endpoint[], vip: boolean): KernelTarget[] {
  return eps.map((e) => ({
    task: e.task,
    addr: e.host,
    ...(vip ? {} : { port: e.port }),
    masquerade: !e.local,
  }));
}

/**
 * Who gets new connections: local tasks when the service prefers them and has some up, else every
 * task in rotation, else (panic `all`) every task.
 */
function chosen(spec: ListenerSpec, panicAll: boolean): readonly Endpoint[] {
  const r = spec.route;
  const up = r.localPicker?.endpoints ?? r.picker.endpoints;
  return up.length === 0 && panicAll ? r.panicPicker.endpoints : up;
}

/**
 * The kernel entries of one service's listeners that the kernel serves: each published port
 * alone, and each VIP once for all its ports (when every port of that VIP can be served).
 */
export function kernelEntries(
  specs: readonly ListenerSpec[],
  panicAll: boolean,
  serves: (spec: ListenerSpec) => boolean,
): KernelEntry[] {
  const out: KernelEntry[] = [];
  const vips = new Map<string, ListenerSpec[]>();
  for (const spec of specs) {
    if (spec.kind === 'vip') {
      const list = vips.get(spec.host) ?? [];
      list.push(spec);
      vips.set(spec.host, list);
      continue;
    }
    if (!serves(spec)) continue;
    const svc = spec.route.service;
    out.push({
      key: `publish|${spec.key}`,
      family: isIPv6(spec.host) || spec.host === '::' ? 'ip6' : 'ip',
      service: svc.name,
      port: spec.route.port,
      proto: spec.proto,
      match: wildcard.has(spec.host) ? { publish: spec.port } : { publish: spec.port, addr: spec.host },
      pick: pickOf(svc.lb) ?? 'inc',
      drainMs: svc.drainMs,
      targets: targets(chosen(spec, panicAll), false),
    });
  }
  for (const [vip, list] of vips) {
    if (!list.every(serves)) continue;
    const first = list[0] as ListenerSpec;
    const svc = first.route.service;
    out.push({
      key: `vip|${vip}`,
      family: isIPv6(vip) ? 'ip6' : 'ip',
      service: svc.name,
      port: '*',
      proto: 'any',
      match: { vip },
      pick: pickOf(svc.lb) ?? 'inc',
      drainMs: svc.drainMs,
      targets: targets(chosen(first, panicAll), true),
    });
  }
  return out;
}

/** Whether two entries produce the same rules. */
export function sameEntry(a: KernelEntry, b: KernelEntry): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
