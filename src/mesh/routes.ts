import { canonicalAddress } from '../model/address.js';
import type { Protocol, Service, Task } from '../model/types.js';
import type { Snapshot } from '../state/snapshot.js';
import type { Endpoint } from './endpoint.js';
import { makePicker, type Picker } from './picker.js';
import type { Peer } from './tunnels.js';

/** Where connections arriving on one listener go. Immutable; replaced on every snapshot. */
export interface ServiceRoute {
  readonly service: Service;
  /** The port label for metrics: the published port, or the VIP's target port. */
  readonly port: string;
  readonly proto: Protocol;
  /** Tasks in rotation. */
  readonly picker: Picker;
  /** Local tasks in rotation, when the service prefers them (or host-mode publishing needs them). */
  readonly localPicker: Picker | undefined;
  /** Every task, whatever its health: what the panic rule `all` falls back to. */
  readonly panicPicker: Picker;
  /** Whether this route may send to a task (for moving UDP flows off departed tasks). */
  isLive(task: string): boolean;
}

/** A socket meshd should have open, and the route behind it. */
export interface ListenerSpec {
  readonly key: string;
  readonly proto: Protocol;
  readonly host: string;
  readonly port: number;
  readonly kind: 'publish' | 'vip';
  readonly route: ServiceRoute;
}

/**
 * How this node reaches tasks on other nodes: `direct` to the task address (it must be routable),
 * `dataplane` through the peer's data plane, `auto` over an overlay this node carries, else
 * through the data plane whenever both nodes hold a certificate (addresses that no overlay of
 * this node carries are not routable between hosts).
 */
export type RemotePath = 'auto' | 'direct' | 'dataplane';

/** A node's data-plane address: its data-listen port on its datapath address. */
function dataAddress(snap: Snapshot, nodeId: string): { host: string; port: number } | undefined {
  const n = snap.state.nodes.get(nodeId);
  const m = n && /^(.*):(\d+)$/.exec(n.dataListen);
  if (!n || !m) return undefined;
  const host = (m[1] as string).replace(/^\[|\]$/g, '');
  return { host: host === '0.0.0.0' || host === '::' ? n.datapathAddr : host, port: Number(m[2]) };
}

/** Node `nodeId`'s data plane as a tunnel needs it, if it has one. */
export function peerOf(snap: Snapshot, nodeId: string): Peer | undefined {
  const where = dataAddress(snap, nodeId);
  if (!where) return undefined;
  return { node: nodeId, nodeName: snap.state.nodes.get(nodeId)?.name ?? nodeId, ...where };
}

/**
 * How this node reaches a task: on this node, over an overlay this node carries, straight to its
 * address, through its node's data plane, or not at all.
 */
export type TaskPath = 'local' | 'overlay' | 'direct' | 'dataplane' | 'none';

/**
 * The path from `nodeId` to a task on network `networkId`. A task joined to an overlay through
 * meshd is reached at its overlay address when this node carries that overlay too (it holds an
 * address of its own there, which the kernel data plane builds): the overlay carries it to the
 * task's node, through the tunnels when the network is encrypted, and the kernel can serve it.
 * Only `remoteTasks: dataplane` keeps such a task on the data plane. Otherwise, an encrypted network's
 * traffic always takes the data plane, which speaks only mTLS; a peer without a certificate
 * cannot take it, so it gets none (never in clear). An unencrypted network takes the data plane
 * too unless `remoteTasks: direct`, when both nodes hold a certificate; else it goes direct.
 */
export function taskPath(
  snap: Snapshot,
  nodeId: string,
  task: Task,
  networkId: string,
  remote: RemotePath,
): TaskPath {
  if (task.node === nodeId) return 'local';
  const self = snap.state.nodes.get(nodeId);
  if (
    remote !== 'dataplane' &&
    task.netns &&
    self?.dataplane === 'kernel' &&
    self.overlayAddresses?.[networkId]
  )
    return 'overlay';
  const encrypted = snap.state.networks.get(networkId)?.encrypted === true;
  const peer = snap.state.nodes.get(task.node);
  if (encrypted) return peer?.dataTls ? 'dataplane' : 'none';
  const both = peer?.dataTls === true && self?.dataTls === true;
  return remote !== 'direct' && both ? 'dataplane' : 'direct';
}

