import { execFile, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { table } from './nft-script.js';

/** Output of a command cut to what an error message needs. */
const brief = (s: string) => s.trim().split('\n').slice(0, 6).join('\n').slice(0, 800);

/** Runs `nft -f -` with a script on standard input: one transaction, all or nothing. */
export function runNft(script: string, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('nft', ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 64_000) stderr += d.toString();
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`nft failed (exit ${code}): ${brief(stderr)}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(script);
  });
}

function run(
  cmd: string,
  args: readonly string[],
  timeoutMs = 10_000,
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, out, err) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, out: String(out), err: error && !err ? error.message : String(err) });
    });
  });
}

/**
 * Why this process cannot program nftables, or undefined when it can: `nft` must exist and a
 * netlink read must be allowed (it needs CAP_NET_ADMIN, as every write does).
 */
export async function kernelUnavailable(): Promise<string | undefined> {
  const r = await run('nft', ['list', 'tables']);
  if (r.code === 0) return undefined;
  if (/ENOENT|not found/i.test(r.err)) return 'nft is not installed (Debian: apt-get install nftables)';
  if (/not permitted|EPERM|EACCES/i.test(r.err)) return 'no CAP_NET_ADMIN (run as root, or add NET_ADMIN)';
  return `nft does not work here: ${brief(r.err)}`;
}

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

/** Every named counter of meshd's tables: chain name -> packets (each is one new connection). */
export async function readCounters(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const family of ['ip', 'ip6']) {
    const r = await run('nft', ['-j', 'list', 'counters', 'table', family, table]);
    if (r.code !== 0) continue;
    try {
      const doc = JSON.parse(r.out) as { nftables?: { counter?: { name: string; packets: number } }[] };
      for (const item of doc.nftables ?? [])
        if (item.counter) out.set(item.counter.name, item.counter.packets);
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
