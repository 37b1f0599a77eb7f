import type { DeclaredTasks } from '../config/settings.js';
import { lookup } from '../model/cluster-state.js';
import { createNetwork, type NetworkSpec } from '../model/network.js';
import { createService, type ServiceSpec, specOf, updateService } from '../model/service.js';
import { addTask } from '../model/task.js';
import type { Controller } from './controller.js';

/**
 * Applies the config file's declarative section: networks and services are created when missing
 * (services updated when their spec changed), and each task group is topped up to its count on
 * this node. Running it again changes nothing, so every start of a single node can apply it.
 */
export async function applyDeclared(
  controller: Controller,
  nodeId: string,
  networks: readonly NetworkSpec[],
  services: readonly ServiceSpec[],
  tasks: readonly DeclaredTasks[],
): Promise<void> {
  const now = () => new Date().toISOString();
  for (const spec of networks) {
    if ([...controller.state.networks.values()].some((n) => n.name === spec.name)) continue;
    await controller.apply((s) => createNetwork(s, spec, now()));
  }
  for (const spec of services) {
    const existing = [...controller.state.services.values()].find((s) => s.name === spec.name);
    if (!existing) {
      await controller.apply((s) => createService(s, spec, now()));
    } else if (JSON.stringify(specOf(existing, controller.state)) !== JSON.stringify(spec)) {
      await controller.apply((s) => updateService(s, spec.name, spec, undefined, now()));
    }
  }
  for (const group of tasks) {
    const svc = lookup(controller.state.services, group.service, 'service');
    const mine = [...controller.state.tasks.values()].filter(
      (t) => t.service === svc.id && t.node === nodeId,
    );
    const have = new Set(mine.flatMap((t) => t.addresses.map((a) => a.address)));
    for (const ip of group.ips) {
      if (have.has(ip)) continue;
      await controller.apply((s) =>
        addTask(s, { service: svc.id, ips: [ip], reportedHealth: 'none', labels: {} }, nodeId, now()),
      );
    }
    for (let n = Math.max(mine.length, group.ips.length); n < group.count; n++) {
      await controller.apply((s) =>
        addTask(s, { service: svc.id, ips: [], reportedHealth: 'none', labels: {} }, nodeId, now()),
      );
    }
  }
}
