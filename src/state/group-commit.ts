import type { Compare, Op, Store, TxnResult } from '../store/store.js';

/**
 * etcd refuses a transaction with more than 128 compares or 128 operations (`--max-txn-ops`
 * bounds each list on its own) or over 1.5 MiB (`--max-request-bytes`); a batch stays under all
 * three.
 */
const maxOps = 128;
const maxBytes = 1024 * 1024;
/**
 * Transactions in flight at once; writes that arrive meanwhile wait and go out together. One: a
 * gRPC call costs the node about 2 ms of CPU here (grpc-js, measured), more than the write it
 * carries, so the fewer and fuller the transactions the more writes a node takes per second.
 */
const maxInFlight = 1;

/** Writes that leave together, with their compares merged. */
interface Batch {
  readonly writes: readonly Pending[];
  readonly compares: readonly Compare[];
}

const compareId = (c: Compare) => `${c.modRevision} ${c.key}`;

/** What one write asked for; `shared` says it went out with others (a failure may be theirs). */
export interface Committed extends TxnResult {
  readonly shared: boolean;
}

interface Pending {
  readonly compares: readonly Compare[];
  readonly ops: readonly Op[];
  readonly keys: readonly string[];
  readonly bytes: number;
  /** Goes out alone: a retry after its batch failed. */
  readonly solo: boolean;
  readonly resolve: (r: Committed) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Group commit, as databases do for their log: while transactions are in flight, the writes that
 * arrive queue up and leave together as one transaction. Under load this turns sixteen writers'
 * sixteen round trips, sixteen watch events batches and sixteen snapshot rebuilds on every node
 * into one of each; a lone write goes out at once, as before.
 *
 * A batch is all or nothing, so a conflict in one write fails the others: each is told so
 * (`shared`) and the caller retries it alone, where only its own conflict can fail it. Writes to
 * the same key never share a batch (etcd refuses a transaction that names a key twice).
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private inFlight = 0;

  constructor(private readonly store: Store) {}

  /** Commits `ops` if every compare holds, possibly in one transaction with other writes. */
  submit(compares: readonly Compare[], ops: readonly Op[], solo = false): Promise<Committed> {
    return new Promise((resolve, reject) => {
      const keys = ops.map((o) => o.key);
      const bytes = ops.reduce((n, o) => n + o.key.length + (o.type === 'put' ? o.value.length : 0), 0);
      this.queue.push({ compares, ops, keys, bytes, solo, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < maxInFlight && this.queue.length > 0) {
      const batch = this.takeBatch();
      this.inFlight++;
      void this.send(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** The longest run from the queue's head that fits etcd's limits and names no key twice. */
  private takeBatch(): Batch {
    const batch: Pending[] = [];
    const keys = new Set<string>();
    // Writes to one service compare its version and its removal guard: one compare each serves
    // a whole batch, so sixteen registrations fit where twelve did.
    const compares = new Map<string, Compare>();
    let ops = 0;
    let bytes = 0;
    const rest: Pending[] = [];
    for (const p of this.queue) {
      const added = p.compares.filter((c) => !compares.has(compareId(c))).length;
      const fits =
        batch.length === 0 ||
        (!p.solo &&
          !batch[0]?.solo &&
          ops + p.ops.length <= maxOps &&
          compares.size + added <= maxOps &&
          bytes + p.bytes <= maxBytes &&
          !p.keys.some((k) => keys.has(k)));
      // A write left out keeps its place: it leads the next batch.
      if (!fits) {
        rest.push(p);
        continue;
      }
      batch.push(p);
      ops += p.ops.length;
      bytes += p.bytes;
      for (const k of p.keys) keys.add(k);
      for (const c of p.compares) compares.set(compareId(c), c);
    }
    this.queue = rest;
    return { writes: batch, compares: [...compares.values()] };
  }

  private async send({ writes: batch, compares }: Batch): Promise<void> {
    const shared = batch.length > 1;
    try {
      const result = await this.store.txn(
        compares,
        batch.flatMap((p) => p.ops),
      );
      for (const p of batch) p.resolve({ ...result, shared });
    } catch (err) {
      // One write's bad lease fails the batch: the others retry alone and succeed.
      if (shared) for (const p of batch) p.resolve({ succeeded: false, revision: 0, shared });
      else batch[0]?.reject(err);
    }
  }
}
