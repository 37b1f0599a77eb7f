import type { IncomingMessage, ServerResponse } from 'node:http';
import { invalid, MeshError } from '../model/errors.js';
import { contentSecurityPolicy } from './ui/page.js';

/** Request bodies are small JSON specs; anything bigger is refused before it is buffered. */
const maxBodyBytes = 1 << 20;

/**
 * The request body as text, refused past `limit` bytes before it is buffered. (Events, not an
 * async iterator: the iterator's promise per chunk was a tenth of a registration's CPU.)
 */
export function readText(req: IncomingMessage, limit = maxBodyBytes): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.resume();
        reject(new MeshError('invalid_argument', `request body exceeds ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () =>
      resolve(
        chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8'),
      ),
    );
    req.once('error', reject);
  });
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readText(req);
  if (text.length === 0) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw invalid('request body is not valid JSON');
  }
}

/** What the page loads (HTML, its script, its styles): nothing from elsewhere, nothing frames it. */
export function sendPage(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'content-type': `${type}; charset=utf-8`,
    'content-length': Buffer.byteLength(body),
    'content-security-policy': contentSecurityPolicy,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  });
  res.end(body);
}

export function sendHtml(res: ServerResponse, status: number, html: string): void {
  sendPage(res, status, 'text/html', html);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (status === 204) {
    res.writeHead(204).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Errors leave the API as Docker shapes them (`{"message"}`) plus a stable code. */
export function sendError(res: ServerResponse, err: unknown): void {
  if (err instanceof MeshError) {
    sendJson(res, err.status, { message: err.message, code: err.code });
  } else {
    sendJson(res, 500, { message: err instanceof Error ? err.message : String(err), code: 'internal' });
  }
}

/** Docker's `filters` query: `{"name":["web"]}`, or its older `{"name":{"web":true}}`. */
export function dockerFilters(text: string | null): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (text === null || text === '') return out;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw invalid('filters: not valid JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw invalid('filters: must be an object of lists');
  for (const [key, v] of Object.entries(raw)) {
    const values = Array.isArray(v) ? v : typeof v === 'object' && v !== null ? Object.keys(v) : [v];
    out.set(key, values.map(String));
  }
  return out;
}
