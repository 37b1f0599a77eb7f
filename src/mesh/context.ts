import type { Settings } from '../config/settings.js';
import type { Logger } from '../log.js';
import type { ConnTracker } from './connections.js';
import type { Endpoint } from './endpoint.js';
import type { MeshLoad } from './load.js';
import type { MeshMetrics } from './metrics.js';
import type { ServiceRoute } from './routes.js';
import type { Tunnels } from './tunnels.js';

/** How this node reaches other nodes' data planes. */
export interface DataPlaneAccess {
  /** Shared encrypted tunnels to peer nodes. */
  readonly tunnels: Tunnels;
}

/** What the proxies share: settings, live load, the connection tracker, metrics. */
export interface MeshContext {
  readonly settings: Settings['mesh'];
  readonly dataPlane: DataPlaneAccess;
  readonly load: MeshLoad;
  readonly tracker: ConnTracker;
  readonly metrics: MeshMetrics;
  readonly log: Logger;
}

/**
 * Chooses a task for a new connection: local tasks first when the service prefers them, then any
 * task in rotation, then (panic rule `all`) any task at all. Tasks at their connection cap and
 * tasks already tried are skipped.
 */
export function chooseEndpoint(
  ctx: MeshContext,
  route: ServiceRoute,
  client: string,
  tried: ReadonlySet<string>,
): Endpoint | undefined {
  const now = Date.now();
  const cap = route.service.maxConnsPerTask;
  const exclude =
    cap > 0
      ? new Set([
          ...tried,
          ...route.panicPicker.endpoints.filter((e) => ctx.load.active(e.task) >= cap).map((e) => e.task),
        ])
      : tried;
  const key = { client, exclude };
  const e = route.localPicker?.pick(key, ctx.load, now) ?? route.picker.pick(key, ctx.load, now);
  if (e || ctx.settings.panic !== 'all') return e;
  return route.panicPicker.pick(key, { active: (t) => ctx.load.active(t), ejected: () => false }, now);
}
