import { createHash } from 'node:crypto';
import { parseAddress, parseCidr } from '../model/address.js';
import type { ClusterState } from '../model/cluster-state.js';
import type { Network, Task } from '../model/types.js';

/** An endpoint meshd joined to the overlay: a task or a container with a namespace. */
interface Joined {
  readonly id: string;
  readonly node: string;
  readonly netns?: string;
  readonly addresses: Task['addresses'];
}

/** An endpoint of this node joined to an overlay: a veth whose far end is `ifname` in its namespace. */
export interface LocalEndpoint {
  /** The task's or container's id. */
  readonly task: string;
  readonly netns: string;
  readonly address: string;
  readonly mac: string;
  /** `eth0`, `eth1`, ... in the order of the service's networks, as Docker names them. */
  readonly ifname: string;
  /** The veth end on the node, on the network's bridge. */
  readonly hostIf: string;
}

/**
 * An endpoint on another node: its frames go over VXLAN to that node's datapath address (`node`),
 * or, on an encrypted network, through the mTLS tunnel to that node (`nodeId`).
 */
export interface RemoteEndpoint {
  readonly address: string;
  readonly mac: string;
  readonly node: string;
  readonly nodeId: string;
}

/** One overlay network as this node builds it: a bridge, a VXLAN device, and its endpoints. */
export interface OverlayNetwork {
  readonly id: string;
  readonly name: string;
  readonly vni: number;
  readonly subnet: string;
  readonly prefix: number;
  readonly gateway: string;
  readonly mtu: number;
  readonly internal: boolean;
  /**
   * Frames to other nodes never cross in clear: the bridge's port towards them is a TAP device
   * whose frames meshd carries through its mTLS tunnels, instead of a VXLAN device.
   */
  readonly encrypted: boolean;
  readonly bridge: string;
  /** The bridge's port towards other nodes: `mvx<VNI>` (VXLAN) or `mtp<VNI>` (TAP, encrypted). */
  readonly carrier: string;
  /**
   * This node's own address on the network (Docker's `lb-<network>` endpoint), once claimed: the
   * bridge's first address and the source of what the node sends into the overlay (the routing
   * mesh to tasks on other nodes), so replies come back here. The bridge's MAC is made from it.
   */
  readonly address?: string;
  /**
   * The VIPs of the network's services, sorted: each is an address of the bridge on every node
   * that carries the network, so an endpoint's ARP or neighbour solicitation for a VIP is
   * answered by its own node, whose routing mesh then serves it (swarm answers VIPs inside each
   * task's namespace instead).
   */
  readonly vips: readonly string[];
  readonly locals: readonly LocalEndpoint[];
  /** Endpoints on other nodes, and those nodes' own addresses. */
  readonly remotes: readonly RemoteEndpoint[];
}

/** VXLAN adds 50 bytes to each frame: an overlay on a 1,500-byte underlay carries 1,450. */
export const vxlanOverhead = 50;

/**
 * The MAC of an endpoint, made from its address as Docker does (02:42 and the four bytes of the
 * IPv4 address): every node derives it, so it is never stored or exchanged.
 */
export function macOf(address: string): string {
  // IPv4: its four bytes; IPv6: its last four (IPAM hands out addresses from the bottom of a
  // subnet, so those differ between any two endpoints of one network).
  const value = parseAddress(address).value & 0xffff_ffffn;
  const bytes = [24n, 16n, 8n, 0n].map((shift) => ((value >> shift) & 0xffn).toString(16).padStart(2, '0'));
  return ['02', '42', ...bytes].join(':');
}

/** A stable interface name (at most 15 bytes) for an endpoint's veth on the node. */
function hostIfOf(task: string, network: string): string {
  return `mv${createHash('sha1').update(`${task}/${network}`).digest('hex').slice(0, 11)}`;
}

/** Endpoints joined through meshd (`--netns`), by network. */
function joinedByNetwork(state: ClusterState): Map<string, Joined[]> {
  const joined = new Map<string, Joined[]>();
  for (const t of [...state.tasks.values(), ...state.containers.values()] as Joined[]) {
    if (!t.netns) continue;
    for (const a of t.addresses) {
      let list = joined.get(a.network);
      if (!list) {
        list = [];
        joined.set(a.network, list);
      }
      list.push(t);
    }
  }
  return joined;
}

/** Whether this node builds devices for the network: an overlay with a VNI, not ingress. */
function buildable(net: Network | undefined): net is Network & { vni: number } {
  return net?.vni !== undefined && !net.ingress;
}

export function isIPv6Subnet(net: { subnet: string }): boolean {
  return net.subnet.includes(':');
}

