import type { ClusterState } from '../model/cluster-state.js';
import type { Task } from '../model/types.js';

/** A task that left: shown by `service ps` after its running tasks, as swarm shows its history. */
export interface EndedTask {
  readonly task: Task;
  readonly endedAt: string;
}

/** Ended tasks kept per service, and services kept (the oldest forgotten first). */
const perService = 5;
const maxServices = 1000;

/** The recent tasks of each service that are gone, seen by this node between two states. */
export class TaskHistory {
  private readonly ended = new Map<string, EndedTask[]>();
  private last: ReadonlyMap<string, Task> | undefined;

  /** Notes the tasks of `state` that the previous state had and this one does not. */
  update(state: ClusterState, now: string): void {
    const prev = this.last;
    // The mirror updates its maps in place: keep a copy to compare the next state with.
    this.last = new Map(state.tasks);
    if (!prev) return;
    for (const [id, t] of prev) {
      if (state.tasks.has(id) || !state.services.has(t.service)) continue;
      const list = [{ task: t, endedAt: now }, ...(this.ended.get(t.service) ?? [])].slice(0, perService);
      this.ended.delete(t.service);
      this.ended.set(t.service, list);
      if (this.ended.size > maxServices) this.ended.delete(this.ended.keys().next().value as string);
    }
    for (const svc of this.ended.keys()) if (!state.services.has(svc)) this.ended.delete(svc);
  }

  of(service: string): readonly EndedTask[] {
    return this.ended.get(service) ?? [];
  }
}
