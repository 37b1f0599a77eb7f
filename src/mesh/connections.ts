import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** One proxied TCP connection, as the tracker sees it. */
export interface Conn {
  readonly client: Socket;
  readonly upstream: Duplex;
  readonly task: string;
  readonly service: string;
  readonly serviceName: string;
  readonly taskName: string;
  readonly listener: string;
  readonly port: string;
  readonly proto: 'tcp' | 'udp';
  /** Ends the connection now (both legs). */
  destroy(): void;
}

/**
 * Live connections by task and by listener: what draining closes after its grace period, what the
 * per-listener cap counts, what the gauges read at scrape time.
 */
export class ConnTracker {
  private readonly all = new Set<Conn>();
  private readonly byListener = new Map<string, number>();
  private readonly draining = new Set<NodeJS.Timeout>();

  add(c: Conn): void {
    this.all.add(c);
    this.byListener.set(c.listener, (this.byListener.get(c.listener) ?? 0) + 1);
  }

  remove(c: Conn): void {
    if (!this.all.delete(c)) return;
    const n = (this.byListener.get(c.listener) ?? 1) - 1;
    if (n <= 0) this.byListener.delete(c.listener);
    else this.byListener.set(c.listener, n);
  }

  onListener(key: string): number {
    return this.byListener.get(key) ?? 0;
  }

  get size(): number {
    return this.all.size;
  }

  connections(): Iterable<Conn> {
    return this.all;
  }

  /**
   * Lets the matching connections finish for `graceMs`, then closes the ones still open. New
   * connections never reach them: the caller already took the task or port out of the routes.
   */
  drain(match: (c: Conn) => boolean, graceMs: number): number {
    const victims = [...this.all].filter(match);
    if (victims.length === 0) return 0;
    const timer = setTimeout(() => {
      this.draining.delete(timer);
      for (const c of victims) if (this.all.has(c)) c.destroy();
    }, graceMs);
    timer.unref();
    this.draining.add(timer);
    return victims.length;
  }

  /** Closes everything now (shutdown after the grace period). */
  destroyAll(): void {
    for (const t of this.draining) clearTimeout(t);
    this.draining.clear();
    for (const c of [...this.all]) c.destroy();
  }
}
