import type { ClusterState } from '../model/cluster-state.js';
import type { Task } from '../model/types.js';
import type { SnapshotChange } from './snapshot.js';

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

  /** Notes the tasks a snapshot change removed, and forgets services that are gone. */
  update(state: ClusterState, change: SnapshotChange, now: string): void {
    for (const t of change.removedTasks) {
      if (!state.services.has(t.service)) continue;
      const list = [{ task: t, endedAt: now }, ...(this.ended.get(t.service) ?? [])].slice(0, perService);
      this.ended.delete(t.service);
      this.ended.set(t.service, list);
      if (this.ended.size > maxServices) this.ended.delete(this.ended.keys().next().value as string);
    }
    for (const s of change.removedServices) this.ended.delete(s.id);
  }

  of(service: string): readonly EndedTask[] {
    return this.ended.get(service) ?? [];
  }
}
