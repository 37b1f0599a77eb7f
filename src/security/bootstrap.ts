import { newId } from '../model/ids.js';
import { initCluster, sealClusterSecrets } from '../model/node.js';
import type { AddrPools, ClusterInfo } from '../model/types.js';
import type { Controller } from '../state/controller.js';
import type { Identity } from './identity.js';
import { newToken, secretHash } from './join-token.js';
import { certDigest, createCa } from './pki.js';
import { newClusterKey, seal } from './seal.js';

/**
 * `docker swarm init`, securely: the node that initialises the cluster creates the cluster CA,
 * the cluster key and the first join token, and writes them in the same guarded write as the
 * cluster id and the ingress network, the CA key and token sealed with the cluster key. Whoever
 * loses the race throws its own away; the winner keeps the cluster key in its state directory.
 */
export async function initClusterSecurely(
  controller: Controller,
  identity: Identity,
  nodeId: string,
  ingressSubnet: string,
  addrPools?: AddrPools,
): Promise<void> {
  if (controller.state.cluster) {
    await controller.apply((s) => initCluster(s, ingressSubnet, new Date().toISOString()));
    await sealLegacySecrets(controller, identity);
    return;
  }
  const id = newId();
  const ca = await createCa(id);
  const token = newToken(certDigest(ca.cert));
  const key = newClusterKey();
  // The key is on disk before the record that needs it exists: a crash in between leaves a
  // stray key, never a cluster whose CA nobody can open.
  identity.saveClusterKey(key);
  await controller.apply((s) =>
    initCluster(
      s,
      ingressSubnet,
      new Date().toISOString(),
      {
        id,
        caCert: ca.cert,
        caHolder: nodeId,
        tokenHash: secretHash(token),
        caKeySealed: seal(key, ca.key),
        tokenSealed: seal(key, token),
      },
      addrPools,
    ),
  );
}

/** A cluster made before the CA key was sealed: its creator seals it now, so others can issue. */
async function sealLegacySecrets(controller: Controller, identity: Identity): Promise<void> {
  const cluster = controller.state.cluster as ClusterInfo | undefined;
  if (!cluster || cluster.caKeySealed || !identity.legacyCaKey()) return;
  const key = identity.clusterKey() ?? newClusterKey();
  identity.saveClusterKey(key);
  const token = identity.joinTokenText();
  await controller.apply((s) =>
    sealClusterSecrets(s, seal(key, identity.legacyCaKey() as string), seal(key, token)),
  );
}
