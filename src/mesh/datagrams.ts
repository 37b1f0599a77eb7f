import type { Duplex } from 'node:stream';

/** Largest datagram carried through a tunnel stream (the UDP maximum). */
const maxDatagram = 65_535;

/** Writes one datagram into a stream as `length(2) payload`, so boundaries survive the byte stream. */
export function writeDatagram(stream: Duplex, parts: readonly Buffer[]): void {
  const len = parts.reduce((n, p) => n + p.length, 0);
  if (len > maxDatagram) return;
  const h = Buffer.allocUnsafe(2);
  h.writeUInt16BE(len);
  stream.cork();
  stream.write(h);
  for (const p of parts) stream.write(p);
  stream.uncork();
}

/** Calls `onDatagram` for each length-prefixed datagram read from the stream. */
export function readDatagrams(stream: Duplex, onDatagram: (d: Buffer) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) break;
      onDatagram(buf.subarray(2, 2 + len));
      buf = buf.subarray(2 + len);
    }
  });
}
