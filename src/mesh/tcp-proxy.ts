import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { FastHistogram } from '../metrics/fast.js';
import { ConnectError, type ConnectFailure, connectFailure } from './connect-failure.js';
import type { Conn } from './connections.js';
import { chooseEndpoint, type MeshContext } from './context.js';
import type { Endpoint } from './endpoint.js';
import { proxyV1, proxyV2 } from './proxy-protocol.js';
import type { ServiceRoute } from './routes.js';
import { TaskReads } from './task-reads.js';

const noop = () => {};

/**
 * Proxies one accepted TCP connection to a task: connect (retrying other tasks and ejecting the
 * ones that fail, so a client never sees a refusal while a healthy task is left), optional PROXY
 * header, then both directions piped with backpressure and half-close, an idle timeout, keepalive.
 */
export function proxyTcp(ctx: MeshContext, client: Socket, route: ServiceRoute, listener: string): void {
  const svc = route.service;
  client.on('error', noop);
  const release = ctx.tracker.admit(listener, ctx.settings.maxConnsPerListener);
  if (!release) {
    ctx.metrics.connectErrors.child(svc.name, 'listener_limit').value++;
    client.resetAndDestroy();
    return;
  }
  client.once('close', release);
  ctx.metrics.connections.child(svc.name, route.port, 'tcp').value++;
  client.setNoDelay(true);
  client.setKeepAlive(true, ctx.settings.keepAliveMs);
  const started = performance.now();
  const tried = new Set<string>();
  const remote = client.remoteAddress ?? '';

  const attempt = (): void => {
    if (client.destroyed) return;
    const e = chooseEndpoint(ctx, route, remote, tried);
    if (!e) {
      ctx.metrics.connectErrors.child(svc.name, tried.size > 0 ? 'all_failed' : 'no_healthy_task').value++;
      client.resetAndDestroy();
      return;
    }
    tried.add(e.task);
    dial(ctx, e).then(
      (upstream) => {
        FastHistogram.observe(
          ctx.metrics.connectDuration,
          ctx.metrics.connectDuration.child(),
          (performance.now() - started) / 1000,
        );
        if (client.destroyed) upstream.stream.destroy();
        else splice(ctx, client, upstream, e, route, listener);
      },
      (err: unknown) => {
        ejectFailed(ctx, e.task, svc.name, connectFailure(err, e.via !== undefined));
        if (tried.size <= ctx.settings.connectRetries) attempt();
        else client.resetAndDestroy();
      },
    );
  };
  attempt();
}

/** A connection to a task; a direct one is read into pooled buffers (`TaskReads`). */
interface Upstream {
  readonly stream: Duplex;
  readonly reads?: TaskReads;
}

/**
 * Connects to a task, the one way for every path: straight to its address, or a stream through
 * the shared tunnel to its node's data plane. Settles once, within the connect timeout.
 */
function dial(ctx: MeshContext, e: Endpoint): Promise<Upstream> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let socket: Socket | undefined;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      reject(err);
    };
    const ok = (s: Duplex, reads?: TaskReads) => {
      if (settled) {
        s.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve(reads ? { stream: s, reads } : { stream: s });
    };
    const timer = setTimeout(
      () => fail(new ConnectError('timeout', 'connect timeout')),
      ctx.settings.connectTimeoutMs,
    );
    const via = e.via;
    if (via) {
      ctx.dataPlane.tunnels
        .open({ node: e.node, nodeName: via.nodeName, host: via.host, port: via.port }, e.task, e.port)
        .then((s) => ok(s), fail);
      return;
    }
    const reads = new TaskReads();
    const s = connect({
      host: e.host,
      port: e.port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: ctx.settings.keepAliveMs,
      allowHalfOpen: true,
      onread: reads.onread,
    });
    socket = s;
    reads.watch(s);
    s.once('error', fail);
    s.once('connect', () => {
      s.off('error', fail);
      ok(s, reads);
    });
  });
}

/** A failed connect: the task is ejected (with the reason `service ps` shows) and counted. */
function ejectFailed(ctx: MeshContext, task: string, service: string, reason: ConnectFailure): void {
  ctx.load.eject(task, Date.now(), reason);
  ctx.metrics.ejections.child(service).value++;
  ctx.metrics.connectErrors.child(service, reason).value++;
}

function splice(
  ctx: MeshContext,
  client: Socket,
  { stream: upstream, reads }: Upstream,
  e: Endpoint,
  route: ServiceRoute,
  listener: string,
): void {
  const svc = route.service;
  ctx.load.succeeded(e.task);
  ctx.load.opened(e.task);
  let closed = false;
  const conn: Conn = {
    client,
    upstream,
    task: e.task,
    service: svc.id,
    serviceName: svc.name,
    taskName: e.name,
    listener,
    port: route.port,
    proto: 'tcp',
    destroy: () => {
      client.destroy();
      upstream.destroy();
    },
  };
  ctx.tracker.add(conn);
  const finish = () => {
    if (closed) return;
    closed = true;
    ctx.tracker.remove(conn);
    ctx.load.closed(e.task);
    ctx.metrics.bytes.child(svc.name, 'in').value += client.bytesRead;
    ctx.metrics.bytes.child(svc.name, 'out').value += client.bytesWritten;
  };
  if (svc.proxyProtocol !== 'none') {
    const src = client.remoteAddress ?? '0.0.0.0';
    const dst = client.localAddress ?? '0.0.0.0';
    upstream.write(
      svc.proxyProtocol === 'v1'
        ? proxyV1(src, client.remotePort ?? 0, dst, client.localPort ?? 0)
        : proxyV2(src, client.remotePort ?? 0, dst, client.localPort ?? 0, 'tcp'),
    );
  }
  upstream.on('error', () => conn.destroy());
  client.on('error', () => conn.destroy());
  // Idle means no bytes either way: the client socket sees writes of the task's data too.
  client.setTimeout(svc.idleTimeoutMs, () => conn.destroy());
  // pipe() carries backpressure and, with allowHalfOpen, forwards each side's FIN separately;
  // a direct task's side does the same through TaskReads, without a fresh buffer per read.
  client.pipe(upstream);
  if (reads) reads.attach(client, upstream as Socket);
  else upstream.pipe(client);
  client.on('close', () => {
    upstream.destroy();
    finish();
  });
  upstream.on('close', () => {
    // A task that closed without a FIN (reset) takes the client with it; after a FIN, the
    // client's side ends once pipe() has flushed what the task sent.
    if (!client.writableEnded) client.destroy();
    finish();
  });
}
