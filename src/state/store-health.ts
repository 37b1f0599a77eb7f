import type { Logger } from '../log.js';

/**
 * Whether the cluster store is reachable, by two measures: the watch (the mirror's view) and the
 * lease keep-alive (unary calls). A silent watch on a dead link is caught by the second.
 */
export class StoreHealth {
  private watchUp = true;
  private leaseUp = true;
  private watchReason = '';
  private leaseReason = '';

  constructor(private readonly log: Logger) {}

  get connected(): boolean {
    return this.watchUp && this.leaseUp;
  }

  /** Why the store counts as unreachable ('' when it does not). */
  get reason(): string {
    if (this.connected) return '';
    return this.watchUp ? this.leaseReason : this.watchReason;
  }

  watch(up: boolean, reason: string): void {
    if (up !== this.watchUp)
      this.log.warn(up ? 'cluster store watch restored' : 'cluster store watch lost', { reason });
    this.watchUp = up;
    this.watchReason = reason;
  }

  lease(up: boolean, reason: string): void {
    if (up !== this.leaseUp)
      this.log.warn(up ? 'cluster store reachable again' : 'cluster store unreachable', { reason });
    this.leaseUp = up;
    this.leaseReason = reason;
  }
}
