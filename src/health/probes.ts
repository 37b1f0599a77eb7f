import { connect } from 'node:net';
import { request } from 'undici';

export interface ProbeResult {
  readonly ok: boolean;
  readonly output: string;
}

/** TCP probe: healthy when a connection to the port opens within the timeout. */
export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (r: ProbeResult) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, output: `timeout after ${timeoutMs}ms` }), timeoutMs);
    sock.once('connect', () => done({ ok: true, output: 'connected' }));
    sock.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, output: err.code ?? err.message }));
  });
}

/** HTTP probe: GET the path; 2xx and 3xx are healthy, as Docker's `curl -f`-style checks and Consul treat them. */
export async function httpProbe(
  host: string,
  port: number,
  path: string,
  timeoutMs: number,
): Promise<ProbeResult> {
  const h = host.includes(':') ? `[${host}]` : host;
  try {
    const res = await request(`http://${h}:${port}${path}`, {
      method: 'GET',
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
      headers: { 'user-agent': 'meshd-health' },
    });
    await res.body.dump();
    const ok = res.statusCode >= 200 && res.statusCode < 400;
    return { ok, output: `HTTP ${res.statusCode}` };
  } catch (err) {
    const e = err as { code?: string; name?: string; message: string };
    return {
      ok: false,
      output: e.name === 'TimeoutError' ? `timeout after ${timeoutMs}ms` : (e.code ?? e.message),
    };
  }
}
