import { addressOfReverseName, type Cidr, parseCidr } from '../model/address.js';
import type { ClusterState } from '../model/cluster-state.js';
import type { Container, Service, Task } from '../model/types.js';
import { type Snapshot, SnapshotBuilder, type SnapshotChange } from '../state/snapshot.js';
import { Contributions } from './contributions.js';
import {
  type Entries,
  Fragment,
  mergeNames,
  mergeSrv,
  noAddresses,
  type Retractable,
  type ZoneParts,
} from './fragment.js';
import { TaskNames } from './task-names.js';
import type { DnsView, NameRecords, NetworkZone, PtrRecord } from './view.js';

/**
 * The DNS view, kept up to date from snapshot changes: each service, container and task
 * contributes its records, and a change recomputes only the contributions of what it touched.
 * A network change (rare) rebuilds everything. Queries read the merged maps directly.
 */
export class DnsIndex implements DnsView {
  zones: NetworkZone[] = [];
  zoneByName = new Map<string, NetworkZone>();
  subnets: { id: string; cidr: Cidr }[] = [];
  readonly known = {
    has: (name: string) => (this.knownCounts.get(name) ?? 0) > 0 || this.upTask(name) !== undefined,
  };
  readonly endpointNetworks = { get: (address: string) => this.networksOf(address) };
  readonly ptr = { get: (name: string) => this.reverse(name) };
  private readonly knownCounts = new Map<string, number>();
  private parts = new Map<string, ZoneParts>();
  private readonly fragments = new Map<string, Entries>();
  /**
   * Tasks by name and endpoints (tasks, containers, VIPs) by address: a task's own name, its
   * reverse name and its client scope are answered from these at query time, so a task costs
   * two map entries here rather than records in every map.
   */
  private readonly taskNames = new Map<string, Task>();
  private readonly endpoints = new Map<string, Task | Container | Service>();
  private snap: Snapshot | undefined;

  /** `domain` qualifies SRV targets. */
  constructor(private readonly domain: string) {}

  /** Applies one snapshot change. */
  apply(snap: Snapshot, change: SnapshotChange): void {
    const { state } = snap;
    this.snap = snap;
    if (change.full) this.reset(state);
    for (const t of change.previousTasks) this.dropTask(t);
    for (const s of change.removedServices) this.dropService(s);
    for (const id of change.services) {
      if (change.full || change.specs.has(id)) this.service(snap, id);
      // Only its tasks changed: what they answer is made again at the next query.
      else for (const z of this.parts.values()) z.tasks.invalidate(id);
    }
    for (const s of change.removedServices) this.service(snap, s.id);
    for (const id of change.containers) this.container(state.containers.get(id), id);
    for (const id of change.full ? state.tasks.keys() : change.tasks) {
      const t = state.tasks.get(id);
      if (!t) continue;
      this.taskNames.set(lower(t.name), t);
      for (const a of t.addresses) this.endpoints.set(a.address, t);
    }
  }

  private reset(state: ClusterState): void {
    for (const [owner, entries] of this.fragments) forget(owner, entries, 0);
    this.fragments.clear();
    this.taskNames.clear();
    this.endpoints.clear();
    this.parts = new Map();
    this.subnets = [];
    for (const n of state.networks.values()) {
      this.subnets.push({ id: n.id, cidr: parseCidr(n.subnet) });
      if (n.ingress) continue;
      const presence = (key: string, present: boolean) => this.count(key, present);
      const names = new Contributions(mergeNames, presence);
      const srv = new Contributions(mergeSrv, presence);
      const tasks = new TaskNames(n.id, (name) => this.fqdn(name), presence);
      const zone: NetworkZone = {
        id: n.id,
        name: n.name.toLowerCase(),
        internal: n.internal,
        subnet: parseCidr(n.subnet),
        names: { get: (name) => this.nameRecords(names, tasks, name) ?? this.taskRecords(n.id, name) },
        srv: {
          get: (name) => srv.get(name) ?? (this.snap && tasks.srvTargets(this.snap, name)),
          has: (name) => srv.has(name) || tasks.hasSrv(name),
        },
      };
      this.parts.set(n.id, { zone, names, srv, tasks });
    }
    this.zones = [...this.parts.values()].map((p) => p.zone);
    this.zoneByName = new Map(this.zones.map((z) => [z.name, z]));
  }

  private count(name: string, present: boolean): void {
    const n = (this.knownCounts.get(name) ?? 0) + (present ? 1 : -1);
    if (n > 0) this.knownCounts.set(name, n);
    else this.knownCounts.delete(name);
  }

