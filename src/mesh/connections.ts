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
  }

  remove(c: Conn): void {
    this.all.delete(c);
  }

  /**
   * Counts a connection on its listener from the moment it is accepted, not once it is spliced:
   * connections still connecting (to a task that does not answer, say) count against the cap
   * too. Returns the release to call when the client closes, or undefined at the cap.
   */
  admit(listener: string, max: number): (() => void) | undefined {
    const n = this.byListener.get(listener) ?? 0;
    if (n >= max) return undefined;
    this.byListener.set(listener, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.byListener.get(listener) ?? 1) - 1;
      if (left <= 0) this.byListener.delete(listener);
      else this.byListener.set(listener, left);
    };
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
