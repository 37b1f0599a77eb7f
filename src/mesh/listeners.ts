import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { listenOn } from '../config/listen.js';
import { messageOf } from '../model/errors.js';
import type { MeshContext } from './context.js';
import type { ListenerSpec, ServiceRoute } from './routes.js';
import { proxyTcp } from './tcp-proxy.js';
import { UdpListener } from './udp-proxy.js';
import type { VipAddresses } from './vip-addresses.js';

interface TcpListener {
  readonly kind: 'tcp';
  readonly spec: ListenerSpec;
  route: ServiceRoute;
  readonly server: Server;
}

interface UdpOpen {
  readonly kind: 'udp';
  readonly spec: ListenerSpec;
  readonly udp: UdpListener;
}

type Open = TcpListener | UdpOpen;

/** How soon a listener that could not be opened is tried again. */
const retryMs = 2000;

/**
 * The sockets behind published ports and VIPs. Listeners stay open across changes; only the route
 * behind them is swapped (Traefik's way). A port that cannot be bound disables itself, keeps its
 * error for `service inspect`, and is tried again on the next change; the rest keeps serving.
 */
export class Listeners {
  private readonly open = new Map<string, Open>();
  /** Errors per service id, shown by `service inspect`. */
  readonly errors = new Map<string, string[]>();
  /** What should be open, by key, and the keys each service asked for. */
  private readonly wanted = new Map<string, ListenerSpec>();
  private readonly keysOf = new Map<string, readonly string[]>();
  /**
   * Keys that could not be opened: tried again with the next update after `retryAt`, and by a
   * timer then (a port another process let go opens with no change to the service), not on
   * every update: thousands of failing listeners retried at each change would hold the loop.
   */
  private readonly failed = new Set<string>();
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Open listeners per VIP: the address leaves `lo` with the last one. */
  private readonly vipUsers = new Map<string, number>();
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: MeshContext,
    private readonly vips: VipAddresses,
  ) {}

  /**
   * Brings the sockets of the services in `changed` in line with their specs (an empty list
   * closes them); with `full`, every service not in `changed` is closed. Calls are serialised.
   */
  update(changed: ReadonlyMap<string, readonly ListenerSpec[]>, full: boolean): Promise<void> {
    this.chain = this.chain.then(() => this.apply(changed, full));
    return this.chain;
  }

  private async apply(changed: ReadonlyMap<string, readonly ListenerSpec[]>, full: boolean): Promise<void> {
    const retry = full || Date.now() >= this.retryAt;
    const touched = new Set(retry ? this.failed : []);
    const services = new Set(changed.keys());
    if (full) for (const svc of this.keysOf.keys()) services.add(svc);
    if (retry) {
      for (const key of this.failed) {
        const svc = this.wanted.get(key)?.route.service.id;
        if (svc) services.add(svc);
      }
      this.failed.clear();
    }
    const previous = new Map<string, string[]>();
    for (const svc of services) {
      previous.set(svc, this.errors.get(svc) ?? []);
      this.errors.delete(svc);
      if (!changed.has(svc) && !full) continue;
      for (const key of this.keysOf.get(svc) ?? []) {
        if (this.wanted.get(key)?.route.service.id === svc) this.wanted.delete(key);
        touched.add(key);
      }
      const specs = changed.get(svc) ?? [];
      for (const spec of specs) {
        this.wanted.set(spec.key, spec);
        touched.add(spec.key);
      }
      if (specs.length > 0)
        this.keysOf.set(
          svc,
          specs.map((x) => x.key),
        );
      else this.keysOf.delete(svc);
    }
    for (const key of touched) {
      const spec = this.wanted.get(key);
      const existing = this.open.get(key);
      if (!spec) {
        if (existing) {
          this.open.delete(key);
          this.closeOne(existing);
        }
        continue;
      }
      if (existing) {
        if (existing.kind === 'tcp') existing.route = spec.route;
        else existing.udp.route = spec.route;
        continue;
      }
      try {
        if (spec.kind === 'vip') await this.vips.ensure(spec.host);
        this.open.set(spec.key, spec.proto === 'tcp' ? await this.openTcp(spec) : await this.openUdp(spec));
        if (spec.kind === 'vip') this.vipUsers.set(spec.host, (this.vipUsers.get(spec.host) ?? 0) + 1);
      } catch (err) {
        this.failed.add(key);
        const svc = spec.route.service;
        const list = this.errors.get(svc.id) ?? [];
        list.push(`${spec.proto} ${spec.host}:${spec.port}: ${describe(err)}`);
        this.errors.set(svc.id, list);
        // Log a failing port once, not on every change while it keeps failing.
        if (!(previous.get(svc.id) ?? []).includes(list.at(-1) as string))
          this.ctx.log.warn('cannot listen for a service', {
            service: svc.name,
            address: `${spec.host}:${spec.port}`,
            proto: spec.proto,
            error: describe(err),
          });
      }
    }
    if (this.failed.size > 0 && (retry || !this.retryTimer)) {
      this.retryAt = Date.now() + retryMs;
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        void this.update(new Map(), false);
      }, retryMs);
      this.retryTimer.unref();
    }
  }

  private async openTcp(spec: ListenerSpec): Promise<TcpListener> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
    const l: TcpListener = { kind: 'tcp', spec, route: spec.route, server };
    server.on('connection', (sock) => proxyTcp(this.ctx, sock, l.route, spec.key));
    await listenOn(server, { host: spec.host, port: spec.port, backlog: 4096 });
    server.on('error', (err) => this.ctx.log.warn('listener error', { key: spec.key, error: err.message }));
    return l;
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
    if (l.spec.kind !== 'vip') return;
    const users = (this.vipUsers.get(l.spec.host) ?? 1) - 1;
    if (users > 0) this.vipUsers.set(l.spec.host, users);
    else {
      this.vipUsers.delete(l.spec.host);
      void this.vips.release(l.spec.host);
    }
  }

  /** Every UDP listener, for the flow gauges. */
  udpListeners(): UdpListener[] {
    return [...this.open.values()].flatMap((l) => (l.kind === 'udp' ? [l.udp] : []));
  }

  /** The route behind every open listener. */
  routes(): ServiceRoute[] {
    return [...this.open.values()].map((l) => (l.kind === 'tcp' ? l.route : l.udp.route));
  }

  async close(): Promise<void> {
    await this.chain;
    clearTimeout(this.retryTimer);
    this.failed.clear();
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
