import { arch, release } from 'node:os';
import { type ClusterState, lookup } from '../../model/cluster-state.js';
import { invalid } from '../../model/errors.js';
import { Fields } from '../../model/fields.js';
import { createNetwork, readNetworkSpec, removeNetwork } from '../../model/network.js';
import { createService, readServiceSpec, removeService, updateService } from '../../model/service.js';
import { lookupTask } from '../../model/task.js';
import type { Service } from '../../model/types.js';
import { overlayPeers } from '../../overlay/plan.js';
import { dockerFilters, readJson } from '../http-util.js';
import type { ApiContext, Route, RouteResult } from '../routes.js';
import {
  dockerNetwork,
  dockerNode,
  dockerService,
  dockerTask,
  networkSpecOf,
  serviceSpecOf,
} from './shapes.js';

/** The Engine API version meshd speaks (Docker 27's); clients negotiate down to it. */
export const dockerApiVersion = '1.47';
const minApiVersion = '1.24';

const archName: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64' };

/** Whether an object passes `id` and `name` filters (prefixes, as Docker matches them). */
function passes(f: Map<string, string[]>, id: string, name: string): boolean {
  const ids = f.get('id');
  const names = f.get('name');
  if (ids && !ids.some((v) => id.startsWith(v))) return false;
  if (names && !names.some((v) => name.includes(v))) return false;
  return true;
}

/**
 * The Docker Engine API's swarm subset at its versioned paths (`/v1.NN/...`, and `/_ping` for
 * the version negotiation), so the docker CLI itself is a client of meshd: `DOCKER_HOST=
 * tcp://127.0.0.1:2377 docker service ls`. Writes go through the same model checks as meshd's
 * own API.
 */
