import type { Socket as UdpSocket } from 'node:dgram';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { type HostPort, listenOn } from '../config/listen.js';
import type { Logger } from '../log.js';
import { FrameReader, writeFrame } from '../wire/frames.js';
import type { DnsMetrics } from './metrics.js';
import type { Responder } from './responder.js';
import { UdpListeners } from './udp-listeners.js';

export interface DnsServerOptions {
  readonly listen: HostPort;
  readonly tcpMaxConnections: number;
  readonly tcpIdleTimeoutMs: number;
  /** Connections one client address may hold at once. */
  readonly tcpMaxPerClient: number;
  /** However busy, a connection lives at most this long. */
  readonly tcpMaxLifetimeMs: number;
}

/** Sends a reply; a socket closed meanwhile (its address went away) just drops it. */
function reply(sock: UdpSocket, out: Buffer, port: number, address: string): void {
  try {
    sock.send(out, port, address);
  } catch {
    // ERR_SOCKET_DGRAM_NOT_RUNNING: the client asks again.
  }
}

/** A TCP client that stops reading its answers is cut off once this much is queued for it. */
const maxQueuedBytes = 256 * 1024;

/**
 * DNS over UDP and TCP on one address. The sockets only move bytes; the Responder decides. TCP
 * connections are capped in number, time out when idle, and are closed on a bad length.
 */
export class DnsServer {
  private udp: UdpListeners | undefined;
  private tcp: Server | undefined;
  private readonly conns = new Set<Socket>();
  /** Open TCP connections per client address; bounded by `tcpMaxConnections` entries. */
  private readonly perClient = new Map<string, number>();

  constructor(
    private readonly opts: DnsServerOptions,
    private readonly responder: Responder,
    private readonly metrics: DnsMetrics,
    private readonly log: Logger,
  ) {}

  async start(): Promise<AddressInfo> {
    // With port 0 the UDP port is picked first and TCP must get the same number; if another
    // process holds that TCP port, pick again.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.bindBoth();
      } catch (err) {
        const again =
          this.opts.listen.port === 0 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 10;
        this.udp?.close();
        this.udp = undefined;
        this.tcp?.close();
        this.tcp = undefined;
        if (!again) throw err;
      }
    }
  }

  /** Local addresses changed (meshd added some): a wildcard listener binds the new ones now. */
  addressesChanged(): Promise<void> {
    return this.udp?.addressesChanged() ?? Promise.resolve();
  }

  private async bindBoth(): Promise<AddressInfo> {
    const { host, port } = this.opts.listen;
    const udp = new UdpListeners((msg, address, p, sock) => this.onUdp(msg, address, p, sock), this.log);
    this.udp = udp;
    const bound = await udp.bind(host, port);
    const tcp = createServer({ noDelay: true }, (sock) => this.onTcp(sock));
    tcp.maxConnections = this.opts.tcpMaxConnections;
    tcp.on('drop', () => this.metrics.dropped.labels('tcp_limit').inc());
    this.tcp = tcp;
    // Same port as UDP, so `--dns-listen HOST:0` still gives one port for both.
    await listenOn(tcp, { host, port: bound });
    return { address: host, family: host.includes(':') ? 'IPv6' : 'IPv4', port: bound };
  }

  private onUdp(msg: Buffer, address: string, port: number, sock: UdpSocket): void {
    let out: ReturnType<Responder['respond']>;
    try {
      out = this.responder.respond(msg, address, 'udp');
    } catch (err) {
      this.log.warn('DNS request failed', { error: (err as Error).message });
      return;
    }
    if (out === undefined) return;
    if (!(out instanceof Promise)) {
      reply(sock, out, port, address);
      return;
    }
    out.then(
      (res) => {
        if (res && this.udp) reply(sock, res, port, address);
      },
      (err: Error) => this.log.warn('DNS forward failed', { error: err.message }),
    );
  }

  private onTcp(sock: Socket): void {
    const address = sock.remoteAddress ?? '';
    const mine = this.perClient.get(address) ?? 0;
    if (mine >= this.opts.tcpMaxPerClient) {
      this.metrics.dropped.labels('tcp_client_limit').inc();
      sock.on('error', () => undefined);
      sock.destroy();
      return;
    }
    this.perClient.set(address, mine + 1);
    this.conns.add(sock);
    sock.setTimeout(this.opts.tcpIdleTimeoutMs, () => {
      this.metrics.dropped.labels('tcp_idle').inc();
      sock.destroy();
    });
    const lifetime = setTimeout(() => {
      this.metrics.dropped.labels('tcp_lifetime').inc();
      sock.destroy();
    }, this.opts.tcpMaxLifetimeMs);
    lifetime.unref();
    sock.on('close', () => {
      clearTimeout(lifetime);
      this.conns.delete(sock);
      const n = (this.perClient.get(address) ?? 1) - 1;
      if (n <= 0) this.perClient.delete(address);
      else this.perClient.set(address, n);
    });
    sock.on('error', () => sock.destroy());
    const frames = new FrameReader(12);
    sock.on('data', (chunk: Buffer) => {
      let msgs: Buffer[];
      try {
        msgs = frames.push(chunk);
      } catch {
        this.metrics.dropped.labels('tcp_bad_length').inc();
        sock.destroy();
        return;
      }
      for (const msg of msgs) this.answerTcp(sock, msg, address);
    });
  }

  private answerTcp(sock: Socket, msg: Buffer, address: string): void {
    const send = (res: Buffer | undefined) => {
      if (!res || sock.destroyed) return;
      if (sock.writableLength > maxQueuedBytes) {
        this.metrics.dropped.labels('tcp_slow_reader').inc();
        sock.destroy();
        return;
      }
      writeFrame(sock, [res]);
    };
    let out: ReturnType<Responder['respond']>;
    try {
      out = this.responder.respond(Buffer.from(msg), address, 'tcp');
    } catch (err) {
      this.log.warn('DNS request failed', { error: (err as Error).message });
      sock.destroy();
      return;
    }
    if (out === undefined) {
      sock.destroy();
      return;
    }
    if (out instanceof Promise) out.then(send, () => sock.destroy());
    else send(out);
  }

  async close(): Promise<void> {
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    udp?.close();
    for (const c of this.conns) c.destroy();
    if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }
}
