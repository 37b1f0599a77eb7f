/**
 * The few bytes of a DNS query meshd reads by hand: header, the one question, and the EDNS OPT
 * record. Hand-parsing is both the fast path and the safe one: queries never contain compression
 * pointers, so any pointer is refused here and no pointer chain is ever followed for a client.
 */

export const rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = (typeof rcode)[keyof typeof rcode];

export const qtypes: Record<number, string> = {
  1: 'A',
  2: 'NS',
  5: 'CNAME',
  6: 'SOA',
  12: 'PTR',
  15: 'MX',
  16: 'TXT',
  28: 'AAAA',
  33: 'SRV',
  65: 'HTTPS',
  255: 'ANY',
};

/** A query's parts, with the question name both as sent (wire bytes) and lower-cased text. */
export interface Query {
  readonly id: number;
  /** Header flags as sent (RD and CD are echoed). */
  readonly flags: number;
  readonly name: string;
  /** Offset just past the question (where a response's answers begin). */
  readonly questionEnd: number;
  readonly qtype: number;
  readonly qclass: number;
  /** The advertised EDNS UDP payload size, or 0 when the query had no OPT record. */
  readonly ednsSize: number;
  readonly dnssecOk: boolean;
}

export type ParseResult =
  | { readonly ok: true; readonly query: Query }
  /** Answer with this rcode (the header was readable); `drop` when even that is not worth it. */
  | { readonly ok: false; readonly rcode: Rcode; readonly drop: boolean };

const maxNameLength = 255;

/** Parses a query; anything unexpected becomes FORMERR/NOTIMP or a silent drop, never an exception. */
export function parseQuery(buf: Buffer): ParseResult {
  if (buf.length < 12) return { ok: false, rcode: rcode.FORMERR, drop: true };
  const flags = buf.readUInt16BE(2);
  if (flags & 0x8000) return { ok: false, rcode: rcode.FORMERR, drop: true }; // a response, not a query
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== 0) return { ok: false, rcode: rcode.NOTIMP, drop: false };
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  const ns = buf.readUInt16BE(8);
  const ar = buf.readUInt16BE(10);
  if (qd !== 1 || an !== 0 || ns !== 0 || ar > 1) return { ok: false, rcode: rcode.FORMERR, drop: false };
  let off = 12;
  const labels: string[] = [];
  let nameLength = 1;
  for (;;) {
    if (off >= buf.length) return { ok: false, rcode: rcode.FORMERR, drop: false };
    const len = buf[off] as number;
    if (len === 0) {
      off++;
      break;
    }
    if (len > 63) return { ok: false, rcode: rcode.FORMERR, drop: false }; // pointer or reserved label type
    nameLength += len + 1;
    if (nameLength > maxNameLength || off + 1 + len > buf.length)
      return { ok: false, rcode: rcode.FORMERR, drop: false };
    // A label may hold any byte, a dot included: escape as presentation format does, so the
    // one label `api.bank.com` can never share a name (or a cache key) with three labels.
    const label = buf.toString('latin1', off + 1, off + 1 + len).toLowerCase();
    labels.push(label.includes('.') || label.includes('\\') ? label.replace(/[.\\]/g, '\\$&') : label);
    off += 1 + len;
  }
  if (off + 4 > buf.length) return { ok: false, rcode: rcode.FORMERR, drop: false };
  const qtype = buf.readUInt16BE(off);
  const qclass = buf.readUInt16BE(off + 2);
  const questionEnd = off + 4;
  let ednsSize = 0;
  let dnssecOk = false;
  if (ar === 1) {
    // OPT: root name (0), type 41, class = UDP size, ttl = ext-rcode/version/flags, rdlength, options.
    if (questionEnd + 11 > buf.length || buf[questionEnd] !== 0 || buf.readUInt16BE(questionEnd + 1) !== 41) {
      return { ok: false, rcode: rcode.FORMERR, drop: false };
    }
    ednsSize = Math.max(512, buf.readUInt16BE(questionEnd + 3));
    dnssecOk = (buf.readUInt16BE(questionEnd + 7) & 0x8000) !== 0;
  }
  return {
    ok: true,
    query: {
      id: buf.readUInt16BE(0),
      flags,
      name: labels.join('.'),
      questionEnd,
      qtype,
      qclass,
      ednsSize,
      dnssecOk,
    },
  };
}

/**
 * A bare error response: the query's header and question with an rcode (no answers). RA is set
 * only for a client that may recurse, as in every other answer (one rule, in `responseFlags`).
 */
export function errorResponse(
  buf: Buffer,
  code: Rcode,
  questionEnd: number | undefined,
  recursion: boolean,
): Buffer {
  const end = questionEnd ?? 12;
  const out = Buffer.from(buf.subarray(0, end));
  const qd = end > 12 ? 1 : 0;
  out.writeUInt16BE(responseFlags(buf.readUInt16BE(2) & 0x7900, false, recursion, false, code), 2);
  out.writeUInt16BE(qd, 4);
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  return out;
}

/** The header flags of every response meshd writes: QR, the echoed bits, AA, RA, TC, rcode. */
export function responseFlags(
  echoed: number,
  authoritative: boolean,
  recursion: boolean,
  truncated: boolean,
  code: number,
): number {
  return (
    0x8000 |
    echoed |
    (authoritative ? 0x0400 : 0) |
    (recursion ? 0x0080 : 0) |
    (truncated ? 0x0200 : 0) |
    code
  );
}

/** UDP answers never exceed this, whatever EDNS size a client claims (DNS flag day 2020): a
 * small query must not buy a big answer towards a spoofed address. */
export const maxUdpAnswer = 1232;

/** Reads the id, flags and rcode of a response (for the forwarder). */
export function responseHeader(buf: Buffer): { id: number; rcode: number; truncated: boolean } | undefined {
  if (buf.length < 12) return undefined;
  const flags = buf.readUInt16BE(2);
  if (!(flags & 0x8000)) return undefined;
  return { id: buf.readUInt16BE(0), rcode: flags & 0xf, truncated: (flags & 0x0200) !== 0 };
}
