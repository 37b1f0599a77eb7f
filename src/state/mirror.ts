import { Backoff } from '../model/backoff.js';
import { ClaimIndex } from '../model/claims.js';
import { type ClusterState, emptyState, type Kind } from '../model/cluster-state.js';
import { messageOf } from '../model/errors.js';
import { checkStored } from '../model/stored.js';
import type {
  ClusterInfo,
  Container,
  Network,
  Node,
  NodeHeartbeat,
  Service,
  Task,
  TaskHealth,
} from '../model/types.js';
import { CompactedError, type KeyValue, type Store, type Watch, type WatchEvent } from '../store/store.js';
import type { Changed, StateDelta } from './delta.js';
import { claimKey, parseKey } from './keys.js';

/** Mutable maps behind the ClusterState the rest of the daemon reads. */
interface Tables {
  cluster: ClusterInfo | undefined;
  networks: Map<string, Network>;
  services: Map<string, Service>;
  tasks: Map<string, Task>;
  containers: Map<string, Container>;
  nodes: Map<string, Node>;
  heartbeats: Map<string, NodeHeartbeat>;
  health: Map<string, TaskHealth>;
  claims: ClaimIndex;
}

export interface MirrorEvents {
  /** The mirror changed; called once per batch of store events. */
  onChange(revision: number): void;
  /** The connection to the store came or went. */
  onConnection(connected: boolean, reason: string): void;
  /** An object in the store could not be decoded; it is left out (and named). */
  onBadObject(key: string, reason: string): void;
  /** A batch of watch events arrived; `writtenAt` is the writer's clock of the latest write in it. */
  onWatchEvents?(count: number, writtenAt: number | undefined): void;
  /** The store's history no longer reaches this node's revision: it lists everything again. */
  onRelist?(afterRevision: number): void;
}

/** Backoff between attempts to re-watch a store that went away. */
const retryMinMs = 200;
/** A store that comes back is watched again within a second. */
const retryMaxMs = 1000;

/**
 * An in-memory copy of the cluster state: one list, then one watch resumed from the last revision
 * it saw (or a re-list if that revision was compacted). The hot path never reads the store; it
 * reads snapshots built from this mirror.
 */
export class Mirror {
  private tables: Tables = emptyTables();
  private revisionSeen = 0;
  /** What changed since the last `takeDelta`, each with its value before the first change. */
  private changed = new Map<string, Changed>();
  private fullChange = true;
  private watch: Watch | undefined;
  private waiters: { revision: number; resolve: () => void }[] = [];
  private closed = false;
  private readonly retry = new Backoff(retryMinMs, retryMaxMs);
  private retryTimer: NodeJS.Timeout | undefined;
  private synced = false;

  constructor(
    private readonly store: Store,
    private readonly prefix: string,
    private readonly events: MirrorEvents,
  ) {}

  get state(): ClusterState {
    return this.tables;
  }

  get revision(): number {
    return this.revisionSeen;
  }

