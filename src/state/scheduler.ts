import type { Logger } from '../log.js';
import { messageOf } from '../model/errors.js';
import type { Mirror } from './mirror.js';
import { type Snapshot, SnapshotBuilder, type SnapshotChange } from './snapshot.js';

/** A subsystem that serves from snapshots: DNS, the mesh, the prober, the data plane. */
export interface SnapshotSubscriber {
  readonly name: string;
  /** Takes a new snapshot and what changed since the last one it saw. */
  apply(snap: Snapshot, change: SnapshotChange): void | Promise<void>;
}

/**
 * Turns the mirror's changes into snapshots and hands each to the subscribers in order (Traefik's
 * provider -> configuration -> handler swap). A burst of store events makes one snapshot; a
 * subscriber that joins late gets everything once, then deltas like the rest.
 */
export class SnapshotScheduler {
  private readonly builder = new SnapshotBuilder();
  private readonly subscribers: { sub: SnapshotSubscriber; fresh: boolean }[] = [];
  private snapshot: Snapshot | undefined;
  private queued = false;
  private stopped = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly mirror: Mirror,
    private readonly log: Logger,
    /** Told how long each snapshot took to build and hand out. */
    private readonly built: (ms: number) => void = () => undefined,
  ) {}

  get current(): Snapshot | undefined {
    return this.snapshot;
  }

  subscribe(sub: SnapshotSubscriber): void {
    this.subscribers.push({ sub, fresh: true });
  }

  /** The mirror changed: one snapshot for everything that arrives in this turn of the event loop. */
  changed(): void {
    if (this.queued || this.stopped) return;
    this.queued = true;
    setImmediate(() => void this.flush());
  }

  /** Builds a snapshot now and resolves once every subscriber has taken it. */
  flush(): Promise<void> {
    this.queued = false;
    this.chain = this.chain.then(() => this.run());
    return this.chain;
  }

  stop(): void {
    this.stopped = true;
  }

  private async run(): Promise<void> {
    if (!this.mirror.hasSynced || this.stopped) return;
    const started = performance.now();
    const { snap, change } = this.builder.apply(
      this.mirror.state,
      this.mirror.takeDelta(),
      this.mirror.revision,
    );
    this.snapshot = snap;
    for (const s of this.subscribers) {
      const c = s.fresh ? this.builder.everything(snap.state) : change;
      s.fresh = false;
      try {
        await s.sub.apply(snap, c);
      } catch (err) {
        this.log.error('a subsystem failed to take a snapshot', {
          subsystem: s.sub.name,
          error: messageOf(err),
        });
      }
    }
    this.built(performance.now() - started);
  }
}
