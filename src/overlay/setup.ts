import { Counter, type Registry } from 'prom-client';
import type { Settings } from '../config/settings.js';
import { kernelUnavailable } from '../host/commands.js';
import type { Logger } from '../log.js';
import type { SnapshotScheduler } from '../state/scheduler.js';
import { EncryptedRelay, type FrameCarrier } from './encrypted-relay.js';
import { OverlayFabric } from './fabric.js';
import { tapHelperAvailable } from './tap-helper.js';

/**
 * The overlay fabric where this node may build it: the same rule as the kernel data plane
 * (`mesh.dataplane` not `userspace`, and CAP_NET_ADMIN with nft). Elsewhere networks stay
 * logical: addresses and names without devices, as before.
 */
export async function startOverlay(
  settings: Settings,
  nodeId: string,
  log: Logger,
  /** How encrypted networks' frames reach other nodes: the mTLS tunnels. */
  carrier: FrameCarrier,
  registry: Registry,
  /** Claims this node's own address on a network it carries (a store write). */
  claim: (network: string) => Promise<void>,
  snapshots: SnapshotScheduler,
  /** Tells DNS that bridge addresses changed (gateways, VIPs), so it binds them at once. */
  addressesChanged: () => Promise<void>,
): Promise<OverlayFabric | undefined> {
  if (settings.mesh.dataplane === 'userspace') return undefined;
  const unavailable = await kernelUnavailable();
  if (unavailable) {
    log.info('overlay networks stay logical on this node', { reason: unavailable });
    return undefined;
  }
  const relay = (await tapHelperAvailable()) ? new EncryptedRelay(carrier, log) : undefined;
  if (relay) relayMetrics(relay, registry);
  const dns = settings.dns.listen;
  // Port 53 on every local address: IPv4 ones for 0.0.0.0, both families for ::.
  const dnsOnGateways =
    dns?.port !== 53 ? undefined : dns.host === '0.0.0.0' ? 'ipv4' : dns.host === '::' ? 'both' : undefined;
  const fabric = new OverlayFabric(
    nodeId,
    settings.node.datapathAddr,
    log,
    relay,
    claim,
    dnsOnGateways,
    addressesChanged,
  );
  snapshots.subscribe({ name: 'overlay', apply: (snap, change) => fabric.update(snap, change) });
  return fabric;
}

/** What the encrypted overlay carried through the tunnels, read from the relay at scrape time. */
function relayMetrics(relay: EncryptedRelay, registry: Registry): void {
  const c = relay.counts;
  const byDirection = (name: string, help: string, sent: () => number, received: () => number) =>
    new Counter({
      name,
      help,
      labelNames: ['direction'],
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ direction: 'sent' }, sent());
        this.inc({ direction: 'received' }, received());
      },
    });
  byDirection(
    'meshd_overlay_encrypted_frames_total',
    'Frames of encrypted overlay networks sent to other nodes through the tunnels (dropped ones too) and received from them.',
    () => c.sentFrames,
    () => c.receivedFrames,
  );
  byDirection(
    'meshd_overlay_encrypted_bytes_total',
    'Bytes of those frames, each way.',
    () => c.sentBytes,
    () => c.receivedBytes,
  );
  new Counter({
    name: 'meshd_overlay_encrypted_dropped_total',
    help: 'Frames of encrypted overlay networks dropped: no node holds the destination, no tunnel, or a tunnel too slow.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(c.dropped);
    },
  });
}
