import { cidrContains, parseCidr } from '../model/address.js';
import type { ClusterState } from '../model/cluster-state.js';
import type { AttachSpec } from '../model/container.js';
import { holderOf } from '../model/names.js';
import type { ServiceSpec } from '../model/service.js';
import type { TaskSpec } from '../model/task.js';
import type { Network, ReportedHealth } from '../model/types.js';
import type { EngineContainer, EngineListing } from './engine.js';
import { judgeReplicas, placeReplica, type Replica, specOf } from './label-services.js';
import { serviceLabel } from './labels.js';

/** Task labels that tie a task to the engine container it stands for. */
export const providerLabel = 'meshd.provider';
export const containerLabel = 'meshd.container';
export const providerName = 'docker';

/** Marks a service made from labels: its spec follows its containers' labels. */
export const specFromLabel = 'meshd.spec-from';

/** Why a container was not registered, in a few bounded words (the metric's label). */
export type SkipCategory = 'network' | 'labels' | 'name' | 'not_opted_in' | 'disagree';

export type Action =
  | { readonly kind: 'create-service'; readonly spec: ServiceSpec }
  | { readonly kind: 'update-service'; readonly id: string; readonly spec: ServiceSpec }
  | { readonly kind: 'add-task'; readonly spec: TaskSpec }
  | { readonly kind: 'remove-task'; readonly id: string }
  | { readonly kind: 'set-health'; readonly id: string; readonly health: ReportedHealth }
  | { readonly kind: 'attach'; readonly spec: AttachSpec }
  | { readonly kind: 'detach'; readonly name: string }
  | {
      readonly kind: 'skip';
      readonly container: string;
      readonly reason: string;
      readonly category?: SkipCategory;
    };

/** The meshd network that holds one of the container's addresses (and that address). */
function placement(
  state: ClusterState,
  c: EngineContainer,
  wanted?: string,
): { net: Network; address: string } | undefined {
  for (const n of state.networks.values()) {
    if (n.ingress || (wanted && n.name !== wanted && n.id !== wanted)) continue;
    const subnet = parseCidr(n.subnet);
    const hit = c.networks.find((x) => cidrContains(subnet, x.address));
    if (hit) return { net: n, address: hit.address };
  }
  return undefined;
}

/** Whether containers' labels may add tasks to a service: it was made by the provider, or opted in. */
export function acceptsLabelledTasks(svc: { readonly labels: Readonly<Record<string, string>> }): boolean {
  return svc.labels[providerLabel] === providerName;
}

/**
 * Label-made services with no task anywhere in the cluster and no replica on this node: removed
 * by the provider once they have stayed empty for its grace period.
 */
export function emptyLabelServices(state: ClusterState, listing: EngineListing): string[] {
  // A container the engine could not inspect may be a replica: remove nothing this round.
  if (listing.unknown.length > 0) return [];
  const withTasks = new Set([...state.tasks.values()].map((t) => t.service));
  const labelled = new Set(
    listing.containers.map((c) => c.labels[serviceLabel]).filter((n): n is string => n !== undefined),
  );
  return [...state.services.values()]
    .filter((s) => s.labels[specFromLabel] === 'labels' && !withTasks.has(s.id) && !labelled.has(s.name))
    .map((s) => s.id);
}

/**
 * What to change so that this node's tasks and containers match the engine's running
 * containers. Pure: the provider applies the actions, then plans again until nothing is left.
 * Containers the engine could not inspect this round (`unknown`) keep their last known state.
 */
