import type { Registry } from 'prom-client';
import type { Settings } from '../config/settings.js';
import type { Mesh } from '../mesh/mesh.js';
import type { Identity } from '../security/identity.js';
import type { Controller } from '../state/controller.js';
import type { EventLog } from '../state/events.js';
import type { Mirror } from '../state/mirror.js';
import type { PeerWatch } from '../state/peers.js';
import type { Readiness } from '../state/readiness.js';
import type { SnapshotScheduler } from '../state/scheduler.js';
import { serviceStatus, taskHealth } from '../state/status.js';
import type { TaskHistory } from '../state/task-history.js';
import { meshdVersion } from '../version.js';
import type { ApiContext } from './routes.js';

/** The parts of a running node the management API reads; the daemon hands them over. */
export interface NodeParts {
  readonly settings: Settings;
  readonly nodeId: string;
  readonly controller: Controller;
  readonly registry: Registry;
  readonly events: EventLog;
  readonly mirror: Mirror;
  readonly snapshots: SnapshotScheduler;
  readonly history: TaskHistory;
  readonly peers: PeerWatch;
  readonly identity: Identity | undefined;
  readonly storeDescription: string;
  /** The mesh, once it runs. */
  mesh(): Mesh | undefined;
  storeConnected(): boolean;
  readiness(): Readiness;
  /** Containers the provider could not register (none without a provider). */
  rejectedContainers(): { name: string; reason: string }[];
}

/** What the API's routes read of this node: state, runtime status per service and task, history. */
export function nodeApiContext(p: NodeParts): ApiContext {
  return {
    controller: p.controller,
    registry: p.registry,
    events: p.events,
    nodeId: p.nodeId,
    now: () => new Date().toISOString(),
    readiness: () => p.readiness(),
    info: () => ({
      node: { id: p.nodeId, name: p.settings.node.name },
      version: meshdVersion(),
      cluster: p.mirror.state.cluster,
      store: p.storeDescription,
      revision: p.mirror.revision,
    }),
    serviceStatus: (svc) => {
      const mesh = p.mesh();
      return serviceStatus(
        p.mirror.state,
        p.snapshots.current,
        svc.id,
        mesh?.errors(svc.id) ?? [],
        (t) => mesh?.reach(t),
        mesh?.planes(svc.id),
      );
    },
    identity: p.identity,
    endedTasks: (svc) => p.history.of(svc),
    rejectedContainers: () => p.rejectedContainers(),
    nodeFacts: (id) => ({ lastSeen: p.peers.seen(id), stale: !p.storeConnected() }),
    taskHealth: (task) => {
      const reach = p.mesh()?.reach(task);
      return {
        health: taskHealth(p.mirror.state, p.snapshots.current, task, reach),
        route: reach?.path ?? 'direct',
      };
    },
  };
}
