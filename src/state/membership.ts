import type { Logger } from '../log.js';
import { MeshError, messageOf } from '../model/errors.js';
import { type NodeSelf, registerNode } from '../model/node.js';
import type { LeaseId, Store } from '../store/store.js';
import type { Controller } from './controller.js';

/**
 * Keeps this node registered: a lease with a short TTL, renewed at a third of it; the heartbeat
 * key lives on that lease, so when the node dies its heartbeat disappears on every node within
 * the TTL. A lost lease (the store restarted or the node was partitioned) is re-granted and the
 * node's keys written again.
 */
export class Membership {
  private timer: NodeJS.Timeout | undefined;
  private lease: LeaseId = '';
  private closed = false;
  private ticks = 0;

  constructor(
    private readonly store: Store,
    private readonly controller: Controller,
    private self: NodeSelf,
    private readonly ttlSeconds: number,
    private readonly log: Logger,
    /** Told whether the store answered the last keep-alive: how a silent outage is noticed. */
    private readonly health: (up: boolean, reason: string) => void = () => {},
  ) {}

  async start(): Promise<void> {
    await this.register();
    this.schedule();
  }

  /**
   * Waits while another live node holds this node's id (another name or address, its lease kept
   * alive); if it is still alive a lease TTL later, this is not a restart of ourselves but a
   * second node sharing our state directory, and joining would silently merge the two.
   */
  private async ensureIdIsOurs(): Promise<void> {
    const deadline = Date.now() + (this.ttlSeconds + 1) * 1000;
    for (;;) {
      const st = this.controller.state;
      const other = st.nodes.get(this.self.id);
      const live = st.heartbeats.has(this.self.id);
      const same =
        other?.name === this.self.name &&
        other.advertiseAddr === this.self.advertiseAddr &&
        other.datapathAddr === this.self.datapathAddr &&
        other.dataListen === this.self.dataListen;
      if (!other || !live || same) return;
      if (Date.now() > deadline) {
        throw new MeshError(
          'already_exists',
          `node id ${this.self.id} is held by another live node (${other.name} at ${other.advertiseAddr}): two nodes share a state directory`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  private async register(): Promise<void> {
    await this.ensureIdIsOurs();
    this.lease = await this.store.grantLease(this.ttlSeconds);
    this.controller.lease = this.lease;
    await this.controller.apply((s) => registerNode(s, this.self, new Date().toISOString()));
  }

  /** Changes what this node says of itself (it gained a certificate) and registers it again. */
  async update(change: Partial<NodeSelf>): Promise<void> {
    this.self = { ...this.self, ...change };
    try {
      await this.controller.apply((s) => registerNode(s, this.self, new Date().toISOString()));
    } catch (err) {
      // The lease lapsed (a node starved of CPU for a TTL): register with a new one, not fail.
      if (!(err instanceof MeshError && err.code === 'not_found') || this.closed) throw err;
      this.log.warn('lease lost; registering again', { lease: this.lease });
      await this.register();
    }
  }

  /** Checks the lease now (the watch came back: say so as soon as the lease answers too). */
  checkNow(): void {
    if (this.closed || !this.lease) return;
    clearTimeout(this.timer);
    void this.tick();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.closed) return;
    this.timer = setTimeout(() => void this.tick(), (this.ttlSeconds * 1000) / 3);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      await this.store.keepAlive(this.lease);
      this.health(true, '');
      // Refresh last-seen about once per TTL; the lease, not this write, is what keeps us alive.
      if (++this.ticks % 3 === 0) {
        await this.controller.putOwned(
          'heartbeats',
          this.self.id,
          { node: this.self.id, lastSeen: new Date().toISOString() },
          true,
        );
      }
    } catch (err) {
      if (err instanceof MeshError && err.code === 'not_found') {
        this.log.warn('lease lost; registering again', { lease: this.lease });
        try {
          await this.register();
          this.health(true, '');
        } catch (e) {
          this.log.warn('re-registration failed; will retry', { error: messageOf(e) });
        }
      } else {
        this.health(false, messageOf(err));
      }
    }
    this.schedule();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.lease) {
      try {
        await this.store.revokeLease(this.lease);
      } catch {
        // The store may already be gone; the lease then lapses by itself.
      }
    }
  }
}
