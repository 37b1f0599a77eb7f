import { describe, expect, it } from 'vitest';
import { elementOf, entryChain, targetChain, targetKey } from '../../../src/mesh/kernel/nft-script.js';
import { type KernelEntry, kernelEntries, userspaceReason } from '../../../src/mesh/kernel/plan.js';
import { TableState } from '../../../src/mesh/kernel/table-state.js';
import { type RouteOptions, serviceListeners, vipRoute } from '../../../src/mesh/routes.js';
import type { ClusterState } from '../../../src/model/cluster-state.js';
import { Fields } from '../../../src/model/fields.js';
import { createNetwork, readNetworkSpec } from '../../../src/model/network.js';
import { initCluster, registerNode } from '../../../src/model/node.js';
import { createService, readServiceSpec } from '../../../src/model/service.js';
import { addTask, setReportedHealth } from '../../../src/model/task.js';
import { SnapshotBuilder } from '../../../src/state/snapshot.js';
import { applyChange, build } from '../../helpers/state.js';

const now = '2026-01-01T00:00:00.000Z';
const node = (id: string) => (s: ClusterState) =>
  registerNode(
    s,
    { id, name: id, advertiseAddr: '127.0.0.1', datapathAddr: '127.0.0.1', dataListen: '', apiListen: '' },
    now,
  );
const on: RouteOptions = { nodeId: 'n1', publishAddr: '0.0.0.0', remote: 'direct', reserved: () => false };

/** One service `web` on `apps` (10.1.0.0/24) with `flags`, and tasks on n1 and n2. */
function listeners(
  service: Record<string, unknown>,
  tasks: { node: string; ip: string; unhealthy?: boolean }[],
  subnet = '10.1.0.0/24',
) {
  let s = build(
    (st) => initCluster(st, '10.0.0.0/24', now),
    node('n1'),
    node('n2'),
    (st) => createNetwork(st, readNetworkSpec(Fields.of({ name: 'apps', subnet }, '')), now),
    (st) =>
      createService(
        st,
        readServiceSpec(Fields.of({ name: 'web', networks: [{ network: 'apps' }], ...service }, '')),
        now,
      ),
  );
  for (const t of tasks) {
    s = applyChange(
      s,
      addTask(
        s,
        { service: 'web', node: t.node, ips: [t.ip], reportedHealth: 'none', labels: {} },
        'n1',
        now,
      ),
    );
    if (t.unhealthy) {
      const id = [...s.tasks.values()].find((x) => x.addresses.some((a) => a.address === t.ip))?.id as string;
      s = applyChange(s, setReportedHealth(s, id, 'unhealthy', now));
    }
  }
  const { snap } = new SnapshotBuilder().apply(s, { full: true, changes: [] }, 1);
  const svc = [...s.services.values()][0] as NonNullable<ReturnType<typeof s.services.get>>;
  const specs = serviceListeners(snap, svc, on);
  const att = svc.networks[0] as { network: string; vip?: string };
  const vip = att.vip?.split('/')[0] as string;
  return {
    specs,
    vipSpec: {
      key: `vip|${vip}`,
      proto: 'tcp' as const,
      host: vip,
      port: 0,
      kind: 'vip' as const,
      route: vipRoute(snap, svc, att.network, on),
    },
  };
}

describe('which listeners the kernel serves', () => {
  it.each([
    [{ proxyProtocol: 'v2' }, 'PROXY protocol'],
    [{ lb: 'least-conn' }, 'least-conn balancing'],
    [{ lb: 'p2c' }, 'p2c balancing'],
    [{ maxConnsPerTask: 5 }, 'a per-task connection cap'],
    [{}, undefined],
    [{ lb: 'source-ip' }, undefined],
  ])('%j -> %s', (flags, reason) => {
    const { specs } = listeners({ ports: [{ published: 8080, target: 80 }], ...flags }, [
      { node: 'n1', ip: '10.1.0.10' },
    ]);
    expect(userspaceReason(specs[0] as never)).toBe(reason);
  });

  it('keeps tasks on loopback addresses in userspace (DNAT there would need route_localnet)', () => {
    const ports = { ports: [{ published: 8080, target: 80 }] };
    const { specs } = listeners(ports, [{ node: 'n1', ip: '127.88.0.5' }], '127.88.0.0/16');
    expect(userspaceReason(specs[0] as never)).toBe('task addresses on loopback');
  });
});

