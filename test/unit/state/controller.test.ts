import { afterEach, describe, expect, it } from 'vitest';
import { Fields } from '../../../src/model/fields.js';
import { createNetwork, readNetworkSpec, removeNetwork } from '../../../src/model/network.js';
import { initCluster, registerNode } from '../../../src/model/node.js';
import { createService, readServiceSpec, removeService } from '../../../src/model/service.js';
import { addTask, removeTask } from '../../../src/model/task.js';
import { Controller } from '../../../src/state/controller.js';
import { claimKey } from '../../../src/state/keys.js';
import { Mirror } from '../../../src/state/mirror.js';
import { MemoryStore } from '../../../src/store/memory-store.js';

const now = '2026-01-01T00:00:00.000Z';
const prefix = '/meshd/';

/** Two nodes on one store: each its own mirror and controller, as two meshd processes have. */
async function twoNodes() {
  const store = MemoryStore.open();
  const nodes = [];
  for (let i = 0; i < 2; i++) {
    const mirror = new Mirror(store, prefix, {
      onChange: () => undefined,
      onConnection: () => undefined,
      onBadObject: () => undefined,
    });
    await mirror.start();
    nodes.push({ mirror, controller: new Controller(store, mirror, prefix) });
  }
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  await a.controller.apply((s) => initCluster(s, '10.0.0.0/24', now));
  await a.controller.apply((s) =>
    createNetwork(s, readNetworkSpec(Fields.of({ name: 'apps', subnet: '10.20.0.0/16' }, '')), now),
  );
  await a.controller.apply((s) =>
    createService(s, readServiceSpec(Fields.of({ name: 'web', networks: [{ network: 'apps' }] }, '')), now),
  );
  await b.mirror.waitFor(a.mirror.revision);
  closers.push(() => {
    a.mirror.close();
    b.mirror.close();
    return store.close();
  });
  return { store, a, b };
}

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

const task = (node: string) => (s: Parameters<typeof addTask>[0]) =>
  addTask(s, { service: 'web', ips: [], reportedHealth: 'none', labels: {} }, node, now);

