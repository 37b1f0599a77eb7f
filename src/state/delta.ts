import type { Kind } from '../model/cluster-state.js';

/** One object that changed, with its value before the change (undefined: it is new). */
export interface Changed {
  readonly kind: Kind;
  readonly id: string;
  readonly before: object | undefined;
}

/**
 * What changed in the cluster state since the last snapshot. Subscribers update what depends on
 * those objects only; `full` (start-up, a re-list after compaction) means rebuild everything.
 */
export interface StateDelta {
  readonly full: boolean;
  readonly changes: readonly Changed[];
}
