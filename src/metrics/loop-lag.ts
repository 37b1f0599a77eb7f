import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';

/** How often the loop is sampled: a timer every 20 ms costs next to nothing. */
const resolutionMs = 20;

/**
 * Event-loop lag as an operator reads it: how much later than asked the loop ran a timer, since
 * the last scrape. Node's delay histogram, which prom-client's `nodejs_eventloop_lag_*` report,
 * records the whole sampling interval, so an idle process shows its 20 ms resolution as lag;
 * this takes the interval out.
 */
export function registerLoopLag(registry: Registry): void {
  const h = monitorEventLoopDelay({ resolution: resolutionMs });
  h.enable();
  const beyond = (ns: number) => Math.max(0, ns / 1e6 - resolutionMs) / 1000;
  new Gauge({
    name: 'meshd_event_loop_lag_seconds',
    help: 'How late the event loop ran a timer since the last scrape (beyond its 20 ms sampling interval), by quantile; 1 is the worst.',
    labelNames: ['quantile'],
    registers: [registry],
    collect() {
      // No sample yet (a scrape within 20 ms of the last): nothing was late.
      const seen = h.count > 0;
      for (const q of [0.5, 0.99])
        this.set({ quantile: String(q) }, seen ? beyond(h.percentile(q * 100)) : 0);
      this.set({ quantile: '1' }, seen ? beyond(h.max) : 0);
      h.reset();
    },
  });
}
