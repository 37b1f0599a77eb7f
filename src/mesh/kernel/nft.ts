import { readFile } from 'node:fs/promises';
import { run, runNft } from '../../host/commands.js';

import { table } from './nft-script.js';

/** Removes meshd's tables, the ones it owns and nothing else (`meshd --cleanup`, a stop with `remove`). */
export async function removeTables(): Promise<string[]> {
  const r = await run('nft', ['list', 'tables']);
  const removed: string[] = [];
  for (const line of r.out.split('\n')) {
    const m = /^table (ip6?) (\S+)$/.exec(line.trim());
    if (!m || m[2] !== table) continue;
    await runNft(`delete table ${m[1]} ${table}\n`);
    removed.push(`${m[1]} ${table}`);
  }
  return removed;
}

/** What the kernel counted per entry: new connections by entry chain, traffic by conntrack mark. */
export interface KernelCounts {
  readonly connections: Map<string, number>;
  readonly traffic: Map<number, { packets: number; bytes: number }>;
}

/**
 * Reads the per-element counters of meshd's tables: each dispatch map element counts the new
 * connections it sent to its entry's chain, each traffic set element the packets and bytes of
 * the connections marked with it. Only those maps and the set are listed, not the slot maps.
 */
export async function readCounters(families: readonly string[]): Promise<KernelCounts> {
  const counts: KernelCounts = { connections: new Map(), traffic: new Map() };
  // One list per run: nft (1.0.6) fails to find a map named in a second list command of a run.
  const lists = families.flatMap((family) => [
    ...['vips', 'ports', 'addr-ports'].map((m) => ['list', 'map', family, table, m]),
    ['list', 'set', family, table, 'traffic'],
  ]);
  for (const r of await Promise.all(lists.map((args) => run('nft', args))))
    if (r.code === 0) parseCounts(r.out, counts);
  return counts;
}

/** Adds the counters of `nft list map|set` output to `into`. */
export function parseCounts(out: string, into: KernelCounts): void {
  for (const m of out.matchAll(/counter packets (\d+) bytes \d+ : goto (\S+?)(?=[,\s]|$)/g))
    into.connections.set(m[2] as string, (into.connections.get(m[2] as string) ?? 0) + Number(m[1]));
  for (const m of out.matchAll(/(0x[0-9a-f]+) counter packets (\d+) bytes (\d+)/g))
    into.traffic.set(Number(m[1]), { packets: Number(m[2]), bytes: Number(m[3]) });
}

/** Conntrack entries in this network namespace (absent when the module is not loaded). */
export async function conntrackCount(): Promise<number | undefined> {
  try {
    return Number((await readFile('/proc/sys/net/netfilter/nf_conntrack_count', 'utf8')).trim());
  } catch {
    return undefined;
  }
}

/**
 * Deletes the conntrack entries of flows sent to a task (`conntrack -D`), so UDP flows move off a
 * departed task at once, and TCP connections end after their drain period, as kube-proxy does.
 * Exit 1 means nothing matched.
 */
export async function forgetFlows(proto: 'tcp' | 'udp', addr: string, port?: number): Promise<void> {
  const args = ['-D', '-p', proto, '--reply-src', addr];
  if (port !== undefined) args.push('--reply-port-src', String(port));
  await run('conntrack', args);
}
