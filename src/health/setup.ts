import { logger } from '../log.js';
import type { Controller } from '../state/controller.js';
import type { SnapshotScheduler } from '../state/scheduler.js';
import { Prober } from './prober.js';

/**
 * Active health checks of this node's own tasks, started and stopped as snapshots say. Results
 * go through the store, so every node routes by the same health (swarm's task health).
 */
export function startHealth(
  nodeId: string,
  controller: Controller,
  snapshots: SnapshotScheduler,
  /** Counts each probe's outcome (meshd_health_checks_total, a mesh metric). */
  checked: (service: string, outcome: 'success' | 'failure') => void,
): Prober {
  const prober = new Prober(
    nodeId,
    (task, healthy, output) =>
      controller.putOwned(
        'health',
        task.id,
        { task: task.id, healthy, since: new Date().toISOString(), output },
        false,
      ),
    checked,
    logger('health'),
  );
  snapshots.subscribe({ name: 'health', apply: (snap, change) => prober.update(snap, change) });
  return prober;
}
