import { type Family, type KernelEntry, type KernelTarget, objectName } from './plan.js';

/**
 * nft scripts for meshd's own tables (`ip meshd`, `ip6 meshd`), after kube-proxy's nftables mode:
 * maps from what a packet is addressed to (a VIP, a published port) to a chain per service port,
 * which picks a chain per task that does the DNAT. Pure text: `nft -f -` applies a script as one
 * transaction, so the kernel never sees half an update.
 */
export const table = 'meshd';

/** Packets to masquerade (the task is on another node, or talks to itself through its VIP). */
export const masqueradeMark = 0x0010_0000;
/** New connections with nowhere to go: refused in the filter hooks, as a closed port would be. */
export const refuseMark = 0x0020_0000;

const hex = (n: number) => `0x${n.toString(16)}`;

/** The table from scratch: created when missing, then replaced whole, in one transaction. */
export function baseScript(family: Family): string {
  const addrType = family === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
  const daddr = family === 'ip' ? 'ip daddr' : 'ip6 daddr';
  const loopback = family === 'ip' ? '127.0.0.0/8' : '::1';
  const refuse = (hook: string) =>
    `  chain refuse-${hook} { type filter hook ${hook} priority 0; policy accept; meta mark & ${hex(refuseMark)} != 0 jump refuse; }`;
  return [
    `table ${family} ${table} {}`,
    `delete table ${family} ${table}`,
    `table ${family} ${table} {`,
    `  map vips { type ${addrType} : verdict; }`,
    '  map ports { type inet_proto . inet_service : verdict; }',
    `  map addr-ports { type ${addrType} . inet_proto . inet_service : verdict; }`,
    '  chain prerouting { type nat hook prerouting priority -100; policy accept; jump services; }',
    '  chain output { type nat hook output priority -100; policy accept; jump services; }',
    `  chain postrouting { type nat hook postrouting priority 100; policy accept; meta mark & ${hex(masqueradeMark)} != 0 masquerade fully-random; }`,
    '  chain services {',
    `    meta l4proto { tcp, udp } ${daddr} vmap @vips`,
    `    ${daddr} . meta l4proto . th dport vmap @addr-ports`,
    // Loopback stays with the userspace listener: DNAT from 127/8 would need route_localnet,
    // which lets martian packets in (kube-proxy's CVE-2020-8558).
    `    fib daddr type local ${daddr} != ${loopback} meta l4proto . th dport vmap @ports`,
    '  }',
    refuse('input'),
    refuse('forward'),
    refuse('output'),
    '  chain refuse { meta l4proto tcp reject with tcp reset; reject; }',
    '}',
    '',
  ].join('\n');
}

/** The chain of one entry (service port or VIP) and its counter share a name. */
export const entryChain = (e: KernelEntry) => objectName('svc', e.key);

/** One chain per task and rewrite: entries that send to the same place share it. */
export function targetKey(family: Family, proto: KernelEntry['proto'], t: KernelTarget): string {
  return `${family}|${proto}|${t.addr}|${t.port ?? '*'}|${t.masquerade}`;
}
export const targetChain = (key: string) => objectName('ep', key);

function formatTarget(family: Family, t: KernelTarget): string {
  if (t.port === undefined) return t.addr;
  return family === 'ip6' ? `[${t.addr}]:${t.port}` : `${t.addr}:${t.port}`;
}

/** Creates (or rewrites) the chain of one task rewrite. */
export function targetCommands(family: Family, proto: KernelEntry['proto'], t: KernelTarget): string[] {
  const name = targetChain(targetKey(family, proto, t));
  const at = `${family} ${table} ${name}`;
  const saddr = family === 'ip' ? 'ip saddr' : 'ip6 saddr';
  const mark = `meta mark set meta mark | ${hex(masqueradeMark)}`;
  const l4 = proto === 'any' ? '' : `meta l4proto ${proto} `;
  return [
    `add chain ${at}`,
    `flush chain ${at}`,
    // A task that reaches itself through its VIP would answer itself directly: masquerade it.
    `add rule ${at} ${saddr} ${t.addr} ${mark}`,
    ...(t.masquerade ? [`add rule ${at} ${mark}`] : []),
    `add rule ${at} ${l4}dnat to ${formatTarget(family, t)}`,
  ];
}

function pickExpr(e: KernelEntry): string {
  const n = e.targets.length;
  if (e.pick === 'jhash') return `jhash ${e.family === 'ip' ? 'ip' : 'ip6'} saddr mod ${n}`;
  return `numgen ${e.pick === 'inc' ? 'inc' : 'random'} mod ${n}`;
}

/** Creates or rewrites an entry's chain: a counter, then a pick among its tasks' chains. */
export function entryCommands(e: KernelEntry, isNew: boolean): string[] {
  const name = entryChain(e);
  const at = `${e.family} ${table} ${name}`;
  const counted = `counter name "${name}"`;
  const pick =
    e.targets.length === 0
      ? `meta mark set meta mark | ${hex(refuseMark)}`
      : `${pickExpr(e)} vmap { ${e.targets
          .map((t, i) => `${i} : goto ${targetChain(targetKey(e.family, e.proto, t))}`)
          .join(', ')} }`;
  return [
    ...(isNew ? [`add counter ${e.family} ${table} ${name}`] : []),
    `add chain ${at}`,
    `flush chain ${at}`,
    `add rule ${at} ${counted} ${pick}`,
  ];
}

/** The map element that sends an entry's packets to its chain. */
export function elementOf(e: KernelEntry): { map: string; key: string } {
  if ('vip' in e.match) return { map: 'vips', key: e.match.vip };
  const proto = e.proto === 'any' ? 'tcp' : e.proto;
  if (e.match.addr) return { map: 'addr-ports', key: `${e.match.addr} . ${proto} . ${e.match.publish}` };
  return { map: 'ports', key: `${proto} . ${e.match.publish}` };
}

export function addElement(e: KernelEntry): string {
  const { map, key } = elementOf(e);
  return `add element ${e.family} ${table} ${map} { ${key} : goto ${entryChain(e)} }`;
}

export function deleteElement(e: KernelEntry): string {
  const { map, key } = elementOf(e);
  return `delete element ${e.family} ${table} ${map} { ${key} }`;
}

export function deleteEntry(e: KernelEntry): string[] {
  const name = entryChain(e);
  return [`delete chain ${e.family} ${table} ${name}`, `delete counter ${e.family} ${table} ${name}`];
}

export const deleteTarget = (family: Family, key: string) =>
  `delete chain ${family} ${table} ${targetChain(key)}`;
