import { createSecureContext, type SecureContext } from 'node:tls';
import type { Registry } from 'prom-client';
import { formatHostPort } from '../config/listen.js';
import type { Settings } from '../config/settings.js';
import { logger } from '../log.js';
import type { NodeIdentity } from '../security/identity.js';
import { certIssued } from '../security/pki.js';
import { tlsOptions } from '../security/tls.js';
import type { EventLog } from '../state/events.js';
import type { SnapshotScheduler } from '../state/scheduler.js';
import { DataPlaneServer } from './data-plane.js';
import { DataPlaneMetrics } from './data-plane-metrics.js';
import { startKernelPlane } from './kernel/setup.js';
import { Mesh } from './mesh.js';
import { Tunnels } from './tunnels.js';

/** Whether an address is one of this node's own listeners: never a task to route to. */
export type Reserved = (host: string, port: number) => boolean;

/**
 * The node-to-node data plane: the server other nodes dial (`--data-listen`) and the tunnels this
 * node dials them with, both on this node's certificate once it has one.
 */
export class DataPlane {
  readonly metrics: DataPlaneMetrics;
  readonly tunnels: Tunnels;
  server: DataPlaneServer | undefined;
  private secure: SecureContext | undefined;

  constructor(
    private readonly settings: Settings,
    private readonly nodeId: string,
    registry: Registry,
    private readonly snapshots: SnapshotScheduler,
  ) {
    this.metrics = new DataPlaneMetrics(registry);
    this.tunnels = new Tunnels(() => this.secure, this.metrics);
    // Connections of nodes that left go with them.
    snapshots.subscribe({
      name: 'dataplane',
      apply: (snap, change) => {
        if (change.full || change.nodes.size > 0) this.server?.dropRemoved(snap);
      },
    });
  }

  /** Listens for other nodes; resolves to the address it bound, as other nodes should dial it. */
  async listen(reserved: Reserved): Promise<string> {
    const m = this.settings.mesh;
    const server = new DataPlaneServer(
      m.dataListen,
      this.nodeId,
      () => this.snapshots.current,
      this.settings.node.datapathAddr,
      { maxStreams: m.maxConnsPerListener, udpIdleMs: m.udpIdleTimeoutMs, reserved },
      this.metrics,
      logger('dataplane'),
    );
    this.server = server;
    const a = await server.start();
    return formatHostPort({ host: a.address, port: a.port });
  }

  /** This node's certificate, first or renewed: both ends of the tunnels take it at once. */
  setIdentity(id: NodeIdentity): void {
    const ctx = createSecureContext({ cert: id.cert, key: id.key, ca: id.ca, ...tlsOptions });
    this.secure = ctx;
    this.server?.setSecureContext(ctx, id.ca);
    this.metrics.certExpiry.set(id.expires.getTime() / 1000);
    this.metrics.certIssued.set(certIssued(id.cert).getTime() / 1000);
  }

  async close(): Promise<void> {
    this.tunnels.closeAll();
    await this.server?.close();
  }
}

/**
 * The routing mesh: the kernel plane where it may run, the userspace proxy for the rest, fed
 * every snapshot. Resolves once both are ready; the mesh says which plane it has.
 */
export async function startMesh(
  settings: Settings,
  nodeId: string,
  registry: Registry,
  snapshots: SnapshotScheduler,
  dataPlane: DataPlane,
  events: EventLog,
  reserved: Reserved,
): Promise<{ mesh: Mesh; kernelAvailable: boolean }> {
  const log = logger('mesh');
  const kernel = await startKernelPlane(settings.mesh, registry, log);
  const mesh = new Mesh(
    settings.mesh,
    nodeId,
    registry,
    log,
    { tunnels: dataPlane.tunnels },
    reserved,
    kernel,
    events,
  );
  snapshots.subscribe({ name: 'mesh', apply: (snap, change) => mesh.update(snap, change) });
  return { mesh, kernelAvailable: kernel.available };
}
