// bench/kernel: the kernel data plane (nftables DNAT) against the userspace mesh, HAProxy
// (nbthread 1) and the task direct, side by side, all in network namespaces: a client namespace
// (wrk and curl on CPU 1), a node namespace (meshd x2 and HAProxy) and two task namespaces running
// nginx; the node side, tasks included, on CPU 0.
// Reports requests/s and machine CPU-seconds per 10,000 requests (from /proc/stat, every core:
// the kernel path's work lands in softirq, not in a process), then the time to apply changes.
// Needs root. BENCH_SECONDS (5), BENCH_REPS (3), BENCH_SERVICES (10000) tune it.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { runNft } from '../src/host/commands.js';
import type { KernelEntry } from '../src/mesh/kernel/plan.js';
import { TableState } from '../src/mesh/kernel/table-state.js';
import { createKernelLab, type KernelLab } from '../test/helpers/kernel-lab.js';
import {
  execFileP,
  hz,
  machineCpu,
  median,
  nginxBackendConfig,
  peerConfig,
  pinned,
  prepareNginxDir,
  root,
  sleep,
  startMeshd,
  stopAll,
  workdir,
} from './lib.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const reps = Number(process.env.BENCH_REPS ?? 3);
const services = Number(process.env.BENCH_SERVICES ?? 10_000);

type Path = 'kernel' | 'userspace' | 'haproxy' | 'direct';

