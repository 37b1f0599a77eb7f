import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { type ClusterState, lookup } from '../model/cluster-state.js';
import { attachContainer, detachContainer, readAttachSpec } from '../model/container.js';
import { invalid, MeshError } from '../model/errors.js';
import { Fields } from '../model/fields.js';
import { createNetwork, readNetworkSpec, removeNetwork } from '../model/network.js';
import { removeNode, rotateJoinToken } from '../model/node.js';
import { createService, readServiceSpec, removeService, updateService } from '../model/service.js';
import { addTask, lookupTask, readTaskSpec, removeTask, setReportedHealth } from '../model/task.js';
import type { Service, Task } from '../model/types.js';
import { overlayPeers } from '../overlay/plan.js';
import type { Identity } from '../security/identity.js';
import { newToken, secretHash } from '../security/join-token.js';
import { certDigest } from '../security/pki.js';
import type { Controller } from '../state/controller.js';
import type { EventLog } from '../state/events.js';
import { streamEvents } from './events-stream.js';
import { readJson } from './http-util.js';

export interface RouteResult {
  readonly status?: number;
  readonly body?: unknown;
  /** Writes the response itself (a stream) instead of `body` as JSON. */
  readonly stream?: (res: ServerResponse) => void;
}

export interface Route {
  readonly method: string;
  readonly path: RegExp;
  /** Served without the token (the page's styles and script). */
  readonly open?: boolean;
  /** A page for a browser: refused, it answers with the sign-in form instead of JSON. */
  readonly page?: boolean;
  readonly handle: (r: {
    req: IncomingMessage;
    params: string[];
    query: URLSearchParams;
    /** Aborted when the API closes: streams end then. */
    closing: AbortSignal;
  }) => Promise<RouteResult>;
}

/** What the API needs from the running daemon beyond the stored state. */
export interface ApiContext {
  readonly controller: Controller;
  /** This node's metrics (the page's per-service rates read its mesh counters). */
  readonly registry: Registry;
  /** Recent and new events (`GET /events`). */
  readonly events: EventLog;
  readonly nodeId: string;
  now(): string;
  readiness(): { status: 'ready' | 'starting' | 'degraded' | 'stopping'; reason: string };
  info(): Record<string, unknown>;
  /** Runtime facts about a service on this node: listener errors, healthy task count. */
  serviceStatus(service: Service): Record<string, unknown>;
  /** The task's health as this node routes by it, and the path this node takes to it. */
  taskHealth(task: Task): { health: string; route: string };
  /** Recent tasks of a service that are gone (`service ps` history). */
  endedTasks(serviceId: string): readonly { task: Task; endedAt: string }[];
  /** Containers the provider could not register, with the reason. */
  rejectedContainers(): { name: string; reason: string }[];
  /** When a node was last seen alive by this node, and whether the store is away (rows may be stale). */
  nodeFacts(id: string): { lastSeen: string | undefined; stale: boolean };
  /** This node's place in the cluster PKI (signing joins on the CA holder). */
  readonly identity: Identity | undefined;
}

const ref = '([^/]+)';

function route(method: string, path: string, handle: Route['handle']): Route {
  return { method, path: new RegExp(`^${path}$`), handle };
}

