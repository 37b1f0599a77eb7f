/**
 * Messages carried over a byte stream as `length(2, big-endian) payload`: DNS over TCP
 * (RFC 1035 4.2.2) and datagrams through a data-plane tunnel both use this framing; the
 * encrypted overlay's frames, up to 64 KB plus headers (segmentation offload), use a 4-byte
 * length. The reader is a pure core (chunks in, whole messages out) so each user keeps its own I/O.
 */

/** The largest payload a two-byte length can announce. */
export const maxFrame = 65_535;

/** A frame whose announced length is below the reader's minimum: the stream is garbage. */
export class BadFrame extends Error {
  constructor(readonly length: number) {
    super(`frame of ${length} bytes is out of bounds`);
  }
}

/** Splits a byte stream into frames; keeps only the bytes of the frame in progress. */
export class FrameReader {
  /** Chunks of the frame in progress, joined only once it is whole. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** What the frame in progress needs in all (its header included), once its header is read. */
  private need = 0;

  /** `minLength`: frames announcing fewer bytes throw `BadFrame` (12 for DNS: a header). */
  constructor(
    private readonly minLength = 0,
    private readonly lengthBytes: 2 | 4 = 2,
    /** With 4-byte lengths, frames announcing more throw `BadFrame` too. */
    private readonly maxLength = maxFrame,
  ) {}

  /**
   * Feeds a chunk; returns the frames it completes: views of the chunks given, or of a buffer
   * joined from them, which the reader never writes into again (a caller may keep them). A frame
   * that arrives in many chunks (a 64 KB one in TLS records) is joined once, when it is whole,
   * not re-joined with each chunk.
   */
  push(chunk: Buffer): Buffer[] {
    if (this.need > 0 && this.heldBytes + chunk.length < this.need) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      return [];
    }
    let buf = this.heldBytes === 0 ? chunk : Buffer.concat([...this.held, chunk]);
    this.held = [];
    this.heldBytes = 0;
    this.need = 0;
    const out: Buffer[] = [];
    const h = this.lengthBytes;
    while (buf.length >= h) {
      const len = h === 2 ? buf.readUInt16BE(0) : buf.readUInt32BE(0);
      if (len < this.minLength || len > this.maxLength) throw new BadFrame(len);
      if (buf.length < h + len) {
        this.need = h + len;
        break;
      }
      out.push(buf.subarray(h, h + len));
      buf = buf.subarray(h + len);
    }
    if (buf.length > 0) {
      this.held = [buf];
      this.heldBytes = buf.length;
    }
    return out;
  }

  /** Bytes held for a frame not yet complete. */
  get pending(): number {
    return this.heldBytes;
  }
}

/** The header for a payload of `length` bytes; undefined when it cannot be framed. */
export function frameHeader(length: number, lengthBytes: 2 | 4 = 2): Buffer | undefined {
  if (lengthBytes === 4) {
    const h = Buffer.allocUnsafe(4);
    h.writeUInt32BE(length);
    return h;
  }
  if (length > maxFrame) return undefined;
  const h = Buffer.allocUnsafe(2);
  h.writeUInt16BE(length);
  return h;
}

/** Writes one framed message as a single corked write; drops what cannot be framed. */
export function writeFrame(
  out: { cork(): void; uncork(): void; write(b: Buffer): boolean },
  parts: readonly Buffer[],
): boolean {
  const h = frameHeader(parts.reduce((n, p) => n + p.length, 0));
  if (!h) return false;
  out.cork();
  out.write(h);
  for (const p of parts) out.write(p);
  out.uncork();
  return true;
}
