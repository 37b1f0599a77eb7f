import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Store and cluster metrics: connectivity, sync, snapshot builds, convergence, nodes. */
export class StateMetrics {
  readonly storeRequests: Counter<'op' | 'result'>;
  readonly watchEvents: Counter;
  readonly badObjects: Counter;
  readonly snapshotBuilds: Counter;
  readonly convergence: Histogram;
  readonly lastSync: Gauge;

  constructor(registry: Registry, live: { connected(): boolean; nodes(): { ready: number; down: number } }) {
    const registers = [registry];
    this.storeRequests = new Counter({
      name: 'meshd_store_requests_total',
      help: 'Requests to the cluster store, by operation and result.',
      labelNames: ['op', 'result'],
      registers,
    });
    this.watchEvents = new Counter({
      name: 'meshd_store_watch_events_total',
      help: 'Events received from the store watch.',
      registers,
    });
    this.badObjects = new Counter({
      name: 'meshd_store_bad_objects_total',
      help: "Objects in the store that do not decode or check, left out of this node's view.",
      registers,
    });
    this.snapshotBuilds = new Counter({
      name: 'meshd_state_snapshot_builds_total',
      help: 'Snapshots built from the mirrored state.',
      registers,
    });
    this.convergence = new Histogram({
      name: 'meshd_state_convergence_seconds',
      help: 'Time from a write (on any node) to this node serving a snapshot that includes it.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.lastSync = new Gauge({
      name: 'meshd_store_last_sync_timestamp_seconds',
      help: 'When this node last heard from the store (a watch event or a successful sync).',
      registers,
    });
    new Gauge({
      name: 'meshd_store_connected',
      help: '1 while the cluster store is reachable, 0 while this node serves its last state.',
      registers,
      collect() {
        this.set(live.connected() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'meshd_cluster_nodes',
      help: 'Nodes known to the cluster, by state.',
      labelNames: ['state'],
      registers,
      collect() {
        const n = live.nodes();
        this.set({ state: 'ready' }, n.ready);
        this.set({ state: 'down' }, n.down);
      },
    });
    this.storeRequests.labels('txn', 'ok').inc(0);
    this.lastSync.setToCurrentTime();
  }
}
