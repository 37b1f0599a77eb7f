import { apiRoutes } from './api/routes.js';
import { ApiServer } from './api/server.js';
import { formatHostPort } from './config/listen.js';
import type { Settings } from './config/settings.js';
import { logger } from './log.js';
import { messageOf } from './model/errors.js';
import { initCluster } from './model/node.js';
import type { Service, Task } from './model/types.js';
import { SampleBackends } from './sample/backends.js';
import { Controller } from './state/controller.js';
import { applyDeclared } from './state/declare.js';
import { Membership } from './state/membership.js';
import { Mirror } from './state/mirror.js';
import { loadNodeId } from './state/node-identity.js';
import { openStore } from './store/open.js';
import type { Store } from './store/store.js';

const log = logger('daemon');

/** Addresses the daemon actually bound, for tests and for the start-up log line. */
export interface Bound {
  readonly api: string;
}

/**
 * Wires the subsystems: the store and its mirror, the controller that validates writes, node
 * membership, the management API. Start order makes `/ready` true only after the first sync.
 */
export class Daemon {
  private status: 'starting' | 'ready' | 'stopping' = 'starting';
  private storeConnected = true;
  private storeReason = '';
  private readonly closers: (() => Promise<void> | void)[] = [];
  readonly nodeId: string;
  bound: Bound = { api: '' };

  private constructor(
    readonly settings: Settings,
    private readonly store: Store,
    readonly mirror: Mirror,
    readonly controller: Controller,
  ) {
    this.nodeId = loadNodeId(settings.node.stateDir);
  }

  static async start(settings: Settings): Promise<Daemon> {
    const store = await openStore(settings.store);
    let daemon: Daemon | undefined;
    const mirror = new Mirror(store, settings.storePrefix, {
      onChange: () => daemon?.stateChanged(),
      onConnection: (up, reason) => daemon?.storeConnection(up, reason),
      onBadObject: (key, reason) =>
        log.warn('ignoring an object the store holds that does not decode', { key, reason }),
    });
    const controller = new Controller(store, mirror, settings.storePrefix);
    daemon = new Daemon(settings, store, mirror, controller);
    try {
      await daemon.run();
    } catch (err) {
      await daemon.close();
      throw err;
    }
    return daemon;
  }

  private async run(): Promise<void> {
    const s = this.settings;
    this.closers.push(() => this.store.close());
    await this.mirror.start();
    this.closers.push(() => this.mirror.close());
    await this.controller.apply((state) =>
      initCluster(state, s.cluster.ingressSubnet, new Date().toISOString()),
    );

    const membership = new Membership(
      this.store,
      this.controller,
      {
        id: this.nodeId,
        name: s.node.name,
        advertiseAddr: s.node.advertiseAddr,
        datapathAddr: s.node.datapathAddr,
        dataListen: formatHostPort(s.mesh.dataListen),
        apiListen: formatHostPort(s.api.listen),
      },
      s.cluster.leaseTtlSeconds,
      logger('membership'),
    );
    await membership.start();
    this.closers.push(() => membership.close());

    const d = s.declare;
    await applyDeclared(this.controller, this.nodeId, d.networks, d.services, d.tasks);
    if (d.sampleBackends) {
      const samples = new SampleBackends(logger('sample'));
      await samples.start(this.mirror.state, this.nodeId, new Set(d.services.map((x) => x.name)));
      this.closers.push(() => samples.close());
    }

    const api = new ApiServer(
      s.api.listen,
      s.api.token,
      apiRoutes({
        controller: this.controller,
        nodeId: this.nodeId,
        now: () => new Date().toISOString(),
        readiness: () => this.readiness(),
        info: () => ({
          node: { id: this.nodeId, name: s.node.name },
          cluster: this.mirror.state.cluster,
          store: this.store.description,
          revision: this.mirror.revision,
        }),
        serviceStatus: (svc) => this.serviceStatus(svc),
        taskHealth: (task) => this.taskHealth(task),
      }),
    );
    const apiAddr = await api.start();
    this.closers.push(() => api.close());
    this.bound = { api: formatHostPort({ host: apiAddr.address, port: apiAddr.port }) };
    this.status = 'ready';
    log.info('meshd is ready', {
      node: s.node.name,
      id: this.nodeId,
      api: this.bound.api,
      store: this.store.description,
    });
  }

  private stateChanged(): void {
    // The snapshot rebuild hooks in here (DNS and mesh).
  }

  private storeConnection(up: boolean, reason: string): void {
    if (up !== this.storeConnected)
      log.warn(up ? 'cluster store reachable again' : 'cluster store unreachable', { reason });
    this.storeConnected = up;
    this.storeReason = reason;
    this.controller.setStoreConnected(up, reason);
  }

  readiness(): { status: 'ready' | 'starting' | 'degraded' | 'stopping'; reason: string } {
    if (this.status !== 'ready') return { status: this.status, reason: this.status };
    if (!this.storeConnected)
      return { status: 'degraded', reason: `store unreachable: ${this.storeReason}; serving the last state` };
    return { status: 'ready', reason: '' };
  }

  serviceStatus(svc: Service): Record<string, unknown> {
    const tasks = [...this.mirror.state.tasks.values()].filter((t) => t.service === svc.id);
    return { tasks: tasks.length };
  }

  taskHealth(task: Task): string {
    return task.reportedHealth === 'none' ? 'healthy' : task.reportedHealth;
  }

  /** Graceful shutdown: not ready first, then every subsystem in reverse start order. Idempotent. */
  async close(): Promise<void> {
    if (this.status === 'stopping') return;
    this.status = 'stopping';
    for (const c of this.closers.reverse()) {
      try {
        await c();
      } catch (err) {
        log.warn('error during shutdown', { error: messageOf(err) });
      }
    }
    this.closers.length = 0;
  }
}
