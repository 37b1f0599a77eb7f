import type { Logger } from '../log.js';
import type { Healthcheck, Service, Task } from '../model/types.js';
import type { Snapshot, SnapshotChange } from '../state/snapshot.js';
import { httpProbe, type ProbeResult, tcpProbe } from './probes.js';
import { initialState, nextDelay, nextState, type ProbeState } from './state-machine.js';

/** Where probe results go: the store, so every node routes by the same health. */
export type HealthReport = (task: Task, healthy: boolean, output: string) => Promise<void>;

interface Loop {
  readonly key: string;
  state: ProbeState;
  reported: boolean | undefined;
  timer: NodeJS.Timeout;
  stopped: boolean;
}

/** The port a probe checks: the first TCP target port, else the first exposed port. */
function probePort(svc: Service): number | undefined {
  return svc.ports.find((p) => p.protocol === 'tcp')?.target ?? svc.expose[0];
}

/**
 * Runs active probes for the tasks on this node (Docker runs HEALTHCHECK on the task's node),
 * each in its own jittered loop, and reports a task only when its healthy/unhealthy verdict
 * changes, so a steady cluster writes nothing.
 */
export class Prober {
  private readonly loops = new Map<string, Loop>();

  constructor(
    private readonly nodeId: string,
    private readonly report: HealthReport,
    /** Counts each probe's outcome (meshd_health_checks_total). */
    private readonly checked: (service: string, outcome: 'success' | 'failure') => void,
    private readonly log: Logger,
  ) {}

  /** Starts, restarts or stops the loops of the tasks a snapshot change touched. */
  update(snap: Snapshot, change: SnapshotChange): void {
    const { state } = snap;
    const touched = new Set<string>(change.full ? this.loops.keys() : change.tasks);
    for (const t of change.removedTasks) touched.add(t.id);
    // A probe depends on the task and its service's healthcheck: only a service's own change
    // touches all its tasks.
    for (const id of change.full ? state.services.keys() : change.specs)
      for (const t of snap.tasksOf(id)) touched.add(t.id);
    for (const id of touched) {
      const t = state.tasks.get(id);
      const svc = t && t.node === this.nodeId ? state.services.get(t.service) : undefined;
      if (!t || !svc || svc.healthcheck.type === 'none') {
        if (this.loops.has(id)) this.stop(id);
        continue;
      }
      const key = `${JSON.stringify(svc.healthcheck)}|${probePort(svc)}|${t.addresses[0]?.address}`;
      const loop = this.loops.get(id);
      if (loop && loop.key === key) continue;
      if (loop) this.stop(id);
      this.start(t, svc, key);
    }
  }

  private start(task: Task, svc: Service, key: string): void {
    const hc = svc.healthcheck;
    const loop: Loop = {
      key,
      state: initialState(Date.now()),
      reported: undefined,
      timer: setTimeout(() => {}, 0),
      stopped: false,
    };
    this.loops.set(task.id, loop);
    const run = async () => {
      const result = await this.probe(task, svc, hc);
      if (loop.stopped) return;
      this.checked(svc.name, result.ok ? 'success' : 'failure');
      loop.state = nextState(loop.state, result.ok, result.output, Date.now(), hc);
      const healthy = loop.state.status === 'healthy';
      const verdict = loop.state.status === 'starting' ? undefined : healthy;
      if (verdict !== undefined && verdict !== loop.reported) {
        try {
          await this.report(task, verdict, result.output);
          loop.reported = verdict;
        } catch (err) {
          this.log.warn('could not record a health change; will retry', {
            task: task.name,
            error: (err as Error).message,
          });
        }
      }
      if (!loop.stopped) loop.timer = setTimeout(run, nextDelay(loop.state, hc, Math.random()));
    };
    // The first probe at a random point of the first interval, so tasks do not probe in lock-step.
    loop.timer = setTimeout(run, Math.floor(Math.random() * Math.min(hc.unhealthyIntervalMs, hc.intervalMs)));
  }

  private probe(task: Task, svc: Service, hc: Healthcheck): Promise<ProbeResult> {
    const host = task.addresses[0]?.address;
    const port = probePort(svc);
    if (!host || !port) return Promise.resolve({ ok: false, output: 'no address or TCP port to probe' });
    return hc.type === 'http'
      ? httpProbe(host, port, hc.path, hc.timeoutMs)
      : tcpProbe(host, port, hc.timeoutMs);
  }

  private stop(id: string): void {
    const loop = this.loops.get(id);
    if (!loop) return;
    loop.stopped = true;
    clearTimeout(loop.timer);
    this.loops.delete(id);
  }

  close(): void {
    for (const id of [...this.loops.keys()]) this.stop(id);
  }
}
