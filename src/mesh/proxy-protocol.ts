import { isIPv4 } from 'node:net';
import ipaddr from 'ipaddr.js';

/** PROXY protocol v1: one text line naming the client and the address it connected to. */
export function proxyV1(src: string, srcPort: number, dst: string, dstPort: number): Buffer {
  const s = unmap(src);
  const d = unmap(dst);
  const family = isIPv4(s) && isIPv4(d) ? 'TCP4' : 'TCP6';
  return Buffer.from(
    `PROXY ${family} ${family === 'TCP6' ? v6(s) : s} ${family === 'TCP6' ? v6(d) : d} ${srcPort} ${dstPort}\r\n`,
    'latin1',
  );
}

const signature = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** PROXY protocol v2 (binary): version 2, PROXY command, TCP or UDP over IPv4 or IPv6. */
export function proxyV2(
  src: string,
  srcPort: number,
  dst: string,
  dstPort: number,
  proto: 'tcp' | 'udp',
): Buffer {
  const s = unmap(src);
  const d = unmap(dst);
  const four = isIPv4(s) && isIPv4(d);
  const addrLen = four ? 12 : 36;
  const out = Buffer.alloc(16 + addrLen);
  signature.copy(out, 0);
  out[12] = 0x21; // version 2, command PROXY
  out[13] = (four ? 0x10 : 0x20) | (proto === 'tcp' ? 0x01 : 0x02);
  out.writeUInt16BE(addrLen, 14);
  if (four) {
    writeAddress(out, 16, s, false);
    writeAddress(out, 20, d, false);
    out.writeUInt16BE(srcPort, 24);
    out.writeUInt16BE(dstPort, 26);
  } else {
    writeAddress(out, 16, s, true);
    writeAddress(out, 32, d, true);
    out.writeUInt16BE(srcPort, 48);
    out.writeUInt16BE(dstPort, 50);
  }
  return out;
}

function unmap(a: string): string {
  return a.startsWith('::ffff:') && isIPv4(a.slice(7)) ? a.slice(7) : a;
}

function v6(a: string): string {
  return isIPv4(a) ? `::ffff:${a}` : a;
}

/** Writes an address's bytes (4 for v4; 16 for v6, with v4 mapped) at `off`. */
function writeAddress(buf: Buffer, off: number, a: string, v6only: boolean): void {
  let addr = ipaddr.parse(a);
  if (v6only && addr.kind() === 'ipv4') addr = (addr as ipaddr.IPv4).toIPv4MappedAddress();
  Buffer.from(addr.toByteArray()).copy(buf, off);
}
