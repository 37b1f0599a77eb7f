import { afterEach, describe, expect, it } from 'vitest';
import { type Change, type ClusterState, emptyChange } from '../../../src/model/cluster-state.js';
import { Fields } from '../../../src/model/fields.js';
import { createNetwork, readNetworkSpec } from '../../../src/model/network.js';
import { initCluster, registerNode } from '../../../src/model/node.js';
import { createService, readServiceSpec } from '../../../src/model/service.js';
import { addTask } from '../../../src/model/task.js';
import { SnapshotBuilder } from '../../../src/state/snapshot.js';
import { memoryCluster } from '../../helpers/memory-cluster.js';

const now = '2026-01-01T00:00:00.000Z';
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

describe('snapshot builder', () => {
  it("touches a node's services when its heartbeat comes or goes, not when it is refreshed", async () => {
    const { mirror, controller } = await memoryCluster(closers);
    const builder = new SnapshotBuilder();
    const step = () => builder.apply(mirror.state, mirror.takeDelta(), mirror.revision);
    const write = async (op: (s: ClusterState) => Change) => {
      await controller.apply(op);
      return step();
    };
    const beat = async () => {
      await controller.putOwned(
        'heartbeats',
        'n1',
        { node: 'n1', lastSeen: new Date().toISOString() },
        false,
      );
      return step();
    };
    await write((s) => initCluster(s, '10.0.0.0/24', now));
    const self = { id: 'n1', name: 'n1', advertiseAddr: '', datapathAddr: '', dataListen: '', apiListen: '' };
    await write((s) => registerNode(s, self, now));
    await write((s) =>
      createNetwork(s, readNetworkSpec(Fields.of({ name: 'apps', subnet: '10.9.0.0/16' }, '')), now),
    );
    await write((s) =>
      createService(s, readServiceSpec(Fields.of({ name: 'web', networks: [{ network: 'apps' }] }, '')), now),
    );
    await write((s) =>
      addTask(s, { service: 'web', ips: [], reportedHealth: 'none', labels: {} }, 'n1', now),
    );
    const svc = [...mirror.state.services.keys()][0] as string;
    const task = [...mirror.state.tasks.keys()][0] as string;

    // Registering wrote the node's heartbeat: the task is in rotation.
    expect(mirror.state.heartbeats.has('n1')).toBe(true);
    // A refresh of the same heartbeat: nothing moves in or out of rotation, nothing is rebuilt.
    const refresh = await beat();
    expect(refresh.change.full).toBe(false);
    expect([...refresh.change.services]).toEqual([]);
    expect(refresh.snap.up.has(task)).toBe(true);
    // The heartbeat goes (the lease lapsed): the node's tasks leave rotation.
    const gone = await write(() => ({ ...emptyChange(), deletes: [{ kind: 'heartbeats', id: 'n1' }] }));
    expect([...gone.change.services]).toEqual([svc]);
    expect(gone.snap.up.has(task)).toBe(false);
    // It comes back: they return.
    const back = await beat();
    expect([...back.change.services]).toEqual([svc]);
    expect(back.snap.up.has(task)).toBe(true);
  });
});
