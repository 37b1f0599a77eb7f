import { type ClaimIndex, claimsOf } from '../model/claims.js';
import type { Change, ClusterState, Kind } from '../model/cluster-state.js';
import { MeshError } from '../model/errors.js';
import type { Compare, LeaseId, Op, Store } from '../store/store.js';
import { GroupCommit } from './group-commit.js';
import { claimKey, keyOf } from './keys.js';
import type { Mirror } from './mirror.js';

/** Validated writes retried this many times when another writer got in first. */
const maxAttempts = 30;

/**
 * Keys one node alone writes (its heartbeat, its tasks' probe results): last write wins. Every
 * other write compares the version it read, so two writes to one object, even from one node,
 * never apply out of order (the later computed one recomputes instead).
 */
const ownedKinds: ReadonlySet<Kind> = new Set(['heartbeats', 'health']);

/** One change turned into a store transaction. */
interface Plan {
  readonly compares: Compare[];
  readonly ops: Op[];
  /** Claims this write takes (held as in flight until it is visible or failed). */
  readonly taken: string[];
}

/**
 * Applies validated changes to the store. Each write is computed by a pure operation from the
 * mirror's state, then committed only if every object it read is still at the version it saw
 * and every claim it takes (a name, an address, a slot) is still free. There is no cluster-wide
 * lock: writers on different objects never conflict, so writes run concurrently, bounded only
 * by the store. On a conflict it catches up with the store and recomputes.
 */
export class Controller {
  /** The lease that leased keys (heartbeats) are attached to; set by the membership loop. */
  lease: LeaseId = '';
  private storeUp = true;
  private storeReason = '';
  private readonly commits: GroupCommit;

  constructor(
    private readonly store: Store,
    private readonly mirror: Mirror,
    private readonly prefix: string,
  ) {
    this.commits = new GroupCommit(store);
  }

  get state(): ClusterState {
    return this.mirror.state;
  }

  /** Called by the daemon when the store connection changes, so writes fail fast and clearly. */
  setStoreConnected(up: boolean, reason: string): void {
    this.storeUp = up;
    this.storeReason = reason;
  }

  /** Runs `operation` against current state and commits its change; returns the new revision. */
  async apply(operation: (state: ClusterState) => Change): Promise<number> {
    if (!this.storeUp) {
      throw new MeshError(
        'unavailable',
        `cluster store is unreachable (${this.storeReason}); writes are refused until it returns`,
      );
    }
    let fence: { key: string; revision: number } | undefined;
    // After a batch it shared failed, a write goes alone: only its own conflict can fail it then.
    let solo = false;
    try {
      for (let attempt = 1; ; attempt++) {
        const change = operation(this.mirror.state);
        if (change.fence !== fence?.key) {
          if (fence) await this.dropFence(fence);
          fence = change.fence ? await this.takeFence(change.fence) : undefined;
          // Recompute against everything written before the fence.
          if (fence || attempt < maxAttempts) continue;
        }
        if (change.puts.length === 0 && change.deletes.length === 0 && !fence) return this.mirror.revision;
        const plan = this.plan(change, fence);
        const claims = this.mirror.state.claims as ClaimIndex;
        claims.hold(plan.taken);
        try {
          const result = await this.commits.submit(plan.compares, plan.ops, solo);
          // Caught up before the claims stop counting as in flight: they are visible by then.
          await this.mirror.waitFor(result.revision, result.succeeded ? 5000 : 2000);
          if (result.succeeded) {
            fence = undefined;
            return result.revision;
          }
          if (attempt >= maxAttempts) {
            throw new MeshError('conflict', 'the cluster state kept changing during this update; try again');
          }
          if (result.shared) {
            solo = true;
            continue;
          }
          await this.dropStaleClaims(plan.taken, result.revision);
        } finally {
          claims.release(plan.taken);
        }
        // A little jitter keeps two writers from colliding again in lock-step.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, attempt * 5)));
      }
    } finally {
      if (fence) await this.dropFence(fence).catch(() => undefined);
    }
  }