describe('kernel entries', () => {
  const tasks = [
    { node: 'n1', ip: '10.1.0.10' },
    { node: 'n2', ip: '10.1.0.11' },
    { node: 'n1', ip: '10.1.0.12', unhealthy: true },
  ];

  it('sends a published port to healthy tasks, rewriting the port, masquerading only remote ones', () => {
    const { specs } = listeners({ ports: [{ published: 8080, target: 80 }] }, tasks);
    const [e] = kernelEntries(
      specs.filter((s) => s.kind === 'publish'),
      false,
      () => true,
    );
    expect(e?.match).toEqual({ publish: 8080 });
    expect(e?.targets).toEqual([
      expect.objectContaining({ addr: '10.1.0.10', port: 80, masquerade: false }),
      expect.objectContaining({ addr: '10.1.0.11', port: 80, masquerade: true }),
    ]);
  });

  it('carries a VIP for every port: no port rewrite, both protocols', () => {
    const { vipSpec } = listeners({}, tasks);
    const [e] = kernelEntries([vipSpec], false, () => true);
    expect(e?.proto).toBe('any');
    expect(e?.targets.map((t) => t.port)).toEqual([undefined, undefined]);
    expect(elementOf(e as KernelEntry)).toEqual({ map: 'vips', key: vipSpec.host });
  });

  it('falls back to every task under panic `all` when none is healthy', () => {
    const { specs } = listeners({ ports: [{ published: 8080, target: 80 }] }, [
      { node: 'n1', ip: '10.1.0.12', unhealthy: true },
    ]);
    expect(kernelEntries(specs, false, () => true)[0]?.targets).toEqual([]);
    expect(kernelEntries(specs, true, () => true)[0]?.targets).toHaveLength(1);
  });
});

describe('TableState', () => {
  const entry = (key: string, addrs: string[]): KernelEntry => ({
    key,
    family: 'ip',
    service: 'web',
    port: '8080',
    proto: 'tcp',
    match: { publish: Number(key.slice(1)) },
    pick: 'inc',
    drainMs: 0,
    targets: addrs.map((addr) => ({ task: addr, addr, port: 80, masquerade: false })),
  });
  const chainOf = (addr: string) =>
    targetChain(targetKey('ip', 'tcp', { task: addr, addr, port: 80, masquerade: false }));

  it('sends only what changed, in an order one transaction accepts', () => {
    const state = new TableState();
    const a = entry('p8080', ['10.0.0.1', '10.0.0.2']);
    const b = entry('p8081', ['10.0.0.2']);
    const full = state.rebuild([a, b]);
    expect(full.script).toContain('delete table ip meshd');
    full.commit();
    // b's task leaves; a gains one: only b's and a's chains change, 10.0.0.1's chain stays.
    const wanted = new Map([
      [a.key, entry('p8080', ['10.0.0.2', '10.0.0.3'])],
      [b.key, entry('p8081', [])],
    ]);
    const plan = state.update(wanted, [a.key, b.key]);
    const lines = plan?.script.trim().split('\n') ?? [];
    expect(lines.some((l) => l.includes('delete table'))).toBe(false);
    const created = lines.indexOf(`add chain ip meshd ${chainOf('10.0.0.3')}`);
    const jumpedTo = lines.findIndex((l) => l.startsWith(`add rule ip meshd ${entryChain(a)}`));
    const dropped = lines.indexOf(`delete chain ip meshd ${chainOf('10.0.0.1')}`);
    expect(created).toBeGreaterThanOrEqual(0);
    expect(created).toBeLessThan(jumpedTo);
    expect(dropped).toBeGreaterThan(jumpedTo);
    // 10.0.0.2 is still used by a: its chain is kept.
    expect(lines.some((l) => l.includes(`delete chain ip meshd ${chainOf('10.0.0.2')}`))).toBe(false);
    // An entry with no task refuses new connections rather than dropping them silently.
    expect(plan?.script).toMatch(
      new RegExp(`add rule ip meshd ${entryChain(b)} counter .* meta mark set meta mark \\| 0x200000`),
    );
    plan?.commit();
    expect(state.update(wanted, [a.key, b.key])).toBeUndefined();
  });

  it('removes an entry: its element first, then its chain and counter', () => {
    const state = new TableState();
    const a = entry('p8080', ['10.0.0.1']);
    state.rebuild([a]).commit();
    const lines = state.update(new Map(), [a.key])?.script.trim().split('\n') ?? [];
    expect(lines).toEqual([
      'delete element ip meshd ports { tcp . 8080 }',
      `delete chain ip meshd ${entryChain(a)}`,
      `delete counter ip meshd ${entryChain(a)}`,
      `delete chain ip meshd ${chainOf('10.0.0.1')}`,
    ]);
  });

  it('keeps its state when the kernel refused a script (commit not called)', () => {
    const state = new TableState();
    state.rebuild([entry('p8080', ['10.0.0.1'])]).commit();
    const wanted = new Map([['p8080', entry('p8080', ['10.0.0.9'])]]);
    const first = state.update(wanted, ['p8080']);
    expect(state.update(wanted, ['p8080'])?.script).toBe(first?.script);
  });
});