describe('controller', () => {
  it('lets concurrent writers on two nodes register tasks with unique addresses and slots', async () => {
    const { a, b } = await twoNodes();
    const writes = [];
    for (let i = 0; i < 40; i++) writes.push(a.controller.apply(task('n1')), b.controller.apply(task('n2')));
    await Promise.all(writes);
    await a.mirror.waitFor(Math.max(a.mirror.revision, b.mirror.revision));
    const tasks = [...a.mirror.state.tasks.values()];
    expect(tasks).toHaveLength(80);
    expect(new Set(tasks.map((t) => t.addresses[0]?.address)).size).toBe(80);
    expect(new Set(tasks.map((t) => t.slot)).size).toBe(80);
  });

  it('never leaves a task behind a service removed while tasks were being registered', async () => {
    const { a, b } = await twoNodes();
    const adds = Array.from({ length: 30 }, () => b.controller.apply(task('n2')).catch((e: Error) => e));
    const rm = a.controller.apply((s) => removeService(s, 'web'));
    await Promise.all([rm, ...adds]);
    await a.mirror.waitFor(b.mirror.revision);
    // Positive control: some registrations landed before the removal, and the removal took them.
    const failed = (await Promise.all(adds)).filter((r) => r instanceof Error).length;
    expect(failed).toBeLessThan(30);
    expect(a.mirror.state.services.size).toBe(0);
    expect(a.mirror.state.tasks.size).toBe(0);
  });

  it('refuses to remove a network a service joined while the removal was being decided', async () => {
    const { a, b } = await twoNodes();
    await a.controller.apply((s) => removeService(s, 'web'));
    await b.mirror.waitFor(a.mirror.revision);
    const join = b.controller.apply((s) =>
      createService(s, readServiceSpec(Fields.of({ name: 'api', networks: [{ network: 'apps' }] }, '')), now),
    );
    const rm = a.controller.apply((s) => removeNetwork(s, 'apps'));
    const [joined, removed] = await Promise.allSettled([join, rm]);
    await a.mirror.waitFor(b.mirror.revision);
    // Either the service got in first (and the network stays) or the network went first (and
    // the service was refused): never a service on a network that is gone.
    const svc = [...a.mirror.state.services.values()].find((s) => s.name === 'api');
    const network = [...a.mirror.state.networks.values()].some((n) => n.name === 'apps');
    if (svc) expect([network, joined.status, removed.status]).toEqual([true, 'fulfilled', 'rejected']);
    else expect([network, joined.status, removed.status]).toEqual([false, 'rejected', 'fulfilled']);
  });

  it('takes over a claim no object holds (a hand edit of the store) instead of refusing for ever', async () => {
    const { store, a } = await twoNodes();
    const stale = claimKey(prefix, 'name/networks/db');
    await store.txn([], [{ type: 'put', key: stale, value: 'networks/gone' }]);
    await a.controller.apply((s) =>
      createNetwork(s, readNetworkSpec(Fields.of({ name: 'db', subnet: '10.30.0.0/24' }, '')), now),
    );
    const db = [...a.mirror.state.networks.values()].find((n) => n.name === 'db');
    expect(db).toBeDefined();
    expect((await store.get(stale))?.value).toBe(`networks/${db?.id}`);
  });

  it('hands out the first free address, past those in flight from concurrent writers', async () => {
    const { a } = await twoNodes();
    await Promise.all([1, 2, 3].map(() => a.controller.apply(task('n1'))));
    const first = [...a.mirror.state.tasks.values()].find((t) => t.slot === 1);
    await a.controller.apply((s) => removeTask(s, first?.id as string));
    await a.controller.apply(task('n1'));
    const addrs = [...a.mirror.state.tasks.values()].map((t) => t.addresses[0]?.address).sort();
    // .2 is web's VIP; the three writers got .3-.5 at once; .3, released, is handed out again.
    expect(addrs).toEqual(['10.20.0.3', '10.20.0.4', '10.20.0.5']);
  });

  it('never lets an earlier write to one object land after a later one from the same node', async () => {
    const { store, a } = await twoNodes();
    // The store answers the first write late, as a loaded etcd can: the second overtakes it.
    const txn = store.txn.bind(store);
    let first = true;
    store.txn = async (compares, ops) => {
      if (first && ops.some((o) => o.key.includes('/nodes/'))) {
        first = false;
        await new Promise((r) => setTimeout(r, 100));
      }
      return txn(compares, ops);
    };
    const self = {
      id: 'n1',
      name: 'n1',
      advertiseAddr: '127.0.0.1',
      datapathAddr: '127.0.0.1',
      dataListen: '',
      apiListen: ':0',
    };
    const early = a.controller.apply((s) => registerNode(s, self, now));
    self.apiListen = '127.0.0.1:2377';
    const late = a.controller.apply((s) => registerNode(s, self, now));
    await Promise.all([early, late]);
    expect(a.mirror.state.nodes.get('n1')?.apiListen).toBe('127.0.0.1:2377');
  });

  it("lands writes whose shared transaction failed on another write's conflict (group commit)", async () => {
    const { store, a } = await twoNodes();
    const failed: string[][] = [];
    const txn = store.txn.bind(store);
    store.txn = async (compares, ops) => {
      const r = await txn(compares, ops);
      if (!r.succeeded) failed.push(ops.map((o) => o.key));
      return r;
    };
    const web = [...a.mirror.state.services.values()][0];
    // Two registrations leave at once; the rest wait and share a transaction with the conflicting write.
    const writes = Array.from({ length: 12 }, () => a.controller.apply(task('n1')));
    let tries = 0;
    // A write that conflicts on its first try (it expects a version the service never had).
    const conflicting = a.controller.apply((s) => {
      const c = createNetwork(
        s,
        readNetworkSpec(Fields.of({ name: 'other', subnet: '10.30.0.0/16' }, '')),
        now,
      );
      return tries++ === 0 ? { ...c, expect: [{ kind: 'services', id: web?.id ?? '', version: 1 }] } : c;
    });
    await Promise.all([conflicting, ...writes]);
    // The conflict failed a transaction that carried other writes too; each of them then landed alone.
    expect(failed.some((keys) => keys.some((k) => k.includes('/tasks/')))).toBe(true);
    expect([...a.mirror.state.tasks.values()]).toHaveLength(12);
    expect([...a.mirror.state.networks.values()].map((n) => n.name)).toContain('other');
  });
});
