import * as packet from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { parseQuery, rcode } from '../../../src/dns/wire.js';

/** A query as a resolver sends it, then bent by `edit`. */
function query(name: string, edit: (b: Buffer) => Buffer = (b) => b, edns = false): Buffer {
  return edit(
    packet.encode({
      type: 'query',
      id: 7,
      flags: packet.RECURSION_DESIRED,
      questions: [{ type: 'A', name, class: 'IN' }],
      ...(edns
        ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: 0x8000 } as never] }
        : {}),
    }),
  );
}

const set16 = (at: number, v: number) => (b: Buffer) => {
  const c = Buffer.from(b);
  c.writeUInt16BE(v, at);
  return c;
};

// CoreDNS-style table: one input, the one outcome it must have.
const cases: {
  name: string;
  buf: Buffer;
  want: { ok: true; name: string } | { ok: false; rcode: number; drop: boolean };
}[] = [
  { name: 'a plain query', buf: query('Web.Apps'), want: { ok: true, name: 'web.apps' } },
  {
    name: 'too short for a header',
    buf: Buffer.alloc(11),
    want: { ok: false, rcode: rcode.FORMERR, drop: true },
  },
  {
    name: 'a response, not a query',
    buf: query('web', set16(2, 0x8100)),
    want: { ok: false, rcode: rcode.FORMERR, drop: true },
  },
  {
    name: 'an opcode other than QUERY',
    buf: query('web', set16(2, 0x2800)),
    want: { ok: false, rcode: rcode.NOTIMP, drop: false },
  },
  {
    name: 'two questions',
    buf: query('web', set16(4, 2)),
    want: { ok: false, rcode: rcode.FORMERR, drop: false },
  },
  {
    name: 'an answer in a query',
    buf: query('web', set16(6, 1)),
    want: { ok: false, rcode: rcode.FORMERR, drop: false },
  },
  {
    name: 'a name cut short',
    buf: query('web').subarray(0, 15),
    want: { ok: false, rcode: rcode.FORMERR, drop: false },
  },
  {
    name: 'a compression pointer in the question',
    buf: Buffer.concat([query('web').subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]),
    want: { ok: false, rcode: rcode.FORMERR, drop: false },
  },
  {
    name: 'an OPT count with no OPT',
    buf: query('web', set16(10, 1)),
    want: { ok: false, rcode: rcode.FORMERR, drop: false },
  },
  {
    name: 'a label holding a dot stays one label',
    buf: Buffer.concat([query('x').subarray(0, 12), Buffer.from([3, 0x61, 0x2e, 0x62, 0, 0, 1, 0, 1])]),
    want: { ok: true, name: 'a\\.b' },
  },
];

describe('parseQuery', () => {
  for (const c of cases) {
    it(c.name, () => {
      const r = parseQuery(c.buf);
      if (c.want.ok) {
        expect(r.ok).toBe(true);
        if (r.ok) expect(r.query.name).toBe(c.want.name);
      } else expect(r).toEqual(c.want);
    });
  }

  it('reads the EDNS size (at least 512) and the DO bit', () => {
    const r = parseQuery(query('web', (b) => b, true));
    expect(r.ok && { size: r.query.ednsSize, do: r.query.dnssecOk }).toEqual({ size: 4096, do: true });
    const plain = parseQuery(query('web'));
    expect(plain.ok && plain.query.ednsSize).toBe(0);
  });
});
