import type { ClusterState } from '../model/cluster-state.js';
import type { Service, Task } from '../model/types.js';
import type { Changed, StateDelta } from './delta.js';
import { taskUp } from './task-up.js';

/**
 * The view of the cluster the hot paths read. `state` is the mirror's own maps (updated in place
 * between snapshots, never copied); `up` and the per-service index are kept up to date by the
 * builder from each delta, so a change costs what it touches, not the size of the cluster.
 */
export interface Snapshot {
  readonly revision: number;
  readonly state: ClusterState;
  /** Tasks in rotation cluster-wide (node alive, healthy, not starting). */
  readonly up: { has(taskId: string): boolean };
  /** The tasks of each service. */
  tasksOf(serviceId: string): Iterable<Task>;
  /** The tasks on one node (a scrape's per-node gauges read this, not every task). */
  tasksOn(nodeId: string): Iterable<Task>;
}

/**
 * What one snapshot changed, for subscribers that update only that. `full` (start-up, a re-list,
 * a network change) means everything may differ: rebuild from `state`.
 */
export interface SnapshotChange {
  readonly full: boolean;
  /** Services whose names or routes may differ: the service, its tasks, their health or their nodes changed. */
  readonly services: ReadonlySet<string>;
  /** Services whose own record changed (a subset of `services`). */
  readonly specs: ReadonlySet<string>;
  /** Tasks added, changed or removed. */
  readonly tasks: ReadonlySet<string>;
  readonly containers: ReadonlySet<string>;
  /** Nodes whose record (data-plane address, certificate) changed. */
  readonly nodes: ReadonlySet<string>;
  /** Tasks that are gone, as they were. */
  readonly removedTasks: readonly Task[];
  /** Every task that changed or went, as it was before. */
  readonly previousTasks: readonly Task[];
  /** Services that are gone, as they were. */
  readonly removedServices: readonly Service[];
  /** The store's changes behind this snapshot, each with its value before (empty after a re-list). */
  readonly changes: readonly Changed[];
}

const none: ReadonlySet<string> = new Set();

/**
 * Turns mirror deltas into snapshots: keeps the tasks of each service and of each node, and the
 * set of tasks in rotation, and works out which services a delta touches. Pure apart from its
 * own indexes: no timers, no I/O, so it is benchmarked and tested in-process.
 */
export class SnapshotBuilder {
  /** Arrays, not maps: a service has a few tasks as a rule, and a map per service costs more than a scan. */
  private readonly byService = new Map<string, Task[]>();
  private readonly byNode = new Map<string, Set<string>>();
  /** Tasks out of rotation: usually few, so this is what is stored (a task is up unless here). */
  private readonly down = new Set<string>();
  /** The services as last seen: a full rebuild names the ones that went away. */
  private services = new Map<string, Service>();
  private state: ClusterState | undefined;

  apply(
    state: ClusterState,
    delta: StateDelta,
    revision: number,
  ): { snap: Snapshot; change: SnapshotChange } {
    const change =
      delta.full || this.state !== state || delta.changes.some((c) => c.kind === 'networks')
        ? { ...this.rebuild(state), changes: delta.changes }
        : this.update(state, delta);
    this.state = state;
    const byService = this.byService;
    const down = this.down;
    const snap: Snapshot = {
      revision,
      state,
      up: { has: (id) => state.tasks.has(id) && !down.has(id) },
      tasksOf: (id) => byService.get(id) ?? [],
      tasksOn: (node) => tasksIn(state, this.byNode.get(node)),
    };
    return { snap, change };
  }

  /** A change that names everything in `state`: for a subscriber that joins late. */
  everything(state: ClusterState): SnapshotChange {
    return {
      full: true,
      services: new Set(state.services.keys()),
      specs: new Set(state.services.keys()),
      tasks: new Set(state.tasks.keys()),
      containers: new Set(state.containers.keys()),
      nodes: new Set(state.nodes.keys()),
      removedTasks: [],
      previousTasks: [],
      removedServices: [],
      changes: [],
    };
  }

