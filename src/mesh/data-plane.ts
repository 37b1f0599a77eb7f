import { createSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type SecureContext, TLSSocket } from 'node:tls';
import { type HostPort, listenOn } from '../config/listen.js';
import type { Logger } from '../log.js';
import type { Service, Task } from '../model/types.js';
import { verifyPeer } from '../security/pki.js';
import { tlsOptions } from '../security/tls.js';
import type { Snapshot } from '../state/snapshot.js';
import { dataPlaneMagic, startTls, startTlsOk } from './data-plane-client.js';
import type { DataPlaneMetrics } from './data-plane-metrics.js';

import { readDatagrams, writeDatagram } from './datagrams.js';
import { Mux, type MuxStream } from './mux.js';

/**
 * Node-to-node forwarding. Node A opens one mutually authenticated TLS 1.3 connection (AES-GCM
 * only) to node B's data-plane port and multiplexes streams over it; each stream's first frame
 * names the task and port (`MESHD/1 <task-id> <port>[ udp]`). B admits only a certificate of a
 * current cluster node, serves only tasks that run on B and ports their service publishes or
 * exposes, applies the service's idle timeout and a cap on open streams, and splices to the task.
 * Nothing else is spoken on this port: a connection that does not ask for TLS is refused, so the
 * port is never a gateway for someone who can merely reach it.
 */

/** Datagrams a UDP stream may queue while its socket towards the task connects. */
const maxQueuedDatagrams = 64;
/** A connection that has not finished its handshake in this long is dropped. */
const handshakeTimeoutMs = 10_000;

/** Where a stream goes: the local task's address and port, and the service it belongs to. */
interface Target {
  readonly host: string;
  readonly port: number;
  readonly service: Service;
}

/** Limits the data plane applies to what members ask of it. */
export interface DataPlaneLimits {
  /** Streams open at once across every tunnel (the mesh's per-listener cap). */
  readonly maxStreams: number;
  /** UDP streams idle this long are closed (the mesh's UDP flow timeout). */
  readonly udpIdleMs: number;
  /** This node's own listeners (API, metrics, DNS): never a stream's target. */
  readonly reserved: (host: string, port: number) => boolean;
}

export class DataPlaneServer {
  private server: Server | undefined;
  private readonly conns = new Set<Socket>();
  private secure: SecureContext | undefined;
  private caPem = '';
  private readonly tunnels = new Set<{ peer: string; mux: Mux }>();
  private active = 0;
  /** Where streams of an encrypted overlay's frames go (the overlay fabric), if anywhere. */
  onFrames: ((stream: Duplex, network: string) => void) | undefined;

  constructor(
    private readonly listen: HostPort,
    private readonly nodeId: string,
    private readonly current: () => Snapshot | undefined,
    private readonly datapathAddr: string,
    private readonly limits: DataPlaneLimits,
    private readonly metrics: DataPlaneMetrics,
    private readonly log: Logger,
  ) {}

  /** Installs (or replaces, on rotation) this node's certificate for TLS connections. */
  setSecureContext(ctx: SecureContext, caPem: string): void {
    this.secure = ctx;
    this.caPem = caPem;
  }