  private dropTask(t: Task): void {
    const name = lower(t.name);
    if (this.taskNames.get(name)?.id === t.id) this.taskNames.delete(name);
    for (const a of t.addresses)
      if (this.endpoints.get(a.address)?.id === t.id) this.endpoints.delete(a.address);
  }

  private dropService(s: Service): void {
    for (const n of s.networks)
      if (n.vip && this.endpoints.get(n.vip)?.id === s.id) this.endpoints.delete(n.vip);
  }

  /** A task in rotation by its name, as the current snapshot has it. */
  private upTask(name: string): Task | undefined {
    const t = this.taskNames.get(name);
    const snap = this.snap;
    if (!t || !snap?.up.has(t.id) || !snap.state.services.has(t.service)) return undefined;
    return t;
  }

  /** A task's own name on one network: its address there, while it is in rotation. */
  private taskRecords(network: string, name: string): NameRecords | undefined {
    const t = this.upTask(name);
    if (!t) return undefined;
    let found: NameRecords | undefined;
    for (const a of t.addresses) {
      if (a.network !== network) continue;
      found ??= { v4: [], v6: [] };
      (a.address.includes(':') ? (found.v6 as string[]) : (found.v4 as string[])).push(a.address);
    }
    return found;
  }

  /** The endpoint that holds `address` now, checked against the current state (entries are not
   * rewritten when a task or service merely moves an address, so a stale one is skipped). */
  private endpointAt(address: string): Task | Container | Service | undefined {
    const e = this.endpoints.get(address);
    const state = this.snap?.state;
    if (!e || !state) return undefined;
    if ('slot' in e) {
      const t = state.tasks.get(e.id);
      return t?.addresses.some((a) => a.address === address) ? t : undefined;
    }
    if ('endpointMode' in e) {
      const s = state.services.get(e.id);
      return s?.networks.some((n) => n.vip === address) ? s : undefined;
    }
    const c = state.containers.get(e.id);
    return c?.addresses.some((a) => a.address === address) ? c : undefined;
  }

  private networksOf(address: string): readonly string[] | undefined {
    const e = this.endpointAt(address);
    if (!e || 'endpointMode' in e) return undefined;
    return e.addresses.map((a) => a.network);
  }

  /** The name an address points back to: a VIP its service, a task (in rotation) or container its own. */
  private reverse(name: string): PtrRecord | undefined {
    const address = addressOfReverseName(name);
    const e = address && this.endpointAt(address);
    if (!e) return undefined;
    if ('endpointMode' in e) {
      const att = e.networks.find((n) => n.vip === address);
      const z = att && this.parts.get(att.network);
      return z && { target: `${e.name}.${z.zone.name}`, network: z.zone.id };
    }
    if ('slot' in e && !this.upTask(lower(e.name))) return undefined;
    const net = e.addresses.find((a) => a.address === address)?.network;
    const z = net === undefined ? undefined : this.parts.get(net);
    return z && { target: `${e.name}.${z.zone.name}`, network: z.zone.id };
  }

  /**
   * A service's records: its names with their VIPs, SRV for its VIPs, and what its tasks answer
   * under (`tasks.NAME`, and in dnsrr mode `NAME` and SRV per task), made at query time.
   */
  private service(snap: Snapshot, id: string): void {
    const f = new Fragment();
    for (const z of this.parts.values()) z.tasks.dropService(id);
    const svc = snap.state.services.get(id);
    if (svc) {
      const dnsrr = svc.endpointMode === 'dnsrr';
      for (const att of svc.networks) {
        const z = this.parts.get(att.network);
        if (att.vip) this.endpoints.set(att.vip, svc);
        if (!z) continue;
        const names = [svc.name, ...att.aliases];
        for (const name of names) {
          f.name(z, name, att.vip);
          f.name(z, `tasks.${name}`);
        }
        const srv = new Map<string, number>();
        for (const p of servicePorts(svc)) {
          const key = `_${p.key}._${p.proto}.${svc.name}`.toLowerCase();
          if (!srv.has(key)) srv.set(key, p.target);
        }
        // Only tasks.NAME lists tasks not ready yet, when the service asks: NAME (dnsrr), SRV,
        // the VIP and the mesh stay with tasks in rotation.
        const notReady = svc.publishNotReady ? names.map((n) => `tasks.${n}`.toLowerCase()) : undefined;
        if (dnsrr) {
          z.tasks.setService(id, {
            names: names.flatMap((n) => [`tasks.${n}`, n].map((x) => x.toLowerCase())),
            srv: [...srv].map(([name, port]) => ({ name, port })),
            ...(notReady ? { notReady } : {}),
          });
        } else {
          z.tasks.setService(id, {
            names: names.map((n) => `tasks.${n}`.toLowerCase()),
            srv: [],
            ...(notReady ? { notReady } : {}),
          });
          if (att.vip)
            for (const [key, port] of srv)
              f.addSrv(z, key, { target: this.fqdn(svc.name), port, address: att.vip });
        }
      }
    }
    this.commit(`s:${id}`, f);
  }

