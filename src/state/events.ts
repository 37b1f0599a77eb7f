import type { ClusterState } from '../model/cluster-state.js';
import type { Container, Network, Node, Service, Task, TaskHealth } from '../model/types.js';
import type { Changed } from './delta.js';

/** What changed, in the shape of `docker events` (`Type`, `Action`, `Actor`), so scripts carry over. */
export interface ClusterEvent {
  readonly Type: 'service' | 'task' | 'network' | 'node' | 'container';
  /** `create`, `update`, `remove`; `health_status: healthy|unhealthy` (tasks), `eject` and `drain` (this node's mesh), `ready` and `down` (nodes). */
  readonly Action: string;
  readonly Actor: { readonly ID: string; readonly Attributes: Readonly<Record<string, string>> };
  /** `swarm`: seen in the store by every node; `local`: this node's own data plane. */
  readonly scope: 'swarm' | 'local';
  /** Unix seconds and nanoseconds, as Docker's. */
  readonly time: number;
  readonly timeNano: number;
}

export type EventType = ClusterEvent['Type'];
export const eventTypes: readonly EventType[] = ['service', 'task', 'network', 'node', 'container'];

export function makeEvent(
  type: EventType,
  action: string,
  id: string,
  attributes: Record<string, string>,
  nowMs: number,
  scope: ClusterEvent['scope'] = 'swarm',
): ClusterEvent {
  return {
    Type: type,
    Action: action,
    Actor: { ID: id, Attributes: attributes },
    scope,
    time: Math.floor(nowMs / 1000),
    timeNano: nowMs * 1_000_000,
  };
}

function verb(before: unknown, after: unknown): string {
  return before === undefined ? 'create' : after === undefined ? 'remove' : 'update';
}

/** A task's attributes: its name, service (by name) and node. */
export function taskAttributes(
  state: ClusterState,
  t: Task,
  gone?: ReadonlyMap<string, Service>,
): Record<string, string> {
  const svc = state.services.get(t.service) ?? gone?.get(t.service);
  return { name: t.name, service: svc?.name ?? t.service, serviceId: t.service, node: t.node };
}

/**
 * The events one delta of the store means, from each object's value before and after. Pure: the
 * node turns every snapshot's changes into events with it, and tests feed it by hand. A version
 * bump alone (a lease refresh rewriting the same record) is not an event.
 */
export function eventsOf(state: ClusterState, changes: readonly Changed[], nowMs: number): ClusterEvent[] {
  const out: ClusterEvent[] = [];
  const gone = new Map<string, Service>();
  for (const c of changes) if (c.kind === 'services' && c.before) gone.set(c.id, c.before as Service);
  const same = (a: object | undefined, b: object | undefined) =>
    a !== undefined &&
    b !== undefined &&
    JSON.stringify({ ...a, version: 0 }) === JSON.stringify({ ...b, version: 0 });
  for (const c of changes) {
    switch (c.kind) {
      case 'services': {
        const after = state.services.get(c.id);
        const s = (after ?? c.before) as Service | undefined;
        if (!s || same(c.before, after)) break;
        out.push(makeEvent('service', verb(c.before, after), c.id, { name: s.name }, nowMs));
        break;
      }
      case 'networks': {
        const after = state.networks.get(c.id);
        const n = (after ?? c.before) as Network | undefined;
        if (!n || same(c.before, after)) break;
        out.push(makeEvent('network', verb(c.before, after), c.id, { name: n.name }, nowMs));
        break;
      }
      case 'tasks': {
        const after = state.tasks.get(c.id);
        const t = (after ?? c.before) as Task | undefined;
        if (!t || same(c.before, after)) break;
        const before = c.before as Task | undefined;
        // Health reported from outside (an engine's HEALTHCHECK, `task health`) reads as Docker's.
        const action =
          before && after && before.reportedHealth !== after.reportedHealth
            ? `health_status: ${after.reportedHealth}`
            : verb(before, after);
        out.push(makeEvent('task', action, c.id, taskAttributes(state, t, gone), nowMs));
        break;
      }
      case 'containers': {
        const after = state.containers.get(c.id);
        const k = (after ?? c.before) as Container | undefined;
        if (!k || same(c.before, after)) break;
        out.push(makeEvent('container', verb(c.before, after), c.id, { name: k.name, node: k.node }, nowMs));
        break;
      }
      case 'nodes': {
        const after = state.nodes.get(c.id);
        const n = (after ?? c.before) as Node | undefined;
        if (!n || same(c.before, after)) break;
        out.push(makeEvent('node', verb(c.before, after), c.id, { name: n.name }, nowMs));
        break;
      }
      case 'heartbeats': {
        // A heartbeat record exists while the node's lease lives: its arrival and departure are
        // the node coming up and going down; a refresh is neither.
        const after = state.heartbeats.get(c.id);
        if ((c.before === undefined) === (after === undefined)) break;
        const name = state.nodes.get(c.id)?.name ?? c.id;
        out.push(makeEvent('node', after ? 'ready' : 'down', c.id, { name }, nowMs));
        break;
      }
      case 'health': {
        const before = c.before as TaskHealth | undefined;
        const after = state.health.get(c.id);
        const t = state.tasks.get(c.id);
        if (!after || !t || before?.healthy === after.healthy) break;
        out.push(
          makeEvent(
            'task',
            `health_status: ${after.healthy ? 'healthy' : 'unhealthy'}`,
            c.id,
            { ...taskAttributes(state, t), output: after.output.slice(0, 200) },
            nowMs,
          ),
        );
        break;
      }
      default:
        break;
    }
  }
  return out;
}

