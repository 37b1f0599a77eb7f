import type { ClusterState } from '../model/cluster-state.js';
import type { Task } from '../model/types.js';

/**
 * Whether a task is in rotation cluster-wide (DNS and the mesh): its node is alive, its engine
 * does not call it starting or unhealthy, and when the service has a probe, the probe has passed
 * (Docker's rule: no traffic before the first healthy result). Passive ejection is separate and
 * local to each node's mesh.
 */
export function taskUp(state: ClusterState, task: Task): boolean {
  if (!state.heartbeats.has(task.node)) return false;
  if (task.reportedHealth === 'starting' || task.reportedHealth === 'unhealthy') return false;
  const svc = state.services.get(task.service);
  if (!svc) return false;
  if (svc.healthcheck.type !== 'none') return state.health.get(task.id)?.healthy === true;
  return true;
}