  /** A name's records on one zone: what owners contribute and what tasks in rotation add. */
  private nameRecords(
    names: Contributions<NameRecords, NameRecords>,
    tasks: TaskNames,
    name: string,
  ): NameRecords | undefined {
    const own = names.get(name);
    const fromTasks = this.snap && tasks.records(this.snap, name);
    if (!fromTasks) return own;
    if (!own || (own.v4.length === 0 && own.v6.length === 0)) return fromTasks;
    return mergeNames([own, fromTasks]);
  }

  private fqdn(name: string): string {
    return this.domain ? `${name}.${this.domain}.` : `${name}.`;
  }

  private container(c: Container | undefined, id: string): void {
    const f = new Fragment();
    if (c) {
      for (const a of c.addresses) {
        this.endpoints.set(a.address, c);
        const z = this.parts.get(a.network);
        if (!z) continue;
        for (const name of [c.name, ...c.aliases]) f.name(z, name, a.address);
      }
    }
    this.commit(`c:${id}`, f);
  }

  /** Replaces what `owner` contributed with `f`. */
  private commit(owner: string, f: Fragment): void {
    const entries: Entries = [];
    const put = <V>(to: Contributions<V, V>, key: string, value: V) => {
      to.set(key, owner, value);
      entries.push(to, key);
    };
    for (const n of f.names.values())
      put(n.zone.names, n.name, {
        v4: n.v4.size > 0 ? [...n.v4] : noAddresses,
        v6: n.v6.size > 0 ? [...n.v6] : noAddresses,
      });
    for (const s of f.srv.values()) put(s.zone.srv, s.name, s.targets);
    this.replace(owner, entries);
  }

  /** Records `entries` (already set) as what `owner` contributes, taking back what it no longer does. */
  private replace(owner: string, entries: Entries): void {
    const old = this.fragments.get(owner);
    if (old) {
      if (entries.length <= 16) {
        for (let i = 0; i < old.length; i += 2) {
          let kept = false;
          for (let j = 0; j < entries.length && !kept; j += 2)
            kept = entries[j] === old[i] && entries[j + 1] === old[i + 1];
          if (!kept) (old[i] as Retractable).delete(old[i + 1] as string, owner);
        }
      } else {
        const now = new Map<unknown, Set<string>>();
        for (let j = 0; j < entries.length; j += 2) {
          let keys = now.get(entries[j]);
          if (!keys) {
            keys = new Set();
            now.set(entries[j], keys);
          }
          keys.add(entries[j + 1] as string);
        }
        for (let i = 0; i < old.length; i += 2)
          if (!now.get(old[i])?.has(old[i + 1] as string))
            (old[i] as Retractable).delete(old[i + 1] as string, owner);
      }
    }
    if (entries.length > 0) this.fragments.set(owner, entries);
    else this.fragments.delete(owner);
  }
}

/** The SRV ports of a service: by target and by published port, and what it exposes. */
function servicePorts(svc: Service): { key: number; proto: string; target: number }[] {
  return [
    ...svc.ports.map((p) => ({ key: p.target, proto: p.protocol, target: p.target })),
    ...svc.ports.map((p) => ({ key: p.published, proto: p.protocol, target: p.target })),
    ...svc.expose.map((p) => ({ key: p, proto: 'tcp', target: p })),
  ];
}

/** A name as the index keys it; the same string when it is already lower case. */
function lower(name: string): string {
  const l = name.toLowerCase();
  return l === name ? name : l;
}

/** Takes back every contribution of `owner` from index `from` on. */
function forget(owner: string, entries: Entries, from: number): void {
  for (let i = from; i < entries.length; i += 2)
    (entries[i] as Retractable).delete(entries[i + 1] as string, owner);
}

/** Builds a DNS view of a whole state at once (tests, and tools that need no updates). */
export function buildDnsView(state: ClusterState, domain: string): DnsView {
  const index = new DnsIndex(domain);
  const { snap, change } = new SnapshotBuilder().apply(state, { full: true, changes: [] }, 0);
  index.apply(snap, change);
  return index;
}
