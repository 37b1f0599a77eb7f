import type { Registry } from 'prom-client';
import { nodeApiContext } from './api/node-context.js';
import type { ApiServer } from './api/server.js';
import { startApi } from './api/setup.js';
import { formatHostPort } from './config/listen.js';
import type { Settings } from './config/settings.js';
import { type RunningDns, startDns } from './dns/setup.js';
import { DnsIndex } from './dns/zone.js';
import { startHealth } from './health/setup.js';
import { logger } from './log.js';
import { framesHeader } from './mesh/data-plane-client.js';
import type { Mesh } from './mesh/mesh.js';
import { isOwnListener, ownListeners } from './mesh/own-ports.js';
import { peerOf } from './mesh/routes.js';
import { DataPlane, startMesh } from './mesh/setup.js';
import { createRegistry } from './metrics/registry.js';
import { MetricsServer } from './metrics/server.js';
import { MeshError, messageOf } from './model/errors.js';
import { claimOverlayAddress } from './model/node.js';
import { startOverlay } from './overlay/setup.js';
import type { DockerProvider } from './provider/provider.js';
import { startWorkloads } from './provider/setup.js';
import type { Identity } from './security/identity.js';
import { obtainCertificate, setupIdentity } from './security/setup.js';
import { checkAdvertise } from './state/advertise.js';
import { Membership } from './state/membership.js';
import { loadNodeId } from './state/node-identity.js';
import { type Readiness, readiness } from './state/readiness.js';
import { type ClusterStateRuntime, openClusterState } from './state/setup.js';
import { meshdVersion } from './version.js';

const log = logger('daemon');

/** Addresses the daemon actually bound, for tests and for the start-up log line. */
export interface Bound {
  readonly api: string;
  readonly dns: string;
  readonly metrics: string;
}

/**
 * One meshd node: its subsystems started in order (`run`), each from its own setup module, and
 * closed in reverse. The order is the contract: the state is read before DNS answers from it,
 * the node is registered before the mesh routes, and `/ready` turns true last.
 */
export class Daemon {
  private status: 'starting' | 'ready' | 'stopping' = 'starting';
  private readonly closers: (() => Promise<void> | void)[] = [];
  readonly nodeId: string;
  readonly registry: Registry;
  bound: Bound = { api: '', dns: '', metrics: '' };
  private state: ClusterStateRuntime | undefined;
  private identity: Identity | undefined;
  private membership: Membership | undefined;
  private mesh: Mesh | undefined;
  private provider: DockerProvider | undefined;
  private dns: RunningDns | undefined;
  private apis: (ApiServer | undefined)[] = [];

  private constructor(readonly settings: Settings) {
    this.nodeId = loadNodeId(settings.node.stateDir);
    this.registry = createRegistry(meshdVersion(), settings.node.name);
  }

  static async start(settings: Settings): Promise<Daemon> {
    const daemon = new Daemon(settings);
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
    // 1. The cluster state, read whole before anything serves from it.
    const state = await openClusterState(s, this.nodeId, this.registry, () => this.membership?.checkNow());
    this.state = state;
    this.closers.push(() => state.close());
    // 2. DNS answers from it at once: a restarted node serves names again before it has
    //    re-registered (swarm's resolver never goes away with the engine).
    await this.startDns(state);
    await this.rebuild();
    // 3. The cluster itself on a first start (its CA and ingress network), this node's identity.
    const identity = await setupIdentity(s, this.nodeId, state.controller);
    this.identity = identity;
    this.closers.push(() => identity.close());
    await checkAdvertise(s.node, state.store.description, state.mirror.state, this.nodeId);
    // 4. The data plane listens, so the node can register the address peers dial.
    const dataPlane = new DataPlane(s, this.nodeId, this.registry, state.snapshots);
    const dataListen = await dataPlane.listen(this.reserved);
    this.closers.push(() => dataPlane.close());
    // 5. Membership: the node record and its leased heartbeat.
    const membership = await this.register(state, s.mesh.dataAdvertise ?? dataListen);
    // 6. The routing mesh, health checks and the overlay, fed every snapshot from now on.
    const { mesh, kernelAvailable } = await startMesh(
      s,
      this.nodeId,
      this.registry,
      state.snapshots,
      dataPlane,
      state.events,
      this.reserved,
    );
    this.mesh = mesh;
    this.closers.push(() => mesh.close(s.mesh.shutdownGraceMs));
    const prober = startHealth(this.nodeId, state.controller, state.snapshots, (service, outcome) => {
      mesh.metrics.checks.child(service, outcome).value++;
    });
    this.closers.push(() => prober.close());
    await this.startOverlay(state, dataPlane);
    await membership.update({ dataplane: kernelAvailable ? 'kernel' : 'userspace' });
    await this.rebuild();
    // 7. Workloads: declared services, sample backends, the container engine's containers.
    const workloads = await startWorkloads(s, state.controller, this.nodeId, this.registry);
    this.closers.push(...workloads.closers);
    this.provider = workloads.provider;
    await this.rebuild();
    // 8. The API (HTTPS needs the certificate first) and metrics; both close last.
    if (s.api.tls) await this.obtainCertificate(identity, membership, dataPlane);
    await this.startApi(state, membership);
    if (!s.api.tls) await this.obtainCertificate(identity, membership, dataPlane);
    this.status = 'ready';
    log.info('meshd is ready', {
      node: s.node.name,
      id: this.nodeId,
      ...this.bound,
      store: state.store.description,
    });
  }

