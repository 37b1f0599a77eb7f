import { parseCidr } from '../../model/address.js';
import { usedAddresses } from '../../model/cluster-state.js';
import type { Service, Task } from '../../model/types.js';
import { type ClusterEvent, eventMatches } from '../../state/events.js';
import type { ApiContext } from '../routes.js';
import type { RateSampler } from './rates.js';

/** Events shown on a service page: its health changes, ejections and drains, newest last. */
const serviceEventsShown = 100;

function portText(p: Service['ports'][number]): string {
  return `${p.published}:${p.target}/${p.protocol}${p.mode === 'host' ? ' (host)' : ''}`;
}

/** Addresses a network's IPAM can hand out (its range less network, broadcast and gateway). */
function capacity(subnet: string, range: string | undefined): number {
  const c = parseCidr(range ?? subnet);
  const size = c.last - c.first + 1n;
  const usable = c.family === 4 && c.prefix < 31 ? size - 3n : size - 1n;
  return usable > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(usable);
}

/** The page's first screen: nodes, networks, services, in one read of the state. */
export function overview(ctx: ApiContext, rates: RateSampler) {
  const state = ctx.controller.state;
  const self = ctx.readiness();
  const counts = new Map<string, { total: number; healthy: number }>();
  for (const t of state.tasks.values()) {
    const c = counts.get(t.service) ?? { total: 0, healthy: 0 };
    c.total++;
    if (ctx.taskHealth(t).health === 'healthy') c.healthy++;
    counts.set(t.service, c);
  }
  const info = ctx.info() as { node?: { name?: string }; dataPlane?: string; store?: string };
  return {
    node: { id: ctx.nodeId, name: info.node?.name ?? '', status: self.status, reason: self.reason },
    store: { description: info.store ?? '', connected: !ctx.nodeFacts(ctx.nodeId).stale },
    nodes: [...state.nodes.values()]
      .map((n) => {
        const self_ = n.id === ctx.nodeId;
        const up = state.heartbeats.has(n.id);
        return {
          id: n.id,
          name: n.name,
          self: self_,
          address: n.advertiseAddr,
          state: self_ && self.status === 'degraded' ? 'degraded' : up ? 'ready' : 'down',
          reason: self_ && self.status === 'degraded' ? self.reason : '',
          dataTls: n.dataTls === true,
          dataplane: n.dataplane ?? '',
          lastSeen: ctx.nodeFacts(n.id).lastSeen ?? '',
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name)),
    networks: [...state.networks.values()]
      .map((n) => ({
        id: n.id,
        name: n.name,
        subnet: n.subnet,
        used: usedAddresses(state, n.id).size,
        capacity: capacity(n.subnet, n.vipRange),
        encrypted: n.encrypted,
        attachable: n.attachable,
        ingress: n.ingress,
        internal: n.internal,
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    services: [...state.services.values()]
      .map((s) => ({
        id: s.id,
        name: s.name,
        mode: s.mode,
        endpointMode: s.endpointMode,
        ports: s.ports.map(portText),
        tasks: counts.get(s.id)?.total ?? 0,
        healthy: counts.get(s.id)?.healthy ?? 0,
        rates: rates.of(s.name),
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
  };
}

/** One service's page: its tasks with health and last probe, VIPs, ports and their data plane, recent events. */
export function serviceView(ctx: ApiContext, service: Service, rates: RateSampler) {
  const state = ctx.controller.state;
  const status = ctx.serviceStatus(service) as {
    dataPlane?: readonly { port: string; plane: string; reason?: string }[];
    errors?: readonly string[];
  };
  const planes = status.dataPlane ?? [];
  const netName = (id: string) => state.networks.get(id)?.name ?? id;
  const tasks: Task[] = [...state.tasks.values()].filter((t) => t.service === service.id);
  const events: ClusterEvent[] = ctx.events
    .history(0)
    .filter((e) => e.Type === 'task' && eventMatches(e, { service: [service.id] }))
    .filter((e) => e.Action.startsWith('health_status') || e.Action === 'eject' || e.Action === 'drain')
    .slice(-serviceEventsShown);
  return {
    id: service.id,
    name: service.name,
    mode: service.mode,
    endpointMode: service.endpointMode,
    lb: service.lb,
    healthcheck: service.healthcheck.type,
    errors: status.errors ?? [],
    vips: service.networks
      .filter((n) => n.vip)
      .map((n) => ({
        network: netName(n.network),
        vip: n.vip,
        plane: planes.find((x) => x.port === n.vip)?.plane ?? 'userspace',
      })),
    ports: service.ports.map((p) => {
      const key = `${p.published}/${p.protocol}`;
      const plane = planes.find((x) => x.port === key);
      return { port: portText(p), plane: plane?.plane ?? 'userspace', reason: plane?.reason ?? '' };
    }),
    tasks: tasks
      .map((t) => {
        const h = ctx.taskHealth(t);
        const probe = state.health.get(t.id);
        return {
          id: t.id,
          name: t.name,
          node: state.nodes.get(t.node)?.name ?? t.node,
          addresses: t.addresses.map((a) => `${a.address} (${netName(a.network)})`),
          health: h.health,
          route: h.route,
          probe: probe ? { healthy: probe.healthy, since: probe.since, output: probe.output } : undefined,
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name)),
    events,
    rates: rates.of(service.name),
  };
}
