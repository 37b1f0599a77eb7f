// bench/mesh: the routing mesh against HAProxy (mode tcp, one thread) and nginx stream, side by
// side, to the same nginx backends; plus a 100 MB transfer and DNS over a proxied UDP port. A bare
// Node `net` + `pipe()` proxy runs beside them: the floor of any proxy written in Node.
// Proxies on CPU 0, load generators and backends on CPU 1; interleaved repetitions; medians.
import { join } from 'node:path';
import {
  cpuSeconds,
  execFileP,
  median,
  peerConfig,
  peers,
  pinned,
  prepareNginxDir,
  sleep,
  startMeshd,
  stopAll,
  workdir,
} from './lib.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const reps = Number(process.env.BENCH_REPS ?? 3);

// Every proxy reaches the same two backends; they listen on two loopback addresses (one port)
// because a meshd task is an address, as a container is.
const backendSubst = {
  'listen 127.0.0.1:18081': 'listen 127.60.0.1:18081',
  'listen 127.0.0.1:18082': 'listen 127.60.0.2:18081',
  'server 127.0.0.1:18081': 'server 127.60.0.1:18081',
  'server 127.0.0.1:18082': 'server 127.60.0.2:18081',
  's1 127.0.0.1:18081': 's1 127.60.0.1:18081',
  's2 127.0.0.1:18082': 's2 127.60.0.2:18081',
  'server 127.0.0.1:5363': 'server 127.60.1.1:5363',
  'server 127.0.0.1:5373': 'server 127.60.1.2:5363',
};

const meshdConfig = `
mesh:
  publishAddr: 127.0.0.1
declare:
  networks: [{ name: bench, subnet: 127.60.0.0/16, gateway: 127.60.255.254, vipRange: 127.60.200.0/24 }]
  services:
    - { name: web, networks: [{ network: bench }], ports: [{ published: 18084, target: 18081 }] }
    - { name: dns, networks: [{ network: bench }], ports: [{ published: 18094, target: 5363, protocol: udp }] }
  tasks:
    - { service: web, ips: [127.60.0.1, 127.60.0.2] }
    - { service: dns, ips: [127.60.1.1, 127.60.1.2] }
`;

const proxies = {
  haproxy: { tcp: 18080, udp: 0 },
  nginx: { tcp: 18083, udp: 18093 },
  meshd: { tcp: 18084, udp: 18094 },
  // The floor of any Node proxy: `net` and `pipe()` both ways, round-robin over the two backends.
  pipe: { tcp: 18085, udp: 0 },
} as const;
const all = ['haproxy', 'nginx', 'meshd', 'pipe'] as const;

const barePipe = `
const net = require('node:net');
let n = 0;
net.createServer({ noDelay: true }, (c) => {
  const u = net.connect({ host: n++ % 2 ? '127.60.0.2' : '127.60.0.1', port: 18081, noDelay: true });
  c.pipe(u); u.pipe(c);
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
}).listen(18085, '127.0.0.1');`;
type Proxy = keyof typeof proxies;

async function wrk(port: number, close: boolean): Promise<number> {
  const args = [
    '-c',
    '1',
    'wrk',
    '-t2',
    '-c64',
    `-d${seconds}s`,
    ...(close ? ['-H', 'Connection: close'] : []),
    `http://127.0.0.1:${port}/`,
  ];
  const { stdout } = await execFileP('taskset', args, { timeout: (seconds + 30) * 1000 });
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(stdout);
  if (errors && !close) console.warn(`  wrk on ${port}: ${errors[0]}`);
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
}

/** Transfers per bulk measurement: one 100 MB transfer takes about 0.1 s, too short to time alone. */
const bulkTransfers = 5;

/** MB/s over `bulkTransfers` downloads of the 100 MB file through `port`, one after another. */
async function bulk(port: number): Promise<number> {
  const url = `http://127.0.0.1:${port}/files/big.bin`;
  const { stdout } = await execFileP(
    'taskset',
    [
      '-c',
      '1',
      'curl',
      '-s',
      '-w',
      '%{size_download} %{time_total}\\n',
      ...Array.from({ length: bulkTransfers }, () => ['-o', '/dev/null', url]).flat(),
    ],
    { timeout: 300_000 },
  );
  let bytes = 0;
  let secs = 0;
  for (const line of stdout.trim().split('\n')) {
    const [b, t] = line.split(' ').map(Number);
    bytes += b as number;
    secs += t as number;
  }
  return bytes / secs / 1e6;
}

async function udp(port: number): Promise<number> {
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
      '-d',
      join(peers, 'dnsperf-queries.txt'),
      '-l',
      String(seconds),
      '-c',
      '16',
      '-q',
      '400',
    ],
    { timeout: (seconds + 30) * 1000 },
  );
  return Number(/Queries per second:\s+([\d.]+)/.exec(stdout)?.[1]);
}

