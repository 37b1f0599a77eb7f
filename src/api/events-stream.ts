import type { IncomingMessage, ServerResponse } from 'node:http';
import { invalid, MeshError } from '../model/errors.js';
import {
  type ClusterEvent,
  type EventFilters,
  type EventLog,
  eventMatches,
  parseFilters,
} from '../state/events.js';
import { dockerFilters } from './http-util.js';

/** A follower this far behind (bytes not yet taken by its socket) is cut off, not buffered for. */
const maxBacklogBytes = 1 << 20;
/** SSE comments keep proxies and browsers from timing an idle stream out. */
const keepAliveMs = 15_000;

/**
 * A point in time as Docker's API takes it: unix seconds (with a fraction) or RFC 3339. Relative
 * durations (`10m`) are the CLI's to turn into one.
 */
export function readTime(name: string, text: string | null): number | undefined {
  if (text === null || text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw invalid(`${name}: "${text}" is neither unix seconds nor an RFC 3339 time`);
  return ms;
}

/** Docker's `filters` query, checked against the keys events can be filtered by. */
export function readFilters(text: string | null): EventFilters {
  const items = [...dockerFilters(text)].flatMap(([key, values]) => values.map((v) => `${key}=${v}`));
  try {
    return parseFilters(items);
  } catch (err) {
    throw invalid((err as Error).message);
  }
}

/**
 * `GET /events`: the history since `since`, then every new event until `until` or the client
 * goes. JSON lines by default (as Docker's API); Server-Sent Events when the client asks for
 * `text/event-stream` (the page's EventSource).
 */
export function streamEvents(
  log: EventLog,
  req: IncomingMessage,
  res: ServerResponse,
  query: URLSearchParams,
  closing: AbortSignal,
  /** SSE only: an `event: tick` this often, for a page that redraws its charts. */
  tickMs?: number,
): void {
  const filters = readFilters(query.get('filters'));
  const since = readTime('since', query.get('since'));
  const until = readTime('until', query.get('until'));
  const sse = (req.headers.accept ?? '').includes('text/event-stream');
  const now = Date.now();
  const backlog =
    since !== undefined ? log.history(since, until).filter((e) => eventMatches(e, filters)) : [];
  const write = (e: ClusterEvent) =>
    res.write(sse ? `event: ${e.Type}\ndata: ${JSON.stringify(e)}\n\n` : `${JSON.stringify(e)}\n`);
  const head = () =>
    res.writeHead(200, {
      'content-type': sse ? 'text/event-stream' : 'application/json',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
  if (until !== undefined && until <= now) {
    head();
    for (const e of backlog) write(e);
    res.end();
    return;
  }
  let stop = () => undefined as unknown;
  const unfollow = log.follow((e) => {
    if (!eventMatches(e, filters)) return;
    write(e);
    if (res.writableLength > maxBacklogBytes) {
      stop();
      res.destroy();
    }
  });
  if (!unfollow)
    throw new MeshError('unavailable', `too many event streams (${log.maxStreams}) are open on this node`);
  head();
  // Headers now, so a follower knows it is connected before the first event.
  if (sse) res.write(': connected\n\n');
  else res.flushHeaders();
  for (const e of backlog) write(e);
  const ping = sse
    ? setInterval(() => res.write(tickMs ? 'event: tick\ndata: {}\n\n' : ': ping\n\n'), tickMs ?? keepAliveMs)
    : undefined;
  const end = until !== undefined ? setTimeout(() => stop(), Math.min(until - now, 2 ** 31 - 1)) : undefined;
  stop = () => {
    unfollow();
    clearInterval(ping);
    clearTimeout(end);
    closing.removeEventListener('abort', stop);
    if (!res.writableEnded) res.end();
    return undefined;
  };
  closing.addEventListener('abort', stop);
  res.on('close', stop);
}
