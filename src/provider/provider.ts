import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { Backoff } from '../model/backoff.js';
import { emptyChange } from '../model/cluster-state.js';
import { attachContainer, detachContainer } from '../model/container.js';
import { messageOf } from '../model/errors.js';
import { createService, removeService, updateService } from '../model/service.js';
import { addTask, removeTask, setReportedHealth } from '../model/task.js';
import type { Controller } from '../state/controller.js';
import type { EngineClient, EngineContainer } from './engine.js';
import { type Action, emptyLabelServices, plan } from './reconcile.js';

const retryMinMs = 200;
const retryMaxMs = 5000;
/** A container `starting` this long past its start period is reported as stuck. */
const stuckGraceMs = 5000;
/** Events arrive in bursts (die, stop, cleanup...): one sync per burst. */
const debounceMs = 30;

/**
 * Keeps this node's tasks and containers in step with a Docker (or Podman) engine: a full
 * re-list on start and after every reconnect, then the event stream, each burst of events
 * answered by another re-list, so nothing is missed or left stale. While the engine is away the
 * last state keeps serving and the provider reconnects with backoff.
 */
export class DockerProvider {
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> = Promise.resolve();
  private closed = false;
  connected = false;
  /** Whether the engine has been listed at least once (until then `/ready` is degraded). */
  listed = false;
  /** Why the engine cannot be listed, while it cannot. */
  lastError = '';
  /** Containers not registered in the last sync, and why. */
  private rejected = new Map<string, { reason: string; category: string }>();
  private readonly rejections: Counter<'reason'> | undefined;

