import { removingClaim } from './claims.js';
import { type Change, type ClusterState, emptyChange, lookup, usedAddresses } from './cluster-state.js';
import { MeshError } from './errors.js';
import { newId } from './ids.js';
import { allocate, defaultGateway, makePool } from './ipam.js';
import { defaultMtu, freeVni } from './network.js';
import type { AddrPools, ClusterInfo, Network, Node, NodeHeartbeat } from './types.js';

/** What a node says of itself when it starts or rejoins. */
export interface NodeSelf {
  readonly id: string;
  readonly name: string;
  readonly advertiseAddr: string;
  readonly datapathAddr: string;
  readonly dataListen: string;
  readonly apiListen: string;
  readonly dataTls?: boolean;
  readonly apiTls?: boolean;
  readonly canIssue?: boolean;
  readonly certExpires?: string;
  readonly joinListen?: string;
  readonly dataplane?: 'kernel' | 'userspace';
}

/** Registers (or refreshes) a node and its leased heartbeat; a removed node may not come back. */
export function registerNode(state: ClusterState, self: NodeSelf, now: string): Change {
  if (state.cluster?.removed?.[self.id]) {
    throw new MeshError(
      'permission_denied',
      `node ${self.id} was removed from the cluster (meshctl node rm); start it with an empty --state-dir to join as a new node`,
    );
  }
  const existing = state.nodes.get(self.id);
  const node: Omit<Node, 'version'> = {
    ...self,
    // Claimed by the node's overlay, not said at start: a restart keeps them.
    ...(existing?.overlayAddresses ? { overlayAddresses: existing.overlayAddresses } : {}),
    createdAt: existing?.createdAt ?? now,
    updatedAt: now,
  };
  const heartbeat: NodeHeartbeat = { node: self.id, lastSeen: now };
  const change = emptyChange();
  const same =
    existing &&
    existing.name === self.name &&
    existing.advertiseAddr === self.advertiseAddr &&
    existing.datapathAddr === self.datapathAddr &&
    existing.dataListen === self.dataListen &&
    existing.apiListen === self.apiListen &&
    existing.dataTls === self.dataTls &&
    existing.apiTls === self.apiTls &&
    existing.canIssue === self.canIssue &&
    existing.certExpires === self.certExpires &&
    existing.joinListen === self.joinListen &&
    existing.dataplane === self.dataplane;
  if (!same) change.puts.push({ kind: 'nodes', id: self.id, value: node });
  change.puts.push({ kind: 'heartbeats', id: self.id, value: heartbeat, lease: true });
  return change;
}

/**
 * Initialises the cluster once, like `docker swarm init`: a cluster id and the default ingress
 * network, written together only if no cluster record exists yet, so two nodes starting at the
 * same moment cannot make two ingress networks.
 */
export function initCluster(
  state: ClusterState,
  ingressSubnet: string,
  now: string,
  security?: Required<
    Pick<ClusterInfo, 'id' | 'caCert' | 'caHolder' | 'tokenHash' | 'caKeySealed' | 'tokenSealed'>
  >,
  addrPools?: AddrPools,
): Change {
  const change = emptyChange();
  if (state.cluster) return change;
  const pools = addrPools ? { addrPools } : {};
  const info: ClusterInfo = security
    ? { ...security, ...pools, createdAt: now, certified: { [security.caHolder]: now } }
    : { id: newId(), ...pools, createdAt: now };
  const id = newId();
  const ingress: Omit<Network, 'version'> = {
    id,
    name: 'ingress',
    driver: 'overlay',
    subnet: ingressSubnet,
    gateway: defaultGateway(ingressSubnet),
    attachable: false,
    ingress: true,
    internal: false,
    encrypted: false,
    mtu: defaultMtu,
    vni: freeVni(state),
    labels: {},
    createdAt: now,
    updatedAt: now,
  };
  change.puts.push({ kind: 'cluster', id: 'info', value: info });
  change.expect.push({ kind: 'cluster', id: 'info', version: 0 });
  if (![...state.networks.values()].some((n) => n.ingress))
    change.puts.push({ kind: 'networks', id, value: ingress });
  return change;
}

