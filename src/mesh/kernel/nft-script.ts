import { createHash } from 'node:crypto';
import type { Family, KernelEntry, KernelTarget } from './plan.js';

/**
 * nft scripts for meshd's own tables (`ip meshd`, `ip6 meshd`), after kube-proxy's nftables mode:
 * maps from what a packet is addressed to (a VIP, a published port) to a chain per service port,
 * whose one rule picks a task and rewrites the destination. Pure text: `nft -f -` applies a
 * script as one transaction, so the kernel never sees half an update.
 *
 * Where the tasks go, and why not an inline map per service: every inline map is an anonymous set,
 * and the kernel names each new one by scanning all of them (10,000 services took minutes to
 * load). Instead each service's tasks are a block of slots in one of `shards` named maps:
 * `numgen inc mod N offset K map @tS` picks slot K..K+N-1. A task change rewrites only its slots
 * (map elements); only a change in the number of tasks rewrites the rule. Shards keep the maps
 * small, because the kernel checks each map element against every rule bound to that map.
 */
export const table = 'meshd';
export const shards = 128;

/** Packets to masquerade: to a task on another node, or from a task to itself through its VIP. */
export const dnatMark = 0x0010_0000;
/** New connections with nowhere to go: refused in the filter hooks, as a closed port would be. */
export const refuseMark = 0x0020_0000;
/**
 * The upper half of a connection's conntrack mark names the entry it was sent by (1..65535), so
 * the counting chains can add each of its packets, both ways, to that entry's traffic counter.
 * The lower half is left to whoever else uses conntrack marks.
 */
export const maxTrafficId = 0xffff;
/** The conntrack mark value of an entry's connections, from its traffic id. */
export const trafficMarkValue = (id: number): number => id * 0x1_0000;
const trafficMark = (id: number) => hex(trafficMarkValue(id));

const hex = (n: number) => `0x${n.toString(16)}`;
const addrOf = (f: Family) => (f === 'ip' ? 'ip' : 'ip6');

/** The shard an entry's slots live in: stable, so an entry stays put while its tasks change. */
export function shardOf(key: string): number {
  return createHash('sha1').update(key).digest().readUInt32BE(0) % shards;
}

/** The name of an entry's chain, and of its counter: short, stable and free of odd characters. */
export function entryChain(e: { key: string }): string {
  return `svc-${createHash('sha1').update(e.key).digest('hex').slice(0, 12)}`;
}

/**
 * Maps of task slots: address and port for a published port, one map kind per protocol (nft
 * types a map's port by the protocol it was declared with), or the address alone for a VIP.
 */
export const slotMap = (e: KernelEntry, shard: number) =>
  `${'vip' in e.match || e.proto === 'any' ? 'v' : e.proto === 'udp' ? 'u' : 't'}${shard}`;

/**
 * A slot map, made when its first entry needs it: nft reads every set's definition before each
 * change, so a table holds only the maps in use (a few for a few services, all at thousands).
 */
export function addSlotMap(family: Family, name: string): string {
  const a = addrOf(family);
  const value = name[0] === 'v' ? `${a} daddr` : `${a} daddr . ${name[0] === 'u' ? 'udp' : 'tcp'} dport`;
  return `add map ${family} ${table} ${name} { typeof numgen inc mod 2 : ${value}; }`;
}

/** The table from scratch: created when missing, then replaced whole, in one transaction. */
export function baseScript(family: Family): string {
  const a = addrOf(family);
  const addrType = family === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
  const loopback = family === 'ip' ? '127.0.0.0/8' : '::1';
  const marked = `meta mark & ${hex(dnatMark)} != 0`;
  // One chain per filter hook, so a packet passes one of meshd's hooks there, not two: it counts
  // the traffic of the entry its connection belongs to (a lookup in a set declared with
  // `counter` counts on the element it matched), and refuses a new connection with nowhere to go.
  const filter = (hook: string) =>
    `  chain filter-${hook} { type filter hook ${hook} priority -1; policy accept; ct mark & 0xffff0000 @traffic; meta mark & ${hex(refuseMark)} != 0 jump refuse; }`;
  return [
    `table ${family} ${table} {}`,
    `delete table ${family} ${table}`,
    `table ${family} ${table} {`,
    // Each element counts the new connections it dispatched (nat chains see only a
    // connection's first packet): per-element counters, not named counter objects, which nft
    // would fetch whole before every change.
    `  map vips { type ${addrType} : verdict; counter; }`,
    '  map ports { type inet_proto . inet_service : verdict; counter; }',
    `  map addr-ports { type ${addrType} . inet_proto . inet_service : verdict; counter; }`,
    // Task addresses on other nodes, and (task, task) pairs for a task that reaches itself.
    `  set remote { type ${addrType}; }`,
    `  set hairpin { type ${addrType} . ${addrType}; }`,
    // Each entry's traffic counter, by the conntrack mark its connections carry.
    '  set traffic { type mark; counter; }',
    '  chain prerouting { type nat hook prerouting priority -100; policy accept; jump services; }',
    '  chain output { type nat hook output priority -100; policy accept; jump services; }',
    '  chain postrouting { type nat hook postrouting priority 100; policy accept;',
    `    ${marked} ${a} daddr @remote masquerade fully-random`,
    `    ${marked} ${a} saddr . ${a} daddr @hairpin masquerade fully-random`,
    '  }',
    '  chain services {',
    `    meta l4proto { tcp, udp } ${a} daddr vmap @vips`,
    `    ${a} daddr . meta l4proto . th dport vmap @addr-ports`,
    // Loopback stays with the userspace listener: DNAT from 127/8 would need route_localnet,
    // which lets martian packets in (kube-proxy's CVE-2020-8558).
    `    fib daddr type local ${a} daddr != ${loopback} meta l4proto . th dport vmap @ports`,
    '  }',
    filter('input'),
    filter('forward'),
    filter('output'),
    '  chain refuse { meta l4proto tcp reject with tcp reset; reject; }',
    '}',
    '',
  ].join('\n');
}

