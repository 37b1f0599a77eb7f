import type { Registry } from 'prom-client';

/** Samples kept per service: 60 at 5 s, the last five minutes. */
const points = 60;
export const rateStepMs = 5000;

/** Sums a counter's samples by their `service` label. */
async function byService(registry: Registry, name: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const metric = registry.getSingleMetric(name);
  if (!metric) return out;
  const { values } = await metric.get();
  for (const v of values) {
    const svc = String(v.labels.service ?? '');
    if (svc) out.set(svc, (out.get(svc) ?? 0) + v.value);
  }
  return out;
}

/** Per-second rates of one service over the last minutes, oldest first. */
export interface ServiceRates {
  readonly connections: number[];
  readonly bytes: number[];
}

/**
 * Connections (and UDP flows) and bytes per second of each service through this node's mesh, from
 * its own counters every 5 s: the page's small charts, without Prometheus. Keyed by service
 * names the counters carry, which the mesh prunes with the services; bounded besides by
 * `maxServices`.
 */
export class RateSampler {
  private readonly series = new Map<string, { connections: number[]; bytes: number[] }>();
  private last: { connections: Map<string, number>; bytes: Map<string, number> } | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly maxServices = 10_000,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.sample(), rateStepMs);
    this.timer.unref();
    void this.sample();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  of(service: string): ServiceRates {
    return this.series.get(service) ?? { connections: [], bytes: [] };
  }

  async sample(): Promise<void> {
    const now = {
      connections: await byService(this.registry, 'meshd_mesh_connections_total'),
      bytes: await byService(this.registry, 'meshd_mesh_bytes_total'),
    };
    const prev = this.last;
    this.last = now;
    if (!prev) return;
    const step = rateStepMs / 1000;
    for (const svc of new Set([...now.connections.keys(), ...now.bytes.keys()])) {
      let s = this.series.get(svc);
      if (!s) {
        if (this.series.size >= this.maxServices) continue;
        s = { connections: [], bytes: [] };
        this.series.set(svc, s);
      }
      const rate = (m: 'connections' | 'bytes') =>
        Math.max(0, ((now[m].get(svc) ?? 0) - (prev[m].get(svc) ?? 0)) / step);
      s.connections.push(rate('connections'));
      s.bytes.push(rate('bytes'));
      if (s.connections.length > points) s.connections.shift();
      if (s.bytes.length > points) s.bytes.shift();
    }
    // Series of services the counters no longer carry (removed) go too.
    for (const svc of this.series.keys())
      if (!now.connections.has(svc) && !now.bytes.has(svc)) this.series.delete(svc);
  }
}
