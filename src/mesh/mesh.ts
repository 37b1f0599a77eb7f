import { networkInterfaces } from 'node:os';
import type { Registry } from 'prom-client';
import type { Settings } from '../config/settings.js';
import type { Logger } from '../log.js';
import type { Task } from '../model/types.js';
import { type EventLog, makeEvent, taskAttributes } from '../state/events.js';
import type { Snapshot, SnapshotChange } from '../state/snapshot.js';
import { ConnTracker } from './connections.js';
import type { DataPlaneAccess, MeshContext } from './context.js';
import type { Forwarding } from './forwarding.js';
import type { KernelPlane, PortPlane } from './kernel/kernel-plane.js';
import { Listeners } from './listeners.js';
import { MeshLoad } from './load.js';
import { MeshMetrics } from './metrics.js';
import { type ListenerSpec, serviceListeners, type TaskPath, taskPath } from './routes.js';
import { VipAddresses } from './vip-addresses.js';

/**
 * This host's addresses now, read once per update: every 127.x is local on Linux without being
 * listed, so loopback addresses always count.
 */
function localAddresses(): (address: string) => boolean {
  let known: Set<string> | undefined;
  return (address) => {
    if (address.startsWith('127.') || address === '::1') return true;
    known ??= new Set(
      Object.values(networkInterfaces())
        .flat()
        .map((i) => i?.address ?? ''),
    );
    return known.has(address);
  };
}

/**
 * The routing mesh: turns each snapshot into listeners and routes, drains connections to tasks
 * that left, and closes gracefully. Everything per connection happens in the proxies and reads
 * only the route the listener holds.
 */
export class Mesh implements Forwarding {
  readonly kind = 'userspace';
  private readonly ctx: MeshContext;
  private readonly listeners: Listeners;
  private snapshot: Snapshot | undefined;

  constructor(
    private readonly settings: Settings['mesh'],
    private readonly nodeId: string,
    registry: Registry,
    log: Logger,
    dataPlane: DataPlaneAccess,
    /** This node's own listeners, which no route may lead to. */
    private readonly reserved: (host: string, port: number) => boolean = () => false,
    /** Serves what it can of each service in the kernel; the mesh keeps the rest. */
    private readonly kernel?: KernelPlane,
    /** Where this node's ejections and drains are told (`meshctl events`, the page). */
    private readonly events?: EventLog,
  ) {
    const tracker = new ConnTracker();
    const metrics = new MeshMetrics(registry, {
      active: () => this.activeGauge(),
      udpFlows: () => this.flowGauge(),
      taskConnections: () => this.taskGauge(),
      taskUp: () => this.upGauge(),
    });
    const load = new MeshLoad(settings.ejectMs, (task, reason, ms) =>
      this.tell(task, 'eject', { reason, for: `${ms}ms` }),
    );
    this.ctx = { settings, dataPlane, load, tracker, metrics, log };
    this.listeners = new Listeners(this.ctx, new VipAddresses(settings.manageVipInterfaces, 'lo', log));
  }

  /** A local event about one task: its service and node come from the last snapshot. */
  private tell(taskId: string, action: string, attrs: Record<string, string>, task?: Task): void {
    const snap = this.snapshot;
    const t = task ?? snap?.state.tasks.get(taskId);
    if (!this.events || !snap || !t) return;
    this.events.push(
      makeEvent('task', action, taskId, { ...taskAttributes(snap.state, t), ...attrs }, Date.now(), 'local'),
    );
  }

  get metrics(): MeshMetrics {
    return this.ctx.metrics;
  }

  /** Listener errors of one service (a port already taken, a VIP that cannot be bound). */
  errors(serviceId: string): string[] {
    return this.listeners.errors.get(serviceId) ?? [];
  }

  /** How this node reaches a task now: its path, and why it is ejected if it is. */
  reach(task: Task): { path: TaskPath; ejected?: string } {
    const snap = this.snapshot;
    const network = task.addresses[0]?.network ?? '';
    const path = snap ? taskPath(snap, this.nodeId, task, network, this.settings.remoteTasks) : 'direct';
    const ejected = this.ctx.load.ejectedBecause(task.id, Date.now());
    return ejected ? { path, ejected } : { path };
  }

