import type { ClusterState } from '../model/cluster-state.js';
import type { Task } from '../model/types.js';
import type { Snapshot } from './snapshot.js';

/** How this node reaches a task: its path, and the last connect error while it is ejected. */
export interface TaskReach {
  readonly path: 'local' | 'overlay' | 'direct' | 'dataplane' | 'none';
  readonly ejected?: string;
}

/**
 * A task's health as this node routes by it, in the words `service ps` prints: a healthy task
 * this node cannot reach (no certificate on its node for an encrypted network, or connects that
 * fail, ENETUNREACH say) is `unreachable`, with the reason, not healthy.
 */
export function taskHealth(
  state: ClusterState,
  snap: Snapshot | undefined,
  task: Task,
  reach?: TaskReach,
): string {
  if (snap?.up.has(task.id)) {
    if (reach?.path === 'none') return 'unreachable (its node has no certificate for the data plane)';
    if (reach?.ejected) return `unreachable (${reach.ejected})`;
    return 'healthy';
  }
  if (!state.heartbeats.has(task.node)) return 'node-down';
  if (task.reportedHealth === 'starting' || task.reportedHealth === 'unhealthy') return task.reportedHealth;
  return state.health.get(task.id) ? 'unhealthy' : 'starting';
}

/** Which data plane serves one port (`8080/tcp`) or VIP of a service on this node, and why. */
export interface PortPlaneStatus {
  readonly port: string;
  readonly plane: 'kernel' | 'userspace';
  readonly reason?: string;
}

/** Task counts of a service, the errors of its listeners and the data plane of each port on this node. */
export function serviceStatus(
  state: ClusterState,
  snap: Snapshot | undefined,
  serviceId: string,
  errors: string[],
  reach: (task: Task) => TaskReach | undefined = () => undefined,
  dataPlane: readonly PortPlaneStatus[] = [],
) {
  const tasks = [...state.tasks.values()].filter((t) => t.service === serviceId);
  const healthy = tasks.filter((t) => taskHealth(state, snap, t, reach(t)) === 'healthy').length;
  return { tasks: tasks.length, healthy, errors, dataPlane };
}
