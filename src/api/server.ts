import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { type HostPort, listenOn } from '../config/listen.js';
import { invalid, MeshError } from '../model/errors.js';
import { tlsOptions } from '../security/tls.js';
import { readText, sendError, sendHtml, sendJson } from './http-util.js';
import type { Route } from './routes.js';
import { loginPage } from './ui/page.js';

/**
 * Paths without the API token: health probes, and joining and renewal, which carry their own
 * proof (an HMAC keyed by the join token, or a signature by the current certificate's key).
 */
export const openPaths: ReadonlySet<string> = new Set(['/health', '/ready', '/swarm/join', '/swarm/renew']);
const open = openPaths;

/** The cookie the page's sign-in form sets: the API token, for reads. */
const uiCookie = 'meshd_token';

function cookieOf(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Loopback addresses: only local users (and processes) have them. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1' || host.startsWith('::ffff:127.');
}

/** Decodes one path segment; malformed percent-encoding is the client's error, not ours. */
function decodeSegment(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw invalid(`path segment "${text}" is not valid percent-encoding`);
  }
}

/**
 * The management HTTP API. Without a token configured, only loopback peers are served (judged by
 * the address each request comes from, not the address the API listens on); with one, every
 * request must carry `Authorization: Bearer <token>`. With `api.tls`, a current member's client
 * certificate authenticates too.
 */
export class ApiServer {
  private server: Server | undefined;
  /** Aborted on close: open event streams end, so closing does not wait for them. */
  private readonly closing = new AbortController();

  constructor(
    private readonly listen: HostPort,
    private readonly token: string,
    private readonly routes: readonly Route[],
    /** HTTPS with the cluster certificate; a current node's client certificate authenticates too. */
    private readonly tls?: {
      identity: () => { cert: string; key: string; ca: string } | undefined;
      isMember: (nodeId: string) => boolean;
    },
    /** Serves only the open paths (a join listener beside a loopback-only API): no token needed. */
    private readonly joinOnly = false,
  ) {
    if (!joinOnly && !isLoopback(listen.host) && token === '' && !tls) {
      throw new MeshError(
        'invalid_argument',
        `api.listen: ${listen.host} is not loopback, so api.token (or api.tls) must be set`,
      );
    }
  }

  /** Presents a renewed certificate to new connections. */
  renew(id: { cert: string; key: string; ca: string }): void {
    const server = this.server as unknown as { setSecureContext?: (o: object) => void } | undefined;
    if (this.tls) server?.setSecureContext?.({ cert: id.cert, key: id.key, ca: id.ca, ...tlsOptions });
  }

  async start(): Promise<AddressInfo> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    const id = this.tls?.identity();
    if (this.tls && !id)
      throw new MeshError('failed_precondition', "api.tls needs this node's cluster certificate first");
    const server: Server = this.tls
      ? createHttpsServer(
          {
            cert: id?.cert,
            key: id?.key,
            ca: id?.ca,
            requestCert: true,
            rejectUnauthorized: false,
            ...tlsOptions,
          },
          handler,
        )
      : createServer(handler);
    server.keepAliveTimeout = 5000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    this.server = server;
    await listenOn(server, this.listen);
    return server.address() as AddressInfo;
  }

  private authorized(req: IncomingMessage): boolean {
    // A client certificate of a current member (verified against the cluster CA) is enough.
    const sock = req.socket as TLSSocket;
    if (this.tls && sock.authorized) {
      const cn = sock.getPeerCertificate()?.subject?.CN;
      if (typeof cn === 'string' && this.tls.isMember(cn)) return true;
    }
    if (this.token === '') return isLoopback(req.socket.remoteAddress ?? '');
    const header = req.headers.authorization ?? '';
    if (this.isToken(header.startsWith('Bearer ') ? header.slice(7) : '')) return true;
    // The page's cookie reads, never writes: a cookie rides along on requests the user did not
    // mean to make, so it must not be able to change anything.
    return (req.method === 'GET' || req.method === 'HEAD') && this.isToken(cookieOf(req, uiCookie) ?? '');
  }

  private isToken(text: string): boolean {
    const given = Buffer.from(text);
    const want = Buffer.from(this.token);
    return this.token !== '' && given.length === want.length && timingSafeEqual(given, want);
  }

  /**
   * `POST /ui/login` (the sign-in form): a right token becomes an `HttpOnly`, `SameSite=Strict`
   * cookie (`Secure` over TLS) and a redirect to the page; a wrong one, the form again.
   */
  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = new URLSearchParams(await readText(req, 4096));
    if (this.token !== '' && !this.isToken(form.get('token') ?? '')) {
      // A wrong guess costs the guesser a moment: the form is no faster than a person.
      await new Promise((r) => setTimeout(r, 250));
      sendHtml(res, 401, loginPage('That is not the API token.'));
      return;
    }
    const secure = (req.socket as TLSSocket).encrypted ? '; Secure' : '';
    res.writeHead(303, {
      location: '/ui/',
      'set-cookie': `${uiCookie}=${encodeURIComponent(this.token)}; Path=/; HttpOnly; SameSite=Strict${secure}`,
    });
    res.end();
  }

  private logout(res: ServerResponse): void {
    res.writeHead(303, {
      location: '/ui/',
      'set-cookie': `${uiCookie}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`,
    });
    res.end();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://meshd');
      } catch {
        throw invalid('request target is not a valid URL');
      }
      if (req.method === 'POST' && url.pathname === '/ui/login' && !this.joinOnly)
        return await this.login(req, res);
      if (req.method === 'POST' && url.pathname === '/ui/logout' && !this.joinOnly) return this.logout(res);
      for (const route of this.routes) {
        if (route.method !== req.method) continue;
        const m = route.path.exec(url.pathname);
        if (!m) continue;
        if (!open.has(url.pathname) && !route.open && !this.authorized(req)) {
          if (route.page) return sendHtml(res, 401, loginPage(''));
          throw new MeshError('unauthorized', 'missing or wrong bearer token');
        }
        const result = await route.handle({
          req,
          params: m.slice(1).map(decodeSegment),
          query: url.searchParams,
          closing: this.closing.signal,
        });
        if (result.stream) result.stream(res);
        else sendJson(res, result.status ?? 200, result.body);
        return;
      }
      // Unknown paths say no more to a stranger than known ones do.
      if (!open.has(url.pathname) && !this.authorized(req))
        throw new MeshError('unauthorized', 'missing or wrong bearer token');
      throw new MeshError('not_found', `no route for ${req.method} ${url.pathname}`);
    } catch (err) {
      sendError(res, err);
    }
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.closing.abort();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }
}
