import { shortId } from '../model/ids.js';
import type { Network } from '../model/types.js';
import { flag, flagBool, flagList, formatFlag, keyValues, parseArgs, UsageError } from './args.js';
import { type Command, printJson } from './context.js';
import { table } from './table.js';

const create: Command = async (ctx, argv) => {
  const a = parseArgs(
    argv,
    {
      '--driver': 'string',
      '--attachable': 'bool',
      '--ingress': 'bool',
      '--internal': 'bool',
      '--subnet': 'string',
      '--gateway': 'string',
      '--vip-range': 'string',
      '--opt': 'list',
      '--label': 'list',
    },
    { '-d': '--driver', '-o': '--opt' },
  );
  const name = a.positional[0];
  if (!name || a.positional.length > 1)
    throw new UsageError('usage: meshctl network create [OPTIONS] NETWORK');
  // Without --subnet, the cluster's default address pools give one, as in swarm.
  const subnet = flag(a, '--subnet');
  if (!subnet && (flag(a, '--gateway') || flag(a, '--vip-range')))
    throw new UsageError('--gateway and --vip-range need --subnet');
  const r = await ctx.api.call<{ id: string }>('POST', '/networks/create', {
    name,
    driver: flag(a, '--driver') ?? 'overlay',
    subnet,
    gateway: flag(a, '--gateway'),
    vipRange: flag(a, '--vip-range'),
    attachable: flagBool(a, '--attachable') ?? false,
    ingress: flagBool(a, '--ingress') ?? false,
    internal: flagBool(a, '--internal') ?? false,
    options: keyValues(flagList(a, '--opt')),
    labels: keyValues(flagList(a, '--label')),
  });
  ctx.out(`${r.id}\n`);
};

const ls: Command = async (ctx, argv) => {
  const a = parseArgs(argv, { '--format': 'string', '--quiet': 'bool' }, { '-q': '--quiet' });
  const nets = await ctx.api.call<Network[]>('GET', '/networks');
  if (formatFlag(a) === 'json') return printJson(ctx, nets);
  if (flagBool(a, '--quiet')) return ctx.out(nets.map((n) => `${n.id}\n`).join(''));
  ctx.out(
    table(
      ['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE', 'SUBNET', 'FLAGS'],
      nets.map((n) => [
        shortId(n.id),
        n.name,
        n.driver,
        'swarm',
        n.subnet,
        [
          n.ingress && 'ingress',
          n.attachable && 'attachable',
          n.internal && 'internal',
          n.encrypted && 'encrypted',
        ]
          .filter(Boolean)
          .join(','),
      ]),
    ),
  );
};

const inspect: Command = async (ctx, argv) => {
  const a = parseArgs(argv, { '--format': 'string' }, { '-f': '--format' });
  // Inspect prints JSON, as docker's does; a template is refused, not ignored.
  formatFlag(a);
  if (a.positional.length === 0) throw new UsageError('usage: meshctl network inspect NETWORK [NETWORK...]');
  const nets = await Promise.all(
    a.positional.map((n) => ctx.api.call('GET', `/networks/${encodeURIComponent(n)}`)),
  );
  printJson(ctx, nets);
};

const rm: Command = async (ctx, argv) => {
  const a = parseArgs(argv, {});
  if (a.positional.length === 0) throw new UsageError('usage: meshctl network rm NETWORK [NETWORK...]');
  for (const n of a.positional) {
    await ctx.api.call('DELETE', `/networks/${encodeURIComponent(n)}`);
    ctx.out(`${n}\n`);
  }
};

export const networkCommands: Record<string, Command> = { create, ls, list: ls, inspect, rm, remove: rm };
