import { createSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { type SecureContext, TLSSocket } from 'node:tls';
import type { HostPort } from '../config/listen.js';
import type { Logger } from '../log.js';
import { verifyPeer } from '../security/pki.js';
import type { Snapshot } from '../state/snapshot.js';
import { dataPlaneMagic, startTls, startTlsOk, tlsOptions } from './data-plane-client.js';
import type { DataPlaneMetrics } from './data-plane-metrics.js';

export {
  dataPlaneHeader,
  dataPlaneMagic,
  dialDataPlane,
  dialSecure,
  tlsOptions,
} from './data-plane-client.js';

import { readDatagrams, writeDatagram } from './datagrams.js';
import { Mux, type MuxStream } from './mux.js';

/**
 * Node-to-node forwarding: node A opens a connection to node B's data-plane port and names the
 * task and port in a one-line header (`MESHD/1 <task-id> <port>\n`); B checks that the task runs
 * on B and that the port is one its service declares, connects to it, and splices.
 *
 * One port speaks both: plain TCP, or mutually authenticated TLS 1.3 restricted to AES-GCM (the
 * first byte of a TLS ClientHello tells them apart). Traffic for tasks on encrypted networks is
 * only ever accepted over TLS from a certificate of a current cluster node.
 */
/** A header longer than this is not ours. */
const maxHeader = 128;
const tlsRecordHandshake = 0x16;

/** A duplex over `raw` that first yields `prefix` (bytes already read to sniff the protocol). */
function withPrefix(raw: Socket, prefix: Buffer): Duplex {
  const d = new Duplex({
    read() {
      raw.resume();
    },
    write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void) {
      raw.write(chunk, cb);
    },
    final(cb: (err?: Error | null) => void) {
      raw.end();
      cb();
    },
    destroy(err: Error | null, cb: (err?: Error | null) => void) {
      raw.destroy(err ?? undefined);
      cb(err);
    },
  });
  d.push(prefix);
  raw.on('data', (c: Buffer) => {
    if (!d.push(c)) raw.pause();
  });
  raw.on('end', () => d.push(null));
  raw.on('close', () => d.destroy());
  return d;
}

export class DataPlaneServer {
  private server: Server | undefined;
  private readonly conns = new Set<Socket>();
  private secure: SecureContext | undefined;
  private caPem = '';
  private readonly tunnels = new Set<{ peer: string; mux: Mux }>();