  constructor(
    private readonly engine: EngineClient,
    private readonly controller: Controller,
    private readonly nodeId: string,
    private readonly log: Logger,
    registry?: Registry,
    /** How long a label-made service stays after its last container is gone. */
    private readonly serviceGraceMs = 60_000,
  ) {
    if (!registry) return;
    const registers = [registry];
    this.rejections = new Counter({
      name: 'meshd_provider_rejections_total',
      help: 'Containers the provider could not register, counted once per container and reason, by reason.',
      labelNames: ['reason'],
      registers,
    });
    const rejected = () => this.rejected;
    new Gauge({
      name: 'meshd_provider_rejected_containers',
      help: 'Containers not registered in the last sync of the container engine, by reason.',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const r of rejected().values()) this.labels(r.category).inc();
      },
    });
  }

  /** Containers not registered in the last sync, with the reason (`container ls --all`). */
  rejectedContainers(): { name: string; reason: string }[] {
    return [...this.rejected].map(([name, r]) => ({ name, reason: r.reason }));
  }

  /** Anti-entropy: a full re-list now and then catches what no event announced (a network created later). */
  private resync: NodeJS.Timeout | undefined;

  start(): void {
    void this.loop();
    this.resync = setInterval(() => {
      if (this.connected) this.scheduleSync();
    }, 10_000).unref();
  }

  private async loop(): Promise<void> {
    const backoff = new Backoff(retryMinMs, retryMaxMs);
    while (!this.closed) {
      try {
        // Caught at once: a stream that fails while the first sync runs must not go unhandled.
        const stream = this.engine
          .events(() => this.scheduleSync(), this.abort.signal)
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        await this.sync();
        if (!this.connected)
          this.log.info('watching the container engine', { socket: this.engine.socketPath });
        this.connected = true;
        backoff.reset();
        const ended = await stream;
        if (ended) throw ended;
        if (!this.closed) this.log.warn('container engine event stream ended; reconnecting');
      } catch (err) {
        if (this.closed) return;
        if (this.connected || !this.lastError)
          this.log.warn('container engine unreachable; keeping the last state', {
            socket: this.engine.socketPath,
            error: messageOf(err),
          });
        this.lastError = messageOf(err);
        this.connected = false;
      }
      await new Promise((r) => setTimeout(r, backoff.next()));
    }
  }

  private scheduleSync(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.sync().catch((err: unknown) => this.log.warn('container sync failed', { error: messageOf(err) }));
    }, debounceMs);
  }

  /** Re-lists the engine and applies what differs; syncs never overlap. */
  sync(): Promise<void> {
    this.syncing = this.syncing
      .then(() => this.syncNow())
      .catch((err: unknown) => {
        throw err;
      });
    const run = this.syncing;
    this.syncing = run.catch(() => undefined);
    return run;
  }

  private async syncNow(): Promise<void> {
    const listing = await this.engine.running();
    this.listed = true;
    this.lastError = '';
    this.reportStuck(listing.containers);
    for (const u of listing.unknown)
      this.log.debug('container could not be inspected; keeping its last known state', { container: u.name });
    // A created service lets its tasks be added on the next round.
    for (let round = 0; round < 3; round++) {
      const actions = plan(this.controller.state, listing, this.nodeId).filter(
        (a) => a.kind !== 'skip' || round === 0,
      );
      const work = actions.filter((a) => a.kind !== 'skip');
      if (round === 0) this.noteRejected(actions);
      if (work.length === 0) break;
      for (const a of work) await this.apply(a);
    }
    await this.removeEmpty(listing);
  }

  /** Keeps the last sync's rejections, and warns of each new one once. */
  private noteRejected(actions: readonly Action[]): void {
    const now = new Map<string, { reason: string; category: string }>();
    for (const a of actions) {
      if (a.kind !== 'skip') continue;
      if (this.warnOnce(a.container, a.reason)) this.rejections?.labels(a.category ?? 'other').inc();
      // An alias left out still leaves the container registered.
      if (!a.reason.startsWith('alias '))
        now.set(a.container, { reason: a.reason, category: a.category ?? 'other' });
    }
    this.rejected = now;
  }

  /** When each container was first seen `starting`, and whether it was reported stuck. */
  private readonly startingSince = new Map<string, { since: number; warned: boolean }>();

  /**
   * A container that stays `starting` past its start period gets no traffic; say so once, with
   * the engine's own last health output, or why there is none (Podman without systemd never runs
   * HEALTHCHECKs). Bounded by the engine's running containers.
   */
  private reportStuck(containers: readonly EngineContainer[]): void {
    const now = Date.now();
    const starting = new Set<string>();
    for (const c of containers) {
      if (c.health !== 'starting') continue;
      starting.add(c.id);
      const e = this.startingSince.get(c.id) ?? { since: now, warned: false };
      this.startingSince.set(c.id, e);
      const limit = (c.healthStartPeriodMs ?? 0) + stuckGraceMs;
      if (e.warned || now - e.since < limit) continue;
      e.warned = true;
      this.log.warn('container stays starting past its start period: it gets no traffic', {
        container: c.name,
        startingForS: Math.round((now - e.since) / 1000),
        engineSays:
          c.healthOutput ??
          'the engine has run no health check (Podman runs HEALTHCHECKs through systemd timers; without systemd they never run: use meshd.health-* labels)',
      });
    }
    for (const id of this.startingSince.keys()) if (!starting.has(id)) this.startingSince.delete(id);
  }

  /** When each label-made service was first seen without a task or container. */
  private readonly emptySince = new Map<string, number>();

  /**
   * Removes label-made services whose last container has been gone for the grace period, so
   * their VIPs and published ports are freed; unless an operator took the service over (it no
   * longer carries `meshd.spec-from=labels`).
   */
  private async removeEmpty(listing: Parameters<typeof emptyLabelServices>[1]): Promise<void> {
    const now = Date.now();
    const empty = new Set(emptyLabelServices(this.controller.state, listing));
    for (const id of this.emptySince.keys()) if (!empty.has(id)) this.emptySince.delete(id);
    for (const id of empty) {
      const since = this.emptySince.get(id) ?? now;
      this.emptySince.set(id, since);
      if (now - since < this.serviceGraceMs) continue;
      const name = this.controller.state.services.get(id)?.name ?? id;
      try {
        await this.controller.apply((s) => (s.services.has(id) ? removeService(s, id) : emptyChange()));
        this.emptySince.delete(id);
        this.log.info('service removed: its last container has been gone for the grace period', {
          service: name,
          graceMs: this.serviceGraceMs,
        });
      } catch (err) {
        this.log.warn('could not remove an empty service', { service: name, error: messageOf(err) });
      }
    }
  }

  /** Reasons already logged, so a re-list every 10 s does not repeat them. */
  private readonly warned = new Set<string>();

  /** Logs a skipped container once per reason, at warn, with its name; true the first time. */
  private warnOnce(container: string, reason: string): boolean {
    const key = `${container}\u0000${reason}`;
    if (this.warned.has(key)) return false;
    if (this.warned.size >= 10_000) this.warned.clear();
    this.warned.add(key);
    this.log.warn('container not registered', { container, reason });
    return true;
  }

  private async apply(a: Action): Promise<void> {
    const now = () => new Date().toISOString();
    try {
      switch (a.kind) {
        case 'create-service':
          await this.controller.apply((s) => createService(s, a.spec, now()));
          this.log.info('service created from container labels', { service: a.spec.name });
          return;
        case 'update-service':
          await this.controller.apply((s) => updateService(s, a.id, a.spec, undefined, now()));
          this.log.info("service updated: its containers' labels changed", { service: a.spec.name });
          return;
        case 'add-task':
          await this.controller.apply((s) => addTask(s, a.spec, this.nodeId, now()));
          return;
        case 'remove-task':
          await this.controller.apply((s) => (s.tasks.has(a.id) ? removeTask(s, a.id) : emptyChange()));
          return;
        case 'set-health':
          await this.controller.apply((s) => setReportedHealth(s, a.id, a.health, now()));
          return;
        case 'attach':
          await this.controller.apply((s) => attachContainer(s, a.spec, this.nodeId, now()));
          return;
        case 'detach':
          await this.controller.apply((s) => detachContainer(s, a.name, undefined, now()));
          return;
        case 'skip':
          return;
      }
    } catch (err) {
      this.log.warn('could not apply a container change', {
        action: a.kind,
        ...describeAction(a),
        error: messageOf(err),
      });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.resync);
    this.abort.abort();
    await this.syncing.catch(() => undefined);
    await this.engine.close();
  }
}

/** The names an action is about, for a log line an operator can act on. */
function describeAction(a: Action): Record<string, string> {
  switch (a.kind) {
    case 'create-service':
    case 'update-service':
      return { service: a.spec.name };
    case 'add-task':
      return { container: a.spec.name ?? '' };
    case 'attach':
      return { container: a.spec.name };
    case 'detach':
      return { container: a.name };
    case 'skip':
      return { container: a.container };
    default:
      return { task: a.id };
  }
}
