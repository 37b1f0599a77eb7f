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

/** Every named counter of meshd's tables: its packets and bytes (an entry's chain counter counts new connections). */
export async function readCounters(): Promise<Map<string, { packets: number; bytes: number }>> {
  const out = new Map<string, { packets: number; bytes: number }>();
  for (const family of ['ip', 'ip6']) {
    const r = await run('nft', ['-j', 'list', 'counters', 'table', family, table]);
    if (r.code !== 0) continue;
    try {
      const doc = JSON.parse(r.out) as {
        nftables?: { counter?: { name: string; packets: number; bytes: number } }[];
      };
      for (const item of doc.nftables ?? [])
        if (item.counter)
          out.set(item.counter.name, { packets: item.counter.packets, bytes: item.counter.bytes });
    } catch {
      // A table being replaced at this instant: the next scrape reads it.
    }
  }
  return out;
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
