import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Mux, type MuxStream } from '../../../src/mesh/mux.js';

/** One end of a connection: what the mux writes is kept, what the test injects is read. */
class Wire extends Duplex {
  readonly sent: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.sent.push(chunk);
    cb();
  }
  override _read(): void {}
}

const OPEN = 1;
const DATA = 2;
const END = 3;
const CREDIT = 5;

function frame(type: number, id: number, payload = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h[0] = type;
  h.writeUInt32BE(id, 1);
  h.writeUInt32BE(payload.length, 5);
  return Buffer.concat([h, payload]);
}

/** An accepting mux on a fake wire; resolves each opened stream with its header. */
function accepting() {
  const wire = new Wire();
  const opened: { stream: MuxStream; header: string }[] = [];
  const violations: string[] = [];
  new Mux(wire as unknown as Socket, false, {
    onOpen: (stream, header) => {
      // A stream reset for breaking its window ends with an error: expected here.
      stream.on('error', () => undefined);
      opened.push({ stream, header });
    },
    onViolation: (reason) => violations.push(reason),
  });
  return { wire, opened, violations };
}

/** Everything a stream delivers until its end, and the buffers it came in. */
function drain(s: MuxStream): Promise<Buffer[]> {
  const pieces: Buffer[] = [];
  s.on('data', (d: Buffer) => pieces.push(d));
  return new Promise((resolve) => s.on('end', () => resolve(pieces)));
}

const payload = Buffer.from(Array.from({ length: 60_000 }, (_, i) => i % 251));
const bytes = Buffer.concat([
  frame(OPEN, 1, Buffer.from('MESHD/1 tcp 10.0.0.1:80')),
  frame(DATA, 1, payload),
  frame(END, 1),
]);

describe('Mux', () => {
  for (const size of [1, 7, 9, 16_384, bytes.length]) {
    it(`reads frames that arrive in chunks of ${size} bytes`, async () => {
      const { wire, opened } = accepting();
      for (let i = 0; i < bytes.length; i += size) wire.push(bytes.subarray(i, i + size));
      await new Promise((r) => setImmediate(r));
      expect(opened.map((o) => o.header)).toEqual(['MESHD/1 tcp 10.0.0.1:80']);
      const got = await drain(opened[0]?.stream as MuxStream);
      expect(Buffer.concat(got).equals(payload)).toBe(true);
    });
  }

  it('hands a stream views of the chunks that arrived, never a joined copy of a frame', async () => {
    const { wire, opened } = accepting();
    const chunks = [bytes.subarray(0, 20_000), bytes.subarray(20_000, 45_000), bytes.subarray(45_000)].map(
      (c) => Buffer.from(c),
    );
    for (const c of chunks) wire.push(c);
    await new Promise((r) => setImmediate(r));
    const got = await drain(opened[0]?.stream as MuxStream);
    expect(got.length).toBeGreaterThan(1);
    for (const g of got) expect(chunks.some((c) => c.buffer === g.buffer)).toBe(true);
  });

  it('refuses a control frame with an oversized payload, and a peer that sends past its window', async () => {
    const a = accepting();
    a.wire.push(frame(OPEN, 1, Buffer.alloc(10_000, 65)));
    await new Promise((r) => setImmediate(r));
    expect(a.violations).toEqual(['protocol']);

    const b = accepting();
    b.wire.push(frame(OPEN, 1, Buffer.from('h')));
    // Nobody reads: after the 1 MB window, the next byte breaks it.
    for (let i = 0; i < 17; i++) b.wire.push(frame(DATA, 1, Buffer.alloc(64 * 1024)));
    await new Promise((r) => setImmediate(r));
    expect(b.violations).toEqual(['window']);
  });

  it('grants credit back in batches once the consumer has taken a quarter of the window', async () => {
    const { wire, opened } = accepting();
    wire.push(frame(OPEN, 1, Buffer.from('h')));
    await new Promise((r) => setImmediate(r));
    const s = opened[0]?.stream as MuxStream;
    s.resume();
    const credits = () => wire.sent.filter((b) => b[0] === CREDIT).length;
    wire.push(frame(DATA, 1, Buffer.alloc(10_000)));
    await new Promise((r) => setImmediate(r));
    expect(credits()).toBe(0);
    for (let i = 0; i < 5; i++) wire.push(frame(DATA, 1, Buffer.alloc(60_000)));
    await new Promise((r) => setImmediate(r));
    expect(credits()).toBe(1);
  });

  it('sends writes that queued up together, as few DATA frames of views of them as 64 KB allows', async () => {
    const wire = new Wire();
    const mux = new Mux(wire as unknown as Socket, true);
    const s = mux.open('h');
    const big = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 253));
    const writes = [Buffer.from([0, 1, 17, 112]), big, Buffer.from([0, 0, 0, 100]), Buffer.alloc(100, 7)];
    // Corked, as the encrypted relay writes a batch: the stream takes them all at once.
    s.cork();
    for (const w of writes) s.write(w);
    s.uncork();
    await new Promise((r) => setImmediate(r));
    const stream = Buffer.concat(wire.sent);
    const data: Buffer[] = [];
    for (let off = 0; off < stream.length; ) {
      const len = stream.readUInt32BE(off + 5);
      if (stream[off] === DATA) {
        expect(len).toBeLessThanOrEqual(64 * 1024);
        data.push(stream.subarray(off + 9, off + 9 + len));
      }
      off += 9 + len;
    }
    expect(Buffer.concat(data).equals(Buffer.concat(writes))).toBe(true);
    // As few frames as 64 KB allows (70,108 bytes: two), not one or more per write.
    expect(data).toHaveLength(2);
    // The 70 KB write went out as views of itself, never copied into a joined buffer.
    expect(wire.sent.filter((b) => b.buffer === big.buffer).length).toBeGreaterThan(0);
  });
});