/** Where an entry's slots are: shard and first slot. */
export interface Block {
  readonly shard: number;
  readonly offset: number;
}

function pickExpr(e: KernelEntry, block: Block): string {
  const n = e.targets.length;
  const head =
    e.pick === 'jhash'
      ? `jhash ${addrOf(e.family)} saddr mod ${n}`
      : `numgen ${e.pick === 'inc' ? 'inc' : 'random'} mod ${n}`;
  return `${head} offset ${block.offset}`;
}

/**
 * An entry's rule: mark the connection ours, name the entry in the connection's mark (for its
 * traffic counter), pick a slot, rewrite the destination. (The map element that sent it here
 * counted it.)
 */
export function entryRule(e: KernelEntry, block: Block, traffic = 0): string {
  const head = `add rule ${e.family} ${table} ${entryChain(e)}`;
  if (e.targets.length === 0) return `${head} meta mark set meta mark | ${hex(refuseMark)}`;
  const l4 = e.proto === 'any' ? '' : `meta l4proto ${e.proto} `;
  const ct = traffic > 0 ? `ct mark set ct mark & 0xffff | ${trafficMark(traffic)} ` : '';
  return `${head} meta mark set meta mark | ${hex(dnatMark)} ${ct}${l4}dnat to ${pickExpr(e, block)} map @${slotMap(e, block.shard)}`;
}

/** A slot's value: the task address, and the target port where the port is rewritten. */
function slotValue(t: KernelTarget): string {
  return t.port === undefined ? t.addr : `${t.addr} . ${t.port}`;
}

/** The slot elements of an entry's tasks, from the block's first slot on. */
export function slotElements(
  e: KernelEntry,
  block: Block,
  verb: 'add' | 'delete',
  from = 0,
): string | undefined {
  const items = e.targets.slice(from).map((t, i) => {
    const slot = block.offset + from + i;
    return verb === 'add' ? `${slot} : ${slotValue(t)}` : String(slot);
  });
  if (items.length === 0) return undefined;
  return `${verb} element ${e.family} ${table} ${slotMap(e, block.shard)} { ${items.join(', ')} }`;
}

/** One slot rewritten in place (delete and add in the same transaction). */
export function replaceSlot(e: KernelEntry, block: Block, i: number): string[] {
  const map = `${e.family} ${table} ${slotMap(e, block.shard)}`;
  const slot = block.offset + i;
  return [
    `delete element ${map} { ${slot} }`,
    `add element ${map} { ${slot} : ${slotValue(e.targets[i] as KernelTarget)} }`,
  ];
}

/** The map element that sends an entry's packets to its chain. */
export function elementOf(e: KernelEntry): { map: string; key: string } {
  if ('vip' in e.match) return { map: 'vips', key: e.match.vip };
  const proto = e.proto === 'any' ? 'tcp' : e.proto;
  if (e.match.addr) return { map: 'addr-ports', key: `${e.match.addr} . ${proto} . ${e.match.publish}` };
  return { map: 'ports', key: `${proto} . ${e.match.publish}` };
}

export function addEntry(e: KernelEntry, traffic = 0): string[] {
  const name = entryChain(e);
  const { map, key } = elementOf(e);
  const counted = traffic > 0 ? [`add element ${e.family} ${table} traffic { ${trafficMark(traffic)} }`] : [];
  return [
    ...counted,
    `add chain ${e.family} ${table} ${name}`,
    `add element ${e.family} ${table} ${map} { ${key} : goto ${name} }`,
  ];
}

export function deleteEntry(e: KernelEntry, traffic = 0): string[] {
  const { map, key } = elementOf(e);
  const counted =
    traffic > 0 ? [`delete element ${e.family} ${table} traffic { ${trafficMark(traffic)} }`] : [];
  return [
    `delete element ${e.family} ${table} ${map} { ${key} }`,
    `delete chain ${e.family} ${table} ${entryChain(e)}`,
    ...counted,
  ];
}

export const flushEntry = (e: KernelEntry) => `flush chain ${e.family} ${table} ${entryChain(e)}`;

/** Set elements for the masquerade sets, added or deleted in batches. */
export function setElements(
  family: Family,
  set: 'remote' | 'hairpin',
  verb: 'add' | 'delete',
  items: readonly string[],
): string[] {
  const out: string[] = [];
  for (let i = 0; i < items.length; i += 500)
    out.push(`${verb} element ${family} ${table} ${set} { ${items.slice(i, i + 500).join(', ')} }`);
  return out;
}
