// bench/dns: dnsperf against meshd and against dnsmasq answering the same four names, side by side.
// Server under test on CPU 0, dnsperf on CPU 1; 3 interleaved repetitions; medians and the ratio.
import { join } from 'node:path';
import {
  cpuSeconds,
  execFileP,
  median,
  peerConfig,
  peers,
  pinned,
  sleep,
  startMeshd,
  stopAll,
  workdir,
} from './lib.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const reps = Number(process.env.BENCH_REPS ?? 3);
const client = '127.50.0.200'; // inside the meshd network's subnet: a scoped client, the hard case

const meshdConfig = `
dns:
  domain: local
  ttl: 5
declare:
  networks: [{ name: bench, subnet: 127.50.0.0/16 }]
  services:
    - { name: web, networks: [{ network: bench }] }
    - { name: db, networks: [{ network: bench }] }
    - { name: api, networks: [{ network: bench }] }
    - { name: cache, networks: [{ network: bench }] }
`;

interface Run {
  qps: number;
  lost: number;
  cpuPerQueryUs: number;
}

async function maxRate(port: number, pid: number): Promise<Run> {
  const cpu0 = cpuSeconds(pid);
  const { stdout } = await execFileP(
    'taskset',
    [
      '-c',
      '1',
      'dnsperf',
      '-s',
      '127.0.0.1',
      '-p',
      String(port),
      '-a',
      client,
      '-d',
      join(peers, 'dnsperf-queries.txt'),
      '-t',
      '1',
      '-l',
      String(seconds),
      '-c',
      '16',
      '-q',
      '400',
    ],
    { timeout: (seconds + 30) * 1000 },
  );
  const cpu = cpuSeconds(pid) - cpu0;
  const completed = Number(/Queries completed:\s+(\d+)/.exec(stdout)?.[1]);
  const lost = Number(/Queries lost:\s+(\d+)/.exec(stdout)?.[1]);
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(stdout)?.[1]);
  return { qps, lost, cpuPerQueryUs: (cpu / completed) * 1e6 };
}

async function latency(port: number): Promise<{ p50: number; p99: number }> {
  const { stdout } = await execFileP(
    'taskset',
    [
      '-c',
      '1',
      'dnsperf',
      '-v',
      '-s',
      '127.0.0.1',
      '-p',
      String(port),
      '-a',
      client,
      '-d',
      join(peers, 'dnsperf-queries.txt'),
      '-l',
      '3',
      '-c',
      '4',
      '-q',
      '100',
      '-Q',
      '20000',
    ],
    { timeout: 60_000, maxBuffer: 256 << 20 },
  );
  const lat = [...stdout.matchAll(/^> \w+ \S+ \w+ ([\d.]+)$/gm)]
    .map((m) => Number(m[1]) * 1e6)
    .sort((a, b) => a - b);
  return { p50: lat[Math.floor(lat.length * 0.5)] ?? NaN, p99: lat[Math.floor(lat.length * 0.99)] ?? NaN };
}

async function main(): Promise<void> {
  const dir = workdir('dns');
  const dnsmasqPort = 15353;
  const conf = peerConfig('dnsmasq.conf', dir, { 'port=5353': `port=${dnsmasqPort}` });
  const dnsmasq = pinned(0, 'dnsmasq', ['-C', conf, '--user=root']);
  const { child: meshd, ready } = await startMeshd(0, dir, meshdConfig, ['--dns-listen', '127.0.0.1:15354']);
  await sleep(500);
  const meshdPort = Number(ready.dns?.split(':')[1]);
  const results: Record<string, Run[]> = { meshd: [], dnsmasq: [] };
  for (let r = 0; r < reps; r++) {
    results.dnsmasq?.push(await maxRate(dnsmasqPort, dnsmasq.pid as number));
    results.meshd?.push(await maxRate(meshdPort, meshd.pid as number));
  }
  const lat = { dnsmasq: await latency(dnsmasqPort), meshd: await latency(meshdPort) };
  const summary = (name: 'meshd' | 'dnsmasq') => {
    const runs = results[name] as Run[];
    return {
      qps: median(runs.map((x) => x.qps)),
      lost: median(runs.map((x) => x.lost)),
      cpuUs: median(runs.map((x) => x.cpuPerQueryUs)),
    };
  };
  const m = summary('meshd');
  const d = summary('dnsmasq');
  console.log(
    `DNS UDP, ${reps}x${seconds}s, dnsperf -c 16 -q 400 from a scoped client (server on CPU 0, load on CPU 1)`,
  );
  console.log('server    qps        lost  cpu/query   p50 @20k qps  p99 @20k qps');
  for (const [name, s, l] of [
    ['dnsmasq', d, lat.dnsmasq],
    ['meshd', m, lat.meshd],
  ] as const) {
    console.log(
      `${name.padEnd(9)} ${s.qps.toFixed(0).padStart(8)}  ${String(s.lost).padStart(6)}  ${s.cpuUs.toFixed(1).padStart(6)} us  ${l.p50.toFixed(0).padStart(8)} us  ${l.p99.toFixed(0).padStart(9)} us`,
    );
  }
  console.log(`ratio meshd/dnsmasq queries/s: ${(m.qps / d.qps).toFixed(2)}x (target >= 0.75x)`);
  console.log(`ratio meshd/dnsmasq CPU per query: ${(m.cpuUs / d.cpuUs).toFixed(2)}x`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
