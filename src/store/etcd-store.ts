import { readFileSync } from 'node:fs';
import { ConsecutiveBreaker, circuitBreaker, handleWhen, retry } from 'cockatiel';
import { Etcd3, type IKeyValue, isRecoverableError, type Lease, Range } from 'etcd3';
import { MeshError, messageOf } from '../model/errors.js';
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

/** How etcd and the client say a lease has lapsed. */
const leaseGone = /lease.*(not found|expired|revoked|invalid)/i;

/** Keys per page when listing: well under gRPC's 4 MB limit for objects of a few hundred bytes. */
const listPage = 2000;

/** Each call to etcd gets this long before the store counts as unreachable for it. */
const callTimeoutMs = 3000;

function toKv(kv: IKeyValue): KeyValue {
  return {
    key: kv.key.toString(),
    value: kv.value.toString(),
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
    lease: kv.lease === '0' ? '' : String(kv.lease),
  };
}

/** etcd's errors, said in meshd's words: unreachable is `unavailable`, so the API answers 503. */
function unavailable(err: unknown): MeshError {
  return new MeshError('unavailable', `etcd is unreachable: ${messageOf(err)}`);
}

/**
 * The Store on etcd (npm etcd3): transactions are etcd transactions with compares on
 * mod_revision, watches are etcd watches from a revision, leases are etcd leases.
 */
export class EtcdStore implements Store {
  readonly description: string;
  private readonly client: Etcd3;
  private readonly leases = new Map<LeaseId, Lease>();
  private readonly watchers = new Set<{ cancel(): Promise<void> }>();

  constructor(endpoints: readonly string[], tls?: { ca: string; cert?: string; key?: string }) {
    const scheme = tls ? 'etcds' : 'etcd';
    this.description = `${scheme}://${endpoints.map((e) => e.replace(/^https?:\/\//, '')).join(',')}`;
    this.client = new Etcd3({
      hosts: [...endpoints],
      ...(tls
        ? {
            credentials: {
              rootCertificate: readFileSync(tls.ca),
              ...(tls.cert && tls.key
                ? { certChain: readFileSync(tls.cert), privateKey: readFileSync(tls.key) }
                : {}),
            },
          }
        : {}),
      dialTimeout: callTimeoutMs,
      // HTTP/2 pings find a dead link under a silent watch stream; etcd allows one per 5 s.
      grpcOptions: {
        'grpc.keepalive_time_ms': 5000,
        'grpc.keepalive_timeout_ms': 3000,
        'grpc.keepalive_permit_without_calls': 1,
        // Reconnect within a second of etcd coming back, however long it was away (gRPC's own
        // backoff grows to two minutes).
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 1000,
      },
      // Unary calls get a deadline; streams (the watch) must not, or they are cut every few seconds.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
      faultHandling: {
        // A short breaker per host, so a restarted etcd is used again within a second.
        host: () =>
          circuitBreaker(handleWhen(isRecoverableError), {
            halfOpenAfter: 1000,
            breaker: new ConsecutiveBreaker(3),
          }),
        global: retry(handleWhen(isRecoverableError), { maxAttempts: 1 }),
      },
    });
  }

  async get(key: string): Promise<KeyValue | undefined> {
    try {
      const res = await this.client.get(key).exec();
      const kv = res.kvs[0];
      return kv ? toKv(kv) : undefined;
    } catch (err) {
      throw unavailable(err);
    }
  }

  /**
   * Lists a prefix in pages, every page at the revision of the first: one response for a large
   * cluster would pass gRPC's 4 MB message limit (10,000 tasks already do), and a consistent
   * revision is what the watch resumes from.
   */
  async list(prefix: string, except?: string): Promise<{ revision: number; items: KeyValue[] }> {
    try {
      const all = Range.prefix(prefix);
      // Leaving a sub-prefix out is two ranges: before it, and from just past it.
      const ranges = except
        ? [new Range(all.start, except), new Range(Range.prefix(except).end, all.end)]
        : [all];
      const items: KeyValue[] = [];
      let revision = 0;
      for (const range of ranges) {
        let start: Buffer = range.start;
        for (;;) {
          let q = this.client
            .getAll()
            .inRange(new Range(start, range.end))
            .sort('Key', 'Ascend')
            .limit(listPage);
          if (revision) q = q.revision(revision);
          const res = await q.exec();
          if (!revision) revision = Number(res.header.revision);
          items.push(...res.kvs.map(toKv));
          const last = res.kvs.at(-1);
          if (!res.more || !last) break;
          start = Buffer.concat([last.key, Buffer.from([0])]);
        }
      }
      return { revision, items };
    } catch (err) {
      throw unavailable(err);
    }
  }

