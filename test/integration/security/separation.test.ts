import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EtcdServer, startEtcd } from '../../helpers/etcd.js';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { createTestHost, isRoot, sh, type TestHost } from '../../helpers/netns.js';

// Two nodes in namespaces, each with two links to the host: control (10.252.N.0/24: etcd, API)
// and data (10.253.N.0/24: the data plane). A transfer through an encrypted network crosses the
// data links only. Needs root (CI runs as root).
const tag = process.pid % 1000;
const hosts: TestHost[] = [];
const nodes: MeshdProcess[] = [];
let etcd: EtcdServer;
let backend: ChildProcess | undefined;
const dataIf = (i: number) => `vd${tag}${i}`.slice(0, 15);
const ctlIf = (i: number) => `vh${`sep${tag}${i}`.slice(-8)}`.slice(0, 15);

async function txBytes(ifname: string): Promise<number> {
  const out = await sh('cat', `/sys/class/net/${ifname}/statistics/tx_bytes`);
  const rx = await sh('cat', `/sys/class/net/${ifname}/statistics/rx_bytes`);
  return Number(out) + Number(rx);
}

let forwarding = '';

beforeAll(async () => {
  if (!isRoot()) throw new Error('this test needs root (ip netns); CI runs as root');
  // Restored in afterAll: the host's routing setting is not ours to leave changed.
  forwarding = (await sh('sysctl', '-n', 'net.ipv4.ip_forward')).trim();
  await sh('sysctl', '-qw', 'net.ipv4.ip_forward=1');
  for (let i = 1; i <= 2; i++) {
    const h = await createTestHost(`sep${tag}${i}`, `10.252.${i}.1`, `10.252.${i}.2`);
    hosts.push(h);
    // The second link, for data.
    await sh('ip', 'link', 'add', dataIf(i), 'type', 'veth', 'peer', 'name', `${dataIf(i)}n`);
    await sh('ip', 'link', 'set', `${dataIf(i)}n`, 'netns', h.name);
    await sh('ip', 'addr', 'add', `10.253.${i}.1/24`, 'dev', dataIf(i));
    await sh('ip', 'link', 'set', dataIf(i), 'up');
    await h.exec('ip', 'addr', 'add', `10.253.${i}.2/24`, 'dev', `${dataIf(i)}n`);
    await h.exec('ip', 'link', 'set', `${dataIf(i)}n`, 'up');
    await h.exec('ip', 'route', 'add', '10.252.0.0/16', 'via', `10.252.${i}.1`);
    await h.exec('ip', 'route', 'add', '10.253.0.0/16', 'via', `10.253.${i}.1`);
  }
  etcd = await startEtcd('127.0.0.1', ['10.252.1.1', '10.252.2.1']);
  const node = (i: number, extra: string[]) =>
    startMeshd({
      netns: hosts[i - 1]?.name,
      token: 'sep-secret',
      args: [
        '--store',
        `etcd://10.252.${i}.1:${etcd.clientPort}`,
        '--node-name',
        `sep${i}`,
        '--advertise-addr',
        `10.252.${i}.2`,
        '--api-listen',
        `10.252.${i}.2:0`,
        '--datapath-addr',
        `10.253.${i}.2`,
        '--data-listen',
        `10.253.${i}.2:4789`,
        '--publish-addr',
        '127.0.0.1',
        '--dns-listen',
        'off',
        '--metrics-listen',
        'off',
        ...extra,
      ],
    });
  nodes.push(await node(1, []));
  const [self] = JSON.parse(
    await (nodes[0] as MeshdProcess)
      .ctl('swarm', 'join-token', '-q', 'worker')
      .then((t) => `["${t.trim()}"]`),
  ) as string[];
  nodes.push(await node(2, ['--join-token', self as string]));
  // The task: 5 MB (raw, hence curl --http0.9; it reads the request before closing, so no RST) served from inside node 2's namespace, on an address only node 2 has.
  await hosts[1]?.exec('ip', 'addr', 'add', '10.99.2.10/32', 'dev', 'lo');
  backend = spawn(
    'ip',
    [
      'netns',
      'exec',
      hosts[1]?.name as string,
      'socat',
      'TCP-LISTEN:8000,bind=10.99.2.10,fork,reuseaddr',
      'SYSTEM:head -c 5000000 /dev/zero; timeout 0.3 cat > /dev/null',
    ],
    { stdio: 'ignore' },
  );
}, 90_000);

afterAll(async () => {
  backend?.kill('SIGTERM');
  await Promise.all(nodes.map((n) => n.stop()));
  await etcd?.remove();
  for (let i = 1; i <= 2; i++) await sh('ip', 'link', 'del', dataIf(i)).catch(() => undefined);
  for (const h of hosts) await h.remove();
  if (forwarding) await sh('sysctl', '-qw', `net.ipv4.ip_forward=${forwarding}`);
});

describe('control and data traffic on separate interfaces', () => {
  it('sends the encrypted data plane over the datapath links and the control traffic over the advertise links', async () => {
    const [n1, n2] = nodes as [MeshdProcess, MeshdProcess];
    await eventually(
      async () => {
        const list = JSON.parse(await n1.ctl('node', 'ls', '--format', 'json')) as {
          name: string;
          dataTls?: boolean;
          datapathAddr: string;
        }[];
        expect(list.map((n) => `${n.name}:${n.dataTls}:${n.datapathAddr}`).sort()).toEqual([
          'sep1:true:10.253.1.2',
          'sep2:true:10.253.2.2',
        ]);
      },
      20_000,
      200,
    );
    await n1.ctl('network', 'create', '--opt', 'encrypted', '--subnet', '10.99.0.0/16', 'sepnet');
    await n1.ctl('service', 'create', '--name', 'bulk', '--network', 'sepnet', '-p', '18700:8000');
    await n2.ctl('task', 'add', 'bulk', '--ip', '10.99.2.10');
    const fetchInNs1 = () =>
      hosts[0]?.exec(
        'curl',
        '-s',
        '--http0.9',
        '-o',
        '/dev/null',
        '-w',
        '%{size_download}',
        'http://127.0.0.1:18700/',
      );
    await eventually(async () => expect((await fetchInNs1())?.stdout).toBe('5000000'), 20_000, 250);
    const before = {
      ctl: (await txBytes(ctlIf(1))) + (await txBytes(ctlIf(2))),
      data: (await txBytes(dataIf(1))) + (await txBytes(dataIf(2))),
    };
    let moved = 0;
    for (let i = 0; i < 8 && moved < 4; i++) if ((await fetchInNs1())?.stdout === '5000000') moved++;
    expect(moved).toBeGreaterThanOrEqual(2);
    const after = {
      ctl: (await txBytes(ctlIf(1))) + (await txBytes(ctlIf(2))),
      data: (await txBytes(dataIf(1))) + (await txBytes(dataIf(2))),
    };
    // moved x 5 MB crossed node to node: all of it on the data links (in on one, out on the other).
    expect(after.data - before.data).toBeGreaterThan(2 * moved * 5_000_000);
    expect(after.ctl - before.ctl).toBeLessThan(2_000_000);
  }, 90_000);
});