/** `docker events --filter`: each key's values are alternatives; all keys must match. */
export type EventFilters = Readonly<Record<string, readonly string[]>>;

export const filterKeys = [
  'type',
  'event',
  'service',
  'node',
  'network',
  'task',
  'container',
  'scope',
] as const;

/**
 * Whether an event passes the filters. `service`, `node`, `network` and `task` match the actor
 * itself or the attribute that names it (by name or id); `event` matches the action or the part
 * before its colon (`health_status`).
 */
export function eventMatches(e: ClusterEvent, filters: EventFilters): boolean {
  const a = e.Actor.Attributes;
  const named = (type: EventType, attrs: (string | undefined)[]) => (v: string) =>
    (e.Type === type && (e.Actor.ID === v || a.name === v)) || attrs.includes(v);
  const tests: Record<string, (v: string) => boolean> = {
    type: (v) => e.Type === v,
    event: (v) => e.Action === v || e.Action.split(':')[0] === v,
    service: named('service', [a.service, a.serviceId]),
    node: named('node', [a.node, a.nodeName]),
    network: named('network', [a.network]),
    task: named('task', []),
    container: named('container', []),
    scope: (v) => e.scope === v,
  };
  for (const [key, values] of Object.entries(filters)) {
    const test = tests[key];
    if (!test || values.length === 0) continue;
    if (!values.some(test)) return false;
  }
  return true;
}

/** Reads `key=value` filters (`meshctl events --filter`, Docker's `filters` query): unknown keys are refused. */
export function parseFilters(items: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const key = eq > 0 ? item.slice(0, eq) : '';
    if (!(filterKeys as readonly string[]).includes(key))
      throw new Error(
        `invalid filter '${item}': filters are ${filterKeys.map((k) => `${k}=...`).join(', ')}`,
      );
    out[key] = [...(out[key] ?? []), item.slice(eq + 1)];
  }
  if (out.type)
    for (const t of out.type)
      if (!(eventTypes as readonly string[]).includes(t))
        throw new Error(`invalid filter 'type=${t}': types are ${eventTypes.join(', ')}`);
  return out;
}

/**
 * The recent events of this node, and the streams that follow them. Both are bounded: the
 * history keeps the last `capacity` events (what `--since` and the page's history read), and at
 * most `maxStreams` followers at once; a follower that cannot keep up is dropped, never buffered
 * without end.
 */
export class EventLog {
  private readonly ring: ClusterEvent[] = [];
  private readonly followers = new Set<(e: ClusterEvent) => void>();

  constructor(
    private readonly capacity = 2000,
    readonly maxStreams = 64,
  ) {}

  push(e: ClusterEvent): void {
    this.ring.push(e);
    if (this.ring.length > this.capacity) this.ring.splice(0, this.ring.length - this.capacity);
    for (const f of this.followers) f(e);
  }

  /** Events at or after `sinceMs` (and before `untilMs`), oldest first. */
  history(sinceMs: number, untilMs = Number.POSITIVE_INFINITY): ClusterEvent[] {
    return this.ring.filter((e) => e.timeNano / 1e6 >= sinceMs && e.timeNano / 1e6 < untilMs);
  }

  /** Follows new events; undefined when `maxStreams` are already following. */
  follow(fn: (e: ClusterEvent) => void): (() => void) | undefined {
    if (this.followers.size >= this.maxStreams) return undefined;
    this.followers.add(fn);
    return () => this.followers.delete(fn);
  }

  get streams(): number {
    return this.followers.size;
  }
}