  async start(): Promise<{ address: string; port: number }> {
    const server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (s) =>
      this.accept(s),
    );
    this.server = server;
    await listenOn(server, this.listen);
    server.on('error', (err) => this.log.warn('data plane listener error', { error: err.message }));
    return server.address() as { address: string; port: number };
  }

  private refuse(reason: string, peer?: string): void {
    this.metrics.refused(reason);
    this.log.debug('data plane: refused', { reason, peer });
  }

  private accept(raw: Socket): void {
    this.conns.add(raw);
    raw.on('close', () => this.conns.delete(raw));
    raw.on('error', () => raw.destroy());
    raw.setTimeout(handshakeTimeoutMs, () => raw.destroy());
    const onReadable = () => {
      const first = raw.read() as Buffer | null;
      // Nothing to read yet (or only the end): wait for the next chunk, not the handshake timeout.
      if (!first) {
        if (!raw.readableEnded) raw.once('readable', onReadable);
        return;
      }
      // STARTTLS and nothing else: TLS then takes the socket itself. Anything else, a plain
      // header, a bare ClientHello or noise, is refused before a byte of it is interpreted.
      if (first.length !== 1 || first[0] !== startTls || !this.secure) {
        this.refuse(this.secure ? 'not_tls' : 'no_certificate', raw.remoteAddress);
        raw.destroy();
        return;
      }
      raw.pause();
      raw.write(Buffer.from([startTlsOk]));
      const sock = new TLSSocket(raw, {
        isServer: true,
        secureContext: this.secure,
        requestCert: true,
        rejectUnauthorized: true,
        ...tlsOptions,
      });
      let secured = false;
      sock.on('error', () => {
        if (!secured) this.refuse('handshake', raw.remoteAddress);
        raw.destroy();
      });
      sock.once('secure', () => {
        secured = true;
        void this.admit(raw, sock);
      });
    };
    raw.once('readable', onReadable);
  }

  /** Admits a TLS peer as a tunnel if its certificate verifies and names a current member. */
  private async admit(raw: Socket, sock: TLSSocket): Promise<void> {
    const presented = sock.getPeerCertificate(true);
    const cn = presented?.subject?.CN;
    const peer = Array.isArray(cn) ? cn[0] : cn;
    // A bare TLSSocket does not enforce rejectUnauthorized itself: check the chain and validity
    // here (a certificate of another CA, or an expired one, is refused like a non-member's).
    const valid = presented?.raw ? await verifyPeer(presented.raw, this.caPem) : false;
    const node = peer && valid ? this.current()?.state.nodes.get(peer) : undefined;
    // A certificate of a node that was removed (or never joined) is refused from then on.
    if (!node) {
      this.metrics.handshake(peer ?? 'unknown', 'refused');
      this.refuse('not_member', raw.remoteAddress);
      this.log.warn('data plane: refused a certificate of a node that is not a member', { peer });
      sock.destroy();
      return;
    }
    this.metrics.handshake(node.name, 'ok');
    raw.setTimeout(0);
    sock.setKeepAlive(true, 30_000);
    this.metrics.opened(node.name, true);
    const mux = new Mux(sock, false, {
      onOpen: (stream, header) => this.serveStream(stream, header, node.name),
      onViolation: (reason) => this.refuse(reason, node.name),
    });
    const entry = { peer: peer as string, mux };
    this.tunnels.add(entry);
    sock.once('close', () => {
      this.metrics.closed(node.name, true, sock.bytesWritten, sock.bytesRead);
      this.tunnels.delete(entry);
    });
  }

  /** One stream of a tunnel: the header names the task; splice it to the local task. */
  private serveStream(stream: MuxStream, header: string, peer: string): void {
    const frames = /^\S+ frames (\S+)$/.exec(header);
    if (frames && header.startsWith(`${dataPlaneMagic} `)) {
      if (!this.onFrames) {
        this.refuse('target', peer);
        stream.destroy();
        return;
      }
      this.onFrames(stream, frames[1] as string);
      return;
    }
    const udp = header.endsWith(' udp');
    const target = this.resolve(udp ? header.slice(0, -4) : header, udp ? 'udp' : 'tcp');
    if (!target) {
      this.refuse('target', peer);
      stream.destroy();
      return;
    }
    if (this.active >= this.limits.maxStreams) {
      this.refuse('limit', peer);
      stream.destroy();
      return;
    }
    this.active++;
    stream.once('close', () => this.active--);
    stream.on('error', () => undefined);
    if (udp) this.serveUdp(stream, target);
    else this.splice(stream, target);
  }

  /**
   * A UDP flow: datagrams framed in the stream, sent to the task from a socket of this node.
   * Datagrams that arrive while the socket connects are queued (a send before `connect`
   * completes throws), and the flow ends after the mesh's UDP idle timeout.
   */
  private serveUdp(stream: MuxStream, target: Target): void {
    const sock = createSocket(target.host.includes(':') ? 'udp6' : 'udp4');
    let queue: Buffer[] | undefined = [];
    let idle = false;
    const send = (d: Buffer) => {
      try {
        sock.send(d);
      } catch {
        stream.destroy();
      }
    };
    sock.on('error', () => stream.destroy());
    sock.connect(target.port, target.host, () => {
      const q = queue ?? [];
      queue = undefined;
      for (const d of q) send(d);
    });
    sock.on('message', (d) => {
      idle = false;
      writeDatagram(stream, [d]);
    });
    readDatagrams(stream, (d) => {
      idle = false;
      if (!queue) send(d);
      else if (queue.length < maxQueuedDatagrams) queue.push(Buffer.from(d));
    });
    const sweep = setInterval(() => {
      if (idle) stream.destroy();
      idle = true;
    }, this.limits.udpIdleMs);
    sweep.unref();
    stream.on('close', () => {
      clearInterval(sweep);
      try {
        sock.close();
      } catch {
        // Already closed after an error.
      }
    });
    stream.on('end', () => stream.end());
  }

  /** Connects to the local task and pipes both ways; either side ending or failing ends both. */
  private splice(from: Duplex, target: Target): void {
    const up = connect({
      host: target.host,
      port: target.port,
      noDelay: true,
      allowHalfOpen: true,
      localAddress: this.localFor(target.host),
    });
    // Idle means no bytes either way; the task's socket sees both directions.
    up.setTimeout(target.service.idleTimeoutMs, () => {
      up.destroy();
      from.destroy();
    });
    up.once('connect', () => {
      from.pipe(up);
      up.pipe(from);
    });
    up.on('error', () => from.destroy());
    from.on('error', () => up.destroy());
    from.on('close', () => up.destroy());
    up.on('close', () => {
      if (!from.writableEnded) from.destroy();
    });
  }

  /** Closes the tunnels of nodes that are no longer members (after `meshctl node rm`). */
  dropRemoved(snap: Snapshot): void {
    for (const t of this.tunnels) {
      if (!snap.state.nodes.has(t.peer)) {
        t.mux.socket.destroy();
        this.tunnels.delete(t);
      }
    }
  }

  /** Binds outgoing connections to the datapath address when it is a loopback-style address of ours. */
  private localFor(host: string): string | undefined {
    return host.startsWith('127.') && this.datapathAddr.startsWith('127.') ? this.datapathAddr : undefined;
  }

  /** The local task and port a stream header names, if this node may serve it. */
  private resolve(line: string, proto: 'tcp' | 'udp'): Target | undefined {
    const [magic, taskId, portText, extra] = line.split(' ');
    const port = Number(portText);
    const snap = this.current();
    if (magic !== dataPlaneMagic || !taskId || extra !== undefined || !Number.isInteger(port) || !snap)
      return undefined;
    const task: Task | undefined = snap.state.tasks.get(taskId);
    if (!task || task.node !== this.nodeId) return undefined;
    const service = snap.state.services.get(task.service);
    if (!service) return undefined;
    // Only what the service offers to the mesh: a published port's target, or an exposed port.
    const offered =
      service.ports.some((p) => p.target === port && p.protocol === proto) ||
      (proto === 'tcp' && service.expose.includes(port));
    const addr = task.addresses[0];
    if (!offered || !addr || this.limits.reserved(addr.address, port)) return undefined;
    return { host: addr.address, port, service };
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
