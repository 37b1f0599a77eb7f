import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { messageOf } from '../model/errors.js';
import type { MeshContext } from './context.js';
import type { ListenerSpec, Route } from './routes.js';
import { proxyTcp } from './tcp-proxy.js';
import { UdpListener } from './udp-proxy.js';
import type { VipAddresses } from './vip-addresses.js';

interface TcpListener {
  readonly kind: 'tcp';
  readonly spec: ListenerSpec;
  route: Route;
  readonly server: Server;
}

interface UdpOpen {
  readonly kind: 'udp';
  readonly spec: ListenerSpec;
  readonly udp: UdpListener;
}

type Open = TcpListener | UdpOpen;

/**
 * The sockets behind published ports and VIPs. Listeners stay open across changes; only the route
 * behind them is swapped (Traefik's way). A port that cannot be bound disables itself, keeps its
 * error for `service inspect`, and is tried again on the next change; the rest keeps serving.
 */
export class Listeners {
  private readonly open = new Map<string, Open>();
  /** Errors per service id, shown by `service inspect`. */
  readonly errors = new Map<string, string[]>();
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: MeshContext,
    private readonly vips: VipAddresses,
  ) {}

  /** Brings the open sockets in line with `specs`; calls are serialised. */
  reconcile(specs: readonly ListenerSpec[]): Promise<void> {
    this.chain = this.chain.then(() => this.apply(specs));
    return this.chain;
  }

  private async apply(specs: readonly ListenerSpec[]): Promise<void> {
    const wanted = new Map(specs.map((s) => [s.key, s]));
    const errors = new Map<string, string[]>();
    for (const [key, l] of this.open) {
      if (wanted.has(key)) continue;
      this.open.delete(key);
      this.closeOne(l);
    }
    for (const spec of wanted.values()) {
      const existing = this.open.get(spec.key);
      if (existing) {
        if (existing.kind === 'tcp') existing.route = spec.route;
        else existing.udp.route = spec.route;
        continue;
      }
      try {
        if (spec.kind === 'vip') await this.vips.ensure(spec.host);
        this.open.set(spec.key, spec.proto === 'tcp' ? await this.openTcp(spec) : await this.openUdp(spec));
      } catch (err) {
        const svc = spec.route.service;
        const list = errors.get(svc.id) ?? [];
        list.push(`${spec.proto} ${spec.host}:${spec.port}: ${describe(err)}`);
        errors.set(svc.id, list);
        // Log a failing port once, not on every change while it keeps failing.
        if (!(this.errors.get(svc.id) ?? []).includes(list.at(-1) as string))
          this.ctx.log.warn('cannot listen for a service', {
            service: svc.name,
            address: `${spec.host}:${spec.port}`,
            proto: spec.proto,
            error: describe(err),
          });
      }
    }
    this.errors.clear();
    for (const [k, v] of errors) this.errors.set(k, v);
  }

  private openTcp(spec: ListenerSpec): Promise<TcpListener> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
    const l: TcpListener = { kind: 'tcp', spec, route: spec.route, server };
    server.on('connection', (sock) => proxyTcp(this.ctx, sock, l.route, spec.key));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: spec.host, port: spec.port, backlog: 4096 }, () => {
        server.off('error', reject);
        server.on('error', (err) =>
          this.ctx.log.warn('listener error', { key: spec.key, error: err.message }),
        );
        resolve(l);
      });
    });
  }

  private openUdp(spec: ListenerSpec): Promise<UdpOpen> {
    const sock = createSocket({ type: spec.host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 4 << 20 });
    return new Promise((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(spec.port, spec.host, () => {
        sock.off('error', reject);
        sock.on('error', (err) => this.ctx.log.warn('listener error', { key: spec.key, error: err.message }));
        resolve({ kind: 'udp', spec, udp: new UdpListener(this.ctx, sock, spec.route) });
      });
    });
  }

  /** Stops accepting at once; connections already open drain for the service's grace period. */
  private closeOne(l: Open): void {
    if (l.kind === 'tcp') {
      l.server.close();
      this.ctx.tracker.drain((c) => c.listener === l.spec.key, l.route.service.drainMs);
    } else {
      l.udp.close();
    }
    if (l.spec.kind === 'vip' && ![...this.open.values()].some((o) => o.spec.host === l.spec.host)) {
      void this.vips.release(l.spec.host);
    }
  }

  /** Every UDP listener, for the flow gauges. */
  udpListeners(): UdpListener[] {
    return [...this.open.values()].flatMap((l) => (l.kind === 'udp' ? [l.udp] : []));
  }

  /** The route behind every open listener. */
  routes(): Route[] {
    return [...this.open.values()].map((l) => (l.kind === 'tcp' ? l.route : l.udp.route));
  }

  async close(): Promise<void> {
    await this.chain;
    for (const l of this.open.values()) {
      if (l.kind === 'tcp') l.server.close();
      else l.udp.close();
    }
    this.open.clear();
    await this.vips.releaseAll();
  }
}

function describe(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return 'address already in use by another process';
  if (code === 'EACCES') return 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)';
  if (code === 'EADDRNOTAVAIL') return 'address not available on this host';
  return messageOf(err);
}
