import type { Counter } from 'prom-client';
import type { Compare, LeaseId, Op, Store, TxnResult, Watch, WatchHandlers } from './store.js';

/** Wraps a store so every request is counted by operation and result (`meshd_store_requests_total`). */
export class InstrumentedStore implements Store {
  constructor(
    private readonly inner: Store,
    private readonly requests: Counter<'op' | 'result'>,
  ) {}

  get description(): string {
    return this.inner.description;
  }

  private async count<T>(op: string, run: () => Promise<T>, ok: (v: T) => string = () => 'ok'): Promise<T> {
    try {
      const v = await run();
      this.requests.labels(op, ok(v)).inc();
      return v;
    } catch (err) {
      this.requests.labels(op, (err as { code?: string }).code === 'not_found' ? 'not_found' : 'error').inc();
      throw err;
    }
  }

  get(key: string) {
    return this.count('get', () => this.inner.get(key));
  }

  list(prefix: string, except?: string) {
    return this.count('list', () => this.inner.list(prefix, except));
  }

  txn(compares: readonly Compare[], ops: readonly Op[]): Promise<TxnResult> {
    return this.count(
      'txn',
      () => this.inner.txn(compares, ops),
      (r) => (r.succeeded ? 'ok' : 'conflict'),
    );
  }

  watch(prefix: string, afterRevision: number, handlers: WatchHandlers): Watch {
    this.requests.labels('watch', 'ok').inc();
    return this.inner.watch(prefix, afterRevision, handlers);
  }

  grantLease(ttlSeconds: number) {
    return this.count('lease_grant', () => this.inner.grantLease(ttlSeconds));
  }

  keepAlive(lease: LeaseId) {
    return this.count('lease_keepalive', () => this.inner.keepAlive(lease));
  }

  revokeLease(lease: LeaseId) {
    return this.count('lease_revoke', () => this.inner.revokeLease(lease));
  }

  close() {
    return this.inner.close();
  }
}
