import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { MeshError } from '../model/errors.js';
import { readStoreFile, writeStoreFile } from './file-persistence.js';
import {
  CompactedError,
  type Compare,
  type KeyValue,
  type LeaseId,
  type Op,
  type Store,
  type TxnResult,
  type Watch,
  type WatchEvent,
  type WatchHandlers,
} from './store.js';
import { WriteLog } from './write-log.js';

/** Events kept for watches that resume from an older revision; older ones are compacted. */
const historyLimit = 10_000;

interface Lease {
  readonly ttlMs: number;
  timer: NodeJS.Timeout;
  readonly keys: Set<string>;
}

interface Watcher {
  readonly prefix: string;
  readonly handlers: WatchHandlers;
}

/** A commit staged in memory, waiting for the flush that makes it durable before it is visible. */
interface Staged {
  readonly revision: number;
  readonly ops: readonly Op[];
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

/**
 * The embedded single-node store: etcd's semantics in memory, optionally persisted to a file.
 * With a file, a change is durable before anyone sees it: writes are checked and applied to a
 * staged copy, the staged copy is flushed (group commit: writes that arrive during a flush go
 * into the next one, so a burst costs a few file writes), and only after the fsync are they
 * applied to what readers and watchers see. A flush that fails rejects its writes and discards
 * them: they are never visible, and no later flush saves them.
 */
export class MemoryStore implements Store {
  readonly description: string;
  /** What readers and watchers see: only durable changes. */
  private readonly data = new Map<string, KeyValue>();
  /** `data` plus the changes waiting for their flush; writes are checked against this. */
  private staged = new Map<string, KeyValue>();
  private readonly leases = new Map<LeaseId, Lease>();
  private readonly watchers = new Set<Watcher>();
  private readonly history: WatchEvent[] = [];
  private revision = 0;
  private stagedRevision = 0;
  private nextLease = 1;
  private closed = false;
  private flushing: Promise<void> | undefined;
  private waiting: Staged[] = [];
  /** The write-ahead log beside the file; the file is the snapshot it starts from. */
  private log: WriteLog | undefined;
  /** Size of the file when last written: the log is folded into it once it grows past that. */
  private snapshotBytes = 0;

  private constructor(private readonly path: string | undefined) {
    this.description = path ? `file:${path}` : 'memory';
  }

  /** Opens a store; with a path, loads it (failing loudly on a corrupt file). */
  static open(path?: string): MemoryStore {
    const store = new MemoryStore(path);
    if (path) {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      const state = readStoreFile(path);
      if (state) {
        for (const kv of state.items) store.data.set(kv.key, { ...kv, lease: '' });
        store.revision = state.revision;
        store.snapshotBytes = statSync(path).size;
      }
      const { records, bytes } = WriteLog.read(`${path}.log`, store.revision);
      for (const r of records) {
        applyOps(store.data, r.ops, r.revision);
        store.revision = r.revision;
      }
      store.log = new WriteLog(`${path}.log`);
      store.log.bytes = bytes;
    }
    // Without a file, nothing waits to be durable: staged and visible are one map.
    store.staged = path ? new Map(store.data) : store.data;
    store.stagedRevision = store.revision;
    return store;
  }

  get currentRevision(): number {
    return this.revision;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.checkOpen();
    return this.data.get(key);
  }

  async list(prefix: string, except?: string): Promise<{ revision: number; items: KeyValue[] }> {
    this.checkOpen();
    const items: KeyValue[] = [];
    for (const kv of this.data.values())
      if (kv.key.startsWith(prefix) && !(except && kv.key.startsWith(except))) items.push(kv);
    items.sort((a, b) => (a.key < b.key ? -1 : 1));
    return { revision: this.revision, items };
  }

  async txn(compares: readonly Compare[], ops: readonly Op[]): Promise<TxnResult> {
    this.checkOpen();
    // Checked against the staged state: a write waiting for its flush still wins a race.
    for (const c of compares) {
      if ((this.staged.get(c.key)?.modRevision ?? 0) !== c.modRevision)
        return { succeeded: false, revision: this.stagedRevision };
    }
    for (const op of ops) {
      if (op.type === 'put' && op.lease && !this.leases.has(op.lease)) {
        throw new MeshError('not_found', `lease ${op.lease} not found`);
      }
    }
    if (ops.length === 0) return { succeeded: true, revision: this.stagedRevision };
    const revision = await this.commit(ops);
    return { succeeded: true, revision };
  }

  /** Stages `ops` at one new revision; resolves once they are durable and visible. */
  private commit(ops: readonly Op[]): Promise<number> {
    const revision = ++this.stagedRevision;
    if (this.staged === this.data) {
      // Nothing to make durable: visible at once.
      this.publish(ops, revision);
      return Promise.resolve(revision);
    }
    applyOps(this.staged, ops, revision);
    return new Promise((resolve, reject) => {
      this.waiting.push({ revision, ops, resolve: () => resolve(revision), reject });
      this.flushSoon();
    });
  }

  /** Applies durable ops to what readers see, keeps lease ownership, and tells the watchers. */
  private publish(ops: readonly Op[], revision: number): void {
    this.revision = revision;
    const events: WatchEvent[] = [];
    for (const op of ops) {
      const prev = this.data.get(op.key);
      if (prev?.lease) this.leases.get(prev.lease)?.keys.delete(op.key);
      if (op.type === 'put') {
        if (op.lease) this.leases.get(op.lease)?.keys.add(op.key);
        events.push({ type: 'put', key: op.key, value: op.value, modRevision: revision });
      } else if (prev) {
        events.push({ type: 'delete', key: op.key, modRevision: revision });
      }
      applyOps(this.data, [op], revision);
    }
    this.history.push(...events);
    if (this.history.length > historyLimit) this.history.splice(0, this.history.length - historyLimit);
    for (const w of this.watchers) {
      const mine = events.filter((e) => e.key.startsWith(w.prefix));
      if (mine.length > 0) w.handlers.onEvents(mine, revision);
    }
  }

