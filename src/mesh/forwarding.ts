import type { Snapshot, SnapshotChange } from '../state/snapshot.js';

/**
 * The seam for what serves VIPs and published ports: given each snapshot change, bring the
 * forwarding in line with it. The userspace proxy (Mesh) is the first implementation; a kernel
 * one (nftables DNAT, as kube-proxy's nftables mode) is the second, chosen per port.
 */
export interface Forwarding {
  readonly kind: 'userspace' | 'kernel';
  /** Applies a snapshot change; resolves once listeners (or rules) are in place. */
  update(snap: Snapshot, change: SnapshotChange): Promise<void>;
  /** Why a service's ports are not served, for `service inspect`. */
  errors(serviceId: string): string[];
  /** Stops taking new connections; open ones get `graceMs` to finish. */
  close(graceMs: number): Promise<void>;
}
