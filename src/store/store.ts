import { MeshError } from '../model/errors.js';

/** A lease id: etcd's are 64-bit, beyond a JS number's exact range, so they stay strings. */
export type LeaseId = string;

/** One stored key with etcd's bookkeeping: revisions are cluster-wide and only grow. */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  /** The lease the key is attached to, '' for none. */
  readonly lease: LeaseId;
}

/** A condition on a key's last modification; modRevision 0 means the key must not exist. */
export interface Compare {
  readonly key: string;
  readonly modRevision: number;
}

export type Op =
  | { readonly type: 'put'; readonly key: string; readonly value: string; readonly lease?: LeaseId }
  | { readonly type: 'delete'; readonly key: string };

export interface TxnResult {
  readonly succeeded: boolean;
  readonly revision: number;
}

export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly key: string;
  /** Present for puts. */
  readonly value?: string;
  readonly modRevision: number;
}

export interface WatchHandlers {
  /** Events in revision order; `revision` is the store revision they bring the watcher to. */
  readonly onEvents: (events: readonly WatchEvent[], revision: number) => void;
  /** The watch ended: compacted (re-list), or the store went away (retry). */
  readonly onError: (err: Error) => void;
  /** The watch is established (again): the store is reachable. */
  readonly onConnected?: () => void;
}

export interface Watch {
  close(): void;
}

/**
 * The cluster store, shaped after etcd so the embedded store and etcd are interchangeable:
 * keys under a prefix, a global revision, transactions guarded by modRevision compares, watches
 * that resume from a revision, and leases that delete their keys when they lapse.
 */
export interface Store {
  readonly description: string;
  get(key: string): Promise<KeyValue | undefined>;
  /** Every key under `prefix` at one revision, in key order; keys under `except` are left out. */
  list(prefix: string, except?: string): Promise<{ revision: number; items: KeyValue[] }>;
  /** Applies every op if and only if every compare holds, atomically. */
  txn(compares: readonly Compare[], ops: readonly Op[]): Promise<TxnResult>;
  /** Delivers events with modRevision > afterRevision under prefix. */
  watch(prefix: string, afterRevision: number, handlers: WatchHandlers): Watch;
  grantLease(ttlSeconds: number): Promise<LeaseId>;
  /** Renews a lease; fails with `not_found` once the lease has lapsed. */
  keepAlive(lease: LeaseId): Promise<void>;
  revokeLease(lease: LeaseId): Promise<void>;
  close(): Promise<void>;
}

/** A watch could not resume because the history it needs was compacted: re-list, then watch. */
export class CompactedError extends MeshError {
  constructor(revision: number) {
    super('failed_precondition', `watch revision ${revision} has been compacted`);
  }
}
