import { parseDuration } from '../model/duration.js';
import { shortId } from '../model/ids.js';
import { specJsonOf } from '../model/service.js';
import type { Service } from '../model/types.js';
import {
  flag,
  flagBool,
  flagList,
  formatFlag,
  keyValues,
  type ParsedArgs,
  parseArgs,
  UsageError,
} from './args.js';
import { type Command, printJson } from './context.js';
import { type PublishArg, parseNetworkAttachment, parsePublish } from './publish.js';
import { table } from './table.js';

const specFlags = {
  '--name': 'string',
  '--network': 'list',
  '--network-add': 'list',
  '--network-rm': 'list',
  '--endpoint-mode': 'string',
  '--mode': 'string',
  '--publish': 'list',
  '--publish-add': 'list',
  '--publish-rm': 'list',
  '--expose': 'list',
  '--health-type': 'string',
  '--health-path': 'string',
  '--health-interval': 'string',
  '--health-timeout': 'string',
  '--health-retries': 'string',
  '--health-start-period': 'string',
  '--health-unhealthy-interval': 'string',
  '--lb': 'string',
  '--local-first': 'bool',
  '--publish-not-ready': 'bool',
  '--proxy-protocol': 'string',
  '--idle-timeout': 'string',
  '--drain': 'string',
  '--max-conns-per-task': 'string',
  '--label': 'list',
} as const;
const specAliases = { '-p': '--publish' };

type Spec = Record<string, unknown> & {
  networks: { network: string; aliases: string[] }[];
  ports: PublishArg[];
  healthcheck: Record<string, unknown>;
};

function int(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`invalid ${what}: ${text}`);
  return n;
}

/** Applies the flags given on the command line onto a spec (a new one, or the current one for update). */
function applyFlags(spec: Spec, a: ParsedArgs, idOf: (network: string) => string = (n) => n): Spec {
  const str = (f: string, key: string) => {
    const v = flag(a, f);
    if (v !== undefined) spec[key] = v;
  };
  str('--name', 'name');
  str('--endpoint-mode', 'endpointMode');
  str('--mode', 'mode');
  str('--lb', 'lb');
  str('--proxy-protocol', 'proxyProtocol');
  const dur = (f: string, set: (ms: number) => void) => {
    const v = flag(a, f);
    if (v !== undefined) set(parseDuration(v, f));
  };
  dur('--idle-timeout', (ms) => (spec.idleTimeout = ms));
  dur('--drain', (ms) => (spec.drain = ms));
  const lf = flagBool(a, '--local-first');
  if (lf !== undefined) spec.localFirst = lf;
  const nr = flagBool(a, '--publish-not-ready');
  if (nr !== undefined) spec.publishNotReady = nr;
  const mc = flag(a, '--max-conns-per-task');
  if (mc !== undefined) spec.maxConnsPerTask = int(mc, '--max-conns-per-task');
  if (a.flags.has('--network')) spec.networks = flagList(a, '--network').map(parseNetworkAttachment);
  for (const n of flagList(a, '--network-add')) spec.networks.push(parseNetworkAttachment(n));
  for (const n of flagList(a, '--network-rm'))
    spec.networks = spec.networks.filter((x) => x.network !== idOf(n));
  if (a.flags.has('--publish')) spec.ports = flagList(a, '--publish').flatMap(parsePublish);
  for (const p of flagList(a, '--publish-add')) spec.ports.push(...parsePublish(p));
  for (const p of flagList(a, '--publish-rm')) {
    const [num, proto] = p.split('/');
    spec.ports = spec.ports.filter((x) => !(String(x.published) === num && (!proto || x.protocol === proto)));
  }
  if (a.flags.has('--expose')) spec.expose = flagList(a, '--expose').map((p) => int(p, '--expose port'));
  const h = spec.healthcheck;
  const hs = (f: string, key: string) => {
    const v = flag(a, f);
    if (v !== undefined) h[key] = v;
  };
  hs('--health-type', 'type');
  hs('--health-path', 'path');
  dur('--health-interval', (ms) => (h.interval = ms));
  dur('--health-timeout', (ms) => (h.timeout = ms));
  dur('--health-start-period', (ms) => (h.startPeriod = ms));
  dur('--health-unhealthy-interval', (ms) => (h.unhealthyInterval = ms));
  const retries = flag(a, '--health-retries');
  if (retries !== undefined) h.retries = int(retries, '--health-retries');
  if (a.flags.has('--label')) spec.labels = keyValues(flagList(a, '--label'));
  return spec;
}