  private async startDns(state: ClusterStateRuntime): Promise<void> {
    const dns = this.settings.dns;
    if (!dns.listen) return;
    const running = await startDns({ ...dns, listen: dns.listen }, this.registry);
    this.dns = running;
    const view = new DnsIndex(dns.domain);
    state.snapshots.subscribe({
      name: 'dns',
      apply: (snap, change) => {
        view.apply(snap, change);
        running.responder.setView(view);
      },
    });
    this.closers.push(() => running.close());
  }

  private async register(state: ClusterStateRuntime, dataListen: string): Promise<Membership> {
    const s = this.settings;
    const membership = new Membership(
      state.store,
      state.controller,
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
      (up, reason) => state.health.lease(up, reason),
    );
    try {
      await membership.start();
    } catch (err) {
      if (err instanceof MeshError && err.code === 'already_exists')
        throw new MeshError(
          err.code,
          `${err.message}; give each node its own --state-dir (this one: ${s.node.stateDir})`,
        );
      throw err;
    }
    this.membership = membership;
    this.closers.push(() => membership.close());
    return membership;
  }

  /** The overlay, where this node may build it: frames of encrypted networks ride the tunnels. */
  private async startOverlay(state: ClusterStateRuntime, dataPlane: DataPlane): Promise<void> {
    const overlay = await startOverlay(
      this.settings,
      this.nodeId,
      logger('overlay'),
      {
        open: async (node, network) => {
          const snap = state.snapshots.current;
          const peer = snap && peerOf(snap, node);
          if (!peer) throw new Error(`node ${node} has no data plane address`);
          return dataPlane.tunnels.openStream(peer, framesHeader(network));
        },
      },
      this.registry,
      async (network) => {
        await state.controller.apply((st) => claimOverlayAddress(st, this.nodeId, network));
      },
      state.snapshots,
      () => this.dns?.addressesChanged() ?? Promise.resolve(),
    );
    if (!overlay) return;
    if (dataPlane.server)
      dataPlane.server.onFrames = (stream, network) => overlay.acceptFrames(stream, network);
    this.closers.push(() => overlay.close(this.settings.mesh.kernelStateOnStop === 'remove'));
  }

  /** This node's certificate: the data plane, the API and the node record follow each renewal. */
  private obtainCertificate(identity: Identity, membership: Membership, dataPlane: DataPlane): Promise<void> {
    return obtainCertificate(
      identity,
      (this.state as ClusterStateRuntime).controller,
      this.nodeId,
      (id) => {
        dataPlane.setIdentity(id);
        for (const api of this.apis) api?.renew(id);
        void membership
          .update({ dataTls: true, canIssue: identity.canIssue(), certExpires: id.expires.toISOString() })
          .catch(() => undefined);
      },
      (err) => this.fatalError(err),
    );
  }

  private async startApi(state: ClusterStateRuntime, membership: Membership): Promise<void> {
    const s = this.settings;
    const api = await startApi(
      s,
      nodeApiContext({
        settings: s,
        nodeId: this.nodeId,
        controller: state.controller,
        registry: this.registry,
        events: state.events,
        mirror: state.mirror,
        snapshots: state.snapshots,
        history: state.history,
        peers: state.peers,
        identity: this.identity,
        storeDescription: state.store.description,
        mesh: () => this.mesh,
        storeConnected: () => state.health.connected,
        readiness: () => this.readiness(),
        rejectedContainers: () => this.provider?.rejectedContainers() ?? [],
      }),
      s.api.tls
        ? { identity: () => this.identity?.identity, isMember: (id) => state.mirror.state.nodes.has(id) }
        : undefined,
      logger('api'),
    );
    // Closed last (closers run in reverse): `/ready` answers 503 while everything else drains.
    this.closers.unshift(() => api.close());
    this.apis = [api.server, api.join];
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
    if (this.status === 'stopping' || !this.state) return Promise.resolve();
    return this.state.snapshots.flush();
  }

  readiness(): Readiness {
    return readiness({
      phase: this.status,
      store: {
        connected: this.state?.health.connected ?? false,
        reason: this.state?.health.reason ?? 'starting',
      },
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
        needed: this.state?.mirror.state.cluster?.caCert !== undefined,
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
    this.state?.snapshots.stop();
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
