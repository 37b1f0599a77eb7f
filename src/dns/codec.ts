import type { Answer as Rr } from 'dns-packet';
import * as packet from 'dns-packet';

/** dns-packet's per-record codec, which its type declarations leave out. */
const recordCodec = (packet as unknown as { answer: { encode(rr: Rr): Buffer } }).answer;

/**
 * Encodes one resource record. When its owner is the question name, the owner is written as a
 * compression pointer to the question (offset 12): 16 bytes per A record instead of 12 + name,
 * so nearly twice as many records fit in 512 bytes, and the owner echoes the question's case.
 */
export function encodeRecord(rr: Rr, qname: string): Buffer {
  if (rr.name !== qname) return recordCodec.encode(rr);
  const rootOwned = recordCodec.encode({ ...rr, name: '.' } as Rr);
  const out = Buffer.allocUnsafe(rootOwned.length + 1);
  out[0] = 0xc0;
  out[1] = 0x0c;
  rootOwned.copy(out, 2, 1);
  return out;
}

/** Our EDNS OPT record: 1232 bytes is the size DNS Flag Day 2020 settled on to avoid fragmentation. */
export const ourEdnsSize = 1232;
export const optRecord: Buffer = recordCodec.encode({
  type: 'OPT',
  name: '.',
  udpPayloadSize: ourEdnsSize,
  flags: 0,
  options: [],
} as unknown as Rr);

export { packet };