const create: Command = async (ctx, argv) => {
  const a = parseArgs(argv, specFlags, specAliases);
  if (!flag(a, '--name')) throw new UsageError('usage: meshctl service create --name NAME [OPTIONS]');
  if (a.positional.length > 0) throw new UsageError(`unexpected argument: ${a.positional[0]}`);
  const spec = applyFlags({ networks: [], ports: [], healthcheck: {} }, a);
  const r = await ctx.api.call<{ id: string }>('POST', '/services/create', spec);
  ctx.out(`${r.id}\n`);
};

const update: Command = async (ctx, argv) => {
  const a = parseArgs(argv, specFlags, specAliases);
  const ref = a.positional[0];
  if (!ref || a.positional.length > 1)
    throw new UsageError('usage: meshctl service update [OPTIONS] SERVICE');
  const current = await ctx.api.call<Service>('GET', `/services/${encodeURIComponent(ref)}`);
  // Networks are named by name or id everywhere: --network-add/--network-rm resolve them first.
  const nets = await ctx.api.call<{ id: string; name: string }[]>('GET', '/networks');
  const idOf = (ref: string) =>
    nets.find((n) => n.id === ref || n.name === ref || n.id.startsWith(ref))?.id ?? ref;
  const attached = new Set(current.networks.map((n) => n.network));
  for (const n of flagList(a, '--network-add')) {
    const id = idOf(parseNetworkAttachment(n).network);
    if (attached.has(id)) throw new UsageError(`service ${current.name} is already attached to network ${n}`);
  }
  for (const n of flagList(a, '--network-rm')) {
    if (!attached.has(idOf(n)))
      throw new UsageError(`service ${current.name} is not attached to network ${n}`);
  }
  const before = specJsonOf(current);
  const spec = applyFlags(specJsonOf(current), a, idOf);
  if (JSON.stringify(spec) === JSON.stringify(before)) {
    ctx.out(`${current.name}: nothing to change\n`);
    return;
  }
  await ctx.api.call('POST', `/services/${current.id}/update?version=${current.version}`, spec);
  ctx.out(`${current.name}\n`);
};

/** A service as `GET /services` lists it: with this node's view of its tasks and ports. */
type ListedService = Service & {
  status: { tasks: number; healthy?: number; dataPlane?: { port: string; plane: string }[] };
};

/** Published ports, each with the data plane that serves it on this node (`kernel`, `userspace`). */
function portsText(s: ListedService): string {
  const planes = new Map((s.status.dataPlane ?? []).map((p) => [p.port, p.plane]));
  return s.ports
    .map((p) => {
      const plane = planes.get(`${p.published}/${p.protocol}`);
      const mode = p.mode === 'host' ? ' (host)' : p.traffic === 'local' ? ' (local)' : '';
      return `*:${p.published}->${p.target}/${p.protocol}${mode}${plane ? ` [${plane}]` : ''}`;
    })
    .join(', ');
}

const ls: Command = async (ctx, argv) => {
  const a = parseArgs(argv, { '--format': 'string', '--quiet': 'bool' }, { '-q': '--quiet' });
  const services = await ctx.api.call<ListedService[]>('GET', '/services');
  if (formatFlag(a) === 'json') return printJson(ctx, services);
  if (flagBool(a, '--quiet')) return ctx.out(services.map((s) => `${s.id}\n`).join(''));
  ctx.out(
    table(
      ['ID', 'NAME', 'MODE', 'ENDPOINT', 'TASKS', 'LB', 'PORTS'],
      services.map((s) => [
        shortId(s.id),
        s.name,
        s.mode,
        s.endpointMode,
        `${s.status.healthy ?? s.status.tasks}/${s.status.tasks}`,
        s.lb,
        portsText(s),
      ]),
    ),
  );
};

const inspect: Command = async (ctx, argv) => {
  const a = parseArgs(argv, { '--format': 'string' }, { '-f': '--format' });
  // Inspect prints JSON, as docker's does; a template is refused, not ignored.
  formatFlag(a);
  if (a.positional.length === 0) throw new UsageError('usage: meshctl service inspect SERVICE [SERVICE...]');
  printJson(
    ctx,
    await Promise.all(a.positional.map((s) => ctx.api.call('GET', `/services/${encodeURIComponent(s)}`))),
  );
};

const rm: Command = async (ctx, argv) => {
  const a = parseArgs(argv, {});
  if (a.positional.length === 0) throw new UsageError('usage: meshctl service rm SERVICE [SERVICE...]');
  for (const s of a.positional) {
    await ctx.api.call('DELETE', `/services/${encodeURIComponent(s)}`);
    ctx.out(`${s}\n`);
  }
};

export const serviceCommands: Record<string, Command> = {
  create,
  update,
  ls,
  list: ls,
  inspect,
  rm,
  remove: rm,
};
