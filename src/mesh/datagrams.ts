import type { Duplex } from 'node:stream';
import { FrameReader, writeFrame } from '../wire/frames.js';

/** Writes one datagram into a tunnel stream, framed so boundaries survive the byte stream. */
export function writeDatagram(stream: Duplex, parts: readonly Buffer[]): void {
  writeFrame(stream, parts);
}

/** Calls `onDatagram` for each framed datagram read from a tunnel stream. */
export function readDatagrams(stream: Duplex, onDatagram: (d: Buffer) => void): void {
  const frames = new FrameReader();
  stream.on('data', (chunk: Buffer) => {
    for (const d of frames.push(chunk)) onDatagram(d);
  });
}
