/**
 * The little of Ethernet and ARP that the encrypted overlay's relay reads and writes: where a
 * frame goes, and the ARP reply for an endpoint on another node. Pure: buffers in, buffers out.
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
