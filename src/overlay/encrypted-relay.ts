import type { ChildProcess } from 'node:child_process';
import type { Duplex, Writable } from 'node:stream';
import { run } from '../host/commands.js';
import type { Logger } from '../log.js';
import { BadFrame, FrameReader, frameHeader } from '../wire/frames.js';
import {
  arpAnswer,
  arpQuestion,
  ethernetHeader,
  ndpAnswer,
  ndpQuestion,
  unicastDestination,
} from './ethernet.js';
import { macOf, type OverlayNetwork } from './plan.js';
import { maxTapFrame, startTapHelper, vnetHeader } from './tap-helper.js';

/** How the relay reaches another node: a stream through the mTLS tunnel to it. */
export interface FrameCarrier {
  /** A stream to node `nodeId` through its tunnel, for frames of `network`. */
  open(nodeId: string, network: string): Promise<Duplex>;
}

/** What the relay knows of one encrypted network with endpoints on this node. */
interface Relayed {
  readonly id: string;
  readonly tap: string;
  /** Holds the TAP device; frames to it go to its stdin, frames from it come on its stdout. */
  readonly helper: ChildProcess;
  /** Frames for the TAP gathered in this turn of the event loop. */
  toTap: Buffer[];
  /** Endpoints on other nodes by MAC, and their MACs by address (for ARP). */
  remotes: Map<string, string>;
  macs: Map<string, string>;
  /** MACs of this node's endpoints: the only frames a peer may send here. */
  locals: Set<string>;
}

/** An outgoing stream to a peer for one network, or the frames waiting while it opens. */
interface Outgoing {
  stream?: Duplex;
  queue: Buffer[];
  /** Frames (with their length prefixes) gathered in this turn of the event loop. */
  batch: Buffer[];
  batchBytes: number;
}

/** Frames held while a tunnel opens; past this they are dropped (TCP inside resends). */
const maxQueued = 256;
/** A batch of frames is written once it reaches this size (the tunnel's largest frame). */
const maxBatch = 60 * 1024;
/** Bytes a slow tunnel may hold unsent before frames for it are dropped rather than buffered. */
const maxBuffered = 4 * 1024 * 1024;

/**
 * The encrypted overlay's carrier, where IPsec or WireGuard would be if these kernels had them
 * (userspace overlays such as tinc and Nebula do the same): each encrypted network's bridge has
 * a TAP device instead of a VXLAN one, and this relay moves its frames through the node-to-node
 * mTLS tunnels, so they never cross the underlay in clear. Node has no ioctl to open a TAP
 * device, so a small helper holds it (`tap-helper.ts`) and frames flow over its stdin and stdout.
 *
 * No flooding: an ARP request for an endpoint on another node is answered here (its MAC is made
 * from its address), and a unicast frame goes to the one node that holds its destination.
 */
export class EncryptedRelay {
  private readonly nets = new Map<string, Relayed>();
  private readonly out = new Map<string, Outgoing>();
  /** `node/network` pairs whose tunnel failed, said once in the log. */
  private readonly unreachable = new Set<string>();
  /** What crossed the tunnels, and frames dropped (no route, a full queue, a slow tunnel): metrics. */
  readonly counts = { sentFrames: 0, sentBytes: 0, receivedFrames: 0, receivedBytes: 0, dropped: 0 };

  /** Called when a network's helper stops on its own (the fabric rebuilds what is missing). */
  onLost: (() => void) | undefined;

  constructor(
    private readonly carrier: FrameCarrier,
    private readonly log: Logger,
  ) {}

  /** Whether network `id`'s TAP device is held now. */
  has(id: string): boolean {
    return this.nets.has(id);
  }

