import { describe, expect, it } from 'vitest';
import { parseCounts } from '../../../src/mesh/kernel/nft.js';
import { elementOf, entryChain } from '../../../src/mesh/kernel/nft-script.js';
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
  const entry = (key: string, addrs: string[], remote: string[] = []): KernelEntry => ({
    key,
    family: 'ip',
    service: 'web',
    port: key.slice(1),
    proto: 'tcp',
    match: { publish: Number(key.slice(1)) },
    pick: 'inc',
    drainMs: 0,
    targets: addrs.map((addr) => ({ task: addr, addr, port: 80, masquerade: remote.includes(addr) })),
  });
  const linesOf = (p: { script: string } | undefined) => p?.script.trim().split('\n') ?? [];

  it('rebuilds both tables whole, in one transaction, with no inline (anonymous) maps', () => {
    const state = new TableState();
    const plan = state.rebuild([entry('p8080', ['10.0.0.1', '10.0.0.2'], ['10.0.0.2'])]);
    expect(plan.script).toContain('delete table ip meshd');
    expect(plan.script).toContain('delete table ip6 meshd');
    expect(plan.script).not.toMatch(/vmap \{|map \{ 0/);
    expect(plan.script).toMatch(/dnat to numgen inc mod 2 offset \d+ map @t\d+/);
    // The remote task is masqueraded; every task may reach itself through the service.
    expect(plan.script).toContain('add element ip meshd remote { 10.0.0.2 }');
    expect(plan.script).toContain(
      'add element ip meshd hairpin { 10.0.0.1 . 10.0.0.1, 10.0.0.2 . 10.0.0.2 }',
    );
  });

  it('changes only the slot of a task that was replaced: no rule, no chain', () => {
    const state = new TableState();
    const a = entry('p8080', ['10.0.0.1', '10.0.0.2']);
    state.rebuild([a]).commit();
    const plan = state.update(new Map([[a.key, entry('p8080', ['10.0.0.1', '10.0.0.3'])]]), [a.key]);
    const lines = linesOf(plan);
    expect(lines.filter((l) => l.includes(' rule ') || l.includes(' chain '))).toEqual([]);
    expect(lines.filter((l) => /element ip meshd t\d+/.test(l))).toEqual([
      expect.stringMatching(/^delete element ip meshd t\d+ \{ \d+ \}$/),
      expect.stringMatching(/^add element ip meshd t\d+ \{ \d+ : 10\.0\.0\.3 \. 80 \}$/),
    ]);
    expect(lines).toContain('add element ip meshd hairpin { 10.0.0.3 . 10.0.0.3 }');
    expect(lines).toContain('delete element ip meshd hairpin { 10.0.0.2 . 10.0.0.2 }');
    plan?.commit();
    expect(
      state.update(new Map([[a.key, entry('p8080', ['10.0.0.1', '10.0.0.3'])]]), [a.key]),
    ).toBeUndefined();
  });

  it('moves an entry whose task count changed to a new block: slots first, then the rule, then the old slots go', () => {
    const state = new TableState();
    const a = entry('p8080', ['10.0.0.1', '10.0.0.2']);
    state.rebuild([a]).commit();
    const lines = linesOf(
      state.update(new Map([[a.key, entry('p8080', ['10.0.0.1', '10.0.0.2', '10.0.0.3'])]]), [a.key]),
    );
    const added = lines.findIndex((l) => /^add element ip meshd t\d+ \{ \d+ : 10\.0\.0\.1 \. 80, /.test(l));
    const rule = lines.findIndex((l) => l.startsWith(`add rule ip meshd ${entryChain(a)}`));
    const dropped = lines.findIndex((l) => /^delete element ip meshd t\d+ /.test(l));
    expect(lines[rule]).toContain('numgen inc mod 3');
    expect(added).toBeGreaterThanOrEqual(0);
    expect(added).toBeLessThan(rule);
    expect(rule).toBeLessThan(dropped);
  });

  it('refuses new connections of an entry with no task, and removes an entry element first', () => {
    const state = new TableState();
    const a = entry('p8080', ['10.0.0.1']);
    state.rebuild([a]).commit();
    const empty = linesOf(state.update(new Map([[a.key, entry('p8080', [])]]), [a.key]));
    expect(empty).toContain(`add rule ip meshd ${entryChain(a)} meta mark set meta mark | 0x200000`);
    const gone = linesOf(state.update(new Map(), [a.key]));
    expect(gone.slice(0, 4)).toEqual([
      `flush chain ip meshd ${entryChain(a)}`,
      'delete element ip meshd ports { tcp . 8080 }',
      `delete chain ip meshd ${entryChain(a)}`,
      'delete element ip meshd traffic { 0x10000 }',
    ]);
  });

  it('holds no named objects: nft fetches every chain and object before any change, so each one costs every update', () => {
    const state = new TableState();
    const plan = state.rebuild([entry('p8080', ['10.0.0.1']), entry('p8081', ['10.0.0.2'])]);
    expect(plan.script).not.toMatch(/\bcounter [a-z]|add counter|counter name/);
    // The dispatch maps and the traffic set count per element instead.
    expect(plan.script).toMatch(/map ports \{ type inet_proto \. inet_service : verdict; counter; \}/);
    expect(plan.script).toContain('set traffic { type mark; counter; }');
  });

  it("makes a slot map when its first entry needs it, before that entry's slots", () => {
    const state = new TableState();
    const plan = state.rebuild([entry('p8080', ['10.0.0.1'])]);
    const made = (script: string) => script.match(/^add map ip meshd [tuv]\d+ /gm) ?? [];
    // One entry, one map: not the 384 a table of thousands of services fills.
    expect(made(plan.script)).toHaveLength(1);
    const lines = linesOf(plan);
    const map = lines.findIndex((l) => l.startsWith('add map ip meshd t'));
    const slots = lines.findIndex((l) => /^add element ip meshd t\d+ /.test(l));
    expect(map).toBeLessThan(slots);
    plan.commit();
    // More entries: each new shard's map comes once, however many entries share it.
    const wanted = new Map(
      Array.from({ length: 40 }, (_, i) => [`p${9000 + i}`, entry(`p${9000 + i}`, ['10.0.0.1'])] as const),
    );
    const next = state.update(wanted, wanted.keys());
    const names = made(next?.script ?? '');
    expect(new Set(names).size).toBe(names.length);
    expect(names.length).toBeGreaterThan(0);
    expect(names.length).toBeLessThan(40);
  });

  it('reads per-element counters as nft lists them', () => {
    const counts = {
      connections: new Map<string, number>(),
      traffic: new Map<number, { packets: number; bytes: number }>(),
    };
    parseCounts(
      [
        'table ip meshd {',
        '\tmap ports {',
        '\t\ttype inet_proto . inet_service : verdict',
        '\t\tcounter',
        '\t\telements = { tcp . 8080 counter packets 7 bytes 420 : goto svc-0123456789ab,',
        '\t\t\t     udp . 53 counter packets 2 bytes 120 : goto svc-ba9876543210 }',
        '\t}',
        '\tset traffic {',
        '\t\ttype mark',
        '\t\tcounter',
        '\t\telements = { 0x00010000 counter packets 30 bytes 4096, 0x00020000 counter packets 0 bytes 0 }',
        '\t}',
        '}',
      ].join('\n'),
      counts,
    );
    expect([...counts.connections]).toEqual([
      ['svc-0123456789ab', 7],
      ['svc-ba9876543210', 2],
    ]);
    expect(counts.traffic.get(0x10000)).toEqual({ packets: 30, bytes: 4096 });
    expect(counts.traffic.get(0x20000)).toEqual({ packets: 0, bytes: 0 });
  });

  it('keeps its state when the kernel refused a script (commit not called)', () => {
    const state = new TableState();
    state.rebuild([entry('p8080', ['10.0.0.1'])]).commit();
    const wanted = new Map([['p8080', entry('p8080', ['10.0.0.9'])]]);
    const first = state.update(wanted, ['p8080']);
    expect(state.update(wanted, ['p8080'])?.script).toBe(first?.script);
  });
});
