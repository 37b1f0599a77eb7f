import type { Healthcheck } from '../model/types.js';

/** Docker's health states for one task. */
export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

export interface ProbeState {
  readonly status: HealthStatus;
  /** Consecutive failures counted so far (failures inside the start period do not count). */
  readonly failures: number;
  /** When probing of this task began, for the start period. */
  readonly startedAt: number;
  readonly lastOutput: string;
}

export function initialState(now: number): ProbeState {
  return { status: 'starting', failures: 0, startedAt: now, lastOutput: '' };
}

/**
 * One probe result applied to a task's health, with Docker HEALTHCHECK semantics: a success makes
 * the task healthy at once (also inside the start period); `retries` consecutive failures make it
 * unhealthy; failures inside the start period are not counted. Pure, so it is tested by tables.
 */
export function nextState(
  s: ProbeState,
  ok: boolean,
  output: string,
  now: number,
  hc: Healthcheck,
): ProbeState {
  if (ok) return { status: 'healthy', failures: 0, startedAt: s.startedAt, lastOutput: output };
  if (s.status === 'starting' && now - s.startedAt < hc.startPeriodMs) return { ...s, lastOutput: output };
  const failures = s.failures + 1;
  const status: HealthStatus = failures >= hc.retries ? 'unhealthy' : s.status;
  return { status, failures, startedAt: s.startedAt, lastOutput: output };
}

/** How long to wait before the next probe: the fast interval until healthy, then the normal one. */
export function nextDelay(s: ProbeState, hc: Healthcheck, random: number): number {
  const base = s.status === 'healthy' ? hc.intervalMs : Math.min(hc.unhealthyIntervalMs, hc.intervalMs);
  // ±10% jitter so that thousands of tasks drift apart instead of probing in lock-step.
  return Math.max(10, Math.round(base * (0.9 + 0.2 * random)));
}
