import type { Change, ClusterState, Kind } from '../../src/model/cluster-state.js';
import { emptyState } from '../../src/model/cluster-state.js';

let revision = 0;

/** Applies a change to an in-memory state the way the mirror would, for pure model tests. */
export function applyChange(state: ClusterState, change: Change): ClusterState {
  const next = {
    ...state,
    networks: new Map(state.networks),
    services: new Map(state.services),
    tasks: new Map(state.tasks),
    containers: new Map(state.containers),
    nodes: new Map(state.nodes),
    heartbeats: new Map(state.heartbeats),
    health: new Map(state.health),
  } as { -readonly [K in keyof ClusterState]: ClusterState[K] };
  revision++;
  const table = (kind: Kind) => next[kind as Exclude<Kind, 'cluster'>] as Map<string, unknown>;
  for (const d of change.deletes) {
    if (d.kind === 'cluster') next.cluster = undefined;
    else table(d.kind).delete(d.id);
  }
  for (const p of change.puts) {
    if (p.kind === 'cluster') next.cluster = p.value as ClusterState['cluster'];
    else table(p.kind).set(p.id, { ...p.value, version: revision });
  }
  return next;
}

/** Runs operations in sequence from an empty state. */
export function build(...ops: ((s: ClusterState) => Change)[]): ClusterState {
  let s = emptyState();
  for (const op of ops) s = applyChange(s, op(s));
  return s;
}