  async txn(compares: readonly Compare[], ops: readonly Op[]): Promise<TxnResult> {
    let builder = this.client.if(compares[0]?.key ?? '\u0000', 'Mod', '==', compares[0]?.modRevision ?? 0);
    for (const c of compares.slice(1)) builder = builder.and(c.key, 'Mod', '==', c.modRevision);
    const actions = ops.map((op) => {
      if (op.type === 'delete') return this.client.delete().key(op.key);
      const put = this.client.put(op.key).value(op.value);
      return op.lease ? put.lease(op.lease) : put;
    });
    try {
      const res = await builder.then(...actions).commit();
      return { succeeded: res.succeeded, revision: Number(res.header.revision) };
    } catch (err) {
      if (leaseGone.test(messageOf(err))) throw new MeshError('not_found', 'lease not found');
      throw unavailable(err);
    }
  }

  watch(prefix: string, afterRevision: number, handlers: WatchHandlers): Watch {
    let closed = false;
    let watcher: { cancel(): Promise<void> } | undefined;
    const entry = { cancel: async () => watcher?.cancel() };
    this.watchers.add(entry);
    const fail = (err: Error) => {
      if (closed) return;
      closed = true;
      this.watchers.delete(entry);
      void watcher?.cancel().catch(() => undefined);
      handlers.onError(/compacted/i.test(err.message) ? new CompactedError(afterRevision) : unavailable(err));
    };
    this.client
      .watch()
      .prefix(prefix)
      .startRevision(String(afterRevision + 1))
      .create()
      .then(
        (w) => {
          watcher = w;
          if (closed) {
            void w.cancel();
            return;
          }
          handlers.onConnected?.();
          w.on('data', (res) => {
            const events: WatchEvent[] = res.events.map((e) => ({
              type: e.type === 'Delete' ? 'delete' : 'put',
              key: e.kv.key.toString(),
              ...(e.type === 'Delete' ? {} : { value: e.kv.value.toString() }),
              modRevision: Number(e.kv.mod_revision),
            }));
            if (events.length > 0) handlers.onEvents(events, Number(res.header.revision));
          });
          // The client would reconnect by itself; meshd wants to know, to report the outage and
          // resume from the revision it has, so it ends this watch and starts a new one.
          w.on('disconnected', (err) => fail(err));
          w.on('error', (err) => fail(err));
        },
        (err: Error) => fail(err),
      );
    return {
      close: () => {
        closed = true;
        this.watchers.delete(entry);
        void watcher?.cancel().catch(() => undefined);
      },
    };
  }

  async grantLease(ttlSeconds: number): Promise<LeaseId> {
    const lease = this.client.lease(ttlSeconds, { autoKeepAlive: false });
    lease.on('lost', () => undefined);
    try {
      const id = await lease.grant();
      this.leases.set(id, lease);
      return id;
    } catch (err) {
      throw unavailable(err);
    }
  }

  async keepAlive(lease: LeaseId): Promise<void> {
    const l = this.leases.get(lease);
    if (!l) throw new MeshError('not_found', `lease ${lease} not found`);
    let res: { TTL: string };
    try {
      res = await l.keepaliveOnce();
    } catch (err) {
      if (leaseGone.test(messageOf(err))) {
        this.leases.delete(lease);
        throw new MeshError('not_found', `lease ${lease} not found`);
      }
      throw unavailable(err);
    }
    // etcd answers a keepalive for an expired lease with TTL 0.
    if (Number(res.TTL) <= 0) {
      this.leases.delete(lease);
      throw new MeshError('not_found', `lease ${lease} not found`);
    }
  }

  async revokeLease(lease: LeaseId): Promise<void> {
    const l = this.leases.get(lease);
    this.leases.delete(lease);
    await l?.revoke().catch(() => undefined);
  }

  async close(): Promise<void> {
    // Watchers must be cancelled before close(), or the process never exits (etcd3's known trap).
    await Promise.all([...this.watchers].map((w) => w.cancel().catch(() => undefined)));
    this.watchers.clear();
    this.client.close();
  }
}
