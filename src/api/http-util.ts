import type { IncomingMessage, ServerResponse } from 'node:http';
import { invalid, MeshError } from '../model/errors.js';

/** Request bodies are small JSON specs; anything bigger is refused before it is buffered. */
const maxBodyBytes = 1 << 20;

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBodyBytes)
      throw new MeshError('invalid_argument', `request body exceeds ${maxBodyBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw invalid('request body is not valid JSON');
  }
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
