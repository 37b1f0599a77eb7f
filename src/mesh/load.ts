import type { Load } from './endpoint.js';

interface Ejection {
  until: number;
  failures: number;
  reason: string;
}

/** Longest a task stays ejected, however often it failed. */
const maxEjectMs = 300_000;

/**
 * This node's live view of each task: open connections (for least-conn and the per-task cap)
 * and passive ejections. Keys are task ids from cluster state, pruned on every snapshot.
 */
export class MeshLoad implements Load {
  private readonly counts = new Map<string, number>();
  private readonly ejections = new Map<string, Ejection>();

  constructor(
    private readonly ejectMs: number,
    /** Told when a task leaves rotation (not on each further failure while it is out). */
    private readonly onEject: (task: string, reason: string, ms: number) => void = () => undefined,
  ) {}

  active(task: string): number {
    return this.counts.get(task) ?? 0;
  }

  ejected(task: string, now: number): boolean {
    const e = this.ejections.get(task);
    return e !== undefined && now < e.until;
  }

  opened(task: string): void {
    this.counts.set(task, (this.counts.get(task) ?? 0) + 1);
  }

  closed(task: string): void {
    const n = (this.counts.get(task) ?? 1) - 1;
    if (n <= 0) this.counts.delete(task);
    else this.counts.set(task, n);
  }

  /** A failed connect: eject for a backoff that doubles with each consecutive failure. */
  eject(task: string, now: number, reason = 'connect failed'): void {
    const prev = this.ejections.get(task);
    const failures = (prev?.failures ?? 0) + 1;
    const ms = Math.min(this.ejectMs * 2 ** (failures - 1), maxEjectMs);
    this.ejections.set(task, { until: now + ms, failures, reason });
    if (!prev || now >= prev.until) this.onEject(task, reason, ms);
  }

  /** Why a task is ejected now (its last connect error), or undefined when it is not. */
  ejectedBecause(task: string, now: number): string | undefined {
    const e = this.ejections.get(task);
    return e && now < e.until ? e.reason : undefined;
  }

  /** A successful connect ends the ejection history. */
  succeeded(task: string): void {
    if (this.ejections.size > 0) this.ejections.delete(task);
  }

  prune(live: { has(task: string): boolean }): void {
    for (const k of this.ejections.keys()) if (!live.has(k)) this.ejections.delete(k);
  }
}
