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
/** Largest payload of a frame other than DATA: an OPEN's header line, a CREDIT's count. */
const maxControl = 4096;
/**
 * Credit is granted back once a stream's consumer has taken this much, not after every piece:
 * fewer CREDIT frames, and the sender never stalls, since less than the window is withheld.
 */
const grantAt = window / 4;
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
  /** What is being written: the pieces not yet sent, and the callback once all are. */
  private pending: { parts: Buffer[]; cb: (err?: Error | null) => void } | undefined;

  constructor(
    private readonly mux: Mux,
    readonly id: number,
  ) {
    super({ allowHalfOpen: true, highWaterMark: 256 * 1024 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.pending = { parts: [chunk], cb };
    this.flush();
  }

  /**
   * Writes that queued up (a relay's batch of frames, written corked) leave together, as DATA
   * frames made of views of them, never joined into one buffer first.
   */
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.pending = { parts: chunks.map((c) => c.chunk), cb };
    this.flush();
  }

  /** Sends as much of the pending pieces as credit allows, in DATA frames of up to 64 KB. */
  flush(): void {
    const p = this.pending;
    if (!p) return;
    while (p.parts.length > 0 && this.credit > 0) {
      const frame: Buffer[] = [];
      let room = Math.min(this.credit, maxFrame);
      while (room > 0 && p.parts.length > 0) {
        const b = p.parts[0] as Buffer;
        if (b.length === 0) {
          p.parts.shift();
          continue;
        }
        const n = Math.min(b.length, room);
        frame.push(b.subarray(0, n));
        room -= n;
        this.credit -= n;
        if (n === b.length) p.parts.shift();
        else p.parts[0] = b.subarray(n);
      }
      if (frame.length > 0) this.mux.frame(DATA, this.id, frame);
    }
    if (p.parts.length === 0) {
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
    if (this.granted >= grantAt) {
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
  /** The frame being read: its header as it arrives, then what is left of its payload (-1: none). */
  private readonly head = Buffer.alloc(9);
  private headLen = 0;
  private type = 0;
  private id = 0;
  private remaining = -1;
  /** A control frame's payload (a few bytes: a header line, a credit), gathered whole. */
  private control: Buffer[] = [];
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

  /** Sends one frame; its payload may come in pieces (written as they are, not joined). */
  frame(type: number, id: number, payload?: Buffer | readonly Buffer[]): void {
    if (this.closedFlag) return;
    const parts = payload === undefined ? [] : Buffer.isBuffer(payload) ? [payload] : payload;
    const h = Buffer.allocUnsafe(9);
    h[0] = type;
    h.writeUInt32BE(id, 1);
    let length = 0;
    for (const b of parts) length += b.length;
    h.writeUInt32BE(length, 5);
    this.socket.cork();
    this.socket.write(h);
    for (const b of parts) if (b.length > 0) this.socket.write(b);
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

  /**
   * Frames are parsed as bytes arrive: a DATA frame's payload goes to its stream piece by piece,
   * as views of the chunks the connection delivered, never joined into a frame first (a 64 KB
   * frame arrives as several 16 KB TLS records; joining copied every byte and fed the GC).
   * Only headers and the small payloads of control frames are gathered.
   */
  private read(d: Buffer): void {
    let off = 0;
    while (off < d.length) {
      if (this.remaining < 0) {
        const k = Math.min(9 - this.headLen, d.length - off);
        d.copy(this.head, this.headLen, off, off + k);
        this.headLen += k;
        off += k;
        if (this.headLen < 9) return;
        this.headLen = 0;
        this.type = this.head[0] as number;
        this.id = this.head.readUInt32BE(1);
        this.remaining = this.head.readUInt32BE(5);
        if (this.remaining > maxFrame + 1024 || (this.type !== DATA && this.remaining > maxControl)) {
          this.handlers.onViolation?.('protocol');
          this.socket.destroy();
          return;
        }
      } else {
        const k = Math.min(this.remaining, d.length - off);
        const piece = d.subarray(off, off + k);
        off += k;
        this.remaining -= k;
        if (this.type === DATA) this.data(this.id, piece);
        else this.control.push(piece);
      }
      if (this.remaining === 0) {
        this.remaining = -1;
        if (this.type !== DATA) {
          const payload =
            this.control.length === 1 ? (this.control[0] as Buffer) : Buffer.concat(this.control);
          this.control = [];
          this.dispatch(this.type, this.id, payload);
        }
      }
      if (this.closedFlag) return;
    }
  }

  /** A piece of a DATA frame's payload, for its stream. */
  private data(id: number, piece: Buffer): void {
    const s = this.streams.get(id);
    if (!s || s.deliver(piece)) return;
    this.handlers.onViolation?.('window');
    s.destroy(new Error('stream sent past its window'));
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
    if (type === END) s.push(null);
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
