import type { Answer } from './answer.js';
import { encodeRecord, optRecord } from './codec.js';
import { type Query, responseFlags } from './wire.js';

/**
 * A local answer encoded once and reused: per query only the header is written, the question is
 * copied from the query (so case is echoed), and the answer records are shuffled as whole byte
 * chunks. This is what makes the hot path cheap: no encoding per query.
 */
export interface Template {
  readonly rcode: number;
  readonly answers: readonly Buffer[];
  readonly authority: readonly Buffer[];
  readonly additional: readonly Buffer[];
  readonly answerBytes: number;
  readonly restBytes: number;
}

export function buildTemplate(a: Extract<Answer, { kind: 'local' }>, qname: string): Template {
  const answers = a.answers.map((rr) => encodeRecord(rr, qname));
  const authority = a.authority.map((rr) => encodeRecord(rr, qname));
  const additional = a.additional.map((rr) => encodeRecord(rr, qname));
  const sum = (l: Buffer[]) => l.reduce((n, b) => n + b.length, 0);
  return {
    rcode: a.rcode,
    answers,
    authority,
    additional,
    answerBytes: sum(answers),
    restBytes: sum(authority) + sum(additional),
  };
}

const echoedFlags = 0x0110; // RD and CD

/** Writes the response to `query` (raw bytes `buf`) from a template, within `limit` bytes. */
export function writeResponse(
  buf: Buffer,
  q: Query,
  t: Template,
  limit: number,
  recursion: boolean,
): { out: Buffer; truncated: boolean } {
  const questionLen = q.questionEnd - 12;
  const opt = q.ednsSize > 0 ? optRecord : undefined;
  const optLen = opt ? opt.length : 0;
  const full = 12 + questionLen + t.answerBytes + t.restBytes + optLen;
  const truncated = full > limit;
  let answerCount = t.answers.length;
  let size = full;
  if (truncated) {
    // Keep what fits of the answers and the OPT record; drop authority and additional.
    size = 12 + questionLen + optLen;
    answerCount = 0;
    for (const a of t.answers) {
      if (size + a.length > limit) break;
      size += a.length;
      answerCount++;
    }
  }
  const out = Buffer.allocUnsafe(size);
  out.writeUInt16BE(q.id, 0);
  out.writeUInt16BE(responseFlags(q.flags & echoedFlags, true, recursion, truncated, t.rcode), 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(answerCount, 6);
  out.writeUInt16BE(truncated ? 0 : t.authority.length, 8);
  out.writeUInt16BE((truncated ? 0 : t.additional.length) + (opt ? 1 : 0), 10);
  buf.copy(out, 12, 12, q.questionEnd);
  let off = q.questionEnd;
  const n = t.answers.length;
  if (n > 1 && !truncated) {
    // Fisher-Yates over chunk indexes: a fresh order per response, as Docker shuffles.
    const order = shuffled(n);
    for (let i = 0; i < n; i++) off += (t.answers[order[i] as number] as Buffer).copy(out, off);
  } else if (n > 1) {
    const order = shuffled(n);
    let written = 0;
    for (let i = 0; i < n && written < answerCount; i++) {
      const chunk = t.answers[order[i] as number] as Buffer;
      if (off + chunk.length + optLen > size) continue;
      off += chunk.copy(out, off);
      written++;
    }
    out.writeUInt16BE(written, 6);
  } else {
    for (let i = 0; i < answerCount; i++) off += (t.answers[i] as Buffer).copy(out, off);
  }
  if (!truncated) {
    for (const b of t.authority) off += b.copy(out, off);
    for (const b of t.additional) off += b.copy(out, off);
  }
  if (opt) off += opt.copy(out, off);
  return { out: off === size ? out : out.subarray(0, off), truncated };
}

const scratch: number[] = [];
function shuffled(n: number): number[] {
  scratch.length = n;
  for (let i = 0; i < n; i++) scratch[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const t = scratch[i] as number;
    scratch[i] = scratch[j] as number;
    scratch[j] = t;
  }
  return scratch;
}
