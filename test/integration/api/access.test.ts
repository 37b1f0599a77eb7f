import { afterAll, describe, expect, it } from 'vitest';
import { type Backend, fetchOnce, httpBackend } from '../../helpers/backends.js';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { createTestHost, isRoot, sh, type TestHost } from '../../helpers/netns.js';
import { freePort } from '../../helpers/ports.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

describe('who the management API serves', () => {
  it('judges the loopback exemption by the peer address, not the listen address', async () => {
    expect(isRoot()).toBe(true);
    const port = await freePort('0.0.0.0');
    const m: MeshdProcess = await startMeshd({
      args: ['--api-listen', `0.0.0.0:${port}`, '--api-tls', 'true'],
    });
    cleanup.push(() => m.stop());
    const host: TestHost = await createTestHost(`mapi${process.pid % 1000}`, '10.198.1.1', '10.198.1.2');
    cleanup.push(() => host.remove());
    const status = (host: string) => [
      'curl',
      '-sk',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `https://${host}:${port}/networks`,
    ];
    // A local operator on loopback needs no token...
    expect(await sh(...(status('127.0.0.1') as [string, ...string[]]))).toBe('200');
    // ...a peer from elsewhere, reaching the same listener, does.
    expect((await host.exec(...status('10.198.1.1'))).stdout).toBe('401');
  });

  it("never routes a published port to the node's own API", async () => {
    const m = await startMeshd({});
    cleanup.push(() => m.stop());
    const apiPort = Number(m.api.split(':').at(-1));
    const backend: Backend = await httpBackend('real-task', '127.0.0.7', apiPort);
    cleanup.push(() => backend.kill());
    const published = await freePort();
    await m.ctl(
      'network',
      'create',
      '--subnet',
      '127.0.0.0/24',
      '--gateway',
      '127.0.0.254',
      '--vip-range',
      '127.0.0.192/27',
      'lonet',
    );
    await m.ctl(
      'service',
      'create',
      '--name',
      'sneaky',
      '--network',
      'lonet',
      '-p',
      `${published}:${apiPort}`,
    );
    // One task claims the API's own address, the other is a real backend.
    await m.ctl('task', 'add', 'sneaky', '--ip', '127.0.0.1');
    await m.ctl('task', 'add', 'sneaky', '--ip', '127.0.0.7');
    await eventually(async () =>
      expect((await fetchOnce(`http://127.0.0.1:${published}/info`)).body).toBe('real-task'),
    );
    for (let i = 0; i < 20; i++) {
      const r = await fetchOnce(`http://127.0.0.1:${published}/info`);
      expect(r.body).toBe('real-task');
    }
  });
});