/** Rewrites the cluster record with `patch`, guarded by the version it was read at. */
function patchCluster(state: ClusterState, patch: Partial<ClusterInfo>): Change {
  const change = emptyChange();
  const c = state.cluster as (ClusterInfo & { version?: number }) | undefined;
  if (!c) throw new MeshError('failed_precondition', 'the cluster is not initialised yet');
  const { version, ...rest } = c;
  change.puts.push({ kind: 'cluster', id: 'info', value: { ...rest, ...patch } });
  change.expect.push({ kind: 'cluster', id: 'info', version: version ?? 0 });
  return change;
}

/** Replaces the join token (its hash and its sealed copy); the old one stops working at once. */
export function rotateJoinToken(state: ClusterState, tokenHash: string, tokenSealed: string): Change {
  return patchCluster(state, { tokenHash, tokenSealed });
}

/**
 * Records that a join issued `node` its first certificate; a second join for the same id is
 * refused (a join token buys a new node, never an existing node's identity).
 */
export function recordJoin(state: ClusterState, node: string, now: string): Change {
  if (state.cluster?.certified?.[node] || state.cluster?.removed?.[node]) {
    throw new MeshError(
      'permission_denied',
      `node ${node} already has a certificate: a join always takes a new node id (a member renews with its current certificate)`,
    );
  }
  return patchCluster(state, { certified: { ...state.cluster?.certified, [node]: now } });
}

/** Seals the CA key and token into the cluster record (a cluster made before they were). */
export function sealClusterSecrets(state: ClusterState, caKeySealed: string, tokenSealed: string): Change {
  return patchCluster(state, { caKeySealed, tokenSealed });
}

/**
 * Gives a node its own address on an overlay network it carries (Docker's `lb-<network>`
 * endpoint), from the network's IPAM like any endpoint's. No-op when it has one already.
 */
export function claimOverlayAddress(state: ClusterState, nodeId: string, networkId: string): Change {
  const change = emptyChange();
  const node = state.nodes.get(nodeId);
  const net = state.networks.get(networkId);
  if (!node || !net || node.overlayAddresses?.[networkId]) return change;
  const address = allocate(makePool(net.subnet, net.gateway), usedAddresses(state, net.id), net.name);
  const { version: _v, ...rest } = node;
  change.puts.push({
    kind: 'nodes',
    id: nodeId,
    value: { ...rest, overlayAddresses: { ...node.overlayAddresses, [networkId]: address } },
  });
  // Not while the network is being removed: its removal gives these addresses up.
  change.guards.push(removingClaim('networks', networkId));
  return change;
}

/** Takes a node's records out without marking it removed: a node whose join was refused leaves no trace. */
export function deregisterNode(state: ClusterState, id: string): Change {
  const change = emptyChange();
  if (state.nodes.has(id)) change.deletes.push({ kind: 'nodes', id });
  if (state.heartbeats.has(id)) change.deletes.push({ kind: 'heartbeats', id });
  return change;
}

/** Removes a node (it must be down unless forced), its heartbeat and its tasks, as `docker node rm`. */
export function removeNode(state: ClusterState, ref: string, force: boolean, now: string): Change {
  const node = lookup(state.nodes, ref, 'node');
  if (state.heartbeats.has(node.id) && !force) {
    throw new MeshError(
      'failed_precondition',
      `node ${node.name} is not down and can't be removed (use --force)`,
    );
  }
  // Every node holding the cluster key can issue, so removing the one that made the CA is fine.
  const change = state.cluster
    ? patchCluster(state, { removed: { ...state.cluster.removed, [node.id]: now } })
    : emptyChange();
  change.deletes.push({ kind: 'nodes', id: node.id }, { kind: 'heartbeats', id: node.id });
  for (const t of state.tasks.values())
    if (t.node === node.id) change.deletes.push({ kind: 'tasks', id: t.id }, { kind: 'health', id: t.id });
  return change;
}

/** A fresh node id, kept in the node's state directory so a restart rejoins as the same node. */
export const newNodeId = newId;
