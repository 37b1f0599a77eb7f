import ipaddr from 'ipaddr.js';
import { invalid } from './errors.js';

/** A parsed CIDR block with its bounds as integers, so v4 and v6 share one arithmetic. */
export interface Cidr {
  readonly text: string;
  readonly family: 4 | 6;
  readonly prefix: number;
  readonly first: bigint;
  readonly last: bigint;
}

/**
 * Parsed subnets, by their text: every address allocation and scope check parses a network's
 * subnet, and a cluster has few. Bounded all the same (the text can come from a request).
 */
const parsedCidrs = new Map<string, Cidr>();
const parsedCidrsMax = 4096;

/** Parses `10.0.0.0/24` or `fd00::/64`; host bits must be zero, as Docker requires. */
export function parseCidr(text: string): Cidr {
  const known = parsedCidrs.get(text);
  if (known) return known;
  const cidr = parseCidrText(text);
  if (parsedCidrs.size >= parsedCidrsMax) parsedCidrs.clear();
  parsedCidrs.set(text, cidr);
  return cidr;
}

function parseCidrText(text: string): Cidr {
  let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
  try {
    // ipaddr's own parseCIDR tries v6 first and throws on every v4 block: slow, and v4 is common.
    parsed = text.includes(':') ? ipaddr.IPv6.parseCIDR(text) : ipaddr.IPv4.parseCIDR(text);
  } catch {
    throw invalid(`invalid subnet ${text}: not a CIDR block`);
  }
  const [addr, prefix] = parsed;
  const family = addr.kind() === 'ipv4' ? 4 : 6;
  const bits = family === 4 ? 32 : 128;
  const value = toBigInt(addr);
  const size = 1n << BigInt(bits - prefix);
  const first = (value / size) * size;
  if (first !== value) throw invalid(`invalid subnet ${text}: host bits are set`);
  return { text: `${addr.toString()}/${prefix}`, family, prefix, first, last: first + size - 1n };
}

/** Parses one address (v4 or v6, IPv4-mapped v6 kept as v6) into its canonical text. */
export function parseAddress(text: string): { family: 4 | 6; value: bigint; text: string } {
  if (!ipaddr.isValid(text)) throw invalid(`invalid IP address ${text}`);
  const addr = ipaddr.parse(text);
  return { family: addr.kind() === 'ipv4' ? 4 : 6, value: toBigInt(addr), text: addr.toString() };
}

/** Canonical text of an address (lower case, compressed v6), or undefined if it is not one. */
export function canonicalAddress(text: string): string | undefined {
  return ipaddr.isValid(text) ? ipaddr.parse(text).toString() : undefined;
}

/** An address as its bytes on the wire: 4 for IPv4, 16 for IPv6. */
export function addressBytes(text: string): Buffer {
  return Buffer.from(ipaddr.parse(text).toByteArray());
}

/** An address from its bytes on the wire, in canonical text. */
export function addressFromBytes(b: Uint8Array): string {
  return ipaddr.fromByteArray([...b]).toString();
}

export function toBigInt(addr: ipaddr.IPv4 | ipaddr.IPv6): bigint {
  let v = 0n;
  if (addr.kind() === 'ipv4') {
    for (const o of (addr as ipaddr.IPv4).octets) v = (v << 8n) | BigInt(o);
  } else {
    for (const p of (addr as ipaddr.IPv6).parts) v = (v << 16n) | BigInt(p);
  }
  return v;
}

export function fromBigInt(value: bigint, family: 4 | 6): string {
  if (family === 4) {
    const o: number[] = [];
    for (let i = 3; i >= 0; i--) o.push(Number((value >> BigInt(i * 8)) & 0xffn));
    return o.join('.');
  }
  const parts: number[] = [];
  for (let i = 7; i >= 0; i--) parts.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  return ipaddr.fromByteArray(parts.flatMap((p) => [p >> 8, p & 0xff])).toString();
}

export function cidrContains(cidr: Cidr, address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const a = parseAddress(address);
  return a.family === cidr.family && a.value >= cidr.first && a.value <= cidr.last;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

/** The reverse-lookup name of an address (`4.3.2.1.in-addr.arpa`, nibbles for v6). */
export function reverseName(address: string): string {
  // The common case without a full parse: this runs for every address on every snapshot.
  if (/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address))
    return `${address.split('.').reverse().join('.')}.in-addr.arpa`;
  const a = parseAddress(address);
  if (a.family === 4) return `${a.text.split('.').reverse().join('.')}.in-addr.arpa`;
  const hex = a.value.toString(16).padStart(32, '0');
  return `${hex.split('').reverse().join('.')}.ip6.arpa`;
}

/** The address a reverse name (`4.3.2.10.in-addr.arpa`, 32 nibbles of `ip6.arpa`) stands for. */
export function addressOfReverseName(name: string): string | undefined {
  const n = name.toLowerCase().replace(/\.$/, '');
  if (n.endsWith('.in-addr.arpa')) {
    const labels = n.slice(0, -'.in-addr.arpa'.length).split('.');
    if (labels.length !== 4 || labels.some((l) => !/^\d{1,3}$/.test(l) || Number(l) > 255)) return undefined;
    return labels.reverse().map(Number).join('.');
  }
  if (n.endsWith('.ip6.arpa')) {
    const nibbles = n.slice(0, -'.ip6.arpa'.length).split('.');
    if (nibbles.length !== 32 || nibbles.some((x) => !/^[0-9a-f]$/.test(x))) return undefined;
    return fromBigInt(BigInt(`0x${nibbles.reverse().join('')}`), 6);
  }
  return undefined;
}

/**
 * A socket `lookup` for addresses that are already IP literals (replies, task addresses):
 * answering at once skips dns.lookup's deferral to the next tick, about a tenth of the cost of a
 * UDP reply.
 */
export function literalLookup(
  address: string,
  _opts: unknown,
  cb: (err: Error | null, address: string, family: number) => void,
): void {
  cb(null, address, address.includes(':') ? 6 : 4);
}
