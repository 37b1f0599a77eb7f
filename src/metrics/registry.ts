import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/**
 * The node's metric registry: process and Node runtime metrics (event-loop lag, heap, GC, handles)
 * plus `meshd_build_info`. Each subsystem declares its own metrics against this registry.
 */
export function createRegistry(version: string, node: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  const info = new Gauge({
    name: 'meshd_build_info',
    help: 'Always 1; labels carry the meshd version and node name.',
    labelNames: ['version', 'node'],
    registers: [registry],
  });
  info.set({ version, node }, 1);
  return registry;
}
