import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EtcdServer, startEtcd } from '../../helpers/etcd.js';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { createTestHost, isRoot, sh, type TestHost } from '../../helpers/netns.js';

// Three nodes, each in its own network namespace joined to the host by a veth; etcd runs on the
// host. Node 3 is cut off with `ip link set down` and comes back. Needs root (CI runs as root).
const hosts: TestHost[] = [];
const nodes: MeshdProcess[] = [];
let etcd: EtcdServer;

function hostIf(i: number): string {
  return `vh${`mnet${process.pid % 1000}${i}`.slice(-8)}`.slice(0, 15);
}

beforeAll(async () => {
  if (!isRoot()) throw new Error('this test needs root (ip netns); CI runs as root');
  for (let i = 1; i <= 3; i++)
    hosts.push(await createTestHost(`mnet${process.pid % 1000}${i}`, `10.250.${i}.1`, `10.250.${i}.2`));
  etcd = await startEtcd('127.0.0.1', ['10.250.1.1', '10.250.2.1', '10.250.3.1']);
  for (let i = 1; i <= 3; i++) {
    const a = `10.250.${i}.2`;
    nodes.push(
      await startMeshd({
        netns: hosts[i - 1]?.name,
        token: 'ns-secret',
        args: [
          '--store',
          `etcd://10.250.${i}.1:${etcd.clientPort}`,
          '--node-name',
          `ns${i}`,
          '--advertise-addr',
          a,
          '--api-listen',
          `${a}:0`,
          '--dns-listen',
          `${a}:0`,
          '--metrics-listen',
          `${a}:0`,
          '--data-listen',
          `${a}:0`,
          '--publish-addr',
          a,
          '--lease-ttl',
          '2s',
        ],
      }),
    );
  }
}, 90_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await etcd?.remove();
  for (const h of hosts) await h.remove();
});

async function states(m: MeshdProcess): Promise<Record<string, string>> {
  const list = JSON.parse(await m.ctl('node', 'ls', '--format', 'json')) as { name: string; state: string }[];
  return Object.fromEntries(list.map((x) => [x.name, x.state]));
}

describe('nodes in network namespaces', () => {
  it('marks a node that is cut off down everywhere else, while it keeps serving; it rejoins', async () => {
    const [n1, , n3] = nodes as [MeshdProcess, MeshdProcess, MeshdProcess];
    await eventually(async () =>
      expect(await states(n1)).toEqual({ ns1: 'ready', ns2: 'ready', ns3: 'ready' }),
    );
    await n1.ctl('network', 'create', '--subnet', '10.251.0.0/16', 'nsnet');
    await n1.ctl('service', 'create', '--name', 'web', '--network', 'nsnet', '--endpoint-mode', 'dnsrr');
    await n3.ctl('task', 'add', 'web', '--ip', '10.251.3.1');
    await n1.ctl('task', 'add', 'web', '--ip', '10.251.1.1');
    const digIn = (i: number, name: string) =>
      hosts[i - 1]?.exec(
        'dig',
        `@10.250.${i}.2`,
        '-p',
        nodes[i - 1]?.dns.split(':')[1] as string,
        '+short',
        '+time=2',
        '+tries=1',
        name,
      );
    await eventually(async () =>
      expect((await digIn(2, 'tasks.web'))?.stdout.split('\n').filter(Boolean).sort()).toEqual([
        '10.251.1.1',
        '10.251.3.1',
      ]),
    );

    await sh('ip', 'link', 'set', hostIf(3), 'down');
    const cut = Date.now();
    await eventually(async () => expect((await states(n1)).ns3).toBe('down'), 8000, 100);
    // A figure, not an assertion: how long the cut node took to be marked down (lease TTL 2 s).
    console.log(`node cut off marked down after ${Date.now() - cut} ms`);
    // Its tasks leave the answers of the other nodes...
    await eventually(async () =>
      expect((await digIn(2, 'tasks.web'))?.stdout.split('\n').filter(Boolean)).toEqual(['10.251.1.1']),
    );
    // ...while the cut-off node still answers from its last state and says it is degraded.
    expect((await digIn(3, 'tasks.web'))?.stdout.split('\n').filter(Boolean).length).toBeGreaterThan(0);
    await eventually(
      async () => {
        const r = (await (
          await fetch(`${n3.api}/ready`).catch(() => undefined)
        )
          ?.json()
          .catch(() => undefined)) as { status?: string } | undefined;
        // The host cannot reach ns3 now; ask from inside.
        const inside = await hosts[2]?.exec('curl', '-s', `${n3.api}/ready`);
        expect(r?.status ?? JSON.parse(inside?.stdout || '{}').status).toBe('degraded');
      },
      15_000,
      200,
    );

    await sh('ip', 'link', 'set', hostIf(3), 'up');
    await eventually(async () => expect((await states(n1)).ns3).toBe('ready'), 20_000, 200);
    await eventually(
      async () =>
        expect((await digIn(2, 'tasks.web'))?.stdout.split('\n').filter(Boolean).sort()).toEqual([
          '10.251.1.1',
          '10.251.3.1',
        ]),
      10_000,
    );
  }, 90_000);
});
