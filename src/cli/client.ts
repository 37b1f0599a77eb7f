import { Agent, request } from 'undici';

/** TLS settings for an https:// API: the CA to trust, and an optional client certificate. */
export interface ClientTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** A thin client for the management API; errors come back as the API's one-line message. */
export class ApiClient {
  private readonly dispatcher: Agent | undefined;

  constructor(
    private readonly base: string,
    private readonly token: string | undefined,
    tls?: ClientTls,
  ) {
    // The API's certificate names a node id, not a host name: trust is the cluster CA.
    this.dispatcher = tls?.ca
      ? new Agent({
          connect: { ca: tls.ca, cert: tls.cert, key: tls.key, checkServerIdentity: () => undefined },
        })
      : undefined;
  }

  private async send(method: string, path: string, body: unknown, bodyTimeout: number) {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(new URL(path, this.base), {
        method: method as 'GET',
        headers,
        body: body !== undefined ? JSON.stringify(body) : undefined,
        // One request per run: no idle keep-alive socket holding the process open afterwards.
        reset: true,
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
        headersTimeout: 30_000,
        bodyTimeout,
      });
    } catch (err) {
      const cause = (err as { code?: string }).code ?? (err as Error).message;
      throw new Error(
        `cannot reach meshd at ${this.base} (${cause}); is it running? set --host or MESHD_HOST`,
      );
    }
    if (res.statusCode >= 400) {
      const text = await res.body.text();
      let msg = `HTTP ${res.statusCode}`;
      try {
        msg = (JSON.parse(text) as { message?: string }).message ?? msg;
      } catch {
        // Not the API's JSON: the status says enough.
      }
      throw new Error(msg);
    }
    return res;
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body, 30_000);
    const text = await res.body.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Follows a stream of JSON lines (`GET /events`), one call per line, until the server ends it. */
  async follow(path: string, each: (value: unknown) => void): Promise<void> {
    // No body timeout: a quiet stream is not a dead one.
    const res = await this.send('GET', path, undefined, 0);
    let rest = '';
    for await (const chunk of res.body) {
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