  /** Creates network `n`'s TAP device (held by its helper); resolves once the device exists. */
  async attach(n: OverlayNetwork): Promise<void> {
    const helper = startTapHelper(n.carrier);
    let stderr = '';
    helper.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    helper.stdin?.on('error', () => undefined);
    const relayed: Relayed = {
      id: n.id,
      tap: n.carrier,
      helper,
      toTap: [],
      remotes: new Map(),
      macs: new Map(),
      locals: new Set(),
    };
    const reader = newFrameReader();
    helper.stdout?.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = reader.push(chunk);
      } catch {
        helper.kill();
        return;
      }
      // The reader's frames are views it never reuses: kept as they are, not copied.
      for (const f of frames) this.fromTap(relayed, f);
    });
    helper.once('exit', (code) => {
      if (this.nets.get(n.id) !== relayed) return;
      // Lost: forgotten here, so the fabric builds the network's TAP device again.
      this.nets.delete(n.id);
      this.log.warn('encrypted overlay: the TAP helper stopped; starting it again', {
        network: n.name,
        code,
        error: stderr.trim(),
      });
      this.onLost?.();
    });
    for (let i = 0; ; i++) {
      if ((await run('ip', ['link', 'show', n.carrier])).code === 0) break;
      if (helper.exitCode !== null || i >= 100) {
        helper.stdin?.end();
        helper.kill();
        throw new Error(`TAP device ${n.carrier}: ${stderr.trim() || 'not created'}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    this.nets.set(n.id, relayed);
    this.update(n);
  }

  /** Takes the endpoints of network `n` from the plan: where each remote MAC lives. */
  update(n: OverlayNetwork): void {
    const r = this.nets.get(n.id);
    if (!r) return;
    r.remotes = new Map(n.remotes.map((e) => [e.mac, e.nodeId]));
    r.macs = new Map(n.remotes.map((e) => [e.address, e.mac]));
    // This node's own address on the network is the bridge's: frames to it are delivered too.
    r.locals = new Set([...n.locals.map((e) => e.mac), ...(n.address ? [macOf(n.address)] : [])]);
    // A node that no longer holds an endpoint of this network gets no more of its frames.
    const nodes = new Set(r.remotes.values());
    for (const [key, o] of this.out) {
      const [node, net] = key.split('/');
      if (net === n.id && !nodes.has(node as string)) {
        o.stream?.destroy();
        this.out.delete(key);
      }
    }
  }

  /** Removes network `id`'s TAP device (its helper ends) and its streams. */
  detach(id: string): void {
    const r = this.nets.get(id);
    if (!r) return;
    this.nets.delete(id);
    r.helper.stdin?.end();
    r.helper.kill();
    for (const [key, o] of this.out) {
      if (key.endsWith(`/${id}`)) {
        o.stream?.destroy();
        this.out.delete(key);
      }
    }
  }

  /**
   * A frame from a TAP device: answered (ARP, IPv6 neighbour solicitation), sent to the node that
   * holds its destination, or dropped.
   */
  private fromTap(r: Relayed, frame: Buffer): void {
    const ethernet = frame.subarray(vnetHeader);
    const ask = arpQuestion(ethernet);
    if (ask) {
      const mac = r.macs.get(ask.target);
      // A zero virtio-net header: a plain frame, no offload to finish.
      if (mac) this.toTap(r, Buffer.concat([Buffer.alloc(vnetHeader), arpAnswer(ask, ask.target, mac)]));
      return;
    }
    const solicited = ndpQuestion(ethernet);
    if (solicited) {
      const mac = r.macs.get(solicited.target);
      if (mac)
        this.toTap(r, Buffer.concat([Buffer.alloc(vnetHeader), ndpAnswer(solicited, solicited.target, mac)]));
      return;
    }
    const dst = unicastDestination(ethernet);
    const node = dst && r.remotes.get(dst);
    if (!node) {
      this.counts.dropped++;
      return;
    }
    this.send(node, r.id, frame);
  }

  /** Queues a frame for network `r`'s TAP device; the frames of one turn leave in one write. */
  private toTap(r: Relayed, frame: Buffer): void {
    const h = frameHeader(frame.length, 4);
    if (!h) return;
    if (r.toTap.length === 0)
      setImmediate(() => {
        const pieces = r.toTap;
        r.toTap = [];
        const stdin = r.helper.stdin;
        if (!stdin?.writable) return;
        writeTogether(stdin, pieces);
      });
    r.toTap.push(h, frame);
  }

  private send(node: string, network: string, frame: Buffer): void {
    this.counts.sentFrames++;
    this.counts.sentBytes += frame.length;
    const key = `${node}/${network}`;
    const o = this.out.get(key);
    if (o?.stream) {
      if (o.stream.writableLength + o.batchBytes > maxBuffered) {
        this.counts.dropped++;
        return;
      }
      const h = frameHeader(frame.length, 4);
      if (!h) return;
      // Frames of one turn leave as one write: one tunnel frame and one TLS record for many
      // Ethernet frames, not two of each per frame.
      if (o.batch.length === 0) setImmediate(() => this.flush(o));
      o.batch.push(h, frame);
      o.batchBytes += h.length + frame.length;
      if (o.batchBytes >= maxBatch) this.flush(o);
      return;
    }
    if (o) {
      if (o.queue.length < maxQueued) o.queue.push(frame);
      else this.counts.dropped++;
      return;
    }
    const entry: Outgoing = { queue: [frame], batch: [], batchBytes: 0 };
    this.out.set(key, entry);
    this.carrier.open(node, network).then(
      (stream) => {
        if (this.out.get(key) !== entry) {
          stream.destroy();
          return;
        }
        entry.stream = stream;
        this.unreachable.delete(key);
        stream.on('error', () => undefined);
        stream.once('close', () => {
          if (this.out.get(key) === entry) this.out.delete(key);
        });
        for (const f of entry.queue) stream.write(Buffer.concat([frameHeader(f.length, 4) as Buffer, f]));
        entry.queue = [];
      },
      (err: Error) => {
        if (this.out.get(key) === entry) this.out.delete(key);
        this.counts.dropped += entry.queue.length;
        // Once per node and network until a tunnel opens: every frame retries, not every log.
        if (this.unreachable.has(key)) return;
        if (this.unreachable.size < 1024) this.unreachable.add(key);
        this.log.warn('encrypted overlay: no tunnel to a node; its frames are dropped', {
          node,
          network,
          error: err.message,
        });
      },
    );
  }

  private flush(o: Outgoing): void {
    if (o.batch.length === 0) return;
    const pieces = o.batch;
    o.batch = [];
    o.batchBytes = 0;
    const s = o.stream;
    if (!s || s.destroyed) return;
    // One tunnel frame for many Ethernet frames, made of views of them.
    writeTogether(s, pieces);
  }

  /** A stream a peer opened to send frames of `network` here: each goes to its endpoint's TAP. */
  accept(stream: Duplex, network: string): void {
    stream.on('error', () => undefined);
    if (!this.nets.has(network)) {
      stream.destroy();
      return;
    }
    const reader = newFrameReader();
    stream.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = reader.push(chunk);
      } catch (err) {
        if (!(err instanceof BadFrame)) throw err;
        stream.destroy();
        return;
      }
      const r = this.nets.get(network);
      if (!r) {
        stream.destroy();
        return;
      }
      for (const f of frames) {
        // Only to an endpoint of this network on this node: a peer cannot reach anything else.
        const dst = unicastDestination(f.subarray(vnetHeader));
        if (dst && r.locals.has(dst)) {
          this.counts.receivedFrames++;
          this.counts.receivedBytes += f.length;
          this.toTap(r, f);
        } else this.counts.dropped++;
      }
    });
  }

  /** Ends every helper (their TAP devices go with them) and every stream. */
  close(): void {
    for (const id of [...this.nets.keys()]) this.detach(id);
    for (const o of this.out.values()) o.stream?.destroy();
    this.out.clear();
  }
}

/**
 * Writes `pieces` corked, so the stream takes them in one go (a pipe's writev, a mux stream's
 * frames of views): never joined into one buffer here.
 */
function writeTogether(stream: Writable, pieces: readonly Buffer[]): void {
  stream.cork();
  for (const b of pieces) stream.write(b);
  stream.uncork();
}

/** Frames as the helper and the tunnels carry them: a 4-byte length, a virtio-net header, Ethernet. */
function newFrameReader(): FrameReader {
  return new FrameReader(vnetHeader + ethernetHeader, 4, maxTapFrame);
}
