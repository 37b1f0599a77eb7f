import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

/**
 * Streams multiplexed over one long-lived connection between two nodes, so that an encrypted
 * path pays one TLS handshake per peer, not per client connection. Frames are
 * `type(1) stream(4) length(4) payload`; each stream has credit-based flow control (a sender
 * never has more than `window` bytes in flight per stream), and either side can half-close.
 */
const OPEN = 1;
const DATA = 2;
const END = 3;
const RESET = 4;
const CREDIT = 5;

/** Bytes a stream may have in flight before the receiver grants more. */
const window = 1 << 20;
/** Largest DATA frame: keeps one busy stream from starving the others. */
const maxFrame = 64 * 1024;
/** Streams one connection carries at once; more are refused. */
const maxStreams = 10_000;

export class MuxStream extends Duplex {
  credit = window;
  private granted = 0;
  /**
   * What the peer may still send before we grant more: our own account of its credit. A peer
   * that sends past it ignores flow control, and would make us buffer without bound behind a
   * slow consumer; the stream is reset instead.
   */
  private allowance = window;
  private pending: { chunk: Buffer; cb: (err?: Error | null) => void } | undefined;

  constructor(
    private readonly mux: Mux,
    readonly id: number,
  ) {
    super({ allowHalfOpen: true, highWaterMark: 256 * 1024 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.pending = { chunk, cb };
    this.flush();
  }

  /** Sends as much of the pending chunk as credit allows. */
  flush(): void {
    const p = this.pending;
    if (!p) return;
    while (p.chunk.length > 0 && this.credit > 0) {
      const n = Math.min(p.chunk.length, this.credit, maxFrame);
      this.mux.frame(DATA, this.id, p.chunk.subarray(0, n));
      this.credit -= n;
      p.chunk = p.chunk.subarray(n);
    }
    if (p.chunk.length === 0) {
      this.pending = undefined;
      this.mux.whenWritable(() => p.cb());
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.mux.frame(END, this.id);
    cb();
  }

  override _read(): void {
    // The consumer took data: give the sender room for as much again.
    if (this.granted > 0) {
      const b = Buffer.allocUnsafe(4);
      b.writeUInt32BE(this.granted);
      this.mux.frame(CREDIT, this.id, b);
      this.allowance += this.granted;
      this.granted = 0;
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.mux.closed(this, err !== null || !this.writableFinished || !this.readableEnded);
    cb(err);
  }

  /** Data arrived for this stream; false when it broke the window (the caller resets it). */
  deliver(payload: Buffer): boolean {
    this.allowance -= payload.length;
    if (this.allowance < 0) return false;
    this.granted += payload.length;
    this.push(payload);
    if (this.readableFlowing && this.readableLength === 0) this._read();
    return true;
  }
}

/** What the accepting side of a mux hears: new streams, and peers that break the protocol. */
export interface MuxHandlers {
  /** A stream the other side opened, with the header naming its destination. */
  readonly onOpen?: (stream: MuxStream, header: string) => void;
  /** The peer broke a rule (`window`: sent past its credit; `protocol`: a malformed frame). */
  readonly onViolation?: (reason: 'window' | 'protocol') => void;
}

export class Mux {
  private readonly streams = new Map<number, MuxStream>();
  private nextId: number;
  /** Received bytes not yet framed: kept as chunks and joined once per frame, not per chunk. */
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private drainWaiters: (() => void)[] = [];
  closedFlag = false;

  constructor(
    readonly socket: Socket,
    client: boolean,
    private readonly handlers: MuxHandlers = {},
  ) {
    this.nextId = client ? 1 : 2;
    socket.on('data', (d: Buffer) => this.read(d));
    socket.on('drain', () => {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    });
    socket.on('close', () => this.shutdown());
    socket.on('error', () => socket.destroy());
  }

  /** Opens a stream whose first frame names its destination. */
  open(header: string): MuxStream {
    const id = this.nextId;
    this.nextId += 2;
    const s = new MuxStream(this, id);
    this.streams.set(id, s);
    this.frame(OPEN, id, Buffer.from(header, 'latin1'));
    return s;
  }

  frame(type: number, id: number, payload?: Buffer): void {
    if (this.closedFlag) return;
    const h = Buffer.allocUnsafe(9);
    h[0] = type;
    h.writeUInt32BE(id, 1);
    h.writeUInt32BE(payload?.length ?? 0, 5);
    this.socket.cork();
    this.socket.write(h);
    if (payload && payload.length > 0) this.socket.write(payload);
    this.socket.uncork();
  }

  /** Runs `f` once the connection can take more (its own backpressure). */
  whenWritable(f: () => void): void {
    if (this.socket.writableNeedDrain) this.drainWaiters.push(f);
    else f();
  }

  closed(s: MuxStream, reset: boolean): void {
    if (!this.streams.delete(s.id)) return;
    if (reset) this.frame(RESET, s.id);
  }

  private read(d: Buffer): void {
    this.pending.push(d);
    this.pendingLen += d.length;
    while (this.pendingLen >= 9) {
      const head = this.peek(9);
      const len = head.readUInt32BE(5);
      if (len > maxFrame + 1024) {
        this.handlers.onViolation?.('protocol');
        this.socket.destroy();
        return;
      }
      if (this.pendingLen < 9 + len) return;
      const frame = this.take(9 + len);
      this.dispatch(frame[0] as number, frame.readUInt32BE(1), frame.subarray(9));
    }
  }

  /** The first `n` pending bytes, without consuming them. */
  private peek(n: number): Buffer {
    const first = this.pending[0] as Buffer;
    if (first.length >= n) return first;
    const joined = Buffer.concat(this.pending);
    this.pending = [joined];
    return joined;
  }

  /** Consumes the first `n` pending bytes: a slice when one chunk holds them, one copy otherwise. */
  private take(n: number): Buffer {
    this.pendingLen -= n;
    const first = this.pending[0] as Buffer;
    if (first.length >= n) {
      if (first.length === n) this.pending.shift();
      else this.pending[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.pending[0] as Buffer;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.pending.shift();
      else this.pending[0] = c.subarray(k);
    }
    return out;
  }

  private dispatch(type: number, id: number, payload: Buffer): void {
    if (type === OPEN) {
      const onOpen = this.handlers.onOpen;
      if (!onOpen || this.streams.has(id) || this.streams.size >= maxStreams) {
        this.frame(RESET, id);
        return;
      }
      const s = new MuxStream(this, id);
      this.streams.set(id, s);
      onOpen(s, payload.toString('latin1'));
      return;
    }
    const s = this.streams.get(id);
    if (!s) return;
    if (type === DATA) {
      if (!s.deliver(payload)) {
        this.handlers.onViolation?.('window');
        s.destroy(new Error('stream sent past its window'));
      }
    } else if (type === END) s.push(null);
    else if (type === RESET) {
      this.streams.delete(id);
      s.destroy(new Error('stream reset by peer'));
    } else if (type === CREDIT && payload.length === 4) {
      s.credit += payload.readUInt32BE(0);
      s.flush();
    }
  }

  private shutdown(): void {
    this.closedFlag = true;
    for (const s of this.streams.values()) s.destroy(new Error('tunnel closed'));
    this.streams.clear();
  }
}