async function main(): Promise<void> {
  const dir = workdir('mesh');
  prepareNginxDir(dir);
  pinned(1, 'nginx', [
    '-e',
    join(dir, 'nginx-backend.err'),
    '-c',
    peerConfig('nginx-backend.conf', dir, backendSubst),
  ]);
  for (const [i, addr] of ['127.60.1.1', '127.60.1.2'].entries()) {
    const conf = peerConfig('dnsmasq-backend.conf', dir, {
      'listen-address=127.0.0.1': `listen-address=${addr}`,
    });
    const copy = join(dir, `dnsmasq-backend-${i}.conf`);
    await execFileP('cp', [conf, copy]);
    pinned(1, 'dnsmasq', ['-C', copy, '-p', '5363', '--user=root']);
  }
  const haproxy = pinned(0, 'haproxy', ['-db', '-f', peerConfig('haproxy.cfg', dir, backendSubst)]);
  const nginx = pinned(0, 'nginx', [
    '-e',
    join(dir, 'nginx-stream.err'),
    '-c',
    peerConfig('nginx-stream.conf', dir, backendSubst),
  ]);
  const { child: meshd } = await startMeshd(0, dir, meshdConfig);
  const pipe = pinned(0, process.execPath, ['-e', barePipe]);
  await sleep(1000);
  const pids: Record<Proxy, number> = {
    haproxy: haproxy.pid as number,
    nginx: nginx.pid as number,
    meshd: meshd.pid as number,
    pipe: pipe.pid as number,
  };
  const results: Record<string, Record<Proxy, number[]>> = {};
  const cpu: Record<string, Record<Proxy, number[]>> = {};
  const record = (test: string, p: Proxy, v: number, cpuSec: number) => {
    results[test] ??= { haproxy: [], nginx: [], meshd: [], pipe: [] };
    cpu[test] ??= { haproxy: [], nginx: [], meshd: [], pipe: [] };
    results[test][p].push(v);
    cpu[test][p].push(cpuSec);
  };
  // BENCH_TESTS=bulk (or keep-alive, new, udp; comma-separated) runs those tests alone.
  const only = process.env.BENCH_TESTS?.split(',');
  const measure = async (test: string, p: Proxy, run: () => Promise<number>) => {
    if (only && !only.some((t) => test.startsWith(t === 'new' ? 'new connection' : t === 'udp' ? 'UDP' : t)))
      return;
    const c0 = cpuSeconds(pids[p]);
    const v = await run();
    record(test, p, v, cpuSeconds(pids[p]) - c0);
  };
  for (let r = 0; r < reps; r++) {
    for (const p of all) {
      await measure('keep-alive req/s', p, () => wrk(proxies[p].tcp, false));
      await measure('new connection req/s', p, () => wrk(proxies[p].tcp, true));
      await measure('bulk 5x100 MB, MB/s', p, () => bulk(proxies[p].tcp));
      if (proxies[p].udp) await measure('UDP DNS queries/s', p, () => udp(proxies[p].udp));
    }
  }
  console.log(
    `mesh, ${reps} interleaved repetitions (${seconds}s wrk/dnsperf runs), proxies on CPU 0, load on CPU 1; medians`,
  );
  console.log(
    'test                    haproxy      nginx      meshd  bare pipe   meshd/haproxy  meshd/nginx  meshd/pipe  target',
  );
  const targets: Record<string, string> = {
    'keep-alive req/s': '>= 0.8x haproxy',
    'new connection req/s': '>= 0.6x haproxy',
    'bulk 5x100 MB, MB/s': '>= 0.85x haproxy',
    'UDP DNS queries/s': '>= 1.0x nginx',
  };
  for (const [test, byProxy] of Object.entries(results)) {
    const h = byProxy.haproxy.length ? median(byProxy.haproxy) : Number.NaN;
    const n = median(byProxy.nginx);
    const m = median(byProxy.meshd);
    const b = byProxy.pipe.length ? median(byProxy.pipe) : Number.NaN;
    const f = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(0)).padStart(9);
    const ratio = (x: number) => (Number.isNaN(x) ? '-' : `${(m / x).toFixed(2)}x`).padStart(13);
    console.log(
      `${test.padEnd(22)} ${f(h)}  ${f(n)}  ${f(m)}  ${f(b)}  ${ratio(h)}  ${ratio(n).slice(2)}  ${ratio(b).slice(3)}  ${targets[test]}`,
    );
  }
  console.log('CPU seconds of the proxy per run (median):');
  for (const [test, byProxy] of Object.entries(cpu)) {
    console.log(
      `  ${test.padEnd(22)} ${all.map((p) => `${p} ${byProxy[p].length ? median(byProxy[p]).toFixed(2) : '-'}`).join('  ')}`,
    );
  }
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
