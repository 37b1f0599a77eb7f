import { buildDnsView, type DnsView } from '../dns/zone.js';
import type { ClusterState } from '../model/cluster-state.js';
import { taskUp } from './task-up.js';

/**
 * One immutable view of the cluster that the hot paths read: built from the mirror whenever it
 * changes, then swapped in with one assignment. Nothing in it is ever mutated.
 */
export interface Snapshot {
  readonly revision: number;
  readonly state: ClusterState;
  /** Tasks in rotation cluster-wide (node alive, healthy, not starting). */
  readonly up: ReadonlySet<string>;
  readonly dns: DnsView;
}

export function buildSnapshot(live: ClusterState, revision: number, domain: string): Snapshot {
  // The mirror's maps change in place; the snapshot keeps its own copies so that it stays the
  // state it was built from (the mesh diffs two snapshots to find departed tasks).
  const state: ClusterState = {
    cluster: live.cluster,
    networks: new Map(live.networks),
    services: new Map(live.services),
    tasks: new Map(live.tasks),
    containers: new Map(live.containers),
    nodes: new Map(live.nodes),
    heartbeats: new Map(live.heartbeats),
    health: new Map(live.health),
  };
  const up = new Set<string>();
  for (const t of state.tasks.values()) if (taskUp(state, t)) up.add(t.id);
  return { revision, state, up, dns: buildDnsView(state, (id) => up.has(id), domain) };
}
