import type { Answer as Rr } from 'dns-packet';
import type { DnsView, NameRecords, NetworkZone, SrvTarget } from './view.js';

/** What to do with a question: answer it from cluster state, or forward it upstream. */
export type Answer =
  | {
      readonly kind: 'local';
      readonly rcode: 0 | 3;
      readonly answers: readonly Rr[];
      readonly authority: readonly Rr[];
      readonly additional: readonly Rr[];
    }
  | { readonly kind: 'forward' };

export interface AnswerOptions {
  /** The cluster domain without dots (`meshd`), or '' for none. */
  readonly domain: string;
  readonly ttl: number;
}

const A = 1;
const AAAA = 28;
const PTR = 12;
const SRV = 33;
const ANY = 255;

/** The SOA in negative answers: its minimum bounds how long resolvers cache the NXDOMAIN/NODATA. */
export function soa(opts: AnswerOptions): Rr {
  const zone = opts.domain || '.';
  return {
    type: 'SOA',
    name: zone,
    ttl: opts.ttl,
    class: 'IN',
    data: {
      mname: opts.domain ? `ns.${opts.domain}` : 'ns.meshd',
      rname: opts.domain ? `hostmaster.${opts.domain}` : 'hostmaster.meshd',
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: opts.ttl,
    },
  } as Rr;
}

function negative(rcode: 0 | 3, opts: AnswerOptions): Answer {
  return { kind: 'local', rcode, answers: [], authority: [soa(opts)], additional: [] };
}

/** The name with the cluster domain taken off, and whether it was there. */
function stripDomain(name: string, domain: string): { name: string; inDomain: boolean } {
  if (domain && name === domain) return { name: '', inDomain: true };
  if (domain && name.endsWith(`.${domain}`))
    return { name: name.slice(0, -domain.length - 1), inDomain: true };
  return { name, inDomain: false };
}

/** First zone in scope that knows the name wins (Docker's rule); then `name.network` forms. */
function find<T>(
  zones: readonly NetworkZone[],
  name: string,
  pick: (z: NetworkZone, n: string) => T | undefined,
): T | undefined {
  for (const z of zones) {
    const r = pick(z, name);
    if (r !== undefined) return r;
  }
  const labels = name.split('.');
  for (let i = labels.length - 1; i >= 1; i--) {
    const network = labels.slice(i).join('.');
    const z = zones.find((x) => x.name === network);
    if (!z) continue;
    const r = pick(z, labels.slice(0, i).join('.'));
    if (r !== undefined) return r;
  }
  return undefined;
}

function addressRecords(qname: string, rec: NameRecords, qtype: number, ttl: number): Rr[] {
  const out: Rr[] = [];
  if (qtype === A || qtype === ANY)
    for (const a of rec.v4) out.push({ type: 'A', name: qname, ttl, class: 'IN', data: a });
  if (qtype === AAAA || qtype === ANY)
    for (const a of rec.v6) out.push({ type: 'AAAA', name: qname, ttl, class: 'IN', data: a });
  return out;
}

function srvRecords(
  qname: string,
  targets: readonly SrvTarget[],
  ttl: number,
): { answers: Rr[]; additional: Rr[] } {
  const answers: Rr[] = [];
  const additional: Rr[] = [];
  const glue = new Set<string>();
  for (const t of targets) {
    answers.push({
      type: 'SRV',
      name: qname,
      ttl,
      class: 'IN',
      data: { priority: 0, weight: 10, port: t.port, target: t.target },
    });
    const key = `${t.target}|${t.address}`;
    if (glue.has(key)) continue;
    glue.add(key);
    const name = t.target.replace(/\.$/, '');
    additional.push({
      type: t.address.includes(':') ? 'AAAA' : 'A',
      name,
      ttl,
      class: 'IN',
      data: t.address,
    } as Rr);
  }
  return { answers, additional };
}

/**
 * Answers one question from the DNS view for a client that sees `scope`. Pure: no sockets, no
 * clock, no randomness (shuffling happens when the answer is written).
 */
export function answer(
  view: DnsView,
  scope: readonly NetworkZone[],
  qname: string,
  qtype: number,
  opts: AnswerOptions,
): Answer {
  const { name, inDomain } = stripDomain(qname, opts.domain);
  if (qtype === PTR && (qname.endsWith('.in-addr.arpa') || qname.endsWith('.ip6.arpa'))) {
    const rec = view.ptr.get(qname);
    // Reverse names follow the same scoping as forward ones: a client that cannot resolve a
    // task's name must not learn it (or its id) by asking for its address.
    if (rec && !scope.some((z) => z.id === rec.network)) return negative(3, opts);
    if (rec) {
      const target = rec.target;
      return {
        kind: 'local',
        rcode: 0,
        answers: [
          {
            type: 'PTR',
            name: qname,
            ttl: opts.ttl,
            class: 'IN',
            data: opts.domain ? `${target}.${opts.domain}` : target,
          },
        ],
        authority: [],
        additional: [],
      };
    }
    return { kind: 'forward' };
  }
  if (name === '') return inDomain ? negative(0, opts) : { kind: 'forward' };
  if (qtype === SRV && name.startsWith('_')) {
    const targets = find(scope, name, (z, n) => z.srv.get(n));
    if (targets && targets.length > 0) {
      const { answers, additional } = srvRecords(qname, targets, opts.ttl);
      return { kind: 'local', rcode: 0, answers, authority: [], additional };
    }
  }
  const rec = find(scope, name, (z, n) => z.names.get(n) ?? (z.srv.has(n) ? { v4: [], v6: [] } : undefined));
  if (rec) {
    const answers = addressRecords(qname, rec, qtype, opts.ttl);
    return answers.length > 0
      ? { kind: 'local', rcode: 0, answers, authority: [], additional: [] }
      : negative(0, opts);
  }
  // Known on a network the client is not on, or under our own domain: ours to deny, not to forward.
  if (inDomain || view.known.has(name)) return negative(3, opts);
  const labels = name.split('.');
  for (let i = 1; i < labels.length; i++)
    if (view.zoneByName.has(labels.slice(i).join('.'))) return negative(3, opts);
  return { kind: 'forward' };
}
