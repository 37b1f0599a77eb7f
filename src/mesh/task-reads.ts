import type { Socket } from 'node:net';

/** One read from a task: what a socket read fills, as large as Node's own. */
const readSize = 64 * 1024;
/** Free read buffers kept for reuse (4 MB); more are left to the GC. */
const maxFree = 64;
/** A task's bytes held before its client is spliced (a greeting); past this, reading pauses. */
const maxEarly = 64 * 1024;

/**
 * Read buffers for connections in a bulk transfer. Node gives each socket read a fresh 64 KB
 * buffer, and at a gigabyte a second that memory (outside V8's heap) makes V8 run a full
 * mark-compact every 64 MB, more costly the larger meshd's heap is: under bulk transfers that was
 * a fifth of meshd's CPU. A read here fills a buffer from this pool instead, and the buffer comes
 * back once the client's write of it is done, so the pool stays as small as the writes in flight.
 */
class ReadBuffers {
  private readonly free: Buffer[] = [];

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(readSize);
  }

  give(b: Buffer): void {
    if (this.free.length < maxFree) this.free.push(b);
  }
}

const buffers = new ReadBuffers();

/**
 * Where every connection not in a bulk transfer reads: one buffer for all of them, so ten
 * thousand idle connections hold no read buffer each. Reads run one at a time on the event loop
 * and each one's bytes are copied out before the next, so sharing it is safe.
 */
const shared = Buffer.allocUnsafeSlow(readSize);

/**
 * A task's side of a proxied connection, written to the client with backpressure as
 * `upstream.pipe(client)` would, but read through `net.connect`'s `onread`. A read that fills
 * its buffer (a bulk transfer) puts the connection on a pooled buffer of its own, written from
 * directly and reused once written; other reads land in the shared buffer and are copied out, as
 * Node itself does. Bytes that arrive before the client is spliced are held (bounded).
 */
export class TaskReads {
  private client: Socket | undefined;
  private upstream: Socket | undefined;
  private early: Buffer[] = [];
  private earlyBytes = 0;
  /** The pooled buffer the socket holds for its next read: back to the pool when it closes. */
  private next: Buffer | undefined;
  /** The last read filled its buffer: the next one gets a pooled buffer of its own. */
  private bulk = false;
  /** The task sent its FIN, perhaps before the client was spliced. */
  private ended = false;

  /** The `onread` option for the task's socket, which `watch` then follows. */
  readonly onread = {
    buffer: (): Buffer => {
      if (!this.bulk) return shared;
      this.next = buffers.take();
      return this.next;
    },
    callback: (nread: number, buf: Buffer): boolean => {
      this.bulk = nread === buf.length;
      if (buf === shared) return this.read(Buffer.from(shared.subarray(0, nread)), undefined);
      if (buf === this.next) this.next = undefined;
      return this.read(buf.subarray(0, nread), buf);
    },
  };

  /**
   * Follows the task's socket from its creation: its FIN (which may come before the splice: an
   * `onread` socket reads at once) ends the client's side, and once it closes, a pooled buffer
   * it held for a read that never came goes back.
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

  /** Bytes read: `pooled` is the buffer they are a view of when it must go back to the pool. */
  private read(bytes: Buffer, pooled: Buffer | undefined): boolean {
    if (!this.client) {
      // Copied out (unless already a copy): the pooled buffer goes back at once.
      this.early.push(pooled ? Buffer.from(bytes) : bytes);
      this.earlyBytes += bytes.length;
      if (pooled) buffers.give(pooled);
      return this.earlyBytes < maxEarly;
    }
    const client = this.client;
    let inFlight = false;
    const more = client.write(bytes, () => {
      if (inFlight && pooled) buffers.give(pooled);
    });
    // Written through to the kernel already: the buffer is free now. Otherwise the write still
    // holds it, and gives it back when done.
    if (pooled) {
      if (client.writableLength === 0) buffers.give(pooled);
      else inFlight = true;
    }
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
