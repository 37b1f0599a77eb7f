import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { eventually } from './eventually.js';
import { freePort } from './ports.js';

/** A real etcd (Debian's etcd-server) on loopback ports of its own, with its own data dir. */
export interface EtcdServer {
  readonly endpoint: string;
  readonly clientPort: number;
  readonly dataDir: string;
  stop(): Promise<void>;
  /** Starts it again on the same ports and data (after stop). */
  start(): Promise<void>;
  remove(): Promise<void>;
}

/** `alsoOn` adds client listeners on more local addresses (same port), for nodes in namespaces. */
export async function startEtcd(host = '127.0.0.1', alsoOn: readonly string[] = []): Promise<EtcdServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'meshd-etcd-'));
  const clientPort = await freePort(host);
  const peerPort = await freePort(host);
  const endpoint = `${host}:${clientPort}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const start = async () => {
    child = spawn(
      'etcd',
      [
        '--name',
        'meshd-test',
        '--data-dir',
        dataDir,
        '--listen-client-urls',
        [endpoint, ...alsoOn.map((h) => `${h}:${clientPort}`)].map((e) => `http://${e}`).join(','),
        '--advertise-client-urls',
        `http://${endpoint}`,
        '--listen-peer-urls',
        `http://${host}:${peerPort}`,
        '--initial-advertise-peer-urls',
        `http://${host}:${peerPort}`,
        '--initial-cluster',
        `meshd-test=http://${host}:${peerPort}`,
        '--log-level',
        'error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += String(d);
    });
    const c = child;
    exited = new Promise((resolve) => c.once('exit', () => resolve()));
    const client = new Etcd3({ hosts: `http://${endpoint}`, dialTimeout: 1000 });
    try {
      await eventually(
        async () => {
          if (c.exitCode !== null) throw new Error(`etcd exited: ${stderr}`);
          await client.put('/meshd-test/ping').value('1');
        },
        20_000,
        100,
      );
    } catch (err) {
      // Never left running when it did not become ready.
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await exited;
      throw err;
    } finally {
      client.close();
    }
  };
  try {
    await start();
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    endpoint,
    clientPort,
    dataDir,
    start,
    async stop() {
      if (child && child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
    async remove() {
      if (child && child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
