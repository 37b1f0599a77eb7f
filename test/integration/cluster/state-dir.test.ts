import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type EtcdServer, startEtcd } from '../../helpers/etcd.js';
import { meshdFails, startMeshd } from '../../helpers/meshd.js';

const dirs: string[] = [];
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'meshd-sd-'));
  dirs.push(d);
  return d;
}
let etcd: EtcdServer | undefined;
afterAll(async () => {
  await etcd?.remove();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("a node's state directory", () => {
  it('stops with a clear error when its node-id file is corrupt, instead of becoming a new node', async () => {
    const dir = stateDir();
    writeFileSync(join(dir, 'node-id'), 'not an id\u0000\n');
    const r = await meshdFails([
      '--state-dir',
      dir,
      '--store',
      'memory',
      '--api-listen',
      '127.0.0.1:0',
      '--dns-listen',
      '127.0.0.1:0',
      '--data-listen',
      '127.0.0.1:0',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${join(dir, 'node-id')} is corrupt`);
  });

  it('refuses a second live node that shares the state directory, naming --state-dir', async () => {
    etcd = await startEtcd();
    const dir = stateDir();
    const common = ['--store', `etcd://${etcd.endpoint}`, '--lease-ttl', '1s'];
    const n1 = await startMeshd({ stateDir: dir, args: [...common, '--node-name', 'n1'] });
    try {
      const started = startMeshd({ stateDir: dir, args: [...common, '--node-name', 'n2'] });
      await expect(started).rejects.toThrow(
        /held by another live node \(n1 at .*\).*--state-dir \(this one: /s,
      );
      const nodes = JSON.parse(await n1.ctl('node', 'ls', '--format', 'json')) as {
        name: string;
        state: string;
      }[];
      expect(nodes.map((n) => `${n.name}:${n.state}`)).toEqual(['n1:ready']);
    } finally {
      await n1.stop(true);
    }
    // The same node restarted (its lease revoked on a clean stop) is itself again, at once.
    const again = await startMeshd({ stateDir: dir, args: [...common, '--node-name', 'n1'] });
    await again.stop(true);
  }, 60_000);
});
