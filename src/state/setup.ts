import type { Registry } from 'prom-client';
import type { Settings } from '../config/settings.js';
import { logger } from '../log.js';
import { InstrumentedStore } from '../store/instrumented.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/store.js';
import { Controller } from './controller.js';
import { EventLog, eventsOf } from './events.js';
import { StateMetrics } from './metrics.js';
import { Mirror } from './mirror.js';
import { PeerWatch } from './peers.js';
import { SnapshotScheduler } from './scheduler.js';
import { StoreHealth } from './store-health.js';
import { TaskHistory } from './task-history.js';

/**
 * The cluster state on this node: the store, its mirror, the controller that validates writes,
 * and the scheduler that turns the mirror's changes into snapshots for every other subsystem.
 * Beside them, what is kept from every snapshot: peers' last-seen times, task history, events.
 */
export interface ClusterStateRuntime {
  readonly store: Store;
  readonly mirror: Mirror;
  readonly controller: Controller;
  readonly snapshots: SnapshotScheduler;
  readonly health: StoreHealth;
  readonly peers: PeerWatch;
  readonly history: TaskHistory;
  /** What changed, as `meshctl events` and the page stream it. */
  readonly events: EventLog;
  close(): Promise<void>;
}

/**
 * Opens the store and reads it whole (the mirror's first sync). `reconnected` hears the store
 * come back, so membership can re-register at once rather than at its next tick.
 */
export async function openClusterState(
  settings: Settings,
  nodeId: string,
  registry: Registry,
  reconnected: () => void,
): Promise<ClusterStateRuntime> {
  const log = logger('state');
  const health = new StoreHealth(logger('store'));
  const metrics = new StateMetrics(registry, {
    connected: () => health.connected,
    nodes: () => {
      // Scraped only once the API and metrics listen, long after the mirror exists.
      const st = mirror.state;
      const ready = st ? [...st.nodes.keys()].filter((id) => st.heartbeats.has(id)).length : 0;
      return { ready, down: (st?.nodes.size ?? 0) - ready };
    },
  });
  const store = new InstrumentedStore(await openStore(settings.store), metrics.storeRequests);
  /** When the last write this node saw was made, by the writer's clock: for write-to-serving time. */
  let lastWriteAt: number | undefined;
  // Its hooks run only once it starts, when the controller and scheduler below exist.
  const mirror: Mirror = new Mirror(store, settings.storePrefix, {
    onChange: () => snapshots.changed(),
    onConnection: (up, reason) => {
      health.watch(up, reason);
      controller.setStoreConnected(up, reason);
      if (up) reconnected();
    },
    onBadObject: (key, reason) => {
      metrics.badObjects.inc();
      log.warn('ignoring an object the store holds that does not decode', { key, reason });
    },
    onRelist: (rev) =>
      log.info("the store's history was compacted past this node's revision: listing everything again", {
        revision: rev,
      }),
    onWatchEvents: (n, writtenAt) => {
      metrics.watchEvents.inc(n);
      metrics.lastSync.setToCurrentTime();
      if (writtenAt !== undefined) lastWriteAt = writtenAt;
    },
  });
  const controller = new Controller(store, mirror, settings.storePrefix);
  const snapshots = new SnapshotScheduler(mirror, log, () => metrics.snapshotBuilds.inc());
  const peers = new PeerWatch(nodeId, logger('membership'));
  const history = new TaskHistory();
  const events = new EventLog();
  snapshots.subscribe({
    name: 'state',
    apply: (snap, change) => {
      peers.update(snap.state);
      history.update(snap.state, change, new Date().toISOString());
      for (const e of eventsOf(snap.state, change.changes, Date.now())) events.push(e);
      if (lastWriteAt !== undefined) {
        metrics.convergence.observe(Math.max(0, Date.now() - lastWriteAt) / 1000);
        lastWriteAt = undefined;
      }
    },
  });
  try {
    await mirror.start();
  } catch (err) {
    await store.close();
    throw err;
  }
  return {
    store,
    mirror,
    controller,
    snapshots,
    health,
    peers,
    history,
    events,
    close: async () => {
      snapshots.stop();
      await mirror.close();
      await store.close();
    },
  };
}
