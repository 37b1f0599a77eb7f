import { type Cidr, cidrContains, parseCidr } from '../model/address.js';
import { type AnswerOptions, answer } from './answer.js';
import type { Forwarder } from './forwarder.js';
import type { DnsMetrics } from './metrics.js';
import { scopeKey, scopeOf } from './scope.js';
import { buildTemplate, type Template, writeResponse } from './template.js';
import type { DnsView, NetworkZone } from './view.js';
import { errorResponse, maxUdpAnswer, parseQuery, type Query, rcode } from './wire.js';

export interface ResponderOptions extends AnswerOptions {
  readonly unscopedClients: 'all' | 'none';
  readonly recursionAllowed: readonly string[];
}

interface Client {
  readonly scope: readonly NetworkZone[];
  readonly key: string;
  readonly recursion: boolean;
}

/** Bounds for the per-view caches; both are keyed by client input. */
const clientCacheSize = 10_000;
const templateCacheSize = 20_000;

/** Queries bigger than this are not DNS queries anyone needs answered. */
const maxQueryBytes = 4096;

/**
 * Turns a query into a response. Local answers come from templates cached per (client scope,
 * type, name) for the current view; other names go to the forwarder. A new view (a new
 * snapshot) replaces the caches in one assignment.
 */
export class Responder {
  private view: DnsView | undefined;
  private clients = new Map<string, Client>();
  private templates = new Map<string, Template>();
  private readonly allowed: readonly Cidr[];

  constructor(
    private readonly opts: ResponderOptions,
    private readonly forwarder: Forwarder,
    private readonly metrics: DnsMetrics,
  ) {
    this.allowed = opts.recursionAllowed.map(parseCidr);
  }

  setView(view: DnsView): void {
    this.view = view;
    this.clients = new Map();
    this.templates = new Map();
  }

  private client(address: string): Client {
    let c = this.clients.get(address);
    if (!c) {
      const scope = this.view ? scopeOf(this.view, address, this.opts.unscopedClients) : [];
      const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
      c = { scope, key: scopeKey(scope), recursion: this.allowed.some((cidr) => cidrContains(cidr, plain)) };
      // Bounded by starting over when full: cheaper than LRU bookkeeping on every query, and
      // refilling costs one scope lookup per active client.
      if (this.clients.size >= clientCacheSize) this.clients.clear();
      this.clients.set(address, c);
    }
    return c;
  }

  /** Answers one message; undefined means drop it. A promise only when the name is forwarded. */
  respond(
    buf: Buffer,
    address: string,
    proto: 'udp' | 'tcp',
  ): Buffer | undefined | Promise<Buffer | undefined> {
    const start = performance.now();
    if (buf.length > maxQueryBytes) {
      this.metrics.dropped.labels('oversize').inc();
      return undefined;
    }
    const parsed = parseQuery(buf);
    if (!parsed.ok) {
      if (parsed.drop) {
        this.metrics.dropped.labels('malformed').inc();
        return undefined;
      }
      this.metrics.request(proto, 0, parsed.rcode, 'local', (performance.now() - start) / 1000);
      return errorResponse(buf, parsed.rcode, undefined, this.client(address).recursion);
    }
    const q = parsed.query;
    const limit = proto === 'tcp' ? 65535 : Math.min(q.ednsSize || 512, maxUdpAnswer);
    const client = this.client(address);
    if (q.qclass !== 1 && q.qclass !== 255)
      return this.finish(
        errorResponse(buf, rcode.NOTIMP, q.questionEnd, client.recursion),
        q,
        proto,
        'local',
        start,
      );
    const tkey = `${client.key}|${q.qtype}|${q.name}`;
    let t = this.templates.get(tkey);
    if (!t && this.view) {
      const a = answer(this.view, client.scope, q.name, q.qtype, this.opts);
      if (a.kind === 'local') {
        t = buildTemplate(a, q.name);
        if (this.templates.size >= templateCacheSize) this.templates.clear();
        this.templates.set(tkey, t);
      }
    }
    if (t) {
      const { out, truncated } = writeResponse(buf, q, t, limit, client.recursion);
      if (truncated) this.metrics.truncated.inc();
      this.metrics.request(proto, q.qtype, t.rcode, 'local', (performance.now() - start) / 1000);
      return out;
    }
    if (!client.recursion)
      return this.finish(errorResponse(buf, rcode.REFUSED, q.questionEnd, false), q, proto, 'local', start);
    return this.forwarder.resolve(buf, q, proto === 'tcp', limit).then((r) => {
      this.metrics.request(proto, q.qtype, r.rcode, r.source, (performance.now() - start) / 1000);
      return r.out;
    });
  }

  private finish(out: Buffer, q: Query, proto: 'udp' | 'tcp', source: string, start: number): Buffer {
    this.metrics.request(
      proto,
      q.qtype,
      out.readUInt16BE(2) & 0xf,
      source,
      (performance.now() - start) / 1000,
    );
    return out;
  }
}