export function plan(state: ClusterState, listing: EngineListing, nodeId: string): Action[] {
  const actions: Action[] = [];
  const mine = [...state.tasks.values()].filter(
    (t) => t.node === nodeId && t.labels[providerLabel] === providerName,
  );
  const byContainer = new Map(mine.map((t) => [t.labels[containerLabel], t]));
  const wantedTasks = new Set<string>();
  const wantedContainers = new Set<string>();
  for (const u of listing.unknown) {
    const t = byContainer.get(u.id);
    if (t) wantedTasks.add(t.id);
    if (u.name) wantedContainers.add(u.name);
  }
  const replicas = new Map<string, Replica[]>();
  for (const c of listing.containers) {
    if (!c.running) continue;
    const serviceName = c.labels[serviceLabel];
    if (serviceName) {
      const svc = [...state.services.values()].find((s) => s.name === serviceName);
      if (svc && !acceptsLabelledTasks(svc)) {
        actions.push({
          kind: 'skip',
          container: c.name,
          category: 'not_opted_in',
          reason: `service ${svc.name} was not created from container labels; label it ${providerLabel}=${providerName} to let labelled containers join it`,
        });
        continue;
      }
      const where = placeReplica(state, c, svc);
      if ('reason' in where) {
        actions.push({ kind: 'skip', container: c.name, category: 'network', reason: where.reason });
        continue;
      }
      const spec = specOf(c, where.net);
      if ('reason' in spec) {
        actions.push({ kind: 'skip', container: c.name, category: 'labels', reason: spec.reason });
        continue;
      }
      replicas.set(serviceName, [...(replicas.get(serviceName) ?? []), { container: c, spec, ...where }]);
      continue;
    }
    // Not a task: a standalone container, if it sits on an attachable meshd network.
    const where = placement(state, c);
    if (!where?.net.attachable) continue;
    wantedContainers.add(c.name);
    const known = [...state.containers.values()].find((x) => x.name === c.name);
    if (known && known.source !== providerName) continue; // attached by hand: not ours to manage
    if (known?.addresses.some((a) => a.address === where.address)) continue;
    const self = known ? { kind: 'container' as const, id: known.id } : undefined;
    const nameHolder = holderOf(state, where.net.id, c.name, self);
    if (nameHolder) {
      actions.push({
        kind: 'skip',
        container: c.name,
        category: 'name',
        reason: `its name is already in use on network ${where.net.name} by ${nameHolder.kind} ${nameHolder.name}`,
      });
      continue;
    }
    if (known) actions.push({ kind: 'detach', name: c.name });
    // Engine aliases are copied, except those another object answers (compose adds the service
    // name as an alias: it must not join a meshd service of that name).
    const aliases = (c.networks.find((n) => n.address === where.address)?.aliases ?? []).filter((a) => {
      if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(a) || a === c.name) return false;
      const holder = holderOf(state, where.net.id, a, self);
      if (holder)
        actions.push({
          kind: 'skip',
          container: c.name,
          category: 'name',
          reason: `alias ${a} left out: it is already in use on network ${where.net.name} by ${holder.kind} ${holder.name}`,
        });
      return !holder;
    });
    actions.push({
      kind: 'attach',
      spec: { network: where.net.id, name: c.name, aliases, ip: where.address, source: providerName },
    });
  }
  for (const [name, group] of replicas) {
    const svc = [...state.services.values()].find((s) => s.name === name);
    const verdict = judgeReplicas(state, group, svc);
    const labelMade = !svc || svc.labels[specFromLabel] === 'labels';
    if (verdict.kind === 'disagree') {
      // Said once (the provider dedupes), with the names: the stored spec stays as it is.
      actions.push({
        kind: 'skip',
        container: group
          .map((r) => r.container.name)
          .sort()
          .join(','),
        category: 'disagree',
        reason: `replicas of service ${name} disagree on their labels (${verdict.groups.map((g) => g.join(' ')).join(' | ')}); keeping ${svc ? 'the last agreed spec' : 'the service uncreated'}`,
      });
      if (!svc) continue;
    } else if (!svc) {
      actions.push({ kind: 'create-service', spec: verdict.spec });
      continue;
    } else if (verdict.differs && labelMade) {
      actions.push({ kind: 'update-service', id: svc.id, spec: verdict.spec });
    }
    for (const r of group) {
      const existing = byContainer.get(r.container.id);
      const stale =
        existing &&
        (existing.service !== svc.id ||
          (r.netns ? existing.netns !== r.netns : !existing.addresses.some((a) => a.address === r.address)));
      if (existing && !stale) {
        wantedTasks.add(existing.id);
        if (existing.reportedHealth !== r.container.health)
          actions.push({ kind: 'set-health', id: existing.id, health: r.container.health });
        continue;
      }
      actions.push({
        kind: 'add-task',
        spec: {
          service: svc.id,
          name: r.container.name,
          ips: r.address ? [r.address] : [],
          ...(r.netns ? { netns: r.netns } : {}),
          reportedHealth: r.container.health,
          labels: { [providerLabel]: providerName, [containerLabel]: r.container.id },
        },
      });
    }
  }
  for (const t of mine)
    if (!wantedTasks.has(t.id) && !actions.some((a) => a.kind === 'add-task' && a.spec.name === t.name))
      actions.push({ kind: 'remove-task', id: t.id });
  for (const t of mine) {
    // A task replaced because its container changed (new address, new service) goes first.
    if (actions.some((a) => a.kind === 'add-task' && a.spec.name === t.name))
      actions.unshift({ kind: 'remove-task', id: t.id });
  }
  for (const c of state.containers.values()) {
    if (c.source === providerName && c.node === nodeId && !wantedContainers.has(c.name))
      actions.push({ kind: 'detach', name: c.name });
  }
  return actions;
}
