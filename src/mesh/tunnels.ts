import type { Duplex } from 'node:stream';
import type { SecureContext } from 'node:tls';
import { dataPlaneHeader, dialSecure } from './data-plane-client.js';
import type { DataPlaneMetrics } from './data-plane-metrics.js';
import { Mux } from './mux.js';

/** A peer node's data plane, as a route names it. */
export interface Peer {
  readonly node: string;
  readonly nodeName: string;
  readonly host: string;
  readonly port: number;
}

/** A tunnel that cannot be set up in this long fails the connect (and the task is ejected). */
const handshakeTimeoutMs = 5000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () => reject(Object.assign(new Error('tunnel handshake timeout'), { code: 'ETIMEDOUT' })),
      ms,
    );
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/**
 * One encrypted tunnel per peer node, shared by every connection to that node's tasks: the TLS
 * handshake is paid once per peer, not once per client connection. A broken tunnel is dropped
 * and the next connection opens a new one.
 */
export class Tunnels {
  private readonly muxes = new Map<string, Promise<Mux>>();

  constructor(
    private readonly secure: () => SecureContext | undefined,
    private readonly metrics: DataPlaneMetrics,
  ) {}

  private tunnel(peer: Peer): Promise<Mux> {
    const existing = this.muxes.get(peer.node);
    if (existing) return existing;
    const ctx = this.secure();
    if (!ctx)
      return Promise.reject(
        Object.assign(new Error('no cluster certificate for the encrypted data plane'), { code: 'ENOCERT' }),
      );
    const p: Promise<Mux> = withTimeout(
      dialSecure(peer.host, peer.port, peer.node, ctx, this.metrics, peer.nodeName),
      handshakeTimeoutMs,
    ).then(
      (sock) => {
        sock.setKeepAlive(true, 30_000);
        this.metrics.opened(peer.nodeName, true);
        const mux = new Mux(sock, true, { onViolation: (reason) => this.metrics.refused(reason) });
        sock.once('close', () => {
          this.metrics.closed(peer.nodeName, true, sock.bytesWritten, sock.bytesRead);
          if (this.muxes.get(peer.node) === p) this.muxes.delete(peer.node);
        });
        return mux;
      },
      (err: Error) => {
        if (this.muxes.get(peer.node) === p) this.muxes.delete(peer.node);
        throw err;
      },
    );
    this.muxes.set(peer.node, p);
    return p;
  }

  /** A stream to `task:port` on the peer, through its tunnel. */
  open(peer: Peer, task: string, port: number, proto: 'tcp' | 'udp' = 'tcp'): Promise<Duplex> {
    const header = dataPlaneHeader(task, port).toString('latin1').trimEnd();
    return this.openStream(peer, proto === 'udp' ? `${header} udp` : header);
  }

  /** A stream named by `header` to the peer, through its tunnel. */
  async openStream(peer: Peer, header: string): Promise<Duplex> {
    const mux = await this.tunnel(peer);
    if (mux.closedFlag) {
      this.muxes.delete(peer.node);
      return this.openStream(peer, header);
    }
    return mux.open(header);
  }

  /** Closes every tunnel (shutdown, or a new certificate to present). */
  closeAll(): void {
    for (const p of this.muxes.values())
      void p.then(
        (m) => m.socket.end(),
        () => undefined,
      );
    this.muxes.clear();
  }
}
