import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { createTestHost, isRoot, type TestHost } from '../../helpers/netns.js';

const config = `
declare:
  networks:
    - { name: cnet, subnet: 10.241.0.0/24, vipRange: 10.241.0.128/25 }
    - { name: other, subnet: 10.242.0.0/24 }
  services:
    - { name: web, networks: [{ network: cnet }] }
    - { name: hidden, networks: [{ network: other }] }
  tasks:
    - { service: web, ips: [10.241.0.50, 10.241.0.51] }
    - { service: hidden, count: 1 }
`;

// A client in its own network namespace whose /etc/resolv.conf points at meshd: the glibc stub
// resolver, as a container's libc would use it. Needs root for `ip netns` and port 53 (CI is root).
describe('the glibc resolver in a network namespace', () => {
  let m: MeshdProcess;
  let host: TestHost;
  beforeAll(async () => {
    if (!isRoot()) throw new Error('this test needs root (ip netns, port 53); CI runs as root');
    host = await createTestHost(`meshd-dns-${process.pid}`, '10.241.0.1', '10.241.0.2', '10.241.0.1');
    m = await startMeshd({ config, args: ['--dns-listen', '10.241.0.1:53'] });
  }, 30_000);
  afterAll(async () => {
    await m?.stop();
    await host?.remove();
  });

  it('resolves the service VIP and every task, scoped to the client network', async () => {
    const web = await host.exec('getent', 'hosts', 'web');
    expect(web.stdout).toMatch(/^10\.241\.0\.128\s+web$/m);
    const tasks = await host.exec('getent', 'ahostsv4', 'tasks.web');
    expect(
      [
        ...new Set(
          tasks.stdout
            .split('\n')
            .filter(Boolean)
            .map((l) => l.split(/\s+/)[0]),
        ),
      ].sort(),
    ).toEqual(['10.241.0.50', '10.241.0.51']);
    const hidden = await host.exec('getent', 'hosts', 'hidden');
    expect(hidden.code).toBe(2);
    const qualified = await host.exec('getent', 'hosts', 'web.meshd');
    expect(qualified.stdout).toMatch(/^10\.241\.0\.128\s+web\.meshd$/m);
  });
});
