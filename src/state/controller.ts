import type { Change, ClusterState } from '../model/cluster-state.js';
import { MeshError } from '../model/errors.js';
import type { Compare, LeaseId, Op, Store } from '../store/store.js';
import { keyOf } from './keys.js';
import type { Mirror } from './mirror.js';

/** Validated writes retried this many times when another node's writer got in first. */
const maxAttempts = 30;

/**
 * Applies validated changes to the store. Each write is computed by a pure operation from the
 * mirror's state, then committed only if nothing was written since (a compare on the sequence
 * key) and every object it read is still at the version it saw. On a conflict it waits for the
 * mirror to catch up and recomputes, so concurrent writers on different nodes never lose updates.
 */
export class Controller {
  /** The lease that leased keys (heartbeats) are attached to; set by the membership loop. */
  lease: LeaseId = '';
  private storeUp = true;
  private storeReason = '';

  constructor(
    private readonly store: Store,
    private readonly mirror: Mirror,
    private readonly prefix: string,
  ) {}

  get state(): ClusterState {
    return this.mirror.state;
  }

  /** Called by the daemon when the store connection changes, so writes fail fast and clearly. */
  setStoreConnected(up: boolean, reason: string): void {
    this.storeUp = up;
    this.storeReason = reason;
  }

  /** Writes from this node go one at a time: they would only conflict with each other. */
  private queue: Promise<unknown> = Promise.resolve();

  /** Runs `operation` against current state and commits its change; returns the new revision. */
  apply(operation: (state: ClusterState) => Change): Promise<number> {
    const run = this.queue.then(() => this.applyNow(operation));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async applyNow(operation: (state: ClusterState) => Change): Promise<number> {
    if (!this.storeUp) {
      throw new MeshError(
        'unavailable',
        `cluster store is unreachable (${this.storeReason}); writes are refused until it returns`,
      );
    }
    for (let attempt = 1; ; attempt++) {
      const change = operation(this.mirror.state);
      if (change.puts.length === 0 && change.deletes.length === 0) return this.mirror.revision;
      const compares: Compare[] = [{ key: this.mirror.seqKey(), modRevision: this.mirror.seq }];
      for (const e of change.expect)
        compares.push({ key: keyOf(this.prefix, e.kind, e.id), modRevision: e.version });
      const ops: Op[] = change.puts.map((p) => ({
        type: 'put' as const,
        key: keyOf(this.prefix, p.kind, p.id),
        value: JSON.stringify(p.value),
        ...(p.lease ? { lease: this.lease } : {}),
      }));
      for (const d of change.deletes) ops.push({ type: 'delete', key: keyOf(this.prefix, d.kind, d.id) });
      ops.push({ type: 'put', key: this.mirror.seqKey(), value: String(Date.now()) });
      const result = await this.store.txn(compares, ops);
      if (result.succeeded) {
        await this.mirror.waitFor(result.revision);
        return result.revision;
      }
      if (attempt >= maxAttempts) {
        throw new MeshError('conflict', 'the cluster state kept changing during this update; try again');
      }
      // Another node wrote: catch up with what it wrote, then recompute against it. A little
      // jitter keeps two nodes from colliding again in lock-step.
      const seq = await this.store.get(this.mirror.seqKey());
      await this.mirror.waitFor(seq?.modRevision ?? 0, 2000);
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, attempt * 5)));
    }
  }

  /** Writes a key only this node owns (its heartbeat, its tasks' probe results): no validation. */
  async putOwned(kind: 'heartbeats' | 'health', id: string, value: object, leased: boolean): Promise<void> {
    const ops: Op[] = [
      {
        type: 'put',
        key: keyOf(this.prefix, kind, id),
        value: JSON.stringify(value),
        ...(leased ? { lease: this.lease } : {}),
      },
    ];
    await this.store.txn([], ops);
  }
}
