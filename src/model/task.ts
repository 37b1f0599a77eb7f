import { cidrContains, parseAddress, parseCidr } from './address.js';
import { globalClaim, hostPortClaim, nameClaim, removingClaim, slotClaim } from './claims.js';
import {
  type Change,
  type ClusterState,
  checkObjectName,
  claimed,
  emptyChange,
  lookup,
  usedAddresses,
} from './cluster-state.js';
import { invalid, MeshError } from './errors.js';
import type { Fields } from './fields.js';
import { newId } from './ids.js';
import { allocate, checkRequested, makePool } from './ipam.js';
import type { Attachment, ReportedHealth, Task } from './types.js';

/** What `meshctl task add` (or a container provider) registers. */
export interface TaskSpec {
  readonly service: string;
  readonly node?: string;
  readonly name?: string;
  /** Addresses the task already has (a container's); each is matched to a network by subnet. */
  readonly ips: readonly string[];
  readonly reportedHealth: ReportedHealth;
  readonly labels: Record<string, string>;
  /** A network namespace on the task's node for meshd to join to the overlay. */
  readonly netns?: string;
}

export function readTaskSpec(f: Fields): TaskSpec {
  const spec: TaskSpec = {
    service: f.string('service'),
    node: f.optionalString('node'),
    name: f.optionalString('name'),
    ips: f.strings('ips'),
    reportedHealth: f.oneOf('reportedHealth', ['none', 'starting', 'healthy', 'unhealthy'], 'none'),
    labels: f.record('labels'),
    netns: f.optionalString('netns'),
  };
  if (spec.netns !== undefined && !spec.netns.startsWith('/'))
    throw invalid(`netns must be an absolute path (as /run/netns/NAME or /proc/PID/ns/net): ${spec.netns}`);
  f.done();
  return spec;
}

/** The networks a task of this service lives on: its own, or ingress when it only publishes. */
export function taskNetworks(state: ClusterState, serviceId: string): string[] {
  const svc = state.services.get(serviceId);
  if (!svc) return [];
  const nets = svc.networks.map((n) => n.network);
  if (nets.length === 0 && svc.ports.length > 0) {
    for (const n of state.networks.values()) if (n.ingress) nets.push(n.id);
  }
  return nets;
}

/** Matches given addresses to the service's networks and allocates the rest. */
export function attachAddresses(
  state: ClusterState,
  networkIds: readonly string[],
  ips: readonly string[],
  owner: string,
): Attachment[] {
  const remaining = ips.map((ip) => parseAddress(ip).text);
  const out: Attachment[] = [];
  for (const netId of networkIds) {
    const net = state.networks.get(netId);
    if (!net) continue;
    const used = usedAddresses(state, net.id);
    const pool = makePool(net.subnet, net.gateway);
    const idx = remaining.findIndex((ip) => cidrContains(parseCidr(net.subnet), ip));
    const address =
      idx >= 0
        ? checkRequested(pool, remaining.splice(idx, 1)[0] as string, used, net.name)
        : allocate(pool, used, net.name);
    out.push({ network: net.id, address });
  }
  if (remaining.length > 0) {
    throw invalid(`address ${remaining[0]} is in none of the networks of ${owner}`);
  }
  return out;
}

export function addTask(
  state: ClusterState,
  spec: TaskSpec,
  localNode: string,
  now: string,
  id = newId(),
): Change {
  const svc = lookup(state.services, spec.service, 'service');
  const node = spec.node ? lookup(state.nodes, spec.node, 'node').id : localNode;
  // Uniqueness reads the claim index (constant time) where the state has one: a registration
  // must not cost a scan of every task in a cluster of a hundred thousand.
  const siblings = () => [...state.tasks.values()].filter((t) => t.service === svc.id);
  let slot = 0;
  if (svc.mode === 'global') {
    if (claimed(state, globalClaim(svc.id, node), () => siblings().some((t) => t.node === node))) {
      throw new MeshError('already_exists', `global service ${svc.name} already has a task on node ${node}`);
    }
  } else {
    const slots = state.claims ? undefined : new Set(siblings().map((t) => t.slot));
    const group = `slot/${svc.id}`;
    slot = Number(state.claims?.scanFrom(group, 'slots') ?? 1n);
    while (claimed(state, slotClaim(svc.id, slot), () => slots?.has(slot) === true)) slot++;
    state.claims?.scanned(group, 'slots', BigInt(slot));
  }
  const name = spec.name ?? `${svc.name}.${svc.mode === 'global' ? node : slot}.${id}`;
  checkObjectName(name, 'task name');
  if (
    claimed(state, nameClaim('tasks', name), () => [...state.tasks.values()].some((t) => t.name === name))
  ) {
    throw new MeshError('already_exists', `task name ${name} is already in use`);
  }
  // A host-mode port is bound on the task's node: one task per node and port, whichever service
  // (Docker refuses the placement; meshd refuses the registration).
  const hostPorts = svc.ports.filter((p) => p.mode === 'host').map((p) => `${p.published}/${p.protocol}`);
  for (const hp of hostPorts) {
    const holder = () =>
      [...state.tasks.values()].find((t) => t.node === node && (t.hostPorts ?? []).includes(hp));
    if (claimed(state, hostPortClaim(node, hp), () => holder() !== undefined)) {
      const other = holder();
      const who = other ? ` by task ${other.name}` : '';
      throw new MeshError('already_exists', `host-mode port ${hp} is already in use on node ${node}${who}`);
    }
  }
  const task: Omit<Task, 'version'> = {
    id,
    name,
    service: svc.id,
    slot,
    node,
    addresses: attachAddresses(state, taskNetworks(state, svc.id), spec.ips, `service ${svc.name}`),
    reportedHealth: spec.reportedHealth,
    labels: spec.labels,
    ...(spec.netns ? { netns: spec.netns } : {}),
    ...(hostPorts.length > 0 ? { hostPorts } : {}),
    createdAt: now,
    updatedAt: now,
  };
  const change = emptyChange();
  change.puts.push({ kind: 'tasks', id, value: task });
  change.expect.push({ kind: 'services', id: svc.id, version: svc.version });
  change.guards.push(removingClaim('services', svc.id));
  return change;
}

/**
 * Finds a task by id, name, id prefix, or `SERVICE.SLOT` (the short form `service ps` names
 * suggest: `web.2` is slot 2 of web).
 */
export function lookupTask(state: ClusterState, ref: string): Task {
  const m = /^(.+)\.(\d+)$/.exec(ref);
  if (m) {
    const svc = [...state.services.values()].find((s) => s.name === m[1] || s.id === m[1]);
    const bySlot =
      svc && [...state.tasks.values()].find((t) => t.service === svc.id && t.slot === Number(m[2]));
    if (bySlot) return bySlot;
  }
  return lookup(state.tasks, ref, 'task');
}

export function removeTask(state: ClusterState, ref: string): Change {
  const task = lookupTask(state, ref);
  const change = emptyChange();
  change.deletes.push({ kind: 'tasks', id: task.id }, { kind: 'health', id: task.id });
  return change;
}

/** Records what an engine says of a task's health (its HEALTHCHECK status). */
export function setReportedHealth(
  state: ClusterState,
  ref: string,
  health: ReportedHealth,
  now: string,
): Change {
  const task = lookupTask(state, ref);
  const change = emptyChange();
  if (task.reportedHealth === health) return change;
  const { version: _v, ...rest } = task;
  change.puts.push({
    kind: 'tasks',
    id: task.id,
    value: { ...rest, reportedHealth: health, updatedAt: now },
  });
  change.expect.push({ kind: 'tasks', id: task.id, version: task.version });
  return change;
}
