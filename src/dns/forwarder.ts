import type { Packet } from 'dns-packet';
import { packet } from './codec.js';
import type { ForwardCache } from './forward-cache.js';
import { exchange, type Upstream, UpstreamTimeout } from './upstream.js';
import { errorResponse, type Query, rcode, responseHeader } from './wire.js';

export interface ForwardResult {
  readonly out: Buffer;
  readonly rcode: number;
  readonly source: 'forward' | 'cache';
}

export interface ForwarderHooks {
  upstreamResult(
    upstream: string,
    result: 'ok' | 'nxdomain' | 'servfail' | 'refused' | 'timeout' | 'error',
  ): void;
}

/** TTL of an answer served stale (RFC 8767's recommendation). */
const staleTtl = 30;

interface Outcome {
  readonly raw: Buffer | undefined;
  readonly packet: Packet | undefined;
}

/**
 * Forwards questions meshd does not own: upstreams tried in order (next on SERVFAIL, REFUSED or
 * timeout; NXDOMAIN passed straight through), answers cached, identical concurrent questions sent
 * once, the number of questions in flight bounded, stale answers served when every upstream fails.
 */
export class Forwarder {
  private readonly inflight = new Map<string, Promise<Outcome>>();

  constructor(
    private readonly upstreams: readonly Upstream[],
    private readonly timeoutMs: number,
    private readonly maxInflight: number,
    private readonly cache: ForwardCache,
    private readonly hooks: ForwarderHooks,
  ) {}

  async resolve(buf: Buffer, q: Query, tcp: boolean, limit: number): Promise<ForwardResult> {
    const key = `${q.name}|${q.qtype}|${q.qclass}|${q.dnssecOk ? 1 : 0}`;
    const now = Date.now();
    const cached = this.cache.fresh(key, now);
    if (cached)
      return this.fromPacket(
        buf,
        q,
        cached.packet,
        Math.floor((now - cached.storedAt) / 1000),
        limit,
        'cache',
      );
    let pending = this.inflight.get(key);
    const leader = !pending;
    if (!pending) {
      if (this.inflight.size >= this.maxInflight) {
        return {
          out: errorResponse(buf, rcode.REFUSED, q.questionEnd, true),
          rcode: rcode.REFUSED,
          source: 'forward',
        };
      }
      pending = this.ask(buf, tcp).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    const outcome = await pending;
    if (outcome.raw && outcome.packet) {
      if (leader) this.cache.store(key, outcome.packet, Date.now());
      const out = Buffer.from(outcome.raw);
      out.writeUInt16BE(q.id, 0);
      buf.copy(out, 12, 12, q.questionEnd);
      const code = responseHeader(out)?.rcode ?? rcode.SERVFAIL;
      if (out.length > limit) return { out: truncatedOnly(buf, q, code), rcode: code, source: 'forward' };
      return { out, rcode: code, source: 'forward' };
    }
    const stale = this.cache.stale(key, Date.now());
    if (stale) return this.fromPacket(buf, q, stale.packet, -1, limit, 'cache');
    return {
      out: errorResponse(buf, rcode.SERVFAIL, q.questionEnd, true),
      rcode: rcode.SERVFAIL,
      source: 'forward',
    };
  }

  private async ask(buf: Buffer, tcp: boolean): Promise<Outcome> {
    for (const u of this.upstreams) {
      let res: Buffer;
      try {
        res = await exchange(u, buf, this.timeoutMs, tcp);
      } catch (err) {
        this.hooks.upstreamResult(u.label, err instanceof UpstreamTimeout ? 'timeout' : 'error');
        continue;
      }
      const h = responseHeader(res);
      if (!h || h.rcode === rcode.SERVFAIL || h.rcode === rcode.REFUSED) {
        this.hooks.upstreamResult(u.label, h?.rcode === rcode.REFUSED ? 'refused' : 'servfail');
        continue;
      }
      let decoded: Packet;
      try {
        decoded = packet.decode(res);
      } catch {
        this.hooks.upstreamResult(u.label, 'error');
        continue;
      }
      this.hooks.upstreamResult(u.label, h.rcode === rcode.NXDOMAIN ? 'nxdomain' : 'ok');
      return { raw: res, packet: decoded };
    }
    return { raw: undefined, packet: undefined };
  }

  /** Re-encodes a cached answer for this client: its id, TTLs lowered by age (or 30 s when stale). */
  private fromPacket(
    buf: Buffer,
    q: Query,
    p: Packet,
    ageSeconds: number,
    limit: number,
    source: 'cache',
  ): ForwardResult {
    const ttl = (t: number | undefined) => (ageSeconds < 0 ? staleTtl : Math.max(0, (t ?? 0) - ageSeconds));
    const adjust = <T extends { ttl?: number; type: string }>(rr: T): T =>
      rr.type === 'OPT' ? rr : { ...rr, ttl: ttl(rr.ttl) };
    const out = packet.encode({
      ...p,
      id: q.id,
      flags: ((p.flags ?? 0) & ~0x0100) | (q.flags & 0x0100),
      answers: (p.answers ?? []).map(adjust),
      authorities: (p.authorities ?? []).map(adjust),
      additionals: (p.additionals ?? []).map(adjust),
    } as Packet);
    // The question as the client spelled it (same length, only the case may differ).
    if (out.length >= q.questionEnd) buf.copy(out, 12, 12, q.questionEnd);
    const code = responseHeader(out)?.rcode ?? rcode.NOERROR;
    if (out.length > limit) return { out: truncatedOnly(buf, q, code), rcode: code, source };
    return { out, rcode: code, source };
  }
}

/** A TC response with no records: the client must ask again over TCP. */
function truncatedOnly(buf: Buffer, q: Query, code: number): Buffer {
  const out = errorResponse(buf, code as 0, q.questionEnd, true);
  out.writeUInt16BE(out.readUInt16BE(2) | 0x0200, 2);
  return out;
}
