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

export function buildSnapshot(state: ClusterState, revision: number, domain: string): Snapshot {
  const up = new Set<string>();
  for (const t of state.tasks.values()) if (taskUp(state, t)) up.add(t.id);
  return { revision, state, up, dns: buildDnsView(state, (id) => up.has(id), domain) };
}
