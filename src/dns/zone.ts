import { type Cidr, parseCidr, reverseName } from '../model/address.js';
import type { ClusterState } from '../model/cluster-state.js';
import type { Network } from '../model/types.js';

/** The addresses a name answers on one network; an empty list is a known name with no records. */
export interface NameRecords {
  readonly v4: readonly string[];
  readonly v6: readonly string[];
}

export interface SrvTarget {
  readonly target: string;
  readonly port: number;
  readonly address: string;
}

/** A reverse record: answered only to clients that see `network`, as forward names are. */
export interface PtrRecord {
  readonly target: string;
  readonly network: string;
}

/** Every name one network answers. */
export interface NetworkZone {
  readonly id: string;
  readonly name: string;
  readonly internal: boolean;
  readonly subnet: Cidr;
  readonly names: ReadonlyMap<string, NameRecords>;
  readonly srv: ReadonlyMap<string, readonly SrvTarget[]>;
}

/** What the DNS answers from: built once per snapshot, read by every query. */
export interface DnsView {
  /** Zones with names, user networks in creation order (ingress carries no names). */
  readonly zones: readonly NetworkZone[];
  readonly zoneByName: ReadonlyMap<string, NetworkZone>;
  /** Every network (ingress too) for scoping a client by subnet. */
  readonly subnets: readonly { readonly id: string; readonly cidr: Cidr }[];
  /** An endpoint address -> the networks its endpoint is attached to. */
  readonly endpointNetworks: ReadonlyMap<string, readonly string[]>;
  /** Reverse name -> the name it points to (without the trailing dot) and the network it is on. */
  readonly ptr: ReadonlyMap<string, PtrRecord>;
  /** Names known on some network, for NXDOMAIN (not forwarding) to clients outside it. */
  readonly known: ReadonlySet<string>;
}

class ZoneBuilder {
  readonly names = new Map<string, { v4: string[]; v6: string[] }>();
  readonly srv = new Map<string, SrvTarget[]>();

  constructor(readonly network: Network) {}

  /** Declares a name even with no address, so it answers NODATA rather than NXDOMAIN. */
  declare(name: string): void {
    const key = name.toLowerCase();
    if (!this.names.has(key)) this.names.set(key, { v4: [], v6: [] });
  }

  add(name: string, address: string): void {
    const key = name.toLowerCase();
    this.declare(key);
    const rec = this.names.get(key) as { v4: string[]; v6: string[] };
    const list = address.includes(':') ? rec.v6 : rec.v4;
    if (!list.includes(address)) list.push(address);
  }

  addSrv(name: string, t: SrvTarget): void {
    const key = name.toLowerCase();
    const list = this.srv.get(key) ?? [];
    list.push(t);
    this.srv.set(key, list);
  }
}

/** Builds the DNS view. `up` says which tasks are in rotation; `domain` qualifies SRV targets. */
export function buildDnsView(state: ClusterState, up: (taskId: string) => boolean, domain: string): DnsView {
  const builders = new Map<string, ZoneBuilder>();
  const subnets: { id: string; cidr: Cidr }[] = [];
  for (const n of state.networks.values()) {
    subnets.push({ id: n.id, cidr: parseCidr(n.subnet) });
    if (!n.ingress) builders.set(n.id, new ZoneBuilder(n));
  }
  const endpointNetworks = new Map<string, string[]>();
  const ptr = new Map<string, PtrRecord>();
  const fqdn = (name: string) => (domain ? `${name}.${domain}.` : `${name}.`);
  const tasksBySvc = new Map<string, typeof state.tasks extends ReadonlyMap<string, infer T> ? T[] : never>();
  for (const t of state.tasks.values()) {
    const list = tasksBySvc.get(t.service) ?? [];
    list.push(t);
    tasksBySvc.set(t.service, list);
    const nets = t.addresses.map((a) => a.network);
    for (const a of t.addresses) endpointNetworks.set(a.address, nets);
  }
  for (const svc of state.services.values()) {
    const tasks = (tasksBySvc.get(svc.id) ?? []).filter((t) => up(t.id));
    for (const att of svc.networks) {
      const z = builders.get(att.network);
      if (!z) continue;
      const names = [svc.name, ...att.aliases];
      for (const name of names) {
        z.declare(name);
        z.declare(`tasks.${name}`);
        if (att.vip) z.add(name, att.vip);
      }
      if (att.vip)
        ptr.set(reverseName(att.vip), { target: `${svc.name}.${z.network.name}`, network: z.network.id });
      const ports = [
        ...svc.ports.map((p) => ({ key: p.target, proto: p.protocol, target: p.target })),
        ...svc.ports.map((p) => ({ key: p.published, proto: p.protocol, target: p.target })),
        ...svc.expose.map((p) => ({ key: p, proto: 'tcp' as const, target: p })),
      ];
      const srvSeen = new Set<string>();
      for (const t of tasks) {
        const addr = t.addresses.find((a) => a.network === att.network)?.address;
        if (!addr) continue;
        for (const name of names) {
          z.add(`tasks.${name}`, addr);
          if (svc.endpointMode === 'dnsrr') z.add(name, addr);
        }
        if (svc.endpointMode === 'dnsrr') {
          for (const p of ports) {
            const key = `_${p.key}._${p.proto}.${svc.name}|${t.id}`;
            if (srvSeen.has(key)) continue;
            srvSeen.add(key);
            z.addSrv(`_${p.key}._${p.proto}.${svc.name}`, {
              target: fqdn(t.name),
              port: p.target,
              address: addr,
            });
          }
        }
      }
      if (att.vip) {
        for (const p of ports) {
          const key = `_${p.key}._${p.proto}.${svc.name}`;
          if (srvSeen.has(key)) continue;
          srvSeen.add(key);
          z.addSrv(key, { target: fqdn(svc.name), port: p.target, address: att.vip });
        }
      }
    }
    for (const t of tasks) {
      for (const a of t.addresses) {
        const z = builders.get(a.network);
        if (!z) continue;
        z.add(t.name, a.address);
        ptr.set(reverseName(a.address), { target: `${t.name}.${z.network.name}`, network: z.network.id });
      }
    }
  }
  for (const c of state.containers.values()) {
    const nets = c.addresses.map((a) => a.network);
    for (const a of c.addresses) {
      endpointNetworks.set(a.address, nets);
      const z = builders.get(a.network);
      if (!z) continue;
      for (const name of [c.name, ...c.aliases]) z.add(name, a.address);
      ptr.set(reverseName(a.address), { target: `${c.name}.${z.network.name}`, network: z.network.id });
    }
  }
  const zones: NetworkZone[] = [];
  const known = new Set<string>();
  for (const b of builders.values()) {
    for (const k of b.names.keys()) known.add(k);
    for (const k of b.srv.keys()) known.add(k);
    zones.push({
      id: b.network.id,
      name: b.network.name.toLowerCase(),
      internal: b.network.internal,
      subnet: parseCidr(b.network.subnet),
      names: b.names,
      srv: b.srv,
    });
  }
  return {
    zones,
    zoneByName: new Map(zones.map((z) => [z.name, z])),
    subnets,
    endpointNetworks,
    ptr,
    known,
  };
}
