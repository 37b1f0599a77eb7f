import { describe, expect, it } from 'vitest';
import { initialState, nextDelay, nextState, type ProbeState } from '../../../src/health/state-machine.js';
import { defaultHealthcheck } from '../../../src/model/service.js';

const hc = {
  ...defaultHealthcheck,
  type: 'tcp' as const,
  retries: 3,
  startPeriodMs: 10_000,
  intervalMs: 5000,
  unhealthyIntervalMs: 1000,
};

function run(results: readonly [boolean, number][]): ProbeState[] {
  let s = initialState(0);
  return results.map(([ok, at]) => {
    s = nextState(s, ok, ok ? 'ok' : 'refused', at, hc);
    return s;
  });
}

describe('health state machine', () => {
  it.each([
    ['a success makes a starting task healthy at once', [[true, 100]], ['healthy']],
    [
      'failures inside the start period do not count',
      [
        [false, 1000],
        [false, 2000],
        [false, 9000],
        [true, 9500],
      ],
      ['starting', 'starting', 'starting', 'healthy'],
    ],
    [
      'after the start period, retries failures make it unhealthy',
      [
        [false, 11_000],
        [false, 12_000],
        [false, 13_000],
      ],
      ['starting', 'starting', 'unhealthy'],
    ],
    [
      'a healthy task falls after retries consecutive failures',
      [
        [true, 1],
        [false, 20_000],
        [false, 25_000],
        [false, 30_000],
      ],
      ['healthy', 'healthy', 'healthy', 'unhealthy'],
    ],
    [
      'a success resets the failure count',
      [
        [true, 1],
        [false, 20_000],
        [false, 25_000],
        [true, 30_000],
        [false, 35_000],
        [false, 40_000],
      ],
      ['healthy', 'healthy', 'healthy', 'healthy', 'healthy', 'healthy'],
    ],
    [
      'an unhealthy task rises on one success',
      [
        [false, 11_000],
        [false, 12_000],
        [false, 13_000],
        [true, 14_000],
      ],
      ['starting', 'starting', 'unhealthy', 'healthy'],
    ],
  ] as const)('%s', (_what, results, statuses) => {
    expect(run(results as unknown as [boolean, number][]).map((s) => s.status)).toEqual(statuses);
  });

  it('probes faster until healthy, with jitter', () => {
    expect(nextDelay(initialState(0), hc, 0.5)).toBe(1000);
    expect(nextDelay({ ...initialState(0), status: 'healthy' }, hc, 0.5)).toBe(5000);
    expect(nextDelay({ ...initialState(0), status: 'healthy' }, hc, 0)).toBe(4500);
    expect(nextDelay({ ...initialState(0), status: 'healthy' }, hc, 1)).toBe(5500);
  });
});
