import { addressBytes, addressFromBytes } from '../model/address.js';

/**
 * The little of Ethernet, ARP and IPv6 neighbour discovery that the encrypted overlay's relay
 * reads and writes: where a frame goes, and the answer for an endpoint on another node. Pure:
 * buffers in, buffers out.
 */

/** An Ethernet header: destination, source, EtherType. */
export const ethernetHeader = 14;
const etherTypeArp = 0x0806;
const etherTypeIpv4 = 0x0800;
const arpRequest = 1;
const arpReply = 2;
/** An ARP packet for IPv4 over Ethernet: 28 bytes after the Ethernet header. */
const arpLength = 28;

/** A MAC as `02:42:0a:0b:01:02`, the form the overlay's plan keeps. */
export function macText(b: Buffer, offset = 0): string {
  const out: string[] = [];
  for (let i = 0; i < 6; i++) out.push((b[offset + i] as number).toString(16).padStart(2, '0'));
  return out.join(':');
}

/** The destination MAC of a frame, or undefined for a broadcast or multicast one (or a runt). */
export function unicastDestination(frame: Buffer): string | undefined {
  if (frame.length < ethernetHeader) return undefined;
  // The group bit: set for broadcast and every multicast address.
  if (((frame[0] as number) & 1) === 1) return undefined;
  return macText(frame);
}

/** The IPv4 address an ARP request asks for, with the asker's MAC and address; else undefined. */
export function arpQuestion(frame: Buffer): { target: string; mac: Buffer; ip: Buffer } | undefined {
  if (frame.length < ethernetHeader + arpLength) return undefined;
  if (frame.readUInt16BE(12) !== etherTypeArp) return undefined;
  const a = ethernetHeader;
  const ipv4OverEthernet =
    frame.readUInt16BE(a) === 1 &&
    frame.readUInt16BE(a + 2) === etherTypeIpv4 &&
    frame[a + 4] === 6 &&
    frame[a + 5] === 4;
  if (!ipv4OverEthernet || frame.readUInt16BE(a + 6) !== arpRequest) return undefined;
  return {
    target: [...frame.subarray(a + 24, a + 28)].join('.'),
    mac: Buffer.from(frame.subarray(a + 8, a + 14)),
    ip: Buffer.from(frame.subarray(a + 14, a + 18)),
  };
}

/** The ARP reply saying `address` is at `mac`, addressed to the asker of `q`. */
export function arpAnswer(q: { mac: Buffer; ip: Buffer }, address: string, mac: string): Buffer {
  const macBytes = Buffer.from(mac.split(':').map((h) => Number.parseInt(h, 16)));
  const ip = Buffer.from(address.split('.').map(Number));
  const f = Buffer.alloc(ethernetHeader + arpLength);
  q.mac.copy(f, 0);
  macBytes.copy(f, 6);
  f.writeUInt16BE(etherTypeArp, 12);
  const a = ethernetHeader;
  f.writeUInt16BE(1, a);
  f.writeUInt16BE(etherTypeIpv4, a + 2);
  f[a + 4] = 6;
  f[a + 5] = 4;
  f.writeUInt16BE(arpReply, a + 6);
  macBytes.copy(f, a + 8);
  ip.copy(f, a + 14);
  q.mac.copy(f, a + 18);
  q.ip.copy(f, a + 24);
  return f;
}

const etherTypeIpv6 = 0x86dd;
const ipv6Header = 40;
const icmpv6 = 58;
const neighbourSolicitation = 135;
const neighbourAdvertisement = 136;
/** A neighbour advertisement: type, code, checksum, flags, target, and the target's MAC option. */
const advertisementLength = 32;

/**
 * The IPv6 address a neighbour solicitation (RFC 4861) asks for, with the asker's MAC and
 * address; else undefined. Only the plain form hosts send: ICMPv6 right after the IPv6 header,
 * hop limit 255.
 */
export function ndpQuestion(frame: Buffer): { target: string; mac: Buffer; ip: Buffer } | undefined {
  const ip = ethernetHeader;
  const icmp = ip + ipv6Header;
  if (frame.length < icmp + 24 || frame.readUInt16BE(12) !== etherTypeIpv6) return undefined;
  if (frame[ip + 6] !== icmpv6 || frame[ip + 7] !== 255) return undefined;
  if (frame[icmp] !== neighbourSolicitation || frame[icmp + 1] !== 0) return undefined;
  return {
    target: addressFromBytes(frame.subarray(icmp + 8, icmp + 24)),
    mac: Buffer.from(frame.subarray(6, 12)),
    ip: Buffer.from(frame.subarray(ip + 8, ip + 24)),
  };
}

/** The one's-complement sum of ICMPv6 over its pseudo-header (RFC 8200, section 8.1). */
function icmpv6Checksum(src: Buffer, dst: Buffer, message: Buffer): number {
  const pseudo = Buffer.alloc(40);
  src.copy(pseudo, 0);
  dst.copy(pseudo, 16);
  pseudo.writeUInt32BE(message.length, 32);
  pseudo[39] = icmpv6;
  let sum = 0;
  for (const b of [pseudo, message])
    for (let i = 0; i < b.length; i += 2) sum += (b[i] as number) * 256 + (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * The neighbour advertisement saying `address` is at `mac`, for the asker of `q`: solicited and
 * overriding, with the target's link-layer address option. An asker without an address yet (the
 * unspecified address, during its own duplicate address detection) is answered on all-nodes.
 */
export function ndpAnswer(q: { mac: Buffer; ip: Buffer }, address: string, mac: string): Buffer {
  const macBytes = Buffer.from(mac.split(':').map((h) => Number.parseInt(h, 16)));
  const target = addressBytes(address);
  const unspecified = q.ip.every((b) => b === 0);
  const dst = unspecified ? Buffer.from('ff020000000000000000000000000001', 'hex') : q.ip;
  const f = Buffer.alloc(ethernetHeader + ipv6Header + advertisementLength);
  (unspecified ? Buffer.from([0x33, 0x33, 0, 0, 0, 1]) : q.mac).copy(f, 0);
  macBytes.copy(f, 6);
  f.writeUInt16BE(etherTypeIpv6, 12);
  const ip = ethernetHeader;
  f.writeUInt32BE(0x6000_0000, ip);
  f.writeUInt16BE(advertisementLength, ip + 4);
  f[ip + 6] = icmpv6;
  f[ip + 7] = 255;
  target.copy(f, ip + 8);
  dst.copy(f, ip + 24);
  const m = f.subarray(ip + ipv6Header);
  m[0] = neighbourAdvertisement;
  // Solicited (not when answering all-nodes) and override.
  m.writeUInt32BE(unspecified ? 0x2000_0000 : 0x6000_0000, 4);
  target.copy(m, 8);
  m[24] = 2;
  m[25] = 1;
  macBytes.copy(m, 26);
  m.writeUInt16BE(icmpv6Checksum(target, dst, m), 2);
  return f;
}