  watch(prefix: string, afterRevision: number, handlers: WatchHandlers): Watch {
    this.checkOpen();
    const oldest = this.history[0]?.modRevision ?? this.revision + 1;
    if (afterRevision < this.revision && afterRevision + 1 < oldest) {
      queueMicrotask(() => handlers.onError(new CompactedError(afterRevision)));
      return { close: () => {} };
    }
    const backlog = this.history.filter((e) => e.modRevision > afterRevision && e.key.startsWith(prefix));
    const watcher: Watcher = { prefix, handlers };
    this.watchers.add(watcher);
    if (backlog.length > 0) handlers.onEvents(backlog, this.revision);
    queueMicrotask(() => {
      if (this.watchers.has(watcher)) handlers.onConnected?.();
    });
    return { close: () => this.watchers.delete(watcher) };
  }

  async grantLease(ttlSeconds: number): Promise<LeaseId> {
    this.checkOpen();
    const id = String(this.nextLease++);
    const ttlMs = ttlSeconds * 1000;
    this.leases.set(id, { ttlMs, keys: new Set(), timer: setTimeout(() => this.expire(id), ttlMs).unref() });
    return id;
  }

  async keepAlive(lease: LeaseId): Promise<void> {
    this.checkOpen();
    const l = this.leases.get(lease);
    if (!l) throw new MeshError('not_found', `lease ${lease} not found`);
    l.timer.refresh();
  }

  async revokeLease(lease: LeaseId): Promise<void> {
    this.expire(lease);
  }

  private expire(id: LeaseId): void {
    const lease = this.leases.get(id);
    if (!lease) return;
    clearTimeout(lease.timer);
    this.leases.delete(id);
    if (lease.keys.size === 0 || this.closed) return;
    // Leased keys are never written to the file, but their deletion takes a revision in order
    // behind any write waiting for its flush.
    void this.commit([...lease.keys].map((key) => ({ type: 'delete', key }) as const)).catch(() => undefined);
  }

  /** Appends the staged writes to the log; they become visible only once they are on disk. */
  private flushSoon(): void {
    if (this.flushing || !this.log || this.waiting.length === 0) return;
    const revision = this.stagedRevision;
    // Leased keys are never persisted (they die with the process); deletes always are.
    const records = this.waiting.map((w) => ({
      revision: w.revision,
      ops: w.ops.filter((op) => op.type === 'delete' || !op.lease),
    }));
    this.flushing = this.log.append(records).then(
      () => this.flushed(revision),
      (err: Error) => this.flushed(revision, err),
    );
  }

  /**
   * Folds the log into a new snapshot file once the log outgrows it: snapshot first (renamed into
   * place atomically), then the log emptied; a crash in between replays records the snapshot
   * already holds, which are skipped by revision.
   */
  private async compact(): Promise<void> {
    const log = this.log as WriteLog;
    const items = [...this.data.values()].filter((kv) => kv.lease === '');
    await writeStoreFile(this.path as string, { revision: this.revision, items });
    this.snapshotBytes = statSync(this.path as string).size;
    await log.truncate();
  }

  private flushed(revision: number, err?: Error): void {
    this.flushing = undefined;
    if (err) {
      // Every staged write was checked against the ones before it: all of them go.
      const failed = this.waiting;
      this.waiting = [];
      this.staged = new Map(this.data);
      this.stagedRevision = this.revision;
      for (const w of failed) w.reject(new MeshError('unavailable', `store write failed: ${err.message}`));
      return;
    }
    const done = this.waiting.filter((w) => w.revision <= revision);
    this.waiting = this.waiting.filter((w) => w.revision > revision);
    for (const w of done) {
      this.publish(w.ops, w.revision);
      w.resolve();
    }
    const log = this.log as WriteLog;
    if (log.bytes > Math.max(8 << 20, this.snapshotBytes)) {
      // Writes that arrive meanwhile wait for the next flush, after the log is emptied.
      this.flushing = this.compact().then(
        () => {
          this.flushing = undefined;
          this.flushSoon();
        },
        () => {
          // The log still holds everything: try again after the next flush.
          this.flushing = undefined;
          this.flushSoon();
        },
      );
      return;
    }
    this.flushSoon();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    while (this.flushing) await this.flushing;
    this.closed = true;
    // A clean stop folds the log into the file, so the next start reads one file and replays
    // nothing; if that fails, the log still holds every write.
    if (this.log && this.log.bytes > 0) await this.compact().catch(() => undefined);
    await this.log?.close();
    for (const [id, lease] of this.leases) {
      clearTimeout(lease.timer);
      this.leases.delete(id);
    }
    this.watchers.clear();
  }

  private checkOpen(): void {
    if (this.closed) throw new MeshError('unavailable', 'store is closed');
  }
}

/** Applies ops to a key-value map at `revision`, as etcd would. */
function applyOps(map: Map<string, KeyValue>, ops: readonly Op[], revision: number): void {
  for (const op of ops) {
    const prev = map.get(op.key);
    if (op.type === 'put') {
      map.set(op.key, {
        key: op.key,
        value: op.value,
        createRevision: prev?.createRevision ?? revision,
        modRevision: revision,
        lease: op.lease ?? '',
      });
    } else {
      map.delete(op.key);
    }
  }
}
