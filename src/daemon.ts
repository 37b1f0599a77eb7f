import { createSecureContext, type SecureContext } from 'node:tls';
import type { Registry } from 'prom-client';
import { nodeApiContext } from './api/node-context.js';
import type { ApiServer } from './api/server.js';
import { startApi } from './api/setup.js';
import { formatHostPort } from './config/listen.js';
import type { Settings } from './config/settings.js';
import { type RunningDns, startDns } from './dns/setup.js';
import { DnsIndex } from './dns/zone.js';
import { Prober } from './health/prober.js';
import { logger } from './log.js';
import { DataPlaneServer } from './mesh/data-plane.js';
import { framesHeader } from './mesh/data-plane-client.js';
import { DataPlaneMetrics } from './mesh/data-plane-metrics.js';
import { startKernelPlane } from './mesh/kernel/setup.js';
import { Mesh } from './mesh/mesh.js';
import { isOwnListener, ownListeners } from './mesh/own-ports.js';
import { peerOf } from './mesh/routes.js';
import { Tunnels } from './mesh/tunnels.js';
import { createRegistry } from './metrics/registry.js';
import { MetricsServer } from './metrics/server.js';
import { MeshError, messageOf } from './model/errors.js';
import { claimOverlayAddress, deregisterNode, recordJoin } from './model/node.js';
import { startOverlay } from './overlay/setup.js';
import type { DockerProvider } from './provider/provider.js';
import { startWorkloads } from './provider/setup.js';
import { initClusterSecurely } from './security/bootstrap.js';
import { Identity } from './security/identity.js';
import { certIssued } from './security/pki.js';
import { tlsOptions } from './security/tls.js';
import { checkAdvertise } from './state/advertise.js';
import { Controller } from './state/controller.js';
import { EventLog, eventsOf } from './state/events.js';
import { Membership } from './state/membership.js';
import { StateMetrics } from './state/metrics.js';
import { Mirror } from './state/mirror.js';
import { loadNodeId } from './state/node-identity.js';
import { PeerWatch } from './state/peers.js';
import { type Readiness, readiness } from './state/readiness.js';
import { SnapshotScheduler } from './state/scheduler.js';
import { StoreHealth } from './state/store-health.js';
import { TaskHistory } from './state/task-history.js';
import { InstrumentedStore } from './store/instrumented.js';
import { openStore } from './store/open.js';
import type { Store } from './store/store.js';
import { meshdVersion } from './version.js';

const log = logger('daemon');

/** Addresses the daemon actually bound, for tests and for the start-up log line. */
export interface Bound {
  readonly api: string;
  readonly dns: string;
  readonly metrics: string;
}

/**
 * Wires the subsystems: the store and its mirror, the controller that validates writes, node
 * membership, the management API. Start order makes `/ready` true only after the first sync.
 */
export class Daemon {
  private status: 'starting' | 'ready' | 'stopping' = 'starting';
  readonly storeHealth = new StoreHealth(logger('store'));

  get storeConnected(): boolean {
    return this.storeHealth.connected;
  }

  private readonly closers: (() => Promise<void> | void)[] = [];
  readonly nodeId: string;
  bound: Bound = { api: '', dns: '', metrics: '' };
  readonly registry: Registry;
  private readonly snapshots: SnapshotScheduler;
  private mesh: Mesh | undefined;
  identity: Identity | undefined;
  private dataPlane: DataPlaneServer | undefined;
  private secureContext: SecureContext | undefined;
  private api: ApiServer | undefined;
  private joinApi: ApiServer | undefined;
  private dataPlaneMetrics!: DataPlaneMetrics;
  private prober: Prober | undefined;

  private lastWriteAt: number | undefined;
  private membership: Membership | undefined;
  private readonly peers: PeerWatch;
  private readonly history = new TaskHistory();
  /** What changed, as `meshctl events` and the page stream it. */
  readonly events = new EventLog();
  private provider: DockerProvider | undefined;
  private dns: RunningDns | undefined;

