import type { ClusterState } from '../model/cluster-state.js';
import type { Task } from '../model/types.js';
import type { Snapshot } from './snapshot.js';

/** A task's health as this node routes by it, in the words `service ps` prints. */
export function taskHealth(state: ClusterState, snap: Snapshot | undefined, task: Task): string {
  if (snap?.up.has(task.id)) return 'healthy';
  if (!state.heartbeats.has(task.node)) return 'node-down';
  if (task.reportedHealth === 'starting' || task.reportedHealth === 'unhealthy') return task.reportedHealth;
  return state.health.get(task.id) ? 'unhealthy' : 'starting';
}

/** Task counts of a service and the errors of its listeners on this node. */
export function serviceStatus(
  state: ClusterState,
  snap: Snapshot | undefined,
  serviceId: string,
  errors: string[],
) {
  const tasks = [...state.tasks.values()].filter((t) => t.service === serviceId);
  return { tasks: tasks.length, healthy: tasks.filter((t) => snap?.up.has(t.id)).length, errors };
}