export function dockerRoutes(ctx: ApiContext): Route[] {
  const state = (): ClusterState => ctx.controller.state;
  const v = '/v1\\.\\d+';
  const ref = '([^/]+)';
  const route = (method: string, path: string, handle: Route['handle']): Route => ({
    method,
    path: new RegExp(`^${v}${path}$`),
    handle,
  });
  const engine = () => `meshd ${String((ctx.info() as { version?: string }).version ?? '')}`.trim();
  const ping = async (): Promise<RouteResult> => ({
    stream: (res) => {
      res.writeHead(200, {
        'api-version': dockerApiVersion,
        ostype: 'linux',
        'docker-experimental': 'false',
        // The CLI shows swarm commands for a node that is an active manager.
        swarm: 'active/manager',
        'cache-control': 'no-cache, no-store, must-revalidate',
        pragma: 'no-cache',
        'content-type': 'text/plain; charset=utf-8',
        'content-length': 2,
      });
      res.end('OK');
    },
  });
  const counts = () => {
    const out = new Map<string, { tasks: number; running: number }>();
    for (const t of state().tasks.values()) {
      const c = out.get(t.service) ?? { tasks: 0, running: 0 };
      c.tasks++;
      if (ctx.taskHealth(t).health === 'healthy') c.running++;
      out.set(t.service, c);
    }
    return out;
  };
  const body = async (req: Parameters<Route['handle']>[0]['req']) => readJson(req);
  const serviceWrite = (spec: Record<string, unknown>) => readServiceSpec(Fields.of(spec, ''));

  return [
    { method: 'GET', path: /^\/_ping$/, handle: ping },
    { method: 'HEAD', path: /^\/_ping$/, handle: ping },
    route('GET', '/_ping', ping),
    route('HEAD', '/_ping', ping),
    route('GET', '/version', async () => ({
      body: {
        Platform: { Name: 'meshd' },
        Components: [
          {
            Name: 'Engine',
            Version: engine(),
            Details: {
              ApiVersion: dockerApiVersion,
              MinAPIVersion: minApiVersion,
              Os: 'linux',
              Arch: archName[arch()] ?? arch(),
              KernelVersion: release(),
            },
          },
        ],
        Version: engine(),
        ApiVersion: dockerApiVersion,
        MinAPIVersion: minApiVersion,
        Os: 'linux',
        Arch: archName[arch()] ?? arch(),
        KernelVersion: release(),
      },
    })),
    route('GET', '/info', async () => {
      const s = state();
      const nodes = [...s.nodes.values()];
      const me = s.nodes.get(ctx.nodeId);
      return {
        body: {
          ID: ctx.nodeId,
          Name: (ctx.info() as { node?: { name?: string } }).node?.name ?? '',
          ServerVersion: engine(),
          OperatingSystem: 'meshd',
          OSType: 'linux',
          Architecture: archName[arch()] ?? arch(),
          KernelVersion: release(),
          Containers: 0,
          Images: 0,
          Swarm: {
            NodeID: ctx.nodeId,
            NodeAddr: me?.advertiseAddr ?? '',
            LocalNodeState: 'active',
            ControlAvailable: true,
            Error: '',
            RemoteManagers: nodes.map((n) => ({ NodeID: n.id, Addr: n.apiListen })),
            Nodes: nodes.length,
            Managers: nodes.length,
            Cluster: s.cluster
              ? {
                  ID: s.cluster.id,
                  Version: { Index: 0 },
                  CreatedAt: s.cluster.createdAt,
                  UpdatedAt: s.cluster.createdAt,
                  Spec: { Name: 'default' },
                  DefaultAddrPool: s.cluster.addrPools?.pools ?? ['10.0.0.0/8'],
                  SubnetSize: s.cluster.addrPools?.maskLength ?? 24,
                  DataPathPort: 4789,
                }
              : undefined,
          },
        },
      };
    }),

    route('GET', '/networks', async ({ query }) => {
      const f = dockerFilters(query.get('filters'));
      return {
        body: [...state().networks.values()]
          .filter((n) => passes(f, n.id, n.name))
          .filter((n) => !f.get('driver') || f.get('driver')?.includes(n.driver))
          // Every meshd network spans the cluster: a scope filter other than swarm matches none.
          .filter(() => !f.get('scope') || f.get('scope')?.includes('swarm'))
          .map((n) => dockerNetwork(n, overlayPeers(state(), n.id))),
      };
    }),
    route('GET', `/networks/${ref}`, async ({ params }) => {
      const n = lookup(state().networks, params[0] as string, 'network');
      return { body: dockerNetwork(n, overlayPeers(state(), n.id)) };
    }),
    route('POST', '/networks/create', async ({ req }) => {
      const spec = readNetworkSpec(Fields.of(networkSpecOf(await body(req)), ''));
      let id = '';
      await ctx.controller.apply((s) => {
        const c = createNetwork(s, spec, ctx.now());
        id = c.puts.find((p) => p.kind === 'networks')?.id ?? '';
        return c;
      });
      return { status: 201, body: { Id: id, Warning: '' } };
    }),
    route('DELETE', `/networks/${ref}`, async ({ params }) => {
      await ctx.controller.apply((s) => removeNetwork(s, params[0] as string));
      return { status: 204, body: null };
    }),

    route('GET', '/services', async ({ query }) => {
      const f = dockerFilters(query.get('filters'));
      const status = query.get('status') === 'true' || query.get('status') === '1';
      const all = counts();
      return {
        body: [...state().services.values()]
          .filter((s) => passes(f, s.id, s.name))
          .filter((s) => !f.get('mode') || f.get('mode')?.includes(s.mode))
          .map((s) => dockerService(state(), s, all.get(s.id) ?? { tasks: 0, running: 0 }, status)),
      };
    }),
    route('GET', `/services/${ref}`, async ({ params }) => {
      const s = lookup(state().services, params[0] as string, 'service');
      return { body: dockerService(state(), s, counts().get(s.id) ?? { tasks: 0, running: 0 }) };
    }),
    route('POST', '/services/create', async ({ req }) => {
      const spec = serviceWrite(serviceSpecOf(await body(req)));
      let id = '';
      await ctx.controller.apply((s) => {
        const c = createService(s, spec, ctx.now());
        id = c.puts.find((p) => p.kind === 'services')?.id ?? '';
        return c;
      });
      return { status: 201, body: { ID: id, Warnings: [] } };
    }),
    route('POST', `/services/${ref}/update`, async ({ req, params, query }) => {
      const current: Service = lookup(state().services, params[0] as string, 'service');
      const spec = serviceWrite(serviceSpecOf(await body(req), current));
      const text = query.get('version');
      if (text === null || !/^\d+$/.test(text))
        throw invalid('version: an integer is required (the Version.Index read)');
      await ctx.controller.apply((s) => updateService(s, current.id, spec, Number(text), ctx.now()));
      return { body: { Warnings: [] } };
    }),
    route('DELETE', `/services/${ref}`, async ({ params }) => {
      await ctx.controller.apply((s) => removeService(s, params[0] as string));
      return { status: 200, body: null };
    }),

    route('GET', '/tasks', async ({ query }) => {
      const f = dockerFilters(query.get('filters'));
      const s = state();
      const services = f.get('service')?.map((r) => lookup(s.services, r, 'service').id);
      const nodes = f.get('node')?.map((r) => lookup(s.nodes, r, 'node').id);
      return {
        body: [...s.tasks.values()]
          .filter((t) => passes(f, t.id, t.name))
          .filter((t) => !services || services.includes(t.service))
          .filter((t) => !nodes || nodes.includes(t.node))
          .map((t) => dockerTask(s, t, ctx.taskHealth(t).health)),
      };
    }),
    route('GET', `/tasks/${ref}`, async ({ params }) => {
      const t = lookupTask(state(), params[0] as string);
      return { body: dockerTask(state(), t, ctx.taskHealth(t).health) };
    }),

    route('GET', '/nodes', async ({ query }) => {
      const f = dockerFilters(query.get('filters'));
      const a = archName[arch()] ?? arch();
      return {
        body: [...state().nodes.values()]
          .filter((n) => passes(f, n.id, n.name))
          .map((n) => dockerNode(state(), n, engine(), a)),
      };
    }),
    route('GET', `/nodes/${ref}`, async ({ params }) => {
      const n = lookup(state().nodes, params[0] as string, 'node');
      return { body: dockerNode(state(), n, engine(), archName[arch()] ?? arch()) };
    }),
  ];
}