  /**
   * Applies a snapshot change: routes are rebuilt for the services it touched (all of them when
   * it is full, or when this node's own record changed: its certificate decides every remote
   * path). Resolves once listeners are open or closed accordingly.
   */
  update(snap: Snapshot, change: SnapshotChange): Promise<void> {
    this.snapshot = snap;
    const { state } = snap;
    // Tasks and services that are gone: no new connections (their routes are rebuilt without
    // them), and the open ones get the service's grace period.
    const gone = new Map(change.removedServices.map((s) => [s.id, s]));
    for (const t of change.removedTasks) {
      const svc = state.services.get(t.service) ?? gone.get(t.service);
      const open = this.ctx.tracker.drain((c) => c.task === t.id, svc?.drainMs ?? 0);
      if (open > 0)
        this.tell(t.id, 'drain', { connections: String(open), grace: `${svc?.drainMs ?? 0}ms` }, t);
    }
    for (const s of change.removedServices) this.ctx.metrics.forgetService(s.name);
    if (change.removedTasks.length > 0 || change.full) this.ctx.load.prune(state.tasks);
    const full = change.full || change.nodes.has(this.nodeId);
    const opts = {
      nodeId: this.nodeId,
      publishAddr: this.settings.publishAddr,
      remote: this.settings.remoteTasks,
      reserved: this.reserved,
      hasAddress: localAddresses(),
    };
    const specs = new Map<string, ListenerSpec[]>();
    const listen = (id: string) => {
      const svc = state.services.get(id);
      const all = svc ? serviceListeners(snap, svc, opts) : [];
      specs.set(id, this.kernel ? this.kernel.take(snap, id, svc, all, opts) : all);
    };
    for (const id of full ? state.services.keys() : change.services) listen(id);
    for (const s of change.removedServices) if (!specs.has(s.id)) listen(s.id);
    return Promise.all([this.listeners.update(specs, full), this.kernel?.commit(full)]).then(() => undefined);
  }

  /** Which data plane serves each port of a service on this node. */
  planes(serviceId: string): readonly PortPlane[] {
    return this.kernel?.planesOf(serviceId) ?? [];
  }

  private activeGauge() {
    const counts = new Map<string, { service: string; port: string; proto: string; value: number }>();
    // Every listener reports, at zero when idle, so the series exist before the first connection.
    for (const r of this.listeners.routes()) {
      counts.set(`${r.service.name}|${r.port}`, {
        service: r.service.name,
        port: r.port,
        proto: r.proto,
        value: 0,
      });
    }
    for (const u of this.listeners.udpListeners()) {
      const e = counts.get(`${u.route.service.name}|${u.route.port}`);
      if (e) e.value += u.size;
    }
    for (const c of this.ctx.tracker.connections()) {
      const k = `${c.serviceName}|${c.port}`;
      const e = counts.get(k) ?? { service: c.serviceName, port: c.port, proto: 'tcp', value: 0 };
      e.value++;
      counts.set(k, e);
    }
    return [...counts.values()];
  }

  private flowGauge() {
    const counts = new Map<string, number>();
    for (const u of this.listeners.udpListeners())
      counts.set(u.route.service.name, (counts.get(u.route.service.name) ?? 0) + u.size);
    return [...counts].map(([service, value]) => ({ service, value }));
  }

  /**
   * Per-task series are bounded by what this node has to say: its own tasks (at 0 when idle) and
   * the tasks it has connections to. A cluster of 100,000 tasks would otherwise cost every node
   * 100,000 series per gauge and a scrape of hundreds of milliseconds.
   */
  private taskGauge() {
    const counts = new Map<string, { service: string; task: string; value: number }>();
    const snap = this.snapshot;
    if (!snap) return [];
    for (const t of this.localTasks(snap)) {
      const svc = snap.state.services.get(t.service);
      if (svc) counts.set(t.id, { service: svc.name, task: t.name, value: 0 });
    }
    for (const c of this.ctx.tracker.connections()) {
      let e = counts.get(c.task);
      if (!e) {
        const t = snap.state.tasks.get(c.task);
        const svc = t && snap.state.services.get(t.service);
        if (!t || !svc) continue;
        e = { service: svc.name, task: t.name, value: 0 };
        counts.set(c.task, e);
      }
      e.value++;
    }
    return [...counts.values()];
  }

  /** Each node reports its own tasks (swarm's node reports its tasks); dashboards take the max. */
  private upGauge() {
    const snap = this.snapshot;
    if (!snap) return [];
    const out: { service: string; task: string; value: number }[] = [];
    for (const t of this.localTasks(snap)) {
      const svc = snap.state.services.get(t.service);
      if (svc) out.push({ service: svc.name, task: t.name, value: snap.up.has(t.id) ? 1 : 0 });
    }
    return out;
  }

  private localTasks(snap: Snapshot): Iterable<Task> {
    return snap.tasksOn(this.nodeId);
  }

  /** Stops accepting, lets open connections finish within `graceMs`, then closes what is left. */
  async close(graceMs: number): Promise<void> {
    await Promise.all([this.listeners.close(), this.kernel?.close()]);
    const deadline = Date.now() + graceMs;
    while (this.ctx.tracker.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    this.ctx.tracker.destroyAll();
  }
}