  /** What changed since the last call: the snapshot scheduler applies just that. */
  takeDelta(): StateDelta {
    const delta = { full: this.fullChange, changes: [...this.changed.values()] };
    this.changed = new Map();
    this.fullChange = false;
    return delta;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** Lists and starts watching; resolves after the first full sync, rejects if the store is not there. */
  async start(): Promise<void> {
    await this.relist();
  }

  private async relist(): Promise<void> {
    // Claims mirror what the objects say: they are not read back (at 100,000 tasks they are most
    // of the keys).
    const { revision, items } = await this.store.list(this.prefix, claimKey(this.prefix, ''));
    if (this.closed) return;
    const tables = emptyTables();
    for (const kv of items) this.decode(tables, kv.key, kv);
    this.tables = tables;
    this.changed = new Map();
    this.fullChange = true;
    this.advance(revision);
    this.synced = true;
    this.events.onConnection(true, '');
    this.events.onChange(revision);
    this.startWatch();
  }

  private startWatch(): void {
    this.watch?.close();
    this.watch = this.store.watch(this.prefix, this.revisionSeen, {
      onEvents: (events, revision) => this.apply(events, revision),
      onError: (err) => this.lost(err),
      onConnected: () => {
        this.retry.reset();
        this.events.onConnection(true, '');
      },
    });
  }

  private apply(events: readonly WatchEvent[], revision: number): void {
    let writtenAt: number | undefined;
    for (const e of events) {
      const k = parseKey(this.prefix, e.key);
      if (!k) continue;
      this.note(k.kind, k.id);
      if (e.type === 'put') {
        const obj = this.decode(this.tables, e.key, {
          key: e.key,
          value: e.value ?? '',
          modRevision: e.modRevision,
          createRevision: 0,
          lease: '',
        });
        // Validated writes carry the writer's clock: what the convergence metric measures from.
        const at = obj && Date.parse(String(obj.updatedAt ?? obj.since ?? ''));
        if (at && (writtenAt === undefined || at > writtenAt)) writtenAt = at;
      } else remove(this.tables, k.kind, k.id);
    }
    this.retry.reset();
    this.events.onWatchEvents?.(events.length, writtenAt);
    this.advance(Math.max(revision, events.at(-1)?.modRevision ?? 0));
    this.events.onChange(this.revisionSeen);
  }

  /** Remembers an object's value before its first change in this delta. */
  private note(kind: Kind, id: string): void {
    const key = `${kind}/${id}`;
    if (this.fullChange || this.changed.has(key)) return;
    this.changed.set(key, { kind, id, before: objectAt(this.tables, kind, id) });
  }

  /** The watch broke: say so, keep the last state, and come back with backoff. */
  private lost(err: Error): void {
    if (this.closed) return;
    this.watch?.close();
    this.watch = undefined;
    const compacted = err instanceof CompactedError;
    if (!compacted) this.events.onConnection(false, messageOf(err));
    clearTimeout(this.retryTimer);
    // Resume the watch from the last revision seen; only a compacted revision needs a re-list.
    this.retryTimer = setTimeout(
      () => {
        if (compacted) this.events.onRelist?.(this.revisionSeen);
        if (compacted)
          this.relist().catch((e: unknown) => this.lost(e instanceof Error ? e : new Error(String(e))));
        else this.startWatch();
      },
      compacted ? 0 : this.retry.next(),
    );
  }

  /** Decodes one key into the tables; returns the object, or undefined when it does not decode. */
  private decode(tables: Tables, key: string, kv: KeyValue): Record<string, unknown> | undefined {
    const k = parseKey(this.prefix, key);
    if (!k) return undefined;
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(kv.value) as Record<string, unknown>;
      if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new Error('not an object');
      const why = checkStored(k.kind, obj);
      if (why) throw new Error(why);
    } catch (err) {
      this.events.onBadObject(key, messageOf(err));
      // What the store holds under this key is not usable: neither is an older value of it.
      remove(tables, k.kind, k.id);
      return undefined;
    }
    put(tables, k.kind, k.id, { ...obj, version: kv.modRevision });
    return obj;
  }

  private advance(revision: number): void {
    if (revision > this.revisionSeen) this.revisionSeen = revision;
    const ready = this.waiters.filter((w) => w.revision <= this.revisionSeen);
    this.waiters = this.waiters.filter((w) => w.revision > this.revisionSeen);
    for (const w of ready) w.resolve();
  }

  /** Resolves once the mirror has seen `revision` (read-your-writes for the API). */
  waitFor(revision: number, timeoutMs = 5000): Promise<void> {
    if (revision <= this.revisionSeen) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = { revision, resolve };
      this.waiters.push(entry);
      setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== entry);
        resolve();
      }, timeoutMs).unref();
    });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.watch?.close();
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }
}

function emptyTables(): Tables {
  // emptyState() makes fresh Maps; the mirror is the one place allowed to fill them.
  return { ...(emptyState() as Omit<Tables, 'claims'>), claims: new ClaimIndex() };
}

function objectAt(t: Tables, kind: Kind, id: string): object | undefined {
  if (kind === 'cluster') return id === 'info' ? t.cluster : undefined;
  return (t[kind] as Map<string, object>).get(id);
}

function put(t: Tables, kind: Kind, id: string, obj: Record<string, unknown>): void {
  switch (kind) {
    case 'cluster':
      if (id === 'info') t.cluster = obj as unknown as ClusterInfo;
      return;
    case 'heartbeats':
      t.heartbeats.set(id, obj as unknown as NodeHeartbeat);
      return;
    case 'health':
      t.health.set(id, obj as unknown as TaskHealth);
      return;
    default: {
      const value = { ...obj, id };
      t.claims.replace(kind, id, t[kind].get(id), value);
      (t[kind] as Map<string, unknown>).set(id, value);
    }
  }
}

function remove(t: Tables, kind: Kind, id: string): void {
  if (kind === 'cluster') {
    if (id === 'info') t.cluster = undefined;
    return;
  }
  if (kind !== 'heartbeats' && kind !== 'health') t.claims.replace(kind, id, t[kind].get(id), undefined);
  t[kind].delete(id);
}
