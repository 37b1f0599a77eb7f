import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { sleep, startMeshd } from './lib.js';

/**
 * Starts a single-member etcd on 127.0.0.1 (client port `port`, peer port `port + 10`), ready to
 * use; on CPU `cpu` alone when given.
 */
export async function startEtcd(
  dir: string,
  port: number,
  cpu?: number,
): Promise<{ child: ChildProcess; endpoint: string }> {
  const child = spawn(
    cpu === undefined ? 'etcd' : 'taskset',
    [
      ...(cpu === undefined ? [] : ['-c', String(cpu), 'etcd']),
      '--data-dir',
      join(dir, 'etcd'),
      '--listen-client-urls',
      `http://127.0.0.1:${port}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${port}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${port + 10}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${port + 10}`,
      '--initial-cluster',
      `default=http://127.0.0.1:${port + 10}`,
      '--quota-backend-bytes',
      String(4 * 1024 * 1024 * 1024),
      '--log-level',
      'error',
    ],
    { stdio: 'ignore' },
  );
  const endpoint = `127.0.0.1:${port}`;
  const client = new Etcd3({ hosts: [`http://${endpoint}`] });
  try {
    for (let i = 0; ; i++) {
      try {
        await client.get('/ping').string();
        break;
      } catch (err) {
        if (i > 100) throw err;
        await sleep(100);
      }
    }
  } finally {
    client.close();
  }
  return { child, endpoint };
}

/**
 * Starts cluster node `name` on etcd at `endpoint`, every listener on its own loopback address
 * `addr` (as separate hosts would have), pinned to `cpu`; resolves with its ready line.
 */
export async function startEtcdNode(
  cpu: number,
  dir: string,
  endpoint: string,
  name: string,
  addr: string,
): Promise<Record<string, string>> {
  const { ready } = await startMeshd(cpu, dir, '', [
    '--store',
    `etcd://${endpoint}`,
    '--node-name',
    name,
    '--api-listen',
    `${addr}:0`,
    '--dns-listen',
    `${addr}:0`,
    '--publish-addr',
    addr,
    '--advertise-addr',
    addr,
  ]);
  return ready;
}
