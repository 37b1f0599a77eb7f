import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HostPort } from '../config/listen.js';
import { MeshError } from '../model/errors.js';
import { sendError, sendJson } from './http-util.js';
import type { Route } from './routes.js';

/** Loopback listeners may skip the token: only local users reach them. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1';
}

/**
 * The management HTTP API. Off loopback it requires `Authorization: Bearer <token>`; on loopback
 * the token is still checked when one is configured.
 */
export class ApiServer {
  private server: Server | undefined;

  constructor(
    private readonly listen: HostPort,
    private readonly token: string,
    private readonly routes: readonly Route[],
  ) {
    if (!isLoopback(listen.host) && token === '') {
      throw new MeshError(
        'invalid_argument',
        `api.listen: ${listen.host} is not loopback, so api.token must be set`,
      );
    }
  }

  async start(): Promise<AddressInfo> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listen.port, this.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server.address() as AddressInfo;
  }

  private authorized(req: IncomingMessage): boolean {
    if (this.token === '') return true;
    const header = req.headers.authorization ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    const want = Buffer.from(this.token);
    return given.length === want.length && timingSafeEqual(given, want);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://meshd');
      // Health probes stay open so orchestrators can check a node without its token.
      if (url.pathname !== '/health' && url.pathname !== '/ready' && !this.authorized(req)) {
        throw new MeshError('unauthorized', 'missing or wrong bearer token');
      }
      for (const route of this.routes) {
        if (route.method !== req.method) continue;
        const m = route.path.exec(url.pathname);
        if (!m) continue;
        const result = await route.handle({
          req,
          params: m.slice(1).map(decodeURIComponent),
          query: url.searchParams,
        });
        sendJson(res, result.status ?? 200, result.body);
        return;
      }
      throw new MeshError('not_found', `no route for ${req.method} ${url.pathname}`);
    } catch (err) {
      sendError(res, err);
    }
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }
}