  /** Turns a change into compares and ops: versions, guards, and the claims it takes and gives up. */
  private plan(change: Change, fence: { key: string; revision: number } | undefined): Plan {
    const state = this.mirror.state;
    const compares: Compare[] = [];
    const ops: Op[] = [];
    const expected = new Set<string>();
    const expect = (kind: Kind, id: string, version: number) => {
      if (expected.has(`${kind}/${id}`)) return;
      expected.add(`${kind}/${id}`);
      compares.push({ key: keyOf(this.prefix, kind, id), modRevision: version });
    };
    for (const e of change.expect) expect(e.kind, e.id, e.version);
    for (const g of change.guards) compares.push({ key: claimKey(this.prefix, g), modRevision: 0 });
    const wanted = new Map<string, string>();
    const given = new Set<string>();
    for (const p of change.puts) {
      ops.push({
        type: 'put',
        key: keyOf(this.prefix, p.kind, p.id),
        value: JSON.stringify(p.value),
        ...(p.lease ? { lease: this.lease } : {}),
      });
      if (ownedKinds.has(p.kind)) continue;
      const before = current(state, p.kind, p.id);
      expect(p.kind, p.id, before?.version ?? 0);
      const had = new Set(claimsOf(p.kind, before));
      const keeps = new Set(claimsOf(p.kind, p.value));
      for (const c of keeps) if (!had.has(c)) wanted.set(c, `${p.kind}/${p.id}`);
      for (const c of had) if (!keeps.has(c)) given.add(c);
    }
    for (const d of change.deletes) {
      ops.push({ type: 'delete', key: keyOf(this.prefix, d.kind, d.id) });
      if (ownedKinds.has(d.kind)) continue;
      const before = current(state, d.kind, d.id);
      if (!before) continue;
      expect(d.kind, d.id, before.version);
      for (const c of claimsOf(d.kind, before)) given.add(c);
    }
    const taken: string[] = [];
    for (const [c, owner] of wanted) {
      ops.push({ type: 'put', key: claimKey(this.prefix, c), value: owner });
      // A claim one object gives up and another takes in the same write just changes hands.
      if (given.delete(c)) continue;
      compares.push({ key: claimKey(this.prefix, c), modRevision: 0 });
      taken.push(c);
    }
    for (const c of given) ops.push({ type: 'delete', key: claimKey(this.prefix, c) });
    if (fence) {
      compares.push({ key: claimKey(this.prefix, fence.key), modRevision: fence.revision });
      ops.push({ type: 'delete', key: claimKey(this.prefix, fence.key) });
    }
    return { compares, ops, taken };
  }

  /** Takes a fence claim in a write of its own, waiting out another writer that holds it. */
  private async takeFence(key: string): Promise<{ key: string; revision: number }> {
    const full = claimKey(this.prefix, key);
    for (let attempt = 1; ; attempt++) {
      // Leased: a node that dies holding a fence does not block its object for ever.
      const put: Op = { type: 'put', key: full, value: '', ...(this.lease ? { lease: this.lease } : {}) };
      const result = await this.store.txn([{ key: full, modRevision: 0 }], [put]);
      if (result.succeeded) {
        await this.mirror.waitFor(result.revision);
        return { key, revision: result.revision };
      }
      if (attempt >= maxAttempts)
        throw new MeshError('conflict', 'another removal of the same object is in progress; try again');
      await new Promise((r) => setTimeout(r, Math.min(200, attempt * 20)));
    }
  }

  private async dropFence(fence: { key: string; revision: number }): Promise<void> {
    const full = claimKey(this.prefix, fence.key);
    await this.store.txn([{ key: full, modRevision: fence.revision }], [{ type: 'delete', key: full }]);
  }

  /**
   * A claim the store holds but no visible object does (left by a hand edit of the store, or a
   * store restored from a backup) would refuse its name or address for ever: once the mirror has
   * caught up with the failed write, such a claim is deleted, guarded by its own revision.
   */
  private async dropStaleClaims(taken: readonly string[], revision: number): Promise<void> {
    if (this.mirror.revision < revision) return;
    const claims = this.mirror.state.claims as ClaimIndex;
    for (const c of taken) {
      if (claims.owner(c) !== undefined) continue;
      const kv = await this.store.get(claimKey(this.prefix, c));
      if (kv && claims.owner(c) === undefined && this.mirror.revision >= kv.modRevision)
        await this.store.txn(
          [{ key: kv.key, modRevision: kv.modRevision }],
          [{ type: 'delete', key: kv.key }],
        );
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

/** The object a change replaces, as the mirror holds it. */
function current(state: ClusterState, kind: Kind, id: string): { version: number } | undefined {
  if (kind === 'cluster') return state.cluster as { version: number } | undefined;
  return (state[kind] as ReadonlyMap<string, { version: number }>).get(id);
}