/** The management API's routes, shaped after the Docker Engine API's where Docker has them. */
export function apiRoutes(ctx: ApiContext): Route[] {
  const state = (): ClusterState => ctx.controller.state;
  const created = (id: string) => ({ status: 201, body: { Id: id, id } });
  const body = async (req: IncomingMessage) => Fields.of(await readJson(req), '');
  const version = (q: URLSearchParams): number | undefined => {
    const v = q.get('version');
    if (v === null) return undefined;
    if (!/^\d+$/.test(v)) throw invalid('version: must be an integer');
    return Number(v);
  };
  const showService = (s: Service) => ({ ...s, status: ctx.serviceStatus(s) });
  const showTask = (t: Task) => ({
    ...t,
    serviceName: state().services.get(t.service)?.name ?? t.service,
    nodeName: state().nodes.get(t.node)?.name ?? t.node,
    ...ctx.taskHealth(t),
  });
  const showNode = (id: string) => {
    const n = state().nodes.get(id);
    const hb = state().heartbeats.get(id);
    const facts = ctx.nodeFacts(id);
    return {
      ...n,
      state: hb ? 'ready' : 'down',
      lastSeen: hb?.lastSeen ?? facts.lastSeen ?? n?.updatedAt,
      self: id === ctx.nodeId,
      ...(facts.stale ? { stale: true } : {}),
    };
  };
  const newId = (change: { puts: { id: string; kind: string }[] }, kind: string) =>
    change.puts.find((p) => p.kind === kind)?.id ?? '';

  return [
    route('GET', '/health', async () => ({ body: { status: 'ok' } })),
    route('GET', '/ready', async () => {
      const r = ctx.readiness();
      return { status: r.status === 'ready' || r.status === 'degraded' ? 200 : 503, body: r };
    }),
    route('GET', '/info', async () => ({ body: ctx.info() })),
    route('GET', '/events', async ({ req, query, closing }) => ({
      stream: (res) => streamEvents(ctx.events, req, res, query, closing),
    })),

    route('GET', '/networks', async () => ({ body: [...state().networks.values()] })),
    route('GET', `/networks/${ref}`, async ({ params }) => {
      const net = lookup(state().networks, params[0] as string, 'network');
      return { body: { ...net, peers: overlayPeers(state(), net.id) } };
    }),
    route('POST', '/networks/create', async ({ req }) => {
      const spec = readNetworkSpec(await body(req));
      let id = '';
      await ctx.controller.apply((s) => {
        const c = createNetwork(s, spec, ctx.now());
        id = newId(c, 'networks');
        return c;
      });
      return created(id);
    }),
    route('DELETE', `/networks/${ref}`, async ({ params }) => {
      await ctx.controller.apply((s) => removeNetwork(s, params[0] as string));
      return { status: 204, body: null };
    }),

    route('GET', '/services', async () => ({ body: [...state().services.values()].map(showService) })),
    route('GET', `/services/${ref}`, async ({ params }) => ({
      body: showService(lookup(state().services, params[0] as string, 'service')),
    })),
    route('POST', '/services/create', async ({ req }) => {
      const spec = readServiceSpec(await body(req));
      let id = '';
      await ctx.controller.apply((s) => {
        const c = createService(s, spec, ctx.now());
        id = newId(c, 'services');
        return c;
      });
      return created(id);
    }),
    route('POST', `/services/${ref}/update`, async ({ req, params, query }) => {
      const spec = readServiceSpec(await body(req));
      const v = version(query);
      await ctx.controller.apply((s) => updateService(s, params[0] as string, spec, v, ctx.now()));
      return { body: { Warnings: [] } };
    }),
    route('DELETE', `/services/${ref}`, async ({ params }) => {
      await ctx.controller.apply((s) => removeService(s, params[0] as string));
      return { status: 204, body: null };
    }),

    route('GET', '/tasks', async ({ query }) => {
      const svc = query.get('service');
      const id = svc ? lookup(state().services, svc, 'service').id : undefined;
      const tasks = [...state().tasks.values()].filter((t) => !id || t.service === id);
      // With a service named and `all`, its recent ended tasks follow (swarm's `service ps` history).
      const ended =
        id && (query.get('all') === 'true' || query.get('all') === '1')
          ? ctx.endedTasks(id).map((e) => ({
              ...e.task,
              serviceName: state().services.get(e.task.service)?.name ?? e.task.service,
              health: `shutdown ${e.endedAt}`,
              route: '',
              ended: true,
            }))
          : [];
      return { body: [...tasks.map(showTask), ...ended] };
    }),
    route('GET', `/tasks/${ref}`, async ({ params }) => ({
      body: showTask(lookupTask(state(), params[0] as string)),
    })),
    route('POST', '/tasks/create', async ({ req }) => {
      const spec = readTaskSpec(await body(req));
      let id = '';
      await ctx.controller.apply((s) => {
        const c = addTask(s, spec, ctx.nodeId, ctx.now());
        id = newId(c, 'tasks');
        return c;
      });
      return created(id);
    }),
    route('POST', `/tasks/${ref}/health`, async ({ req, params }) => {
      const f = await body(req);
      const health = f.oneOf('reportedHealth', ['none', 'starting', 'healthy', 'unhealthy'], 'none');
      f.done();
      await ctx.controller.apply((s) => setReportedHealth(s, params[0] as string, health, ctx.now()));
      return { status: 204, body: null };
    }),
    route('DELETE', `/tasks/${ref}`, async ({ params }) => {
      await ctx.controller.apply((s) => removeTask(s, params[0] as string));
      return { status: 204, body: null };
    }),

    route('GET', '/containers', async ({ query }) => {
      const all = query.get('all') === 'true' || query.get('all') === '1';
      const registered = [...state().containers.values()];
      return {
        body: all
          ? [...registered, ...ctx.rejectedContainers().map((r) => ({ ...r, rejected: true }))]
          : registered,
      };
    }),
    route('POST', '/containers/attach', async ({ req }) => {
      const spec = readAttachSpec(await body(req));
      let id = '';
      await ctx.controller.apply((s) => {
        const c = attachContainer(s, spec, ctx.nodeId, ctx.now());
        id = newId(c, 'containers');
        return c;
      });
      return created(id);
    }),
    route('POST', '/containers/detach', async ({ req }) => {
      const f = await body(req);
      const name = f.string('name');
      const network = f.optionalString('network');
      f.done();
      await ctx.controller.apply((s) => detachContainer(s, name, network, ctx.now()));
      return { status: 204, body: null };
    }),

    route('GET', '/nodes', async () => ({ body: [...state().nodes.keys()].map(showNode) })),
    route('DELETE', `/nodes/${ref}`, async ({ params, query }) => {
      const force = query.get('force') === 'true' || query.get('force') === '1';
      await ctx.controller.apply((s) => removeNode(s, params[0] as string, force, ctx.now()));
      return { status: 204, body: null };
    }),

    // Joining and tokens, as `docker swarm join-token`; answered by any node that can issue.
    route('POST', '/swarm/join', async ({ req }) => {
      const f = await body(req);
      const v = {
        node: f.string('node'),
        csr: f.string('csr'),
        nonce: f.string('nonce'),
        proof: f.string('proof'),
      };
      f.done();
      if (!ctx.identity) throw new MeshError('failed_precondition', 'this node cannot issue certificates');
      return { body: await ctx.identity.signJoin(v.node, v.csr, v.nonce, v.proof) };
    }),
    route('POST', '/swarm/renew', async ({ req }) => {
      const f = await body(req);
      const v = {
        node: f.string('node'),
        csr: f.string('csr'),
        cert: f.string('cert'),
        signature: f.string('signature'),
      };
      f.done();
      if (!ctx.identity) throw new MeshError('failed_precondition', 'this node cannot issue certificates');
      return { body: { cert: await ctx.identity.signRenewal(v.node, v.csr, v.cert, v.signature) } };
    }),
    route('GET', '/swarm/join-token', async () => {
      if (!ctx.identity)
        throw new MeshError('failed_precondition', 'this node does not hold the cluster key');
      const token = ctx.identity.joinTokenText();
      // One token for both roles: meshd nodes are peers (every node can change the state).
      return { body: { worker: token, manager: token } };
    }),
    route('POST', '/swarm/join-token/rotate', async () => {
      const identity = ctx.identity;
      const ca = state().cluster?.caCert;
      if (!identity || !ca)
        throw new MeshError('failed_precondition', 'this node does not hold the cluster key');
      const token = newToken(certDigest(ca));
      const sealed = identity.sealToken(token);
      await ctx.controller.apply((s) => rotateJoinToken(s, secretHash(token), sealed));
      return { body: { worker: token, manager: token } };
    }),
    route('GET', `/nodes/${ref}`, async ({ params }) => ({
      body: showNode(lookup(state().nodes, params[0] as string, 'node').id),
    })),
  ];
}
