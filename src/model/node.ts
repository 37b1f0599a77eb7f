import { type Change, type ClusterState, emptyChange, lookup } from './cluster-state.js';
import { MeshError } from './errors.js';
import { newId } from './ids.js';
import { defaultGateway } from './ipam.js';
import type { ClusterInfo, Network, Node, NodeHeartbeat } from './types.js';

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
}

/** Registers (or refreshes) a node and its leased heartbeat. */
export function registerNode(state: ClusterState, self: NodeSelf, now: string): Change {
  const existing = state.nodes.get(self.id);
  const node: Omit<Node, 'version'> = { ...self, createdAt: existing?.createdAt ?? now, updatedAt: now };
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
    existing.apiTls === self.apiTls;
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
  security?: { id: string; caCert: string; caHolder: string; tokenHash: string },
): Change {
  const change = emptyChange();
  if (state.cluster) return change;
  const info: ClusterInfo = security
    ? {
        id: security.id,
        createdAt: now,
        caCert: security.caCert,
        caHolder: security.caHolder,
        tokenHash: security.tokenHash,
      }
    : { id: newId(), createdAt: now };
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
    mtu: 1500,
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

/** Replaces the join token (its hash); the old one stops working at once. */
export function rotateJoinToken(state: ClusterState, tokenHash: string): Change {
  const change = emptyChange();
  const c = state.cluster;
  if (!c) return change;
  const { version: _v, ...rest } = c as ClusterInfo & { version?: number };
  change.puts.push({ kind: 'cluster', id: 'info', value: { ...rest, tokenHash } });
  return change;
}

/** Removes a node (it must be down unless forced), its heartbeat and its tasks, as `docker node rm`. */
export function removeNode(state: ClusterState, ref: string, force: boolean): Change {
  const node = lookup(state.nodes, ref, 'node');
  if (state.heartbeats.has(node.id) && !force) {
    throw new MeshError(
      'failed_precondition',
      `node ${node.name} is not down and can't be removed (use --force)`,
    );
  }
  if (state.cluster?.caHolder === node.id) {
    throw new MeshError('failed_precondition', `node ${node.name} holds the cluster CA and can't be removed`);
  }
  const change = emptyChange();
  change.deletes.push({ kind: 'nodes', id: node.id }, { kind: 'heartbeats', id: node.id });
  for (const t of state.tasks.values())
    if (t.node === node.id) change.deletes.push({ kind: 'tasks', id: t.id }, { kind: 'health', id: t.id });
  return change;
}

/** A fresh node id, kept in the node's state directory so a restart rejoins as the same node. */
export const newNodeId = newId;
