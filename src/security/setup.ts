import type { Settings } from '../config/settings.js';
import { logger } from '../log.js';
import { deregisterNode, recordJoin } from '../model/node.js';
import type { Controller } from '../state/controller.js';
import { initClusterSecurely } from './bootstrap.js';
import { Identity, type NodeIdentity } from './identity.js';

/**
 * This node's identity in the cluster, and the cluster itself on a first start: the cluster
 * record with its CA and join token (`docker swarm init`), or nothing new when it exists. The
 * certificate comes later (`obtainCertificate`), once the node is registered.
 */
export async function setupIdentity(
  settings: Settings,
  nodeId: string,
  controller: Controller,
): Promise<Identity> {
  const identity = new Identity(
    settings.node.stateDir,
    nodeId,
    settings.security.certRotationMs,
    settings.security.joinToken,
    () => controller.state,
    async (node) => {
      await controller.apply((st) => recordJoin(st, node, new Date().toISOString()));
    },
    logger('identity'),
  );
  try {
    await initClusterSecurely(controller, identity, nodeId, settings.cluster.ingressSubnet, {
      pools: settings.cluster.defaultAddrPool,
      maskLength: settings.cluster.defaultAddrPoolMaskLength,
    });
  } catch (err) {
    identity.close();
    throw err;
  }
  return identity;
}

/**
 * Gets this node's certificate (signing it here on the CA holder, asking the CA holder with the
 * join token elsewhere) and hands it, and every renewal, to `renewed`. A refused token stops
 * meshd (`refused`, also for a refusal on a later renewal) and leaves no node behind: this node's
 * records go first. An unreachable CA holder is retried.
 */
export async function obtainCertificate(
  identity: Identity,
  controller: Controller,
  nodeId: string,
  renewed: (id: NodeIdentity) => void,
  refused: (err: Error) => void,
): Promise<void> {
  const leave = () => controller.apply((st) => deregisterNode(st, nodeId)).catch(() => undefined);
  identity.onChange(renewed);
  identity.onRefused((err) => void leave().then(() => refused(err)));
  try {
    await identity.startWithRetry();
  } catch (err) {
    await leave();
    throw err;
  }
}
