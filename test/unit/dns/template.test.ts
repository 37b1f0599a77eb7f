import * as packet from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { buildTemplate, writeResponse } from '../../../src/dns/template.js';
import { parseQuery } from '../../../src/dns/wire.js';

function query(name: string, ednsSize = 0): Buffer {
  return packet.encode({
    type: 'query',
    id: 4242,
    flags: packet.RECURSION_DESIRED,
    questions: [{ type: 'A', name, class: 'IN' }],
    additionals: ednsSize
      ? [{ type: 'OPT', name: '.', udpPayloadSize: ednsSize, flags: 0, options: [] } as never]
      : [],
  });
}

const addresses = Array.from({ length: 100 }, (_, i) => `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`);
const template = buildTemplate(
  {
    kind: 'local',
    rcode: 0,
    answers: addresses.map((a) => ({ type: 'A', name: 'tasks.web', ttl: 5, class: 'IN', data: a }) as const),
    authority: [],
    additional: [],
  },
  'tasks.web',
);

function respond(buf: Buffer, limit: number) {
  const parsed = parseQuery(buf);
  if (!parsed.ok) throw new Error('bad query');
  const r = writeResponse(buf, parsed.query, template, limit, true);
  return { ...r, decoded: packet.decode(r.out) };
}

describe('response templates', () => {
  it('echoes id, RD and the question case; sets AA and RA', () => {
    const { decoded } = respond(query('Tasks.WEB'), 65535);
    expect(decoded.id).toBe(4242);
    expect(decoded.flag_aa).toBe(true);
    expect(decoded.flag_rd).toBe(true);
    expect(decoded.flag_ra).toBe(true);
    expect(decoded.questions?.[0]?.name).toBe('Tasks.WEB');
    expect(decoded.answers?.[0]?.name).toBe('Tasks.WEB');
    expect(decoded.answers).toHaveLength(100);
  });

  it('shuffles multi-record answers on every response', () => {
    const orders = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const { decoded } = respond(query('tasks.web'), 65535);
      orders.add((decoded.answers ?? []).map((a) => (a as { data: string }).data).join(','));
      expect(new Set((decoded.answers ?? []).map((a) => (a as { data: string }).data))).toEqual(
        new Set(addresses),
      );
    }
    expect(orders.size).toBeGreaterThan(15);
  });

  it('truncates to 512 bytes with TC, or to the EDNS size', () => {
    const plain = respond(query('tasks.web'), 512);
    expect(plain.truncated).toBe(true);
    expect(plain.out.length).toBeLessThanOrEqual(512);
    expect(plain.decoded.flag_tc).toBe(true);
    // 16-byte records (owner compressed to a pointer): 30 fit after a 27-byte header+question.
    expect(plain.decoded.answers).toHaveLength(30);
    const edns = respond(query('tasks.web', 1232), 1232);
    expect(edns.out.length).toBeLessThanOrEqual(1232);
    expect(edns.decoded.answers?.length).toBeGreaterThan(70);
    expect(edns.decoded.additionals?.[0]?.type).toBe('OPT');
    const big = respond(query('tasks.web', 4096), 4096);
    expect(big.truncated).toBe(false);
    expect(big.decoded.answers).toHaveLength(100);
  });
});

describe('query parsing', () => {
  it.each([
    ['a short packet', Buffer.alloc(5), { ok: false, drop: true }],
    ['a response', Buffer.from('000081800001000000000000', 'hex'), { ok: false, drop: true }],
    ['qdcount 2', Buffer.from('000001000002000000000000', 'hex'), { ok: false, rcode: 1, drop: false }],
    [
      'a compression pointer in the question',
      Buffer.from('000001000001000000000000c00c00010001', 'hex'),
      { ok: false, rcode: 1 },
    ],
    ['an unterminated name', Buffer.from('0000010000010000000000000377', 'hex'), { ok: false, rcode: 1 }],
    ['opcode UPDATE', Buffer.from('000028000001000000000000', 'hex'), { ok: false, rcode: 4 }],
  ])('refuses %s', (_what, buf, want) => {
    expect(parseQuery(buf)).toMatchObject(want);
  });
});
