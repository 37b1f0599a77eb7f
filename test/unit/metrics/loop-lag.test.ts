import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerLoopLag } from '../../../src/metrics/loop-lag.js';

async function lag(registry: Registry): Promise<Record<string, number>> {
  const m = await registry.getSingleMetric('meshd_event_loop_lag_seconds')?.get();
  return Object.fromEntries((m?.values ?? []).map((v) => [String(v.labels.quantile), v.value]));
}

describe('event-loop lag', () => {
  it('reports an idle loop as not late, and a blocked one by how long it was blocked', async () => {
    const registry = new Registry();
    registerLoopLag(registry);
    await lag(registry);
    await new Promise((r) => setTimeout(r, 300));
    // Node's histogram alone says at least 20 ms here, its sampling interval, however idle.
    expect((await lag(registry))['0.5']).toBeLessThan(0.015);
    await new Promise((r) => setTimeout(r, 50));
    const until = Date.now() + 80;
    while (Date.now() < until) {
      // Holds the loop, as a long synchronous task would.
    }
    await new Promise((r) => setTimeout(r, 50));
    const blocked = await lag(registry);
    expect(blocked['1']).toBeGreaterThan(0.05);
    expect(blocked['1']).toBeLessThan(0.2);
  });
});
