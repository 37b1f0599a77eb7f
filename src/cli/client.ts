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

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
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
        bodyTimeout: 30_000,
      });
    } catch (err) {
      const cause = (err as { code?: string }).code ?? (err as Error).message;
      throw new Error(
        `cannot reach meshd at ${this.base} (${cause}); is it running? set --host or MESHD_HOST`,
      );
    }
    const text = await res.body.text();
    const data = text ? (JSON.parse(text) as unknown) : undefined;
    if (res.statusCode >= 400) {
      const msg = (data as { message?: string } | undefined)?.message ?? `HTTP ${res.statusCode}`;
      throw new Error(msg);
    }
    return data as T;
  }
}
