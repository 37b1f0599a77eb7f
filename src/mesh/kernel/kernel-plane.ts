import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Settings } from '../../config/settings.js';
import { runNft } from '../../host/commands.js';
import type { Logger } from '../../log.js';
import { canonicalAddress } from '../../model/address.js';
import { messageOf } from '../../model/errors.js';
import type { Service } from '../../model/types.js';
import type { Snapshot } from '../../state/snapshot.js';
import { type ListenerSpec, type RouteOptions, vipRoute } from '../routes.js';
import { conntrackCount, forgetFlows, readCounters, removeTables } from './nft.js';
import { entryChain } from './nft-script.js';
import { type KernelEntry, kernelEntries, type Plane, userspaceReason } from './plan.js';
import { TableState } from './table-state.js';

/** Which plane serves one port of a service on this node, and why not the kernel when it is not. */
export interface PortPlane {
  /** `8080/tcp` for a published port; the VIP for a VIP (all its ports). */
  readonly port: string;
  readonly plane: Plane;
  readonly reason?: string;
}

/** After a failed transaction, the whole table is sent again this much later. */
const retryMs = 1000;

/**
 * The kernel data plane: published ports and VIPs served by nftables DNAT in meshd's own tables,
 * for every listener that needs nothing only the proxy can do. The mesh hands it each service's
 * listeners and keeps the rest; changes are batched into one `nft -f` transaction at a time, and
 * only the entries of services that changed are sent.
 */
export class KernelPlane {
  /** Whether this node can program nftables at all (the page and `node ls` say so). */
  readonly available: boolean;
  private readonly state = new TableState();
  private readonly wanted = new Map<string, KernelEntry>();
  private readonly keysOf = new Map<string, readonly string[]>();
  private readonly planes = new Map<string, readonly PortPlane[]>();
  private dirty = new Set<string>();
  private rebuild = true;
  /** Whether meshd's tables exist (they are made with the first entry, not before). */
  private present = false;
  private chain: Promise<void> = Promise.resolve();
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly metrics: { update: Histogram; failures: Counter };

  constructor(
    private readonly settings: Settings['mesh'],
    registry: Registry,
    private readonly log: Logger,
    /**
     * Undefined when nftables can be programmed and may be; else why not (`--dataplane userspace`,
     * no nft, no CAP_NET_ADMIN): every port then stays in userspace, with this as the reason.
     */
    private readonly unavailable: string | undefined,
  ) {
    this.available = unavailable === undefined;
    const entries = () => this.state.entries();
    this.metrics = {
      update: new Histogram({
        name: 'meshd_kernel_update_seconds',
        help: 'Time to apply one nftables transaction of the kernel data plane.',
        buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
        registers: [registry],
      }),
      failures: new Counter({
        name: 'meshd_kernel_update_failures_total',
        help: 'nftables transactions the kernel refused (the table is then sent whole again).',
        registers: [registry],
      }),
    };
    // One read of the counters per scrape feeds the three metrics (each collects on its own).
    let read: { at: number; counts: ReturnType<typeof readCounters> } | undefined;
    const none: ReturnType<typeof readCounters> = Promise.resolve({
      connections: new Map(),
      traffic: new Map(),
    });
    const counters = () => {
      // Only the families served, and nothing when nothing is: each read is four nft processes,
      // and spawning them from a large heap holds the event loop.
      if (this.state.size === 0) return none;
      if (!read || Date.now() - read.at > 500) {
        const families = new Set<string>();
        for (const e of this.state.entries()) families.add(e.family);
        read = { at: Date.now(), counts: readCounters([...families]) };
      }
      return read.counts;
    };
    const fromNft = (
      name: string,
      help: string,
      value: (counts: Awaited<ReturnType<typeof readCounters>>, e: KernelEntry) => number,
    ) =>
      new Counter({
        name,
        help,
        labelNames: ['service', 'port', 'proto'],
        registers: [registry],
        async collect() {
          const counts = await counters();
          this.reset();
          for (const e of entries())
            this.inc({ service: e.service, port: e.port, proto: e.proto }, value(counts, e));
        },
      });
    fromNft(
      'meshd_kernel_new_connections_total',
      'New connections (TCP) and flows (UDP) the kernel data plane sent to tasks, from nftables counters.',
      (c, e) => c.connections.get(entryChain(e)) ?? 0,
    );
    fromNft(
      'meshd_kernel_packets_total',
      'Packets of the connections the kernel data plane sent to tasks, both ways, from nftables counters.',
      (c, e) => c.traffic.get(this.state.trafficMark(e.key))?.packets ?? 0,
    );
    fromNft(
      'meshd_kernel_bytes_total',
      'Bytes of the connections the kernel data plane sent to tasks, both ways, from nftables counters.',
      (c, e) => c.traffic.get(this.state.trafficMark(e.key))?.bytes ?? 0,
    );
    new Gauge({
      name: 'meshd_kernel_conntrack_entries',
      help: 'Connection tracking entries in use in meshd network namespace.',
      registers: [registry],
      async collect() {
        this.set((await conntrackCount()) ?? 0);
      },
    });
    const state = this.state;
    new Gauge({
      name: 'meshd_kernel_entries',
      help: 'Published ports and VIPs the kernel data plane serves on this node.',
      registers: [registry],
      collect() {
        this.set(state.size);
      },
    });
    // The ports-by-plane gauge reads the decisions, so dashboards can show what runs where.
    const planes = this.planes;
    new Gauge({
      name: 'meshd_mesh_ports',
      help: 'Published ports and VIPs on this node, by the data plane serving them.',
      labelNames: ['plane'],
      registers: [registry],
      collect() {
        const n = { kernel: 0, userspace: 0 };
        for (const list of planes.values()) for (const p of list) n[p.plane]++;
        this.set({ plane: 'kernel' }, n.kernel);
        this.set({ plane: 'userspace' }, n.userspace);
      },
    });
  }

