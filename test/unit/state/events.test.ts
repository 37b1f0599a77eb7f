import { afterEach, describe, expect, it } from 'vitest';
import type { Change, ClusterState } from '../../../src/model/cluster-state.js';
import { Fields } from '../../../src/model/fields.js';
import { createNetwork, readNetworkSpec } from '../../../src/model/network.js';
import { initCluster, registerNode } from '../../../src/model/node.js';
import { createService, readServiceSpec, removeService } from '../../../src/model/service.js';
import { addTask, setReportedHealth } from '../../../src/model/task.js';
import {
  type ClusterEvent,
  EventLog,
  eventMatches,
  eventsOf,
  makeEvent,
  parseFilters,
} from '../../../src/state/events.js';
import { memoryCluster } from '../../helpers/memory-cluster.js';

const now = '2026-01-01T00:00:00.000Z';
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** Writes through a controller and reads the events each write means, as the daemon does. */
async function cluster() {
  const { mirror, controller } = await memoryCluster(closers);
  mirror.takeDelta();
  const write = async (op: (s: ClusterState) => Change) => {
    await controller.apply(op);
    return eventsOf(mirror.state, mirror.takeDelta().changes, 1_000).map(
      (e) => `${e.Type} ${e.Action} ${e.Actor.Attributes.name ?? ''}`,
    );
  };
  const put = async (kind: 'heartbeats' | 'health', id: string, value: object) => {
    await controller.putOwned(kind, id, value, false);
    return eventsOf(mirror.state, mirror.takeDelta().changes, 1_000).map(
      (e) => `${e.Type} ${e.Action} ${e.Actor.Attributes.name ?? ''}`,
    );
  };
  return { write, put, mirror };
}

describe('events from store changes', () => {
  it('names creates, updates, health and removes as docker events does, and skips a rewrite of the same record', async () => {
    const { write, put, mirror } = await cluster();
    await write((s) => initCluster(s, '10.0.0.0/24', now));
    const node = { id: 'n1', name: 'n1', advertiseAddr: '', datapathAddr: '', dataListen: '', apiListen: '' };
    // Registering writes the node and its heartbeat: it is there, and alive.
    expect(await write((s) => registerNode(s, node, now))).toEqual(['node create n1', 'node ready n1']);
    // A refresh of the heartbeat is not an event.
    expect(await put('heartbeats', 'n1', { node: 'n1', lastSeen: '2026-01-01T00:00:01.000Z' })).toEqual([]);
    expect(
      await write((s) =>
        createNetwork(s, readNetworkSpec(Fields.of({ name: 'apps', subnet: '10.9.0.0/16' }, '')), now),
      ),
    ).toEqual(['network create apps']);
    const spec = readServiceSpec(Fields.of({ name: 'web', networks: [{ network: 'apps' }] }, ''));
    expect(await write((s) => createService(s, spec, now))).toEqual(['service create web']);
    const added = await write((s) =>
      addTask(s, { service: 'web', ips: ['10.9.0.10'], reportedHealth: 'none', labels: {} }, 'n1', now),
    );
    expect(added).toEqual([expect.stringMatching(/^task create web\.1\./)]);
    const id = [...mirror.state.tasks.keys()][0] as string;
    expect(await write((s) => setReportedHealth(s, id, 'unhealthy', now))).toEqual([
      expect.stringMatching(/^task health_status: unhealthy web\.1\./),
    ]);
    // meshd's own probe: its first result is a change of status, the same result again is not.
    expect(await put('health', id, { task: id, healthy: false, since: now, output: 'refused' })).toEqual([
      expect.stringMatching(/^task health_status: unhealthy web\.1\./),
    ]);
    expect(await put('health', id, { task: id, healthy: false, since: now, output: 'refused' })).toEqual([]);
    expect(await put('health', id, { task: id, healthy: true, since: now, output: 'ok' })).toEqual([
      expect.stringMatching(/^task health_status: healthy web\.1\./),
    ]);
    const gone = await write((s) => removeService(s, 'web'));
    expect(gone).toContain('service remove web');
    expect(gone.some((e) => /^task remove web\.1\./.test(e))).toBe(true);
  });
});

describe('event filters', () => {
  const e = (type: ClusterEvent['Type'], action: string, id: string, attrs: Record<string, string>) =>
    makeEvent(type, action, id, attrs, 0);
  const task = e('task', 'health_status: unhealthy', 't1', {
    name: 'web.1.x',
    service: 'web',
    serviceId: 's1',
    node: 'n1',
  });
  const svc = e('service', 'create', 's1', { name: 'web' });
  const other = e('service', 'create', 's2', { name: 'api' });

  it.each([
    [['type=task'], [true, false, false]],
    [['service=web'], [true, true, false]],
    [['service=s1'], [true, true, false]],
    [['event=health_status'], [true, false, false]],
    [
      ['event=create', 'service=api'],
      [false, false, true],
    ],
    [
      ['type=service', 'type=task', 'node=n1'],
      [true, false, false],
    ],
    [[], [true, true, true]],
  ])('%j', (filters, want) => {
    const f = parseFilters(filters);
    expect([task, svc, other].map((x) => eventMatches(x, f))).toEqual(want);
  });

  it('refuses keys and types it does not know', () => {
    expect(() => parseFilters(['colour=red'])).toThrow(/invalid filter 'colour=red'/);
    expect(() => parseFilters(['type=volume'])).toThrow(/types are/);
  });
});

describe('the event log', () => {
  it('keeps the last events only, and a bounded number of followers', () => {
    const log = new EventLog(3, 2);
    const seen: string[] = [];
    const stop = log.follow((x) => seen.push(x.Actor.ID));
    expect(log.follow(() => undefined)).toBeDefined();
    expect(log.follow(() => undefined)).toBeUndefined();
    for (let i = 0; i < 5; i++) log.push(makeEvent('service', 'create', `s${i}`, {}, i * 1000));
    expect(log.history(0).map((x) => x.Actor.ID)).toEqual(['s2', 's3', 's4']);
    expect(log.history(3000).map((x) => x.Actor.ID)).toEqual(['s3', 's4']);
    expect(seen).toEqual(['s0', 's1', 's2', 's3', 's4']);
    stop?.();
    expect(log.streams).toBe(1);
  });
});
