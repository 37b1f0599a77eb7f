import { execFileSync } from 'node:child_process';
import { get } from 'node:http';
import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { type Backend, httpBackend } from '../../helpers/backends.js';
import { eventually } from '../../helpers/eventually.js';
import { startMeshd } from '../../helpers/meshd.js';
import { freePort } from '../../helpers/ports.js';

// SIGTERM, as an orchestrator sends it: not ready first, listeners closed, transfers in flight
// allowed to finish within the grace period, exit 0, and the VIPs meshd put on `lo` taken off.
const taskAddr = '10.199.7.10';
const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

const onLo = () => execFileSync('ip', ['-o', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' });

describe('SIGTERM', () => {
  it('says not ready, closes listeners, lets a transfer finish, exits 0 and takes its VIPs off lo', async () => {
    execFileSync('ip', ['addr', 'add', `${taskAddr}/32`, 'dev', 'lo']);
    cleanup.push(() => execFileSync('ip', ['addr', 'del', `${taskAddr}/32`, 'dev', 'lo']));
    const backend: Backend = await httpBackend('task', taskAddr, 8000);
    cleanup.push(() => backend.kill());
    const port = await freePort();
    const m = await startMeshd({
      config: `mesh:\n  shutdownGrace: 5s\ndeclare:\n  networks: [{ name: apps, subnet: 10.199.7.0/24 }]\n  services: [{ name: web, networks: [{ network: apps }], ports: [{ published: ${port}, target: 8000 }] }]\n  tasks: [{ service: web, ips: [${taskAddr}] }]\n`,
    });
    cleanup.push(() => m.stop());
    const vip = JSON.parse(await m.ctl('service', 'inspect', 'web'))[0].networks[0].vip as string;
    await eventually(async () => expect(onLo()).toContain(`${vip}/32`));
    // A slow transfer (10 chunks over a second) in flight when the signal comes.
    const chunks: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      get(`http://127.0.0.1:${port}/slow`, { agent: false }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (d: string) => chunks.push(...d.split('\n').filter(Boolean)));
        res.on('end', () => resolve());
        res.on('error', reject);
      }).on('error', reject);
    });
    await eventually(async () => expect(chunks.length).toBeGreaterThan(0));
    const exited = new Promise<number | null>((r) => m.child.once('exit', (code) => r(code)));
    m.child.kill('SIGTERM');
    // Not ready first, while it drains.
    await eventually(async () => expect((await fetch(`${m.api}/ready`)).status).toBe(503), 2000, 20);
    // No new connections on the published port.
    await eventually(async () => {
      const refused = await new Promise<boolean>((r) => {
        const c = connect(port, '127.0.0.1');
        c.once('connect', () => {
          c.destroy();
          r(false);
        });
        c.once('error', () => r(true));
      });
      expect(refused).toBe(true);
    });
    // The transfer in flight finishes whole.
    await done;
    expect(chunks).toHaveLength(10);
    expect(await exited).toBe(0);
    expect(onLo()).not.toContain(`${vip}/32`);
  });
});

describe('a meshd killed mid-test', () => {
  it('leaves no VIP on lo: the harness takes off what meshd said it added', async () => {
    const m = await startMeshd({
      config:
        'declare:\n  networks: [{ name: crash, subnet: 10.199.8.0/24 }]\n  services: [{ name: web, networks: [{ network: crash }], expose: [80] }]\n',
    });
    const vip = JSON.parse(await m.ctl('service', 'inspect', 'web'))[0].networks[0].vip as string;
    await eventually(async () => expect(onLo()).toContain(`${vip}/32`));
    await m.kill(); // SIGKILL: meshd cannot take it off itself
    expect(onLo()).not.toContain(`${vip}/32`);
    await m.stop();
  });
});
