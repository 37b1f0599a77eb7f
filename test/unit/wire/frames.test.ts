import { describe, expect, it } from 'vitest';
import { BadFrame, FrameReader, frameHeader, writeFrame } from '../../../src/wire/frames.js';

const framed = (...payloads: string[]) =>
  Buffer.concat(payloads.flatMap((p) => [frameHeader(p.length) as Buffer, Buffer.from(p)]));

describe('FrameReader', () => {
  const stream = framed('hello', '', 'a longer message');
  it.each([
    ['one chunk', [stream.length]],
    ['byte by byte', Array.from({ length: stream.length }, () => 1)],
    ['split inside a header', [1, 2, 7, stream.length]],
    ['split inside a payload', [4, 9, stream.length]],
  ])('returns every frame whole when the stream arrives %s', (_, cuts) => {
    const reader = new FrameReader();
    const got: string[] = [];
    let from = 0;
    for (const size of cuts) {
      const to = Math.min(stream.length, from + size);
      for (const f of reader.push(stream.subarray(from, to))) got.push(f.toString());
      from = to;
    }
    expect(got).toEqual(['hello', '', 'a longer message']);
    expect(reader.pending).toBe(0);
  });

  it('holds an incomplete frame until the rest arrives', () => {
    const reader = new FrameReader();
    expect(reader.push(stream.subarray(0, 4))).toEqual([]);
    expect(reader.pending).toBe(4);
  });

  it('refuses a frame shorter than the minimum (a DNS message is at least its 12-byte header)', () => {
    const reader = new FrameReader(12);
    expect(() => reader.push(framed('short'))).toThrow(BadFrame);
    expect(new FrameReader(12).push(framed('exactly 12 b'))).toHaveLength(1);
  });

  it('reads 4-byte lengths (an encrypted overlay frame of 64 KB and more) and refuses one past the maximum', () => {
    const big = Buffer.alloc(70_000, 7);
    const reader = new FrameReader(0, 4, 70_000);
    const stream = Buffer.concat([frameHeader(big.length, 4) as Buffer, big]);
    expect(reader.push(stream.subarray(0, 3))).toEqual([]);
    const [got] = reader.push(stream.subarray(3));
    expect(got?.equals(big)).toBe(true);
    expect(() => new FrameReader(0, 4, 69_999).push(stream)).toThrow(BadFrame);
  });

  it('joins a frame that comes in many chunks once, whole, with the next frame behind it', () => {
    const big = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    const small = Buffer.from('next');
    const stream = Buffer.concat([
      frameHeader(big.length, 4) as Buffer,
      big,
      frameHeader(small.length, 4) as Buffer,
      small,
    ]);
    const reader = new FrameReader(0, 4, 70_000);
    const got: Buffer[] = [];
    for (let at = 0; at < stream.length; at += 1000) {
      got.push(...reader.push(stream.subarray(at, at + 1000)));
      if (got.length === 0) expect(reader.pending).toBe(Math.min(stream.length, at + 1000));
    }
    expect(got.map((f) => f.length)).toEqual([70_000, 4]);
    expect(got[0]?.equals(big)).toBe(true);
    expect(got[1]?.toString()).toBe('next');
    expect(reader.pending).toBe(0);
  });
});

describe('writeFrame', () => {
  const sink = () => {
    const chunks: Buffer[] = [];
    return { chunks, cork() {}, uncork() {}, write: (b: Buffer) => chunks.push(b) > 0 };
  };

  it('writes a header and the parts, which a reader turns back into one message', () => {
    const out = sink();
    expect(writeFrame(out, [Buffer.from('ab'), Buffer.from('cd')])).toBe(true);
    expect(new FrameReader().push(Buffer.concat(out.chunks)).map(String)).toEqual(['abcd']);
  });

  it('drops a message too big for a two-byte length', () => {
    const out = sink();
    expect(writeFrame(out, [Buffer.alloc(65_536)])).toBe(false);
    expect(out.chunks).toEqual([]);
  });
});
