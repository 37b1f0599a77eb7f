import { describe, expect, it } from 'vitest';
import { type RouteOptions, serviceListeners } from '../../../src/mesh/routes.js';
import type { ClusterState } from '../../../src/model/cluster-state.js';
import { Fields } from '../../../src/model/fields.js';
import { createNetwork, readNetworkSpec } from '../../../src/model/network.js';
import { claimOverlayAddress, initCluster, type NodeSelf, registerNode } from '../../../src/model/node.js';
import { createService, readServiceSpec } from '../../../src/model/service.js';
import { addTask, setReportedHealth } from '../../../src/model/task.js';
import { SnapshotBuilder } from '../../../src/state/snapshot.js';
import { applyChange, build } from '../../helpers/state.js';

const now = '2026-01-01T00:00:00.000Z';
const node =
  (id: string, extra: Partial<NodeSelf> = {}) =>
  (s: ClusterState) =>
    registerNode(
      s,
      {
        id,
        name: id,
        advertiseAddr: '127.0.0.1',
        datapathAddr: '127.0.0.1',
        dataListen: '',
        apiListen: '',
        ...extra,
      },
      now,
    );

/** A cluster of two nodes, an `apps` network, and one service built from `flags`, with its tasks. */
function cluster(
  service: Record<string, unknown>,
  tasks: { node: string; ip: string; health?: 'unhealthy' }[],
) {
  let s = build(
    (st) => initCluster(st, '10.0.0.0/24', now),
    node('n1'),
    node('n2'),
    (st) => createNetwork(st, readNetworkSpec(Fields.of({ name: 'apps', subnet: '10.1.0.0/24' }, '')), now),
    (st) =>
      createService(
        st,
        readServiceSpec(Fields.of({ name: 'web', networks: [{ network: 'apps' }], ...service }, '')),
        now,
      ),
  );
  for (const t of tasks) {
    const ips = [t.ip];
    s = applyChange(
      s,
      addTask(s, { service: 'web', node: t.node, ips, reportedHealth: 'none', labels: {} }, 'n1', now),
    );
    if (t.health) {
      const id = [...s.tasks.values()].find((x) => x.addresses.some((a) => a.address === t.ip))?.id as string;
      s = applyChange(s, setReportedHealth(s, id, t.health, now));
    }
  }
  const { snap } = new SnapshotBuilder().apply(s, { full: true, changes: [] }, 1);
  return {
    snap,
    svc: [...s.services.values()][0] as ClusterState['services'] extends ReadonlyMap<string, infer S>
      ? S
      : never,
  };
}

const on = (nodeId: string): RouteOptions => ({
  nodeId,
  publishAddr: '0.0.0.0',
  remote: 'direct',
  reserved: () => false,
});

// Table: a service shape and its tasks, and the listeners a node must open for it.
const cases = [
  {
    name: 'a VIP serves its target and exposed ports; an ingress port opens on every node',
    service: { ports: [{ published: 8080, target: 80 }], expose: [9000] },
    tasks: [{ node: 'n2', ip: '10.1.0.10' }],
    node: 'n1',
    want: ['tcp|0.0.0.0|8080 publish', 'tcp|10.1.0.2|80 vip', 'tcp|10.1.0.2|9000 vip'],
  },
  {
    name: 'dnsrr has no VIP listener',
    service: { endpointMode: 'dnsrr', expose: [9000] },
    tasks: [{ node: 'n1', ip: '10.1.0.10' }],
    node: 'n1',
    want: [],
  },
  {
    name: 'a host-mode port opens only where a task runs',
    service: { ports: [{ published: 8080, target: 80, mode: 'host' }], endpointMode: 'dnsrr' },
    tasks: [{ node: 'n2', ip: '10.1.0.10' }],
    node: 'n1',
    want: [],
  },
  {
    name: 'a host-mode port on the node with a task',
    service: { ports: [{ published: 8080, target: 80, mode: 'host' }], endpointMode: 'dnsrr' },
    tasks: [{ node: 'n2', ip: '10.1.0.10' }],
    node: 'n2',
    want: ['tcp|0.0.0.0|8080 publish'],
  },
];

describe('route builder', () => {
  for (const c of cases) {
    it(c.name, () => {
      const { snap, svc } = cluster(c.service, c.tasks);
      expect(serviceListeners(snap, svc, on(c.node)).map((l) => `${l.key} ${l.kind}`)).toEqual(c.want);
    });
  }

  it('routes to tasks in rotation, keeps every task for the panic rule, and targets the task port', () => {
    const { snap, svc } = cluster({ expose: [80] }, [
      { node: 'n1', ip: '10.1.0.10' },
      { node: 'n2', ip: '10.1.0.11', health: 'unhealthy' },
    ]);
    const [vip] = serviceListeners(snap, svc, on('n1'));
    expect(vip?.route.picker.endpoints.map((e) => `${e.host}:${e.port} local=${e.local}`)).toEqual([
      '10.1.0.10:80 local=true',
    ]);
    expect(vip?.route.panicPicker.endpoints.map((e) => e.host)).toEqual(['10.1.0.10', '10.1.0.11']);
    expect(vip?.route.isLive([...snap.state.tasks.values()][1]?.id as string)).toBe(true);
  });

  it("never routes to one of this node's own listeners", () => {
    const { snap, svc } = cluster({ expose: [80] }, [{ node: 'n1', ip: '10.1.0.10' }]);
    const [vip] = serviceListeners(snap, svc, {
      ...on('n1'),
      reserved: (h, p) => h === '10.1.0.10' && p === 80,
    });
    expect(vip?.route.panicPicker.endpoints).toEqual([]);
  });

  it('reaches a joined task on another node over the overlay this node carries, not the data plane', () => {
    // Both nodes hold certificates and run the kernel data plane.
    const secure = (id: string) =>
      node(id, { dataListen: '127.0.0.1:7946', dataTls: true, dataplane: 'kernel' });
    let s = build(
      (st) => initCluster(st, '10.0.0.0/24', now),
      secure('n1'),
      secure('n2'),
      (st) => createNetwork(st, readNetworkSpec(Fields.of({ name: 'apps', subnet: '10.1.0.0/24' }, '')), now),
      (st) =>
        createService(
          st,
          readServiceSpec(Fields.of({ name: 'web', networks: [{ network: 'apps' }], expose: [80] }, '')),
          now,
        ),
      (st) =>
        addTask(
          st,
          { service: 'web', ips: ['10.1.0.10'], reportedHealth: 'none', labels: {}, netns: '/run/netns/t' },
          'n2',
          now,
        ),
    );
    const svc = [...s.services.values()][0] as Parameters<typeof serviceListeners>[1];
    const path = (remote: RouteOptions['remote']) => {
      const { snap } = new SnapshotBuilder().apply(s, { full: true, changes: [] }, 1);
      const e = serviceListeners(snap, svc, { ...on('n1'), remote })[0]?.route.picker.endpoints[0];
      return e?.via ? `dataplane ${e.via.host}:${e.via.port}` : `${e?.host} local=${e?.local}`;
    };
    // Until n1 holds an address of its own on apps, it does not carry it: the data plane.
    expect(path('auto')).toBe('dataplane 127.0.0.1:7946');
    s = applyChange(
      s,
      claimOverlayAddress(s, 'n1', [...s.networks.values()].find((n) => n.name === 'apps')?.id as string),
    );
    expect(path('auto')).toBe('10.1.0.10 local=false');
    expect(path('direct')).toBe('10.1.0.10 local=false');
    // Asked for by name, the data plane it stays.
    expect(path('dataplane')).toBe('dataplane 127.0.0.1:7946');
  });
});
