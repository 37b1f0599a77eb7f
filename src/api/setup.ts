import type { Settings } from '../config/settings.js';
import type { Logger } from '../log.js';
import { messageOf } from '../model/errors.js';
import type { NodeIdentity } from '../security/identity.js';
import { dockerRoutes } from './docker/routes.js';
import { type ApiContext, apiRoutes } from './routes.js';
import { ApiServer, isLoopback, openPaths } from './server.js';
import { uiRoutes } from './ui/routes.js';

/** The running API: its bound address, and the join listener's when there is one. */
export interface RunningApi {
  readonly server: ApiServer;
  readonly address: string;
  readonly join: ApiServer | undefined;
  readonly joinAddress: string | undefined;
  close(): Promise<void>;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Starts the management API (CoreDNS's setup step for this subsystem) and, when the API listens
 * on loopback only while the node advertises another address, a second listener on the advertise
 * address that serves only the open paths (joins, renewals, health), so other nodes can join
 * through this node without the whole API leaving loopback, as swarm's 2377 does.
 */
export async function startApi(
  settings: Settings,
  ctx: ApiContext,
  tls: { identity: () => NodeIdentity | undefined; isMember: (id: string) => boolean } | undefined,
  log: Logger,
): Promise<RunningApi> {
  const ui = uiRoutes(ctx);
  const routes = [...apiRoutes(ctx), ...ui.routes, ...dockerRoutes(ctx)];
  const server = new ApiServer(settings.api.listen, settings.api.token, routes, tls);
  const a = await server.start();
  let join: ApiServer | undefined;
  let joinAddress: string | undefined;
  const advertise = settings.node.advertiseAddr;
  if (isLoopback(settings.api.listen.host) && !isLoopback(advertise) && advertise !== '0.0.0.0') {
    const open = routes.filter((r) => [...openPaths].some((p) => r.path.test(p)));
    const candidate = new ApiServer({ host: advertise, port: a.port }, '', open, tls, true);
    try {
      const j = await candidate.start();
      join = candidate;
      joinAddress = hostPort(j.address, j.port);
    } catch (err) {
      log.warn(
        'could not open the join listener on the advertise address; other nodes cannot join through this one',
        {
          address: hostPort(advertise, a.port),
          error: messageOf(err),
        },
      );
    }
  }
  return {
    server,
    address: hostPort(a.address, a.port),
    join,
    joinAddress,
    async close() {
      ui.close();
      await join?.close();
      await server.close();
    },
  };
}
