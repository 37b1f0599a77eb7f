import type { Packet } from 'dns-packet';
import { LRUCache } from 'lru-cache';

/** A cached upstream answer, kept past its TTL for serve-stale. */
export interface CachedAnswer {
  readonly packet: Packet;
  readonly storedAt: number;
  readonly ttlMs: number;
}

/** Positive answers are kept at most an hour, negative ones 15 minutes, whatever upstream says. */
const maxPositiveMs = 3_600_000;
const maxNegativeMs = 900_000;

/**
 * The cache for forwarded answers: bounded in entries (lru-cache), honouring record TTLs and, for
 * NXDOMAIN/NODATA, the SOA minimum (RFC 2308). Entries outlive their TTL by `staleMs` so that
 * they can be served when every upstream is down (RFC 8767).
 */
export class ForwardCache {
  private readonly lru: LRUCache<string, CachedAnswer> | undefined;

  constructor(
    max: number,
    private readonly staleMs: number,
  ) {
    this.lru = max > 0 ? new LRUCache({ max }) : undefined;
  }

  get size(): number {
    return this.lru?.size ?? 0;
  }

  /** A fresh entry, or undefined. */
  fresh(key: string, now: number): CachedAnswer | undefined {
    const e = this.lru?.get(key);
    return e && now < e.storedAt + e.ttlMs ? e : undefined;
  }

  /** An expired entry still inside the serve-stale window. */
  stale(key: string, now: number): CachedAnswer | undefined {
    const e = this.lru?.get(key);
    return e && now < e.storedAt + e.ttlMs + this.staleMs ? e : undefined;
  }

  store(key: string, packet: Packet, now: number): void {
    if (!this.lru) return;
    const ttlMs = cacheTtlMs(packet);
    if (ttlMs > 0) this.lru.set(key, { packet, storedAt: now, ttlMs });
  }
}

/** How long an answer may be cached: its smallest TTL, or its SOA minimum when negative. */
export function cacheTtlMs(p: Packet): number {
  const rcode = (p as { rcode?: string }).rcode ?? 'NOERROR';
  const answers = p.answers ?? [];
  if (rcode === 'NOERROR' && answers.length > 0) {
    const ttl = Math.min(...answers.map((a) => ('ttl' in a ? (a.ttl ?? 0) : 0)));
    return Math.min(ttl * 1000, maxPositiveMs);
  }
  if (rcode === 'NXDOMAIN' || (rcode === 'NOERROR' && answers.length === 0)) {
    const soa = (p.authorities ?? []).find((a) => a.type === 'SOA');
    if (soa?.type !== 'SOA') return 0;
    const ttl = Math.min(soa.ttl ?? 0, soa.data.minimum ?? 0);
    return Math.min(ttl * 1000, maxNegativeMs);
  }
  return 0;
}