  private constructor(
    readonly settings: Settings,
    private readonly store: Store,
    readonly mirror: Mirror,
    readonly controller: Controller,
    registry: Registry,
    private readonly stateMetrics: StateMetrics,
  ) {
    this.nodeId = loadNodeId(settings.node.stateDir);
    this.peers = new PeerWatch(this.nodeId, logger('membership'));
    this.registry = registry;
    this.dataPlaneMetrics = new DataPlaneMetrics(registry);
    this.snapshots = new SnapshotScheduler(mirror, logger('state'), () => stateMetrics.snapshotBuilds.inc());
    this.snapshots.subscribe({
      name: 'membership',
      apply: (snap, change) => {
        this.peers.update(snap.state);
        this.history.update(snap.state, change, new Date().toISOString());
        for (const e of eventsOf(snap.state, change.changes, Date.now())) this.events.push(e);
        if (change.full || change.nodes.size > 0) this.dataPlane?.dropRemoved(snap);
        if (this.lastWriteAt !== undefined) {
          // The writer stamped its write with its clock: this is write-to-serving time.
          this.stateMetrics.convergence.observe(Math.max(0, Date.now() - this.lastWriteAt) / 1000);
          this.lastWriteAt = undefined;
        }
      },
    });
  }

  static async start(settings: Settings): Promise<Daemon> {
    const registry = createRegistry(meshdVersion(), settings.node.name);
    let daemon: Daemon | undefined;
    const stateMetrics = new StateMetrics(registry, {
      connected: () => daemon?.storeConnected ?? false,
      nodes: () => {
        const st = daemon?.mirror.state;
        const ready = st ? [...st.nodes.keys()].filter((id) => st.heartbeats.has(id)).length : 0;
        return { ready, down: (st?.nodes.size ?? 0) - ready };
      },
    });
    const store = new InstrumentedStore(await openStore(settings.store), stateMetrics.storeRequests);
    const mirror = new Mirror(store, settings.storePrefix, {
      onChange: () => daemon?.snapshots.changed(),
      onConnection: (up, reason) => {
        daemon?.storeHealth.watch(up, reason);
        controller.setStoreConnected(up, reason);
        if (up) daemon?.membership?.checkNow();
      },
      onBadObject: (key, reason) => {
        stateMetrics.badObjects.inc();
        log.warn('ignoring an object the store holds that does not decode', { key, reason });
      },
      onRelist: (rev) =>
        log.info("the store's history was compacted past this node's revision: listing everything again", {
          revision: rev,
        }),
      onWatchEvents: (n, writtenAt) => {
        stateMetrics.watchEvents.inc(n);
        stateMetrics.lastSync.setToCurrentTime();
        if (writtenAt !== undefined && daemon) daemon.lastWriteAt = writtenAt;
      },
    });
    const controller = new Controller(store, mirror, settings.storePrefix);
    daemon = new Daemon(settings, store, mirror, controller, registry, stateMetrics);
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
    // DNS answers from the state the store holds as soon as it is read: a restarted node serves
    // names again before it has re-registered (swarm's resolver never goes away with the engine).
    await this.startDns();
    await this.rebuild();
    const identity = new Identity(
      s.node.stateDir,
      this.nodeId,
      s.security.certRotationMs,
      s.security.joinToken,
      () => this.mirror.state,
      async (node) => {
        await this.controller.apply((st) => recordJoin(st, node, new Date().toISOString()));
      },
      logger('identity'),
    );
    this.identity = identity;
    this.closers.push(() => identity.close());
    await initClusterSecurely(this.controller, identity, this.nodeId, s.cluster.ingressSubnet, {
      pools: s.cluster.defaultAddrPool,
      maskLength: s.cluster.defaultAddrPoolMaskLength,
    });

    await checkAdvertise(s.node, this.store.description, this.mirror.state, this.nodeId);
    const dataListen = s.mesh.dataAdvertise ?? (await this.startDataPlane());
    if (s.mesh.dataAdvertise) await this.startDataPlane();
    const membership = new Membership(
      this.store,
      this.controller,
      {
        id: this.nodeId,
        name: s.node.name,
        advertiseAddr: s.node.advertiseAddr,
        datapathAddr: s.node.datapathAddr,
        dataListen,
        apiListen: formatHostPort(s.api.listen),
        apiTls: s.api.tls,
      },
      s.cluster.leaseTtlSeconds,
      logger('membership'),
      (up, reason) => this.storeHealth.lease(up, reason),
    );
    try {
      await membership.start();
      this.membership = membership;
    } catch (err) {
      if (err instanceof MeshError && err.code === 'already_exists')
        throw new MeshError(
          err.code,
          `${err.message}; give each node its own --state-dir (this one: ${s.node.stateDir})`,
        );
      throw err;
    }
    this.closers.push(() => membership.close());

    const kernelAvailable = await this.startMesh();
    await membership.update({ dataplane: kernelAvailable ? 'kernel' : 'userspace' });
    await this.rebuild();

    const workloads = await startWorkloads(s, this.controller, this.nodeId, this.registry);
    this.closers.push(...workloads.closers);
    this.provider = workloads.provider;

    await this.rebuild();

    // HTTPS needs this node's certificate before the API can listen.
    if (s.api.tls) await this.startIdentity(membership);
    const api = await startApi(
      s,
      nodeApiContext({
        settings: s,
        nodeId: this.nodeId,
        controller: this.controller,
        registry: this.registry,
        events: this.events,
        mirror: this.mirror,
        snapshots: this.snapshots,
        history: this.history,
        peers: this.peers,
        identity: this.identity,
        storeDescription: this.store.description,
        mesh: () => this.mesh,
        storeConnected: () => this.storeHealth.connected,
        readiness: () => this.readiness(),
        rejectedContainers: () => this.provider?.rejectedContainers() ?? [],
      }),
      s.api.tls
        ? { identity: () => this.identity?.identity, isMember: (id) => this.mirror.state.nodes.has(id) }
        : undefined,
      logger('api'),
    );
    // Closed last (closers run in reverse): `/ready` answers 503 while everything else drains.
    this.closers.unshift(() => api.close());
    let metricsAddr = '';
    if (s.metrics.listen) {
      const metrics = new MetricsServer(s.metrics.listen, this.registry);
      const a = await metrics.start();
      this.closers.unshift(() => metrics.close());
      metricsAddr = formatHostPort({ host: a.address, port: a.port });
    }
    this.bound = { api: api.address, dns: this.dns?.address() ?? '', metrics: metricsAddr };
    // Other nodes reach this API (to join, for instance) at the port it really bound.
    if (s.api.listen.port === 0 || api.joinAddress)
      await membership.update({
        apiListen: this.bound.api,
        ...(api.joinAddress ? { joinListen: api.joinAddress } : {}),
      });
    if (!s.api.tls) await this.startIdentity(membership);
    this.api = api.server;
    this.joinApi = api.join;
    this.status = 'ready';
    log.info('meshd is ready', {
      node: s.node.name,
      id: this.nodeId,
      ...this.bound,
      store: this.store.description,
    });
  }

