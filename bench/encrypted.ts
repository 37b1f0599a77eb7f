// bench/encrypted: the cross-node path plain (direct to the task) against encrypted (mTLS data
// plane between two nodes), side by side: new connections per second (wrk, Connection: close)
// and a 100 MB transfer. Nodes on CPU 0, load and backend on CPU 1.
import { join } from 'node:path';
import {
  api,
  execFileP,
  median,
  peerConfig,
  pinned,
  prepareNginxDir,
  sleep,
  startMeshd,
  stopAll,
  workdir,
} from './lib.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const reps = Number(process.env.BENCH_REPS ?? 3);

async function wrk(url: string): Promise<number> {
  const { stdout } = await execFileP(
    'taskset',
    ['-c', '1', 'wrk', '-t2', '-c32', `-d${seconds}s`, '-H', 'Connection: close', url],
    { timeout: (seconds + 30) * 1000 },
  );
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
}

async function bulk(url: string): Promise<number> {
  const { stdout } = await execFileP(
    'taskset',
    ['-c', '1', 'curl', '-s', '-o', '/dev/null', '-w', '%{speed_download}', url],
    { timeout: 120_000 },
  );
  return Number(stdout) / 1e6;
}

async function main(): Promise<void> {
  const dir = workdir('encrypted');
  prepareNginxDir(dir);
  // One nginx backend on two addresses: one on a plain network, one on an encrypted network.
  pinned(1, 'nginx', [
    '-e',
    join(dir, 'nginx.err'),
    '-c',
    peerConfig('nginx-backend.conf', dir, {
      'listen 127.0.0.1:18081': 'listen 127.70.0.10:18081',
      'listen 127.0.0.1:18082': 'listen 127.71.0.10:18081',
    }),
  ]);
  const etcd = pinned(1, 'etcd', [
    '--data-dir',
    join(dir, 'etcd'),
    '--listen-client-urls',
    'http://127.0.0.1:23791',
    '--advertise-client-urls',
    'http://127.0.0.1:23791',
    '--listen-peer-urls',
    'http://127.0.0.1:23801',
    '--initial-advertise-peer-urls',
    'http://127.0.0.1:23801',
    '--initial-cluster',
    'default=http://127.0.0.1:23801',
    '--log-level',
    'error',
  ]);
  void etcd;
  await sleep(1500);
  const store = ['--store', 'etcd://127.0.0.1:23791'];
  const { ready: a } = await startMeshd(0, join(dir, 'a'), '', [
    ...store,
    // The plain side of the comparison goes straight to the task (the default, auto, would take
    // the authenticated tunnel for it too now that both nodes hold a certificate).
    '--remote-tasks',
    'direct',
    '--node-name',
    'a',
    '--advertise-addr',
    '127.0.61.1',
    '--api-listen',
    '127.0.61.1:0',
    '--publish-addr',
    '127.0.61.1',
    '--dns-listen',
    'off',
  ]);
  const token = ((await (await fetch(`http://${a.api}/swarm/join-token`)).json()) as { worker: string })
    .worker;
  const { ready: b } = await startMeshd(0, join(dir, 'b'), '', [
    ...store,
    '--node-name',
    'b',
    '--join-token',
    token,
    '--advertise-addr',
    '127.0.62.1',
    '--api-listen',
    '127.0.62.1:0',
    '--publish-addr',
    '127.0.62.1',
    '--dns-listen',
    'off',
  ]);
  const A = `http://${a.api}`;
  const B = `http://${b.api}`;
  await api(A, 'POST', '/networks/create', { name: 'plain', subnet: '127.70.0.0/16' });
  await api(A, 'POST', '/networks/create', {
    name: 'secure',
    subnet: '127.71.0.0/16',
    options: { encrypted: '' },
  });
  await api(A, 'POST', '/services/create', {
    name: 'p',
    networks: [{ network: 'plain' }],
    ports: [{ published: 18181, target: 18081 }],
  });
  await api(A, 'POST', '/services/create', {
    name: 's',
    networks: [{ network: 'secure' }],
    ports: [{ published: 18182, target: 18081 }],
  });
  await api(B, 'POST', '/tasks/create', { service: 'p', ips: ['127.70.0.10'] });
  await api(B, 'POST', '/tasks/create', { service: 's', ips: ['127.71.0.10'] });
  await sleep(2000);
  const plain: number[] = [];
  const enc: number[] = [];
  const plainBulk: number[] = [];
  const encBulk: number[] = [];
  for (let r = 0; r < reps; r++) {
    // BENCH_PART=bulk measures the transfers alone (for a profile of the bulk path).
    if (process.env.BENCH_PART !== 'bulk') {
      plain.push(await wrk('http://127.0.61.1:18181/'));
      enc.push(await wrk('http://127.0.61.1:18182/'));
    }
    plainBulk.push(await bulk('http://127.0.61.1:18181/files/big.bin'));
    encBulk.push(await bulk('http://127.0.61.1:18182/files/big.bin'));
  }
  const m = (x: number[]) => median(x);
  console.log(`cross-node path through node a to a task on node b; ${reps} interleaved repetitions, medians`);
  if (plain.length > 0)
    console.log(
      `new connections/s: plain ${m(plain).toFixed(0)}, encrypted ${m(enc).toFixed(0)} -> ${(m(enc) / m(plain)).toFixed(2)}x (target >= 0.5x)`,
    );
  console.log(
    `bulk 100 MB, MB/s: plain ${m(plainBulk).toFixed(0)}, encrypted ${m(encBulk).toFixed(0)} -> ${(m(encBulk) / m(plainBulk)).toFixed(2)}x (target >= 0.7x)`,
  );
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
