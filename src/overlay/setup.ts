import type { Settings } from '../config/settings.js';
import { kernelUnavailable } from '../host/commands.js';
import type { Logger } from '../log.js';
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
): Promise<OverlayFabric | undefined> {
  if (settings.mesh.dataplane === 'userspace') return undefined;
  const unavailable = await kernelUnavailable();
  if (unavailable) {
    log.info('overlay networks stay logical on this node', { reason: unavailable });
    return undefined;
  }
  const relay = (await tapHelperAvailable()) ? new EncryptedRelay(carrier, log) : undefined;
  return new OverlayFabric(nodeId, settings.node.datapathAddr, log, relay);
}
