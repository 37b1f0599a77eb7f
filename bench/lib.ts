import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const execFileP = promisify(execFile);
export const root = fileURLToPath(new URL('../../', import.meta.url));
export const peers = join(root, 'bench/peers');

/** A scratch directory for one benchmark run. */
export function workdir(name: string): string {
  return mkdtempSync(join(tmpdir(), `meshd-bench-${name}-`));
}

/** A peer config with RUNDIR/WWWDIR/... replaced and optional text substitutions. */
export function peerConfig(file: string, dir: string, subst: Record<string, string> = {}): string {
  let text = readFileSync(join(peers, file), 'utf8');
  for (const k of ['RUNDIR', 'WWWDIR', 'PEERSDIR', 'WORKDIR']) text = text.replaceAll(k, dir);
  for (const [a, b] of Object.entries(subst)) text = text.replaceAll(a, b);
  const out = join(dir, file);
  writeFileSync(out, text);
  return out;
}

/**
 * A config file of its own for one nginx backend `name` listening on `listen` (from the peers'
 * nginx-backend.conf, whose pid and log get the name too); returns its path.
 */
export function nginxBackendConfig(dir: string, name: string, listen: string): string {
  const conf = peerConfig('nginx-backend.conf', dir, {
    'listen 127.0.0.1:18081 backlog=4096;': `listen ${listen} backlog=4096;`,
    'listen 127.0.0.1:18082 backlog=4096;': '',
    'nginx-backend.pid': `nginx-${name}.pid`,
    'nginx-backend.err': `nginx-${name}.err`,
  });
  const copy = join(dir, `nginx-${name}.conf`);
  writeFileSync(copy, readFileSync(conf));
  return copy;
}

const started: ChildProcess[] = [];

/** Starts a process pinned to one CPU (`taskset -c cpu`), remembered so `stopAll` ends exactly these. */
export function pinned(cpu: number, cmd: string, args: string[]): ChildProcess {
  const child = spawn('taskset', ['-c', String(cpu), cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  return child;
}

/** Starts meshd pinned to a CPU and resolves with the addresses from its ready line. */
export async function startMeshd(
  cpu: number,
  dir: string,
  config: string,
  extra: string[] = [],
  /** Run in this network namespace (`ip netns exec`). */
  netns?: string,
): Promise<{ child: ChildProcess; ready: Record<string, string> }> {
  mkdirSync(dir, { recursive: true });
  const cfg = join(dir, 'meshd.yaml');
  writeFileSync(cfg, config);
  const [cmd, pre] = netns ? ['ip', ['netns', 'exec', netns, process.execPath]] : [process.execPath, []];
  const child = pinned(cpu, cmd, [
    ...pre,
    // BENCH_PROF=DIR writes a CPU profile of each meshd there when it exits.
    ...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROF] : []),
    join(root, 'dist/src/bin/meshd.js'),
    '--config',
    cfg,
    '--store',
    'memory',
    '--state-dir',
    join(dir, 'meshd-state'),
    '--api-listen',
    '127.0.0.1:0',
    '--metrics-listen',
    '127.0.0.1:0',
    '--data-listen',
    '127.0.0.1:0',
    // In the machine's own namespace meshd never programs nftables: a benchmark's VIPs would
    // otherwise land in the host's tables. The kernel data plane is measured in namespaces.
    ...(netns || extra.includes('--dataplane') ? [] : ['--dataplane', 'userspace']),
    ...extra,
  ]);
  const logs: string[] = [];
  const ready = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`meshd not ready:\n${logs.join('\n')}`)), 300_000);
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      logs.push(line);
      if (line.includes('meshd is ready')) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, string>);
      }
    });
    child.once('exit', (c) => reject(new Error(`meshd exited ${c}:\n${logs.join('\n')}`)));
  });
  return { child, ready };
}

export async function stopAll(): Promise<void> {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  await Promise.all(
    started.map((c) =>
      c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined,
    ),
  );
  started.length = 0;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** CPU seconds (user + system) a process and its children (nginx's worker) have used, from /proc. */
export function cpuSeconds(pid: number): number {
  let total = 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    total = (Number(fields[11]) + Number(fields[12])) / 100;
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean);
    for (const c of children) total += cpuSeconds(Number(c));
  } catch {
    // The process is gone.
  }
  return total;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Prepares a run folder for the nginx backend peer config: its temp folders, and a 100 MB file at
 * files/big.bin readable by nginx's unprivileged worker.
 */
export function prepareNginxDir(dir: string): void {
  for (const d of [
    'nginx-tmp/body',
    'nginx-tmp/proxy',
    'nginx-tmp/fastcgi',
    'nginx-tmp/uwsgi',
    'nginx-tmp/scgi',
    'files',
  ]) {
    mkdirSync(join(dir, d), { recursive: true });
  }
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'files'), 0o755);
  const fd = openSync(join(dir, 'files/big.bin'), 'w', 0o644);
  ftruncateSync(fd, 100 * 1024 * 1024);
  closeSync(fd);
}

/** Busy and total jiffies of the whole machine (every core), from /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] as string)
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}
/** Jiffies per second in /proc/stat. */
export const hz = 100;

/** Keep-alive connections for `api`: 16 writers reuse 16 sockets instead of opening one each call. */
const apiAgent = new Agent({ keepAlive: true, maxSockets: 64 });

/**
 * One call to meshd's API over node:http. The benchmarks' writers use this rather than `fetch`:
 * a fetch costs the client about 2.5 ms of CPU per call, enough on this 2-core machine to take
 * the CPU the node under test needs and to measure the client instead of meshd.
 */
export function api(base: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      {
        method,
        agent: apiAgent,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          const status = res.statusCode ?? 0;
          if (status >= 300) reject(new Error(`${method} ${path}: ${status} ${text}`));
          else resolve(text === '' ? undefined : JSON.parse(text));
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
