import { cidrContains, parseCidr } from '../model/address.js';
import type { ClusterState } from '../model/cluster-state.js';
import type { AttachSpec } from '../model/container.js';
import type { ServiceSpec } from '../model/service.js';
import type { TaskSpec } from '../model/task.js';
import type { Network, ReportedHealth } from '../model/types.js';
import type { EngineContainer } from './engine.js';
import { serviceFromLabels, serviceLabel } from './labels.js';

/** Task labels that tie a task to the engine container it stands for. */
export const providerLabel = 'meshd.provider';
export const containerLabel = 'meshd.container';
export const providerName = 'docker';

export type Action =
  | { readonly kind: 'create-service'; readonly spec: ServiceSpec }
  | { readonly kind: 'add-task'; readonly spec: TaskSpec }
  | { readonly kind: 'remove-task'; readonly id: string }
  | { readonly kind: 'set-health'; readonly id: string; readonly health: ReportedHealth }
  | { readonly kind: 'attach'; readonly spec: AttachSpec }
  | { readonly kind: 'detach'; readonly name: string }
  | { readonly kind: 'skip'; readonly container: string; readonly reason: string };

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

/**
 * What to change so that this node's tasks and containers match the engine's running
 * containers. Pure: the provider applies the actions, then plans again until nothing is left.
 */
export function plan(state: ClusterState, running: readonly EngineContainer[], nodeId: string): Action[] {
  const actions: Action[] = [];
  const mine = [...state.tasks.values()].filter(
    (t) => t.node === nodeId && t.labels[providerLabel] === providerName,
  );
  const byContainer = new Map(mine.map((t) => [t.labels[containerLabel], t]));
  const wantedTasks = new Set<string>();
  const wantedContainers = new Set<string>();
  for (const c of running) {
    if (!c.running) continue;
    const serviceName = c.labels[serviceLabel];
    if (serviceName) {
      const svc = [...state.services.values()].find((s) => s.name === serviceName);
      const where = placement(
        state,
        c,
        c.labels['meshd.network'] ?? (svc ? svc.networks[0]?.network : undefined),
      );
      if (!where) {
        actions.push({
          kind: 'skip',
          container: c.name,
          reason: 'no meshd network holds any of its addresses',
        });
        continue;
      }
      if (!svc) {
        // Replicas carry the same labels: one creation per service per round is enough.
        if (actions.some((x) => x.kind === 'create-service' && x.spec.name === serviceName)) continue;
        try {
          actions.push({ kind: 'create-service', spec: serviceFromLabels(c.labels, where.net.name) });
        } catch (err) {
          actions.push({ kind: 'skip', container: c.name, reason: (err as Error).message });
        }
        continue;
      }
      const existing = byContainer.get(c.id);
      const stale =
        existing &&
        (existing.service !== svc.id || !existing.addresses.some((a) => a.address === where.address));
      if (existing && !stale) {
        wantedTasks.add(existing.id);
        if (existing.reportedHealth !== c.health)
          actions.push({ kind: 'set-health', id: existing.id, health: c.health });
        continue;
      }
      actions.push({
        kind: 'add-task',
        spec: {
          service: svc.id,
          name: c.name,
          ips: [where.address],
          reportedHealth: c.health,
          labels: { [providerLabel]: providerName, [containerLabel]: c.id },
        },
      });
      continue;
    }
    // Not a task: a standalone container, if it sits on an attachable meshd network.
    const where = placement(state, c);
    if (!where?.net.attachable) continue;
    wantedContainers.add(c.name);
    const known = [...state.containers.values()].find((x) => x.name === c.name);
    if (known && known.source !== providerName) continue; // attached by hand: not ours to manage
    if (known?.addresses.some((a) => a.address === where.address)) continue;
    if (known) actions.push({ kind: 'detach', name: c.name });
    const aliases = (c.networks.find((n) => n.address === where.address)?.aliases ?? []).filter((a) =>
      /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(a),
    );
    actions.push({
      kind: 'attach',
      spec: { network: where.net.id, name: c.name, aliases, ip: where.address, source: providerName },
    });
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