  private async startDns(): Promise<void> {
    const dns = this.settings.dns;
    if (!dns.listen) return;
    const running = await startDns({ ...dns, listen: dns.listen }, this.registry);
    this.dns = running;
    const view = new DnsIndex(dns.domain);
    this.snapshots.subscribe({
      name: 'dns',
      apply: (snap, change) => {
        view.apply(snap, change);
        running.responder.setView(view);
      },
    });
    this.closers.push(() => running.close());
  }

  /**
   * Gets this node's certificate (signing it here on the CA holder, asking the CA holder with the
   * join token elsewhere). A refused token stops meshd; an unreachable CA holder is retried.
   */
  private async startIdentity(membership: Membership): Promise<void> {
    const identity = this.identity as Identity;
    identity.onChange((id) => {
      const ctx = createSecureContext({ cert: id.cert, key: id.key, ca: id.ca, ...tlsOptions });
      this.secureContext = ctx;
      this.dataPlane?.setSecureContext(ctx, id.ca);
      this.dataPlaneMetrics.certExpiry.set(id.expires.getTime() / 1000);
      this.dataPlaneMetrics.certIssued.set(certIssued(id.cert).getTime() / 1000);
      this.api?.renew(id);
      this.joinApi?.renew(id);
      void membership
        .update({ dataTls: true, canIssue: identity.canIssue(), certExpires: id.expires.toISOString() })
        .catch(() => undefined);
    });
    // A join refused for good leaves no node behind: this node's records go, then meshd stops.
    const refused = async (err: Error) => {
      await this.controller.apply((st) => deregisterNode(st, this.nodeId)).catch(() => undefined);
      this.fatalError(err);
    };
    identity.onRefused((err) => void refused(err));
    try {
      await identity.startWithRetry();
    } catch (err) {
      await this.controller.apply((st) => deregisterNode(st, this.nodeId)).catch(() => undefined);
      throw err;
    }
  }

  private async startDataPlane(): Promise<string> {
    const dp = new DataPlaneServer(
      this.settings.mesh.dataListen,
      this.nodeId,
      () => this.snapshots.current,
      this.settings.node.datapathAddr,
      {
        maxStreams: this.settings.mesh.maxConnsPerListener,
        udpIdleMs: this.settings.mesh.udpIdleTimeoutMs,
        reserved: this.reserved,
      },
      this.dataPlaneMetrics,
      logger('dataplane'),
    );
    this.dataPlane = dp;
    const a = await dp.start();
    this.closers.push(() => dp.close());
    return formatHostPort({ host: a.address, port: a.port });
  }

