import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EtcdServer, startEtcd } from '../../helpers/etcd.js';
import { eventually } from '../../helpers/eventually.js';
import { createKernelLab, type KernelLab } from '../../helpers/kernel-lab.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { isRoot, sh } from '../../helpers/netns.js';

// Two nodes in namespaces of their own on one LAN, one etcd on the LAN's bridge. Task addresses
// are routed between the nodes (as an overlay or a flat L3 network would), so `--remote-tasks
// direct` lets the kernel send a published port's connections to a task on the other node.
const prefix = `mc${process.pid % 1000}`;
const lanPrefix = `10.236.${process.pid % 200}`;
const overlay = 237;
const token = 'kernel-cluster-token';
let lab: KernelLab;
let etcd: EtcdServer;
const nodes: MeshdProcess[] = [];

const addr = (n: number) => lab.nodes[n - 1]?.nsAddr as string;
const get = async (url: string) => (await sh('curl', '-s', '-m', '3', url)).trim();

beforeAll(async () => {
  if (!isRoot()) throw new Error('this test needs root (ip netns, nft); CI runs as root');
  lab = await createKernelLab(prefix, lanPrefix, overlay, 2);
  etcd = await startEtcd(`${lanPrefix}.254`);
  for (const n of [1, 2]) {
    const args = [
      '--store',
      `etcd://${etcd.endpoint}`,
      '--api-listen',
      `${addr(n)}:0`,
      '--advertise-addr',
      addr(n),
      '--datapath-addr',
      addr(n),
      '--node-name',
      `node${n}`,
      '--remote-tasks',
      'direct',
    ];
    nodes.push(await startMeshd({ netns: lab.nodes[n - 1]?.name, token, args }));
  }
  await lab.addTask(2, 'far');
  const ctl = nodes[0] as MeshdProcess;
  await ctl.ctl('network', 'create', '--subnet', lab.subnet, 'apps');
  await ctl.ctl(
    'service',
    'create',
    '--name',
    'far',
    '--network',
    'apps',
    '--publish',
    '8080:80',
    '--publish',
    'published=8081,target=80,traffic=local',
  );
  await ctl.ctl(
    'task',
    'add',
    'far',
    '--node',
    'node2',
    '--ip',
    lab.tasks[0]?.addr as string,
    '--name',
    'far',
  );
}, 90_000);

afterAll(async () => {
  for (const n of nodes.reverse()) await n.stop();
  await etcd?.remove();
  await lab?.remove();
}, 60_000);

describe('the kernel data plane across nodes', () => {
  it('sends a published port on node 1 to the task on node 2, masqueraded so the reply returns', async () => {
    await eventually(async () => expect(await get(`http://${addr(1)}:8080/`)).toBe(`far ${addr(1)}`));
    // Served by node 1's kernel, not its proxy.
    expect(await nodes[0]?.ctl('service', 'ls')).toContain('*:8080->80/tcp [kernel]');
  });

  it('keeps the client address where the task is local', async () => {
    await eventually(async () => expect(await get(`http://${addr(2)}:8080/`)).toBe(`far ${lanPrefix}.254`));
  });

  it("sends traffic=local ports only to the node's own tasks: node 1 refuses, node 2 keeps the client address", async () => {
    await eventually(async () => expect(await get(`http://${addr(2)}:8081/`)).toBe(`far ${lanPrefix}.254`));
    await expect(get(`http://${addr(1)}:8081/`)).rejects.toThrow();
    expect(await nodes[0]?.ctl('service', 'ls')).toContain('*:8081->80/tcp (local) [kernel]');
  });
});
