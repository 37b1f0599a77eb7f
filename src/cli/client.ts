import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** TLS settings for an https:// API: the CA to trust, and an optional client certificate. */
export interface ClientTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** No answer (headers) within this long is an error, not a wait without end. */
const headersTimeoutMs = 30_000;

/**
 * A thin client for the management API; errors come back as the API's one-line message. Node's
 * own http module, not undici: meshctl is a short-lived process, and loading undici took about
 * half of its start-up (160 ms of 350).
 */
export class ApiClient {
  constructor(
    private readonly base: string,
    private readonly token: string | undefined,
    private readonly tls?: ClientTls,
  ) {}

  private send(method: string, path: string, body: unknown, bodyTimeoutMs: number): Promise<IncomingMessage> {
    const url = new URL(path, this.base);
    const text = body !== undefined ? JSON.stringify(body) : undefined;
    const headers: Record<string, string> = {};
    if (text !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(text));
    }
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const unreachable = (cause: string) =>
      new Error(`cannot reach meshd at ${this.base} (${cause}); is it running? set --host or MESHD_HOST`);
    return new Promise((resolve, reject) => {
      const options = {
        method,
        headers,
        // One request per run: no idle keep-alive socket holding the process open afterwards.
        agent: false as const,
      };
      const req =
        url.protocol === 'https:'
          ? httpsRequest(url, {
              ...options,
              // The API's certificate names a node id, not a host name: trust is the cluster CA.
              ...(this.tls?.ca
                ? {
                    ca: this.tls.ca,
                    cert: this.tls.cert,
                    key: this.tls.key,
                    checkServerIdentity: () => undefined,
                  }
                : {}),
            })
          : httpRequest(url, options);
      const timer = setTimeout(
        () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })),
        headersTimeoutMs,
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(unreachable(err.code ?? err.message));
      });
      req.on('response', (res) => {
        clearTimeout(timer);
        if (bodyTimeoutMs > 0)
          res.setTimeout(bodyTimeoutMs, () => res.destroy(new Error('the answer stopped')));
        if ((res.statusCode ?? 0) < 400) {
          resolve(res);
          return;
        }
        readAll(res).then((raw) => {
          let msg = `HTTP ${res.statusCode}`;
          try {
            msg = (JSON.parse(raw) as { message?: string }).message ?? msg;
          } catch {
            // Not the API's JSON: the status says enough.
          }
          reject(new Error(msg));
        }, reject);
      });
      req.end(text);
    });
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body, 30_000);
    const text = await readAll(res);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Follows a stream of JSON lines (`GET /events`), one call per line, until the server ends it. */
  async follow(path: string, each: (value: unknown) => void): Promise<void> {
    // No body timeout: a quiet stream is not a dead one.
    const res = await this.send('GET', path, undefined, 0);
    let rest = '';
    for await (const chunk of res) {
      rest += (chunk as Buffer).toString('utf8');
      let nl = rest.indexOf('\n');
      while (nl >= 0) {
        const line = rest.slice(0, nl).trim();
        rest = rest.slice(nl + 1);
        if (line) each(JSON.parse(line));
        nl = rest.indexOf('\n');
      }
    }
  }
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