/**
 * What this node's overlay should be, from the cluster state. Every node carries each network
 * that an endpoint anywhere joined through meshd (`--netns`), as every swarm node carries the
 * ingress network: its routing mesh reaches that network's tasks on any node. It does so once it
 * holds an address of its own on the network (`claimsWanted`): a local endpoint waits for that
 * one store write. Networks whose endpoints bring routable addresses of their own
 * stay logical, and a node never takes a subnet's gateway it was not asked to. Remote endpoints
 * count only while their node's heartbeat lives.
 */
export function overlayPlan(state: ClusterState, self: string): OverlayNetwork[] {
  const out: OverlayNetwork[] = [];
  const own = state.nodes.get(self)?.overlayAddresses ?? {};
  const vips = new Map<string, string[]>();
  for (const svc of state.services.values())
    for (const n of svc.networks) {
      if (!n.vip) continue;
      const list = vips.get(n.network) ?? [];
      list.push(n.vip);
      vips.set(n.network, list);
    }
  for (const [id, tasks] of joinedByNetwork(state)) {
    const net = state.networks.get(id);
    if (!buildable(net)) continue;
    const locals: LocalEndpoint[] = [];
    const remotes: RemoteEndpoint[] = [];
    for (const t of tasks) {
      const index = t.addresses.findIndex((a) => a.network === id);
      const address = t.addresses[index]?.address as string;
      if (t.node === self && t.netns) {
        locals.push({
          task: t.id,
          netns: t.netns,
          address,
          mac: macOf(address),
          ifname: `eth${index}`,
          hostIf: hostIfOf(t.id, id),
        });
        continue;
      }
      const remote = remoteOn(state, t.node, address);
      if (remote) remotes.push(remote);
    }
    // Built once this node holds its own address there (claimed on the first sight of the
    // network): the bridge gets its addresses once, in order, never re-addressed under endpoints.
    const address = own[id];
    if (!address) continue;
    for (const [nodeId, node] of state.nodes) {
      const a = node.overlayAddresses?.[id];
      const remote = nodeId !== self && a ? remoteOn(state, nodeId, a) : undefined;
      if (remote) remotes.push(remote);
    }
    out.push({
      id,
      name: net.name,
      vni: net.vni,
      subnet: net.subnet,
      prefix: parseCidr(net.subnet).prefix,
      gateway: net.gateway,
      // As Docker: the option is the underlay's MTU, and VXLAN takes 50 bytes of it.
      mtu: net.mtu - vxlanOverhead,
      internal: net.internal,
      encrypted: net.encrypted,
      bridge: `mbr${net.vni}`,
      carrier: net.encrypted ? `mtp${net.vni}` : `mvx${net.vni}`,
      ...(address ? { address } : {}),
      vips: (vips.get(id) ?? []).sort(),
      locals,
      remotes,
    });
  }
  return out;
}

/** An address on a live node other than this one, as the forwarding tables need it. */
function remoteOn(state: ClusterState, nodeId: string, address: string): RemoteEndpoint | undefined {
  const node = state.nodes.get(nodeId);
  if (!node?.datapathAddr || !state.heartbeats.has(nodeId)) return undefined;
  return { address, mac: macOf(address), node: node.datapathAddr, nodeId };
}

/** The networks this node carries but holds no address of its own on yet: it claims one on each. */
export function claimsWanted(state: ClusterState, self: string): string[] {
  const own = state.nodes.get(self)?.overlayAddresses ?? {};
  return [...joinedByNetwork(state).keys()].filter((id) => !own[id] && buildable(state.networks.get(id)));
}

/**
 * The nodes that carry a network's overlay, as `docker network inspect` prints them (`Peers`):
 * every live node with an endpoint joined to it or an address of its own on it, by name and
 * datapath address, with that address (Docker's `lb-<network>` endpoint) once it has one.
 */
export function overlayPeers(
  state: ClusterState,
  network: string,
): { name: string; ip: string; address?: string }[] {
  const nodes = new Set<string>();
  for (const e of [...state.tasks.values(), ...state.containers.values()] as Joined[])
    if (e.netns && e.addresses.some((a) => a.network === network)) nodes.add(e.node);
  for (const [id, n] of state.nodes) if (n.overlayAddresses?.[network]) nodes.add(id);
  const peers: { name: string; ip: string; address?: string }[] = [];
  for (const id of nodes) {
    const n = state.nodes.get(id);
    const address = n?.overlayAddresses?.[network];
    if (n && state.heartbeats.has(id))
      peers.push({ name: n.name, ip: n.datapathAddr, ...(address ? { address } : {}) });
  }
  return peers.sort((a, b) => a.name.localeCompare(b.name));
}