  /** Which plane serves each port of a service, for `service inspect` and `service ls`. */
  planesOf(serviceId: string): readonly PortPlane[] {
    return this.planes.get(serviceId) ?? [];
  }

  /**
   * Takes what the kernel can serve of one service's listeners and returns what stays in
   * userspace. A kernel-served port on every address keeps a userspace listener on loopback:
   * DNAT from 127/8 would need `route_localnet`, which lets martian packets in.
   */
  take(
    snap: Snapshot,
    serviceId: string,
    svc: Service | undefined,
    specs: ListenerSpec[],
    o: RouteOptions,
  ): ListenerSpec[] {
    for (const k of this.keysOf.get(serviceId) ?? []) {
      this.wanted.delete(k);
      this.dirty.add(k);
    }
    this.keysOf.delete(serviceId);
    if (!svc) {
      this.planes.delete(serviceId);
      return specs;
    }
    const forced = this.unavailable;
    if (forced) {
      // Everything stays in userspace: say so per port, and build nothing for the kernel.
      const planes = specs.map((spec) => ({
        port: spec.kind === 'vip' ? spec.host : `${spec.port}/${spec.proto}`,
        plane: 'userspace' as const,
        reason: forced,
      }));
      this.planes.set(serviceId, [...new Map(planes.map((p) => [p.port, p])).values()]);
      return specs;
    }
    const vips: ListenerSpec[] = [];
    if (svc.endpointMode === 'vip')
      for (const att of svc.networks) {
        const vip = att.vip && canonicalAddress(att.vip);
        if (!vip) continue;
        const route = vipRoute(snap, svc, att.network, o);
        vips.push({ key: `vip|${vip}`, proto: 'tcp', host: vip, port: 0, kind: 'vip', route });
      }
    const reasons = new Map<ListenerSpec, string | undefined>();
    const reason = (spec: ListenerSpec) => {
      if (!reasons.has(spec)) reasons.set(spec, userspaceReason(spec));
      return reasons.get(spec);
    };
    const publish = specs.filter((s) => s.kind === 'publish');
    const entries = kernelEntries([...publish, ...vips], this.settings.panic === 'all', (s) => !reason(s));
    const kernelVips = new Set(vips.filter((v) => !reason(v)).map((v) => v.host));
    const out: ListenerSpec[] = [];
    const planes: PortPlane[] = [];
    for (const spec of specs) {
      if (spec.kind === 'vip') {
        if (!kernelVips.has(spec.host)) out.push(spec);
        continue;
      }
      const why = reason(spec);
      const port = `${spec.port}/${spec.proto}`;
      planes.push(why ? { port, plane: 'userspace', reason: why } : { port, plane: 'kernel' });
      if (why) out.push(spec);
      else if (spec.host === '0.0.0.0' || spec.host === '::') {
        const lo = spec.host === '::' ? '::1' : '127.0.0.1';
        out.push({ ...spec, host: lo, key: `${spec.proto}|${lo}|${spec.port}` });
      }
    }
    for (const v of vips) {
      const why = reason(v);
      planes.push(
        why ? { port: v.host, plane: 'userspace', reason: why } : { port: v.host, plane: 'kernel' },
      );
    }
    this.note(svc.name, this.planes.get(serviceId), planes);
    this.planes.set(serviceId, planes);
    this.keysOf.set(
      serviceId,
      entries.map((e) => e.key),
    );
    for (const e of entries) {
      this.wanted.set(e.key, e);
      this.dirty.add(e.key);
    }
    return out;
  }

