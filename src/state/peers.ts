import type { Logger } from '../log.js';
import type { ClusterState } from '../model/cluster-state.js';

/**
 * Remembers when each node was last seen alive (its heartbeat vanishes with its lease, and with it
 * the time) and logs once when a node goes down or comes back. Bounded by the cluster's nodes.
 */
export class PeerWatch {
  private readonly lastSeen = new Map<string, string>();
  private alive: Set<string> | undefined;

  constructor(
    private readonly self: string,
    private readonly log: Logger,
  ) {}

  update(state: ClusterState): void {
    const now = new Set(state.heartbeats.keys());
    for (const [id, hb] of state.heartbeats) this.lastSeen.set(id, hb.lastSeen);
    if (this.alive) {
      for (const id of this.alive) {
        const node = state.nodes.get(id);
        if (!now.has(id) && node && id !== this.self)
          this.log.warn('node is down', { node: node.name, id, lastSeen: this.lastSeen.get(id) });
      }
      for (const id of now) {
        if (!this.alive.has(id) && id !== this.self)
          this.log.info('node is up', { node: state.nodes.get(id)?.name ?? id, id });
      }
    }
    this.alive = now;
    for (const id of this.lastSeen.keys()) if (!state.nodes.has(id)) this.lastSeen.delete(id);
  }

  /** The last heartbeat seen from a node, if this node saw one. */
  seen(id: string): string | undefined {
    return this.lastSeen.get(id);
  }
}