  constructor(
    private readonly listen: HostPort,
    private readonly nodeId: string,
    private readonly current: () => Snapshot | undefined,
    private readonly datapathAddr: string,
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
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listen.port, this.listen.host, () => resolve());
    });
    return server.address() as { address: string; port: number };
  }

  private accept(raw: Socket): void {
    this.conns.add(raw);
    raw.on('close', () => this.conns.delete(raw));
    raw.on('error', () => raw.destroy());
    raw.setTimeout(10_000, () => raw.destroy());
    raw.once('readable', () => {
      const first = raw.read() as Buffer | null;
      if (!first) return;
      if (first[0] === startTls) {
        // STARTTLS: nothing else was sent yet, so TLS can take the socket itself (fast path).
        if (first.length !== 1 || !this.secure) {
          raw.destroy();
          return;
        }
        raw.pause();
        raw.write(Buffer.from([startTlsOk]));
        this.secured(
          raw,
          new TLSSocket(raw, {
            isServer: true,
            secureContext: this.secure,
            requestCert: true,
            rejectUnauthorized: true,
            ...tlsOptions,
          }),
        );
        return;
      }
      if (first[0] !== tlsRecordHandshake) {
        raw.unshift(first);
        this.serve(raw, raw, undefined);
        return;
      }
      if (!this.secure) {
        raw.destroy();
        return;
      }
      // The bytes already read must reach TLS too: it runs over a stream that replays them.
      const sock = new TLSSocket(withPrefix(raw, first), {
        isServer: true,
        secureContext: this.secure,
        requestCert: true,
        rejectUnauthorized: true,
        ...tlsOptions,
      });
      this.secured(raw, sock);
    });
  }

  /** A TLS connection from a peer: only a current member's certificate gets a tunnel. */
  private secured(raw: Socket, sock: TLSSocket): void {
    sock.on('error', () => raw.destroy());
    sock.once('secure', () => void this.admit(raw, sock));
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
      this.log.warn('data plane: refused a certificate of a node that is not a member', { peer });
      sock.destroy();
      return;
    }
    this.metrics.handshake(node.name, 'ok');
    raw.setTimeout(0);
    sock.setKeepAlive(true, 30_000);
    this.metrics.opened(node.name, true);
    const mux = new Mux(sock, false, (stream, header) => this.serveStream(stream, header));
    this.tunnels.add({ peer: peer as string, mux });
    sock.once('close', () => {
      this.metrics.closed(node.name, true, sock.bytesWritten, sock.bytesRead);
      for (const t of this.tunnels) if (t.mux === mux) this.tunnels.delete(t);
    });
  }

  /** Reads the header from `sock` (plain or TLS) and splices it to the named local task. */
  private serve(sock: Socket, raw: Socket, peer: string | undefined): void {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(10);
      if (nl < 0) {
        if (head.length > maxHeader) sock.destroy();
        return;
      }
      sock.off('data', onData);
      sock.pause();
      const rest = head.subarray(nl + 1);
      const target = this.resolve(head.subarray(0, nl).toString('latin1'), peer !== undefined);
      if (!target) {
        this.log.debug('data plane: refused a connection', { peer: raw.remoteAddress });
        sock.destroy();
        return;
      }
      this.splice(
        sock,
        target,
        rest,
        () => {
          raw.setTimeout(0);
          this.metrics.opened(peer ?? 'plain', peer !== undefined);
        },
        (up) => {
          if (up.bytesWritten > 0 || up.bytesRead > 0)
            this.metrics.closed(peer ?? 'plain', peer !== undefined, up.bytesWritten, up.bytesRead);
        },
      );
    };
    sock.on('data', onData);
    sock.resume();
  }

  /** One stream of a tunnel: the header names the task; splice it to the local task. */
  private serveStream(stream: MuxStream, header: string): void {
    const udp = header.endsWith(' udp');
    const target = this.resolve(udp ? header.slice(0, -4) : header, true, udp ? 'udp' : 'tcp');
    if (!target) {
      stream.destroy();
      return;
    }
    if (udp) {
      // A UDP flow: datagrams framed in the stream, sent to the task from a socket of this node.
      const sock = createSocket(target.host.includes(':') ? 'udp6' : 'udp4');
      sock.connect(target.port, target.host);
      sock.on('message', (d) => writeDatagram(stream, [d]));
      sock.on('error', () => stream.destroy());
      readDatagrams(stream, (d) => sock.send(d));
      stream.on('error', () => undefined);
      stream.on('close', () => sock.close());
      stream.on('end', () => stream.end());
      return;
    }
    this.splice(stream, target, Buffer.alloc(0));
  }

  /** Connects to the local task and pipes both ways; either side ending or failing ends both. */
  private splice(
    from: Duplex,
    target: { host: string; port: number },
    rest: Buffer,
    opened?: () => void,
    closed?: (up: Socket) => void,
  ): void {
    const up = connect({
      host: target.host,
      port: target.port,
      noDelay: true,
      allowHalfOpen: true,
      localAddress: this.localFor(target.host),
    });
    up.once('connect', () => {
      if (rest.length > 0) up.write(rest);
      opened?.();
      from.pipe(up);
      up.pipe(from);
    });
    up.on('error', () => from.destroy());
    from.on('error', () => up.destroy());
    from.on('close', () => {
      up.destroy();
      closed?.(up);
    });
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

  private resolve(
    line: string,
    overTls: boolean,
    proto: 'tcp' | 'udp' = 'tcp',
  ): { host: string; port: number } | undefined {
    const [magic, taskId, portText] = line.split(' ');
    const port = Number(portText);
    const snap = this.current();
    if (magic !== dataPlaneMagic || !taskId || !Number.isInteger(port) || !snap) return undefined;
    const task = snap.state.tasks.get(taskId);
    if (!task || task.node !== this.nodeId) return undefined;
    const svc = snap.state.services.get(task.service);
    if (!svc) return undefined;
    const allowed =
      svc.ports.some((p) => p.target === port && p.protocol === proto) ||
      (proto === 'tcp' && svc.expose.includes(port));
    const addr = task.addresses[0];
    // Never in clear for an encrypted network, whatever the other side asks.
    if (!overTls && addr && snap.state.networks.get(addr.network)?.encrypted) return undefined;
    return allowed && addr ? { host: addr.address, port } : undefined;
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
