import { Gauge, type Registry } from 'prom-client';
import { FastCounter, FastHistogram } from '../metrics/fast.js';

/** The mesh's and health checks' metrics; every label is a service, task, port or fixed word. */
/** Gauges are read from the mesh's live tables at scrape time, so deleted services vanish. */
export interface MeshGauges {
  active(): { service: string; port: string; proto: string; value: number }[];
  udpFlows(): { service: string; value: number }[];
  taskConnections(): { service: string; task: string; value: number }[];
  taskUp(): { service: string; task: string; value: number }[];
}

function liveGauge<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: L[],
  read: () => (Record<L, string> & { value: number })[],
): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const { value, ...labels } of read()) this.set(labels as never, value);
    },
  });
}

/** The mesh's and health checks' metrics; every label is a service, task, port or fixed word. */
export class MeshMetrics {
  readonly connections: FastCounter;
  readonly bytes: FastCounter;
  readonly connectErrors: FastCounter;
  readonly connectDuration: FastHistogram;
  readonly checks: FastCounter;
  readonly ejections: FastCounter;

  constructor(registry: Registry, gauges: MeshGauges) {
    this.connections = new FastCounter(
      registry,
      'meshd_mesh_connections_total',
      'Connections (TCP) and flows (UDP) accepted, by service and port.',
      ['service', 'port', 'proto'],
    );
    this.bytes = new FastCounter(
      registry,
      'meshd_mesh_bytes_total',
      'Bytes proxied, by direction (in: client to task, out: task to client).',
      ['service', 'direction'],
    );
    this.connectErrors = new FastCounter(
      registry,
      'meshd_mesh_connect_errors_total',
      'Failed connects to tasks and refused clients, by reason.',
      ['service', 'reason'],
    );
    this.connectDuration = new FastHistogram(
      registry,
      'meshd_mesh_connect_duration_seconds',
      'Time to connect to a task, retries included.',
      [],
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    );
    this.checks = new FastCounter(
      registry,
      'meshd_health_checks_total',
      'Active health probes run by this node, by result.',
      ['service', 'result'],
    );
    this.ejections = new FastCounter(
      registry,
      'meshd_mesh_ejections_total',
      'Tasks ejected after a failed connect (passive health).',
      ['service'],
    );
    liveGauge(
      registry,
      'meshd_mesh_active_connections',
      'Connections and UDP flows open now.',
      ['service', 'port', 'proto'],
      gauges.active,
    );
    liveGauge(registry, 'meshd_mesh_udp_flows', 'UDP flows in the flow table.', ['service'], gauges.udpFlows);
    liveGauge(
      registry,
      'meshd_mesh_task_connections',
      'Connections open to each task from this node.',
      ['service', 'task'],
      gauges.taskConnections,
    );
    liveGauge(
      registry,
      'meshd_health_task_up',
      '1 when the task is in rotation, 0 when not.',
      ['service', 'task'],
      gauges.taskUp,
    );
  }

  /** Removes every counter series of a deleted service. */
  forgetService(name: string): void {
    for (const m of [this.connections, this.bytes, this.connectErrors, this.checks, this.ejections])
      m.removeWhere('service', name);
  }
}
