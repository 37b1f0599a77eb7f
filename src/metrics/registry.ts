import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { uncaughtCounts } from '../last-resort.js';
import { registerLoopLag } from './loop-lag.js';

/**
 * The node's metric registry: process and Node runtime metrics (heap, GC, handles), event-loop
 * lag beyond its sampling interval, and `meshd_build_info`. Each subsystem declares its own metrics against this registry.
 */
export function createRegistry(version: string, node: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  registerLoopLag(registry);
  const info = new Gauge({
    name: 'meshd_build_info',
    help: 'Always 1; labels carry the meshd version and node name.',
    labelNames: ['version', 'node'],
    registers: [registry],
  });
  info.set({ version, node }, 1);
  new Counter({
    name: 'meshd_process_uncaught_errors_total',
    help: 'Errors that escaped every handler and were caught by the last-resort handler (each is a bug).',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [kind, n] of Object.entries(uncaughtCounts())) this.labels(kind).inc(n);
    },
  });
  return registry;
}