function endpoints(
  snap: Snapshot,
  svc: Service,
  targetPort: number,
  nodeId: string,
  networkId: string | undefined,
  remote: RemotePath,
  reserved: (host: string, port: number) => boolean,
) {
  const all: Endpoint[] = [];
  const up: Endpoint[] = [];
  for (const t of snap.tasksOf(svc.id)) {
    const addr = (networkId && t.addresses.find((a) => a.network === networkId)) || t.addresses[0];
    if (!addr) continue;
    const local = t.node === nodeId;
    // Never towards this node's own listeners (its API above all), whatever a task claims.
    if (local && reserved(addr.address, targetPort)) continue;
    const path = taskPath(snap, nodeId, t, addr.network, remote);
    if (path === 'none') continue;
    const where = path === 'dataplane' ? dataAddress(snap, t.node) : undefined;
    const via = where ? { ...where, nodeName: snap.state.nodes.get(t.node)?.name ?? t.node } : undefined;
    const e: Endpoint = {
      task: t.id,
      name: t.name,
      host: addr.address,
      port: targetPort,
      node: t.node,
      local,
      ...(via ? { via } : {}),
    };
    all.push(e);
    if (snap.up.has(t.id)) up.push(e);
  }
  return { all, up };
}

function route(
  svc: Service,
  port: string,
  proto: Protocol,
  eps: { all: Endpoint[]; up: Endpoint[] },
  localOnly: boolean,
): ServiceRoute {
  // Copies only where they differ: at 100,000 tasks every endpoint array counts.
  const up = localOnly ? eps.up.filter((e) => e.local) : eps.up;
  const all = localOnly ? eps.all.filter((e) => e.local) : eps.all;
  const local = svc.localFirst ? up.filter((e) => e.local) : [];
  let live: Set<string> | undefined;
  const picker = makePicker(svc.lb, up);
  return {
    service: svc,
    port,
    proto,
    picker,
    localPicker: local.length > 0 ? makePicker(svc.lb, local) : undefined,
    // With every task up, panicking changes nothing: one picker serves both.
    panicPicker: all.length === up.length ? picker : makePicker(svc.lb, all),
    isLive: (task) => {
      live ??= new Set(all.map((e) => e.task));
      return live.has(task);
    },
  };
}

/** How routes are built on this node: the same for every service. */
export interface RouteOptions {
  readonly nodeId: string;
  readonly publishAddr: string;
  readonly remote: RemotePath;
  /** This node's own listeners, which no route may lead to. */
  readonly reserved: (host: string, port: number) => boolean;
  /** Whether this node has an address (a port published on one address opens where it is). */
  readonly hasAddress?: (address: string) => boolean;
}

/**
 * The listeners one service needs on this node: each ingress-published port on every node; each
 * host-published port only where a task of the service runs (routing to those local tasks only);
 * and VIP:port for every target and exposed port of a vip-mode service.
 */
export function serviceListeners(snap: Snapshot, svc: Service, o: RouteOptions): ListenerSpec[] {
  const out: ListenerSpec[] = [];
  for (const p of svc.ports) {
    const eps = endpoints(snap, svc, p.target, o.nodeId, undefined, o.remote, o.reserved);
    const host = p.mode === 'host';
    if (host && !eps.all.some((e) => e.local)) continue;
    if (p.hostIp && o.hasAddress && !o.hasAddress(p.hostIp)) continue;
    // `traffic=local`: open on every node like any ingress port, but only to this node's tasks.
    const localOnly = host || p.traffic === 'local';
    const bind = p.hostIp ?? o.publishAddr;
    out.push({
      key: `${p.protocol}|${bind}|${p.published}`,
      proto: p.protocol,
      host: bind,
      port: p.published,
      kind: 'publish',
      route: route(svc, String(p.published), p.protocol, eps, localOnly),
    });
  }
  if (svc.endpointMode !== 'vip') return out;
  const vipPorts = new Map<string, { port: number; proto: Protocol }>();
  for (const p of svc.ports) vipPorts.set(`${p.protocol}/${p.target}`, { port: p.target, proto: p.protocol });
  for (const port of svc.expose) vipPorts.set(`tcp/${port}`, { port, proto: 'tcp' });
  for (const att of svc.networks) {
    const vip = att.vip && canonicalAddress(att.vip);
    if (!vip) continue;
    for (const { port, proto } of vipPorts.values()) {
      out.push({
        key: `${proto}|${vip}|${port}`,
        proto,
        host: vip,
        port,
        kind: 'vip',
        route: route(
          svc,
          String(port),
          proto,
          endpoints(snap, svc, port, o.nodeId, att.network, o.remote, o.reserved),
          false,
        ),
      });
    }
  }
  return out;
}

/**
 * A VIP's route for every port at once (the kernel data plane carries all of a VIP's ports, as
 * Docker's IPVS does with a firewall mark): the service's tasks on that network, port unchanged.
 */
export function vipRoute(snap: Snapshot, svc: Service, network: string, o: RouteOptions): ServiceRoute {
  return route(svc, '*', 'tcp', endpoints(snap, svc, 0, o.nodeId, network, o.remote, o.reserved), false);
}

/** Every listener this node needs, for every service (start-up; tests and benchmarks). */
export function buildListeners(snap: Snapshot, o: RouteOptions): ListenerSpec[] {
  const out: ListenerSpec[] = [];
  for (const svc of snap.state.services.values()) out.push(...serviceListeners(snap, svc, o));
  return out;
}
