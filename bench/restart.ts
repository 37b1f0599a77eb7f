// bench/restart: how long DNS is gone when the resolver restarts. From the moment the process
// is spawned to its first answer, for meshd (file store, its default) and for dnsmasq, side by
// side; swarm's resolver lives in the engine, so a restart of meshd must be short. Each run
// starts the server fresh on CPU 0 and polls it every 5 ms from this process.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { peerConfig, root, workdir } from './lib.js';

const reps = Number(process.env.BENCH_REPS ?? 5);

function query(port: number, name: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
    const q = Buffer.concat([
      Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
      ...labels,
      Buffer.from([0, 0, 1, 0, 1]),
    ]);
    const t = setTimeout(() => done(false), 20);
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.close();
      resolve(ok);
    };
    s.on('message', (m) => done(m.length > 12 && m.readUInt16BE(6) > 0));
    s.on('error', () => done(false));
    s.send(q, port, '127.0.0.1');
  });
}

/** Milliseconds from spawn to the first answer for `name`. */
async function firstAnswer(cmd: string, args: string[], port: number, name: string): Promise<number> {
  const started = performance.now();
  const child = spawn('taskset', ['-c', '0', cmd, ...args], { stdio: 'ignore' });
  try {
    for (;;) {
      if (await query(port, name)) return performance.now() - started;
      if (performance.now() - started > 15_000) throw new Error(`${cmd} never answered`);
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const dir = workdir('restart');
  const meshdPort = 15455;
  const dnsmasqPort = 15456;
  const conf = peerConfig('dnsmasq.conf', dir, { 'port=5353': `port=${dnsmasqPort}` });
  const cfg = join(dir, 'meshd.yaml');
  (await import('node:fs')).writeFileSync(
    cfg,
    'declare:\n  networks: [{ name: apps, subnet: 127.244.0.0/16 }]\n  services: [{ name: web, networks: [{ network: apps }] }]\n',
  );
  const meshdArgs = [
    join(root, 'dist/src/bin/meshd.js'),
    '--config',
    cfg,
    '--state-dir',
    join(dir, 'state'),
    '--dns-listen',
    `127.0.0.1:${meshdPort}`,
    '--api-listen',
    '127.0.0.1:0',
    '--metrics-listen',
    '127.0.0.1:0',
    '--data-listen',
    '127.0.0.1:0',
  ];
  // A first run writes the state directory; the measured runs are restarts.
  await firstAnswer(process.execPath, meshdArgs, meshdPort, 'web');
  const m: number[] = [];
  const d: number[] = [];
  for (let i = 0; i < reps; i++) {
    m.push(await firstAnswer(process.execPath, meshdArgs, meshdPort, 'web'));
    d.push(await firstAnswer('dnsmasq', ['-C', conf, '--user=root'], dnsmasqPort, 'web.local'));
  }
  console.log(`DNS restart to first answer, median of ${reps} (spawn on CPU 0, polled every 5 ms)`);
  console.log(`meshd    ${median(m).toFixed(0)} ms   (${m.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`dnsmasq  ${median(d).toFixed(0)} ms   (${d.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`ratio meshd/dnsmasq: ${(median(m) / median(d)).toFixed(1)}x (target: meshd under 1000 ms)`);
}

void main();