  private rebuild(state: ClusterState): SnapshotChange {
    const removedTasks: Task[] = [];
    for (const tasks of this.byService.values())
      for (const t of tasks) if (!state.tasks.has(t.id)) removedTasks.push(t);
    const removedServices = [...this.services.values()].filter((s) => !state.services.has(s.id));
    this.byService.clear();
    this.byNode.clear();
    this.down.clear();
    for (const t of state.tasks.values()) {
      this.index(t);
      if (!taskUp(state, t)) this.down.add(t.id);
    }
    this.services = new Map(state.services);
    return { ...this.everything(state), removedTasks, previousTasks: removedTasks, removedServices };
  }

  private update(state: ClusterState, delta: StateDelta): SnapshotChange {
    const services = new Set<string>();
    const specs = new Set<string>();
    const tasks = new Set<string>();
    const containers = new Set<string>();
    const nodes = new Set<string>();
    const removedTasks: Task[] = [];
    const previousTasks: Task[] = [];
    const removedServices: Service[] = [];
    /** Tasks whose place in rotation may have changed. */
    const recheck = new Set<string>();
    const onNode = (node: string) => {
      for (const id of this.byNode.get(node) ?? none) {
        recheck.add(id);
        const t = state.tasks.get(id);
        if (t) services.add(t.service);
      }
    };
    for (const c of delta.changes) {
      switch (c.kind) {
        case 'tasks': {
          const before = c.before as Task | undefined;
          const after = state.tasks.get(c.id);
          if (before) {
            this.unindex(before);
            previousTasks.push(before);
          }
          if (after) this.index(after);
          else if (before) removedTasks.push(before);
          tasks.add(c.id);
          recheck.add(c.id);
          if (before) services.add(before.service);
          if (after) services.add(after.service);
          break;
        }
        case 'services': {
          services.add(c.id);
          specs.add(c.id);
          for (const t of this.byService.get(c.id) ?? []) recheck.add(t.id);
          const after = state.services.get(c.id);
          if (after) this.services.set(c.id, after);
          else {
            const before = this.services.get(c.id) ?? (c.before as Service | undefined);
            if (before) removedServices.push(before);
            this.services.delete(c.id);
          }
          break;
        }
        case 'health': {
          recheck.add(c.id);
          const t = state.tasks.get(c.id);
          if (t) services.add(t.service);
          break;
        }
        case 'heartbeats':
          // Only a heartbeat that comes or goes moves tasks in or out of rotation; the refresh
          // each node writes about once per lease TTL (its last-seen time) moves nothing, and at
          // 100,000 tasks re-checking a node's tasks on each one cost every node tens of ms.
          if ((c.before === undefined) === state.heartbeats.has(c.id)) onNode(c.id);
          break;
        case 'nodes':
          nodes.add(c.id);
          onNode(c.id);
          break;
        case 'containers':
          containers.add(c.id);
          break;
        default:
          break;
      }
    }
    for (const id of recheck) {
      const t = state.tasks.get(id);
      if (t && !taskUp(state, t)) this.down.add(id);
      else this.down.delete(id);
    }
    return {
      full: false,
      services,
      specs,
      tasks,
      containers,
      nodes,
      removedTasks,
      previousTasks,
      removedServices,
      changes: delta.changes,
    };
  }

  private index(t: Task): void {
    let svc = this.byService.get(t.service);
    if (!svc) {
      svc = [];
      this.byService.set(t.service, svc);
    }
    svc.push(t);
    let node = this.byNode.get(t.node);
    if (!node) {
      node = new Set();
      this.byNode.set(t.node, node);
    }
    node.add(t.id);
  }

  private unindex(t: Task): void {
    const svc = this.byService.get(t.service);
    const at = svc ? svc.findIndex((x) => x.id === t.id) : -1;
    if (svc && at >= 0) svc.splice(at, 1);
    if (svc?.length === 0) this.byService.delete(t.service);
    const node = this.byNode.get(t.node);
    node?.delete(t.id);
    if (node?.size === 0) this.byNode.delete(t.node);
  }
}

function* tasksIn(state: ClusterState, ids: ReadonlySet<string> | undefined): Iterable<Task> {
  for (const id of ids ?? none) {
    const t = state.tasks.get(id);
    if (t) yield t;
  }
}
