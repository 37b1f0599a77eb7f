import { describe, expect, it } from 'vitest';
import { emptyState } from '../../../src/model/cluster-state.js';
import type { Task } from '../../../src/model/types.js';
import type { Snapshot } from '../../../src/state/snapshot.js';
import { taskHealth } from '../../../src/state/status.js';

// `service ps` words, per node: a task in rotation that this node cannot reach is not healthy.
const task = { id: 't1', node: 'n2', reportedHealth: 'none' } as unknown as Task;
const state = { ...emptyState(), heartbeats: new Map([['n2', { node: 'n2', lastSeen: '' }]]) };
const snap = { up: new Set(['t1']) } as unknown as Snapshot;

describe('task health as this node sees it', () => {
  it.each([
    [{ path: 'dataplane' as const }, 'healthy'],
    [{ path: 'direct' as const, ejected: 'enetunreach' }, 'unreachable (enetunreach)'],
    [{ path: 'none' as const }, 'unreachable (its node has no certificate for the data plane)'],
  ])('%j -> %s', (reach, words) => {
    expect(taskHealth(state, snap, task, reach)).toBe(words);
  });

  it('says node-down before anything else when the node is gone', () => {
    expect(taskHealth(emptyState(), { up: new Set() } as unknown as Snapshot, task, { path: 'direct' })).toBe(
      'node-down',
    );
  });
});
