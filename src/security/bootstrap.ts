import { newId } from '../model/ids.js';
import { initCluster } from '../model/node.js';
import type { ClusterInfo } from '../model/types.js';
import type { Controller } from '../state/controller.js';
import type { Identity } from './identity.js';
import { newToken, secretHash } from './join-token.js';
import { certDigest, createCa } from './pki.js';

/**
 * `docker swarm init`, securely: the node that initialises the cluster creates the cluster CA
 * and the first join token in the same guarded write as the cluster id and the ingress network.
 * Whoever loses the race throws its CA away; the winner keeps the key in its state directory.
 */
export async function initClusterSecurely(
  controller: Controller,
  identity: Identity,
  nodeId: string,
  ingressSubnet: string,
): Promise<void> {
  if (controller.state.cluster) {
    await controller.apply((s) => initCluster(s, ingressSubnet, new Date().toISOString()));
    return;
  }
  const id = newId();
  const ca = await createCa(id);
  const token = newToken(certDigest(ca.cert));
  await controller.apply((s) =>
    initCluster(s, ingressSubnet, new Date().toISOString(), {
      id,
      caCert: ca.cert,
      caHolder: nodeId,
      tokenHash: secretHash(token),
    }),
  );
  // Read again: the write above changed the state this function saw before it.
  const after = (controller.state as { cluster: ClusterInfo | undefined }).cluster;
  if (after?.id === id) {
    identity.saveCaKey(ca.key);
    identity.saveJoinToken(token);
  }
}
