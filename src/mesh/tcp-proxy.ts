import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { FastHistogram } from '../metrics/fast.js';
import type { Conn } from './connections.js';
import { chooseEndpoint, type MeshContext } from './context.js';
import type { Endpoint } from './endpoint.js';
import { proxyV1, proxyV2 } from './proxy-protocol.js';
import type { ServiceRoute } from './routes.js';

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
    if (e.via) {
      // A task reached through its node's data plane: a stream through the shared tunnel.
      const via = e.via;
      const timer = setTimeout(
        () => failed(Object.assign(new Error('connect timeout'), { code: undefined })),
        ctx.settings.connectTimeoutMs,
      );
      let done = false;
      const failed = (err: NodeJS.ErrnoException) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        ejectFailed(ctx, e.task, svc.name, err);
        if (tried.size <= ctx.settings.connectRetries) attempt();
        else client.resetAndDestroy();
      };
      ctx.dataPlane.tunnels
        .open({ node: e.node, nodeName: via.nodeName, host: via.host, port: via.port }, e.task, e.port)
        .then(
          (stream) => {
            if (done) {
              stream.destroy();
              return;
            }
            done = true;
            clearTimeout(timer);
            FastHistogram.observe(
              ctx.metrics.connectDuration,
              ctx.metrics.connectDuration.child(),
              (performance.now() - started) / 1000,
            );
            if (client.destroyed) stream.destroy();
            else splice(ctx, client, stream, e, route, listener);
          },
          (err: NodeJS.ErrnoException) => failed(err),
        );
      return;
    }
    const upstream: Socket = connect({
      host: e.host,
      port: e.port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: ctx.settings.keepAliveMs,
      allowHalfOpen: true,
    });
    const timer = setTimeout(
      () => upstream.destroy(new Error('connect timeout')),
      ctx.settings.connectTimeoutMs,
    );
    const failed = (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      upstream.destroy();
      ejectFailed(ctx, e.task, svc.name, err);
      if (tried.size <= ctx.settings.connectRetries) attempt();
      else client.resetAndDestroy();
    };
    upstream.once('error', failed);
    upstream.once('connect', () => {
      clearTimeout(timer);
      upstream.off('error', failed);
      FastHistogram.observe(
        ctx.metrics.connectDuration,
        ctx.metrics.connectDuration.child(),
        (performance.now() - started) / 1000,
      );
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      splice(ctx, client, upstream, e, route, listener);
    });
  };
  attempt();
}

/** A failed connect: the task is ejected (with the reason `service ps` shows) and counted. */
function ejectFailed(ctx: MeshContext, task: string, service: string, err: NodeJS.ErrnoException): void {
  const reason = err.code === undefined ? 'timeout' : err.code.toLowerCase();
  ctx.load.eject(task, Date.now(), reason);
  ctx.metrics.ejections.child(service).value++;
  ctx.metrics.connectErrors.child(service, reason).value++;
}

function splice(
  ctx: MeshContext,
  client: Socket,
  upstream: Duplex,
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
  // pipe() carries backpressure and, with allowHalfOpen, forwards each side's FIN separately.
  client.pipe(upstream);
  upstream.pipe(client);
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
