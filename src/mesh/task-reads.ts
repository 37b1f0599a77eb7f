import type { Socket } from 'node:net';

/** One read from a task: what a socket read fills, as large as Node's own. */
const readSize = 64 * 1024;
/** Free read buffers kept for reuse (4 MB); more are left to the GC. */
const maxFree = 64;
/** A task's bytes held before its client is spliced (a greeting); past this, reading pauses. */
const maxEarly = 64 * 1024;

/**
 * Read buffers shared by every connection to a task. Node gives each socket read a fresh 64 KB
 * buffer, and at a gigabyte a second that memory (outside V8's heap) makes V8 run a full
 * mark-compact every 64 MB, more costly the larger meshd's heap is: under bulk transfers that was
 * a fifth of meshd's CPU. A read here fills a buffer from this pool instead, and the buffer comes
 * back once the client's write of it is done, so the pool stays as small as the writes in flight.
 */
class ReadBuffers {
  private readonly free: Buffer[] = [];

  readonly take = (): Buffer => this.free.pop() ?? Buffer.allocUnsafeSlow(readSize);

  give(b: Buffer): void {
    if (this.free.length < maxFree) this.free.push(b);
  }
}

const buffers = new ReadBuffers();

/**
 * A task's side of a proxied connection, read into pooled buffers (`net.connect`'s `onread`) and
 * written to the client with backpressure, as `upstream.pipe(client)` would, without a fresh
 * buffer per read. Bytes that arrive before the client is spliced are held (bounded).
 */
export class TaskReads {
  private client: Socket | undefined;
  private upstream: Socket | undefined;
  private early: Buffer[] = [];
  private earlyBytes = 0;
  /** The buffer the socket holds for its next read: back to the pool when the socket closes. */
  private next: Buffer | undefined;
  /** The task sent its FIN, perhaps before the client was spliced. */
  private ended = false;

  /** The `onread` option for the task's socket, which `watch` then follows. */
  readonly onread = {
    buffer: (): Buffer => {
      this.next = buffers.take();
      return this.next;
    },
    callback: (nread: number, buf: Buffer): boolean => {
      if (buf === this.next) this.next = undefined;
      return this.read(nread, buf);
    },
  };

  /**
   * Follows the task's socket from its creation: its FIN (which may come before the splice: an
   * `onread` socket reads at once) ends the client's side, and once it closes, the buffer it held
   * for a read that never came goes back to the pool (a short connection would otherwise leave a
   * 64 KB buffer for the GC every time).
   */
  watch(upstream: Socket): void {
    upstream.once('end', () => {
      this.ended = true;
      this.client?.end();
    });
    upstream.once('close', () => {
      if (this.next) buffers.give(this.next);
      this.next = undefined;
    });
  }

  private read(nread: number, buf: Buffer): boolean {
    const view = buf.subarray(0, nread);
    if (!this.client) {
      // Copied out: the buffer goes back to the pool at once.
      this.early.push(Buffer.from(view));
      this.earlyBytes += nread;
      buffers.give(buf);
      return this.earlyBytes < maxEarly;
    }
    return this.write(this.client, view, buf);
  }

  private write(client: Socket, view: Buffer, buf: Buffer): boolean {
    let inFlight = false;
    const more = client.write(view, () => {
      if (inFlight) buffers.give(buf);
    });
    // Written through to the kernel already: the buffer is free now. Otherwise the write still
    // holds it, and gives it back when done.
    if (client.writableLength === 0) buffers.give(buf);
    else inFlight = true;
    if (!more) {
      client.once('drain', () => this.upstream?.resume());
      return false;
    }
    return true;
  }

  /** Splices the task's bytes to `client`; the task's FIN ends the client's side, as pipe() does. */
  attach(client: Socket, upstream: Socket): void {
    this.client = client;
    this.upstream = upstream;
    for (const b of this.early) client.write(b);
    const paused = this.earlyBytes >= maxEarly;
    this.early = [];
    this.earlyBytes = 0;
    if (this.ended) client.end();
    else if (paused) upstream.resume();
  }
}
