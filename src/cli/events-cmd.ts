import { parseDuration } from '../model/duration.js';
import type { ClusterEvent } from '../state/events.js';
import { parseFilters } from '../state/events.js';
import { type FlagKind, flag, flagList, formatFlag, parseArgs, UsageError } from './args.js';
import type { CommandContext } from './context.js';

const spec: Record<string, FlagKind> = {
  '--filter': 'list',
  '--since': 'string',
  '--until': 'string',
  '--format': 'string',
};

/**
 * `--since` and `--until` as the docker CLI takes them: a duration back from now (`10m`), unix
 * seconds, or an RFC 3339 time. Sent as unix seconds.
 */
export function eventTime(name: string, text: string, nowMs: number): string {
  if (/^\d+(\.\d+)?$/.test(text)) return text;
  const abs = Date.parse(text);
  if (!Number.isNaN(abs) && /^\d{4}-/.test(text)) return (abs / 1000).toFixed(3);
  try {
    return ((nowMs - parseDuration(text, name)) / 1000).toFixed(3);
  } catch {
    throw new UsageError(`${name} ${text}: give a duration (10m), unix seconds or an RFC 3339 time`);
  }
}

/** One event as `docker events` prints it: time, type, action, actor and its attributes. */
export function eventLine(e: ClusterEvent): string {
  const ms = Math.floor(e.timeNano / 1e6);
  const time = new Date(ms).toISOString().replace(/\.(\d{3})Z$/, (_, f: string) => `.${f}000000Z`);
  const attrs = Object.entries(e.Actor.Attributes)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  return `${time} ${e.Type} ${e.Action} ${e.Actor.ID}${attrs ? ` (${attrs})` : ''}\n`;
}

/** `meshctl events`: what changes in the cluster, live, as `docker events`. */
export async function events(ctx: CommandContext, argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, spec, { '-f': '--filter' });
  if (args.positional.length > 0)
    throw new UsageError(`events takes no arguments: ${args.positional.join(' ')}`);
  const format = formatFlag(args);
  let filters: Record<string, string[]>;
  try {
    filters = parseFilters(flagList(args, '--filter'));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const q = new URLSearchParams();
  const now = Date.now();
  const since = flag(args, '--since');
  const until = flag(args, '--until');
  if (since !== undefined) q.set('since', eventTime('--since', since, now));
  if (until !== undefined) q.set('until', eventTime('--until', until, now));
  if (Object.keys(filters).length > 0) q.set('filters', JSON.stringify(filters));
  const query = q.toString();
  await ctx.api.follow(`/events${query ? `?${query}` : ''}`, (value) => {
    const e = value as ClusterEvent;
    ctx.out(format === 'json' ? `${JSON.stringify(e)}\n` : eventLine(e));
  });
}