async function inNs(ns: string, cpu: number, args: string[], timeoutMs: number): Promise<string> {
  const { stdout } = await execFileP('ip', ['netns', 'exec', ns, 'taskset', '-c', String(cpu), ...args], {
    timeout: timeoutMs,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

async function wrk(ns: string, url: string, close: boolean): Promise<number> {
  const out = await inNs(
    ns,
    1,
    ['wrk', '-t2', '-c64', `-d${seconds}s`, ...(close ? ['-H', 'Connection: close'] : []), url],
    (seconds + 30) * 1000,
  );
  const errors = /Socket errors: (.*)|Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (errors) console.warn(`  wrk ${url}${close ? ' (close)' : ''}: ${errors[0]}`);
  const total = Number(/(\d+) requests in/.exec(out)?.[1]);
  return total;
}

async function bulk(ns: string, url: string): Promise<number> {
  const out = await inNs(ns, 1, ['curl', '-s', '-o', '/dev/null', '-w', '%{size_download}', url], 120_000);
  return Number(out);
}

const token = 'bench-kernel-token';

/** Receive packet steering of every interface in a namespace to one CPU. */
async function steer(ns: string, cpu: number): Promise<void> {
  const mask = (1 << cpu).toString(16);
  await execFileP('ip', [
    'netns',
    'exec',
    ns,
    'sh',
    '-c',
    `for q in /sys/class/net/*/queues/rx-*/rps_cpus; do echo ${mask} > "$q" 2>/dev/null || true; done`,
  ]);
}

/** Sum and count of meshd's nft transaction times (`meshd_kernel_update_seconds`). */
async function updateSeconds(metrics: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${metrics}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { sum: read('meshd_kernel_update_seconds_sum'), count: read('meshd_kernel_update_seconds_count') };
}

/**
 * From a health change through the API to the kernel's table holding it: the API marks a task
 * unhealthy (then healthy), and `nft monitor` in the node's namespace reports the moment the
 * kernel commits meshd's transaction (no polling, which would load the machine it measures).
 */
async function changeLatency(node: string, api: string, metrics: string, addr: string): Promise<void> {
  const ctl = (...args: string[]) =>
    execFileP(process.execPath, [
      join(root, 'dist/src/bin/meshctl.js'),
      '--host',
      api,
      '--token',
      token,
      ...args,
    ]);
  const tasks = JSON.parse((await ctl('task', 'ls', '--format', 'json')).stdout) as {
    name: string;
    addresses: { address: string }[];
  }[];
  const task = tasks.find((t) => t.addresses.some((a) => a.address === addr))?.name as string;
  const monitor = spawn('ip', ['netns', 'exec', node, 'nft', 'monitor'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let waiting: (() => void) | undefined;
  monitor.stdout.on('data', (d: Buffer) => {
    if (d.toString().includes(' meshd ')) waiting?.();
  });
  await new Promise((r) => setTimeout(r, 300));
  const samples: number[] = [];
  const u0 = await updateSeconds(metrics);
  try {
    for (let i = 0; i < 20; i++) {
      const state = i % 2 === 0 ? 'unhealthy' : 'healthy';
      const committed = new Promise<number>((resolve) => {
        waiting = () => resolve(performance.now());
      });
      const t0 = performance.now();
      const res = await fetch(`${api}/tasks/${encodeURIComponent(task)}/health`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ reportedHealth: state }),
      });
      if (!res.ok) throw new Error(`health change: ${res.status} ${await res.text()}`);
      samples.push((await committed) - t0);
      waiting = undefined;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    monitor.kill();
  }
  const u1 = await updateSeconds(metrics);
  samples.sort((a, b) => a - b);
  console.log(
    `health change through the API to the kernel table: p50 ${median(samples).toFixed(0)} ms, max ${samples.at(-1)?.toFixed(0)} ms ` +
      `(the commit as nft monitor reports it; meshd's nft transactions meanwhile: ` +
      `${u1.count - u0.count}, mean ${(((u1.sum - u0.sum) / Math.max(1, u1.count - u0.count)) * 1000).toFixed(1)} ms)`,
  );
}

/** The time for one nft transaction: the whole table of `n` services, then one service's change. */
async function applyTimes(n: number): Promise<void> {
  const entry = (i: number, tasks: number): KernelEntry => ({
    key: `publish|tcp|0.0.0.0|${i}`,
    family: 'ip',
    service: `svc${i}`,
    port: String(20_000 + (i % 40_000)),
    proto: 'tcp',
    match: { vip: `10.${100 + Math.floor(i / 65_536)}.${Math.floor(i / 256) % 256}.${i % 256}` },
    pick: 'inc',
    drainMs: 0,
    targets: Array.from({ length: tasks }, (_, t) => ({
      task: `t${i}.${t}`,
      addr: `10.200.${Math.floor(i / 25) % 256}.${((i % 25) * 10 + t) % 254}`,
      masquerade: false,
    })),
  });
  const state = new TableState();
  const wanted = new Map<string, KernelEntry>();
  for (let i = 0; i < n; i++) wanted.set(entry(i, 10).key, entry(i, 10));
  const full = state.rebuild(wanted.values());
  let t0 = performance.now();
  await runNft(full.script, 600_000);
  full.commit();
  const fullMs = performance.now() - t0;
  const one: number[] = [];
  for (let k = 0; k < 20; k++) {
    const changed = entry(k * 37, 9 + (k % 2));
    wanted.set(changed.key, changed);
    const plan = state.update(wanted, [changed.key]);
    if (!plan) continue;
    t0 = performance.now();
    await runNft(plan.script);
    plan.commit();
    one.push(performance.now() - t0);
  }
  one.sort((a, b) => a - b);
  console.log(
    `apply with ${n} services x 10 tasks in the table: whole table ${fullMs.toFixed(0)} ms; ` +
      `one service's tasks changed: p50 ${median(one).toFixed(1)} ms, max ${one.at(-1)?.toFixed(1)} ms ` +
      `(script of ${full.script.length} bytes)`,
  );
}

async function main(): Promise<void> {
  if (process.env.BENCH_PART === 'apply') return applyTimes(services);
  const dir = workdir('kernel');
  prepareNginxDir(dir);
  const lab: KernelLab = await createKernelLab('kb', '10.238.1', 239, 2);
  try {
    await run(lab, dir);
  } finally {
    await stopAll();
    await lab.remove();
  }
}

async function run(lab: KernelLab, dir: string): Promise<void> {
  const node = lab.nodes[0]?.name as string;
  const client = lab.nodes[1]?.name as string;
  const nodeAddr = lab.nodes[0]?.nsAddr as string;
  // Two machines on two cores: each namespace's receive processing (RPS) on the CPU of the side
  // it stands for, node and tasks on CPU 0, the client on CPU 1. Without this the kernel path's
  // forwarding runs in the softirq of whoever sent the packet, on the client's CPU, beside wrk.
  for (const t of lab.tasks) await steer(t.ns, 0);
  await steer(node, 0);
  await steer(client, 1);
  // Many short connections from one client: reuse TIME_WAIT ports, as the issue's recipe says.
  await execFileP('ip', ['netns', 'exec', client, 'sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1']);
  await execFileP('ip', [
    'netns',
    'exec',
    client,
    'sysctl',
    '-qw',
    'net.ipv4.ip_local_port_range=1024 65000',
  ]);
  for (const [i, name] of ['t1', 't2'].entries()) {
    const copy = nginxBackendConfig(dir, name, '80');
    await lab.addTask(1, name, {
      argv: ['taskset', '-c', '1', 'nginx', '-e', join(dir, `nginx-${name}.err`), '-c', copy],
    });
    void i;
  }
  const [t1, t2] = lab.tasks.map((t) => t.addr) as [string, string];
  const declare = (port: number, subnet: string) => `
declare:
  networks: [{ name: apps, subnet: ${subnet} }]
  services:
    - { name: web, networks: [{ network: apps }], ports: [{ published: ${port}, target: 80 }] }
  tasks:
    - { service: web, ips: [${t1}, ${t2}] }
`;
  const common = ['--api-listen', '127.0.0.1:0', '--dns-listen', 'off'];
  const kernel = await startMeshd(
    0,
    join(dir, 'kernel'),
    declare(8080, lab.subnet),
    [
      ...common,
      '--api-listen',
      `${nodeAddr}:0`,
      '--metrics-listen',
      `${nodeAddr}:0`,
      '--api-token',
      token,
      '--dataplane',
      'kernel',
    ],
    node,
  );
  // The userspace mesh in the same namespace, its own one-node cluster, on another port.
  await startMeshd(
    0,
    join(dir, 'userspace'),
    `${declare(8090, lab.subnet)}mesh: { manageVipInterfaces: false }\n`,
    [...common, '--dataplane', 'userspace'],
    node,
  );
  const haproxyCfg = peerConfig('haproxy.cfg', dir, {
    'bind 127.0.0.1:18080': `bind ${nodeAddr}:18080`,
    'server s1 127.0.0.1:18081': `server s1 ${t1}:80`,
    'server s2 127.0.0.1:18082': `server s2 ${t2}:80`,
  });
  pinned(0, 'ip', ['netns', 'exec', node, 'haproxy', '-db', '-f', haproxyCfg]);
  await sleep(1500);
  const urls: Record<Path, string> = {
    kernel: `http://${nodeAddr}:8080`,
    userspace: `http://${nodeAddr}:8090`,
    haproxy: `http://${nodeAddr}:18080`,
    direct: `http://${t1}:80`,
  };
  const paths = Object.keys(urls) as Path[];
  const rate: Record<string, Record<Path, number[]>> = {};
  const cpu: Record<string, Record<Path, number[]>> = {};
  const record = (test: string, p: Path, perSecond: number, cpuPerUnit: number) => {
    rate[test] ??= { kernel: [], userspace: [], haproxy: [], direct: [] };
    cpu[test] ??= { kernel: [], userspace: [], haproxy: [], direct: [] };
    rate[test][p].push(perSecond);
    cpu[test][p].push(cpuPerUnit);
  };
  for (let r = 0; r < reps; r++) {
    for (const p of paths) {
      for (const close of [false, true]) {
        const c0 = machineCpu();
        const t0 = performance.now();
        const n = await wrk(client, `${urls[p]}/`, close);
        const secs = (performance.now() - t0) / 1000;
        const busy = (machineCpu().busy - c0.busy) / hz;
        record(close ? 'new connection' : 'keep-alive', p, n / secs, (busy / n) * 10_000);
      }
      const c0 = machineCpu();
      const t0 = performance.now();
      const bytes = await bulk(client, `${urls[p]}/files/big.bin`);
      const secs = (performance.now() - t0) / 1000;
      record('bulk 100 MB', p, bytes / 1e6 / secs, ((machineCpu().busy - c0.busy) / hz / bytes) * 1e9);
    }
  }
  console.log(`kernel data plane, ${reps} interleaved repetitions of ${seconds}s wrk runs (-c64); medians`);
  console.log(
    'test              kernel  userspace    haproxy     direct   kernel/haproxy  userspace/haproxy',
  );
  for (const [test, by] of Object.entries(rate)) {
    const m = (p: Path) => median(by[p]);
    const f = (x: number) => x.toFixed(0).padStart(9);
    console.log(
      `${test.padEnd(15)} ${f(m('kernel'))}  ${f(m('userspace'))}  ${f(m('haproxy'))}  ${f(m('direct'))}  ${`${(m('kernel') / m('haproxy')).toFixed(2)}x`.padStart(14)}  ${`${(m('userspace') / m('haproxy')).toFixed(2)}x`.padStart(17)}`,
    );
  }
  console.log('machine CPU-seconds per 10,000 requests (bulk: per GB), every core');
  for (const [test, by] of Object.entries(cpu)) {
    const m = (p: Path) => median(by[p]);
    console.log(
      `  ${test.padEnd(15)} ${paths.map((p) => `${p} ${m(p).toFixed(3)}`).join('  ')}   kernel/haproxy ${(m('kernel') / m('haproxy')).toFixed(2)}x  kernel/direct ${(m('kernel') / m('direct')).toFixed(2)}x`,
    );
  }
  await changeLatency(node, `http://${kernel.ready.api}`, `http://${kernel.ready.metrics}`, t2);
  // The table at scale, in a namespace of its own so the machine's nftables stay untouched.
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      'ip',
      ['netns', 'exec', lab.tasks[0]?.ns as string, process.execPath, join(root, 'dist/bench/kernel.js')],
      {
        stdio: 'inherit',
        env: { ...process.env, BENCH_PART: 'apply' },
      },
    );
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`apply part exited ${code}`))));
  });
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