  /** One log line when a port's plane (or the reason for userspace) changes. */
  private note(service: string, before: readonly PortPlane[] | undefined, after: readonly PortPlane[]): void {
    const was = new Map((before ?? []).map((p) => [p.port, p]));
    for (const p of after) {
      const old = was.get(p.port);
      if (old && old.plane === p.plane && old.reason === p.reason) continue;
      if (p.plane === 'kernel')
        this.log.info('port served by the kernel data plane', { service, port: p.port });
      else this.log.info('port served in userspace', { service, port: p.port, reason: p.reason });
    }
  }

  /** Sends what changed since the last commit (everything when `full`); resolves once applied. */
  commit(full: boolean): Promise<void> {
    if (this.unavailable) return Promise.resolve();
    if (full) this.rebuild = true;
    this.chain = this.chain.then(() => this.apply());
    return this.chain;
  }

  private async apply(): Promise<void> {
    if (this.closed) return;
    const keys = this.dirty;
    this.dirty = new Set();
    const before = new Map<string, KernelEntry>();
    for (const e of this.state.entries()) if (keys.has(e.key)) before.set(e.key, e);
    // Nothing for the kernel: no tables at all (a table left by an earlier run goes), so a node
    // whose ports all stay in userspace (the sample services on loopback) changes nothing here.
    const empty = this.wanted.size === 0 && (this.rebuild || !this.present);
    if (empty && !this.rebuild) return;
    const plan = empty
      ? undefined
      : this.rebuild || !this.present
        ? this.state.rebuild(this.wanted.values())
        : this.state.update(this.wanted, keys);
    if (!plan && !empty) return;
    const end = this.metrics.update.startTimer();
    try {
      if (plan) {
        await runNft(plan.script);
        plan.commit();
      } else {
        await removeTables();
        this.state.rebuild([]).commit();
      }
      this.present = plan !== undefined;
      this.rebuild = false;
      end();
    } catch (err) {
      this.metrics.failures.inc();
      this.log.error('nftables refused an update; sending the whole table again', { error: messageOf(err) });
      this.rebuild = true;
      clearTimeout(this.retry);
      this.retry = setTimeout(() => void this.commit(true), retryMs);
      this.retry.unref();
      return;
    }
    this.forgetDeparted(before);
  }

  /**
   * Tasks no entry sends to any more: their UDP flows move at once (conntrack forgets them, so the
   * next datagram is balanced again); TCP connections keep going until the drain period ends.
   */
  private forgetDeparted(before: ReadonlyMap<string, KernelEntry>): void {
    const still = new Set<string>();
    for (const e of this.state.entries()) for (const t of e.targets) still.add(t.addr);
    const drainOf = new Map<string, { drainMs: number; udp: boolean }>();
    for (const e of before.values())
      for (const t of e.targets) {
        if (still.has(t.addr)) continue;
        const d = drainOf.get(t.addr) ?? { drainMs: 0, udp: false };
        drainOf.set(t.addr, { drainMs: Math.max(d.drainMs, e.drainMs), udp: d.udp || e.proto !== 'tcp' });
      }
    for (const [addr, { drainMs, udp }] of drainOf) {
      if (udp) void forgetFlows('udp', addr);
      const timer = setTimeout(() => {
        if (!this.closed && !this.sendsTo(addr)) void forgetFlows('tcp', addr);
      }, drainMs);
      timer.unref();
    }
  }

  private sendsTo(addr: string): boolean {
    for (const e of this.state.entries()) if (e.targets.some((t) => t.addr === addr)) return true;
    return false;
  }

  /** Stops updating; removes the tables unless told to keep them (so connections survive a restart). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.chain.catch(() => undefined);
    if (this.unavailable) return;
    if (this.settings.kernelStateOnStop === 'remove')
      await removeTables().catch((err: unknown) =>
        this.log.warn('could not remove the nftables tables', { error: messageOf(err) }),
      );
  }
}