  /** Starts the mesh and the subsystems beside it; resolves to whether the kernel data plane is there. */
  private async startMesh(): Promise<boolean> {
    const meshLog = logger('mesh');
    const kernel = await startKernelPlane(this.settings.mesh, this.registry, meshLog);
    const secure = () => this.secureContext;
    const tunnels = new Tunnels(secure, this.dataPlaneMetrics);
    this.closers.push(() => tunnels.closeAll());
    const mesh = new Mesh(
      this.settings.mesh,
      this.nodeId,
      this.registry,
      meshLog,
      { tunnels },
      this.reserved,
      kernel,
      this.events,
    );
    this.mesh = mesh;
    this.closers.push(() => mesh.close(this.settings.mesh.shutdownGraceMs));
    this.prober = new Prober(
      this.nodeId,
      (task, healthy, output) =>
        this.controller.putOwned(
          'health',
          task.id,
          { task: task.id, healthy, since: new Date().toISOString(), output },
          false,
        ),
      (service, outcome) => mesh.metrics.checks.child(service, outcome).value++,
      logger('health'),
    );
    this.closers.push(() => this.prober?.close());
    const prober = this.prober;
    this.snapshots.subscribe({ name: 'health', apply: (snap, change) => prober.update(snap, change) });
    this.snapshots.subscribe({ name: 'mesh', apply: (snap, change) => mesh.update(snap, change) });
    const overlay = await startOverlay(
      this.settings,
      this.nodeId,
      logger('overlay'),
      {
        open: async (node, network) => {
          const snap = this.snapshots.current;
          const peer = snap && peerOf(snap, node);
          if (!peer) throw new Error(`node ${node} has no data plane address`);
          return tunnels.openStream(peer, framesHeader(network));
        },
      },
      this.registry,
      async (network) => {
        await this.controller.apply((st) => claimOverlayAddress(st, this.nodeId, network));
      },
    );
    if (overlay) {
      if (this.dataPlane)
        this.dataPlane.onFrames = (stream, network) => overlay.acceptFrames(stream, network);
      this.closers.push(() => overlay.close(this.settings.mesh.kernelStateOnStop === 'remove'));
      this.snapshots.subscribe({ name: 'overlay', apply: (snap, change) => overlay.update(snap, change) });
    }
    return kernel.available;
  }

  /** This node's own listeners, recomputed only when what it bound changes (not per endpoint). */
  private own: { key: string; list: ReturnType<typeof ownListeners> } | undefined;

  /** Whether a task address is one of this node's own listeners: never routed to. */
  private readonly reserved = (host: string, port: number): boolean => {
    const key = `${this.bound.api}|${this.bound.dns}|${this.bound.metrics}`;
    if (this.own?.key !== key) this.own = { key, list: ownListeners(this.settings, this.bound) };
    return isOwnListener(this.own.list, host, port);
  };

  /** Builds a snapshot from the mirror now and hands it to every subsystem. */
  private rebuild(): Promise<void> {
    if (this.status === 'stopping') return Promise.resolve();
    return this.snapshots.flush();
  }

  readiness(): Readiness {
    return readiness({
      phase: this.status,
      store: { connected: this.storeHealth.connected, reason: this.storeHealth.reason },
      ...(this.provider
        ? {
            engine: {
              listed: this.provider.listed,
              socket: this.settings.provider.dockerSocket,
              error: this.provider.lastError,
            },
          }
        : {}),
      certificate: {
        needed: this.mirror.state.cluster?.caCert !== undefined,
        held: this.identity?.identity !== undefined,
        error: this.identity?.lastError,
      },
    });
  }

  private fatalListeners: ((err: Error) => void)[] = [];

  /** Hears an error that must stop meshd after start (a join refused on a retry). */
  onFatal(cb: (err: Error) => void): void {
    this.fatalListeners.push(cb);
  }

  private fatalError(err: Error): void {
    log.error('stopping', { error: err.message });
    for (const cb of this.fatalListeners) cb(err);
  }

  /** Graceful shutdown: not ready first, then every subsystem in reverse start order. Idempotent. */
  async close(): Promise<void> {
    if (this.status === 'stopping') return;
    this.status = 'stopping';
    this.snapshots.stop();
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
