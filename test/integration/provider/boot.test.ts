import { createSocket } from 'node:dgram';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, meshdFails, startMeshd } from '../../helpers/meshd.js';
import { createTestHost, isRoot, type TestHost } from '../../helpers/netns.js';
import { freePort } from '../../helpers/ports.js';

// How a container host boots: meshd may start before the engine's bridge (its DNS address) exists,
// and must not look healthy when it cannot reach the engine.
const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

async function ready(m: MeshdProcess): Promise<{ status: string; reason: string }> {
  return (await (await fetch(`${m.api}/ready`)).json()) as { status: string; reason: string };
}

describe('booting on a container host', () => {
  it('is degraded, saying why, while the engine socket cannot be listed', async () => {
    const m = await startMeshd({
      args: ['--provider', 'docker', '--docker-host', 'unix:///nonexistent/engine.sock'],
    });
    cleanup.push(() => m.stop());
    await eventually(async () => {
      const r = await ready(m);
      expect(r.status).toBe('degraded');
      expect(r.reason).toMatch(/container engine not listed yet \(\/nonexistent\/engine\.sock\): .*ENOENT/);
    });
    expect(
      m.logs.some(
        (l) => l.includes('container engine unreachable') && l.includes('/nonexistent/engine.sock'),
      ),
    ).toBe(true);
  });

  it('starts before its DNS address exists and binds it when it appears', async () => {
    expect(isRoot()).toBe(true);
    const host: TestHost = await createTestHost(`mboot${process.pid % 1000}`, '10.197.5.1', '10.197.5.2');
    cleanup.push(() => host.remove());
    const m = await startMeshd({
      netns: host.name,
      args: ['--dns-listen', '10.197.5.9:53'],
      config:
        'declare:\n  networks: [{ name: apps, subnet: 127.245.0.0/16 }]\n  services: [{ name: web, networks: [{ network: apps }] }]\n',
    });
    cleanup.push(() => m.stop());
    expect(m.logs.some((l) => l.includes('the DNS address is not on this host yet'))).toBe(true);
    // The engine creates the bridge (here: the address appears) when its first container joins.
    await host.exec('ip', 'addr', 'add', '10.197.5.9/32', 'dev', 'lo');
    await eventually(
      async () => {
        const r = await host.exec('dig', '@10.197.5.9', '+short', '+time=1', '+tries=1', 'web');
        expect(r.stdout.trim()).toBe('127.245.0.2');
      },
      10_000,
      500,
    );
    expect(m.logs.some((l) => l.includes('DNS is listening'))).toBe(true);
  }, 60_000);

  it('names the process that holds its DNS port', async () => {
    const port = await freePort('127.0.0.1');
    const holder = createSocket('udp4');
    await new Promise<void>((r) => holder.bind(port, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise<void>((r) => holder.close(() => r())));
    const r = await meshdFails([
      '--store',
      'memory',
      '--dns-listen',
      `127.0.0.1:${port}`,
      '--api-listen',
      '127.0.0.1:0',
      '--data-listen',
      '127.0.0.1:0',
      '--metrics-listen',
      '127.0.0.1:0',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `dns.listen 127.0.0.1:${port}: the port is already in use by node (pid ${process.pid})`,
    );
  });
});
