import { shortId } from '../model/ids.js';
import type { Container, Task } from '../model/types.js';
import { flag, flagBool, flagList, formatFlag, keyValues, parseArgs, UsageError } from './args.js';
import { type Command, printJson } from './context.js';
import { table } from './table.js';

type ShownTask = Task & { serviceName: string; nodeName?: string; health: string; route?: string };

function printTasks(ctx: Parameters<Command>[0], tasks: ShownTask[], format: string | undefined): void {
  if (format === 'json') {
    printJson(ctx, tasks);
    return;
  }
  ctx.out(
    table(
      ['ID', 'NAME', 'SERVICE', 'NODE', 'ADDRESSES', 'ROUTE', 'HEALTH'],
      tasks.map((t) => [
        shortId(t.id),
        t.name,
        t.serviceName,
        // The node's name, as `docker service ps` prints it (its id for a node that is gone).
        t.nodeName ?? shortId(t.node),
        t.addresses.map((x) => x.address).join(','),
        t.route ?? '',
        t.health,
      ]),
    ),
  );
}

const add: Command = async (ctx, argv) => {
  const a = parseArgs(argv, {
    '--node': 'string',
    '--ip': 'list',
    '--name': 'string',
    '--health': 'string',
    '--label': 'list',
    '--netns': 'string',
  });
  const service = a.positional[0];
  if (!service || a.positional.length > 1)
    throw new UsageError('usage: meshctl task add SERVICE [--node N] [--ip IP]... [--name N] [--netns PATH]');
  const netns = flag(a, '--netns');
  const r = await ctx.api.call<{ id: string }>('POST', '/tasks/create', {
    service,
    node: flag(a, '--node'),
    name: flag(a, '--name'),
    ips: flagList(a, '--ip'),
    reportedHealth: flag(a, '--health') ?? 'none',
    labels: keyValues(flagList(a, '--label')),
    ...netnsField(netns),
  });
  ctx.out(`${r.id}\n`);
};

const rm: Command = async (ctx, argv) => {
  const a = parseArgs(argv, {});
  if (a.positional.length === 0) throw new UsageError('usage: meshctl task rm TASK [TASK...]');
  for (const t of a.positional) {
    await ctx.api.call('DELETE', `/tasks/${encodeURIComponent(t)}`);
    ctx.out(`${t}\n`);
  }
};

const health: Command = async (ctx, argv) => {
  const a = parseArgs(argv, {});
  const [task, state] = a.positional;
  if (!task || !state)
    throw new UsageError('usage: meshctl task health TASK none|starting|healthy|unhealthy');
  await ctx.api.call('POST', `/tasks/${encodeURIComponent(task)}/health`, { reportedHealth: state });
};

const ls: Command = async (ctx, argv) => {
  const a = parseArgs(argv, { '--format': 'string', '--service': 'string' });
  const svc = flag(a, '--service');
  const tasks = await ctx.api.call<ShownTask[]>(
    'GET',
    `/tasks${svc ? `?service=${encodeURIComponent(svc)}` : ''}`,
  );
  printTasks(ctx, tasks, formatFlag(a));
};

/** `meshctl service ps SERVICE`: the service's tasks, as docker prints them. */
export const ps: Command = async (ctx, argv) => {
  const a = parseArgs(argv, { '--format': 'string' });
  const svc = a.positional[0];
  if (!svc) throw new UsageError('usage: meshctl service ps SERVICE');
  // Like `docker service ps`: the running tasks, then the recent ones that ended.
  const tasks = await ctx.api.call<ShownTask[]>('GET', `/tasks?service=${encodeURIComponent(svc)}&all=true`);
  printTasks(ctx, tasks, formatFlag(a));
};

export const taskCommands: Record<string, Command> = { add, rm, remove: rm, ls, list: ls, health };

const attach: Command = async (ctx, argv) => {
  const a = parseArgs(argv, {
    '--name': 'string',
    '--alias': 'list',
    '--ip': 'string',
    '--node': 'string',
    '--netns': 'string',
  });
  const network = a.positional[0];
  const name = flag(a, '--name');
  if (!network || !name)
    throw new UsageError(
      'usage: meshctl container attach NETWORK --name NAME [--alias A]... [--ip IP] [--netns PATH]',
    );
  const r = await ctx.api.call<{ id: string }>('POST', '/containers/attach', {
    network,
    name,
    aliases: flagList(a, '--alias'),
    ip: flag(a, '--ip'),
    node: flag(a, '--node'),
    ...netnsField(flag(a, '--netns')),
  });
  ctx.out(`${r.id}\n`);
};

const detach: Command = async (ctx, argv) => {
  const a = parseArgs(argv, { '--network': 'string' });
  const name = a.positional[0];
  if (!name) throw new UsageError('usage: meshctl container detach NAME [--network NETWORK]');
  await ctx.api.call('POST', '/containers/detach', { name, network: flag(a, '--network') });
  ctx.out(`${name}\n`);
};

type ListedContainer = Container | { name: string; reason: string; rejected: true };

const containerLs: Command = async (ctx, argv) => {
  const a = parseArgs(argv, { '--format': 'string', '--all': 'bool' }, { '-a': '--all' });
  const all = flagBool(a, '--all') === true;
  const containers = await ctx.api.call<ListedContainer[]>('GET', `/containers${all ? '?all=true' : ''}`);
  if (formatFlag(a) === 'json') return printJson(ctx, containers);
  ctx.out(
    table(
      all ? ['ID', 'NAME', 'ALIASES', 'ADDRESSES', 'STATUS'] : ['ID', 'NAME', 'ALIASES', 'ADDRESSES'],
      containers.map((c) =>
        'rejected' in c
          ? ['', c.name, '', '', `rejected: ${c.reason}`]
          : [
              shortId(c.id),
              c.name,
              c.aliases.join(','),
              c.addresses.map((x) => x.address).join(','),
              ...(all ? ['registered'] : []),
            ],
      ),
    ),
  );
};

export const containerCommands: Record<string, Command> = {
  attach,
  detach,
  ls: containerLs,
  list: containerLs,
};

type ShownNode = {
  id: string;
  name: string;
  state: string;
  advertiseAddr: string;
  datapathAddr: string;
  lastSeen: string;
  self: boolean;
  dataTls?: boolean;
  canIssue?: boolean;
  certExpires?: string;
  stale?: boolean;
};

const nodeLs: Command = async (ctx, argv) => {
  const a = parseArgs(argv, { '--format': 'string', '--quiet': 'bool' }, { '-q': '--quiet' });
  const nodes = await ctx.api.call<ShownNode[]>('GET', '/nodes');
  if (formatFlag(a) === 'json') return printJson(ctx, nodes);
  if (flagBool(a, '--quiet')) return ctx.out(nodes.map((n) => `${n.id}\n`).join(''));
  ctx.out(
    table(
      ['ID', 'HOSTNAME', 'STATUS', 'ADVERTISE', 'DATAPATH', 'CERTIFICATE', 'ISSUER', 'LAST SEEN'],
      nodes.map((n) => [
        `${shortId(n.id)}${n.self ? ' *' : ''}`,
        n.name,
        n.state,
        n.advertiseAddr,
        n.datapathAddr,
        n.certExpires ? `until ${n.certExpires}` : 'none',
        n.canIssue ? 'yes' : '',
        n.lastSeen,
      ]),
    ),
  );
  if (nodes.some((n) => n.stale))
    ctx.out('(the cluster store is unreachable from this node: these rows may be stale)\n');
};

const nodeInspect: Command = async (ctx, argv) => {
  const a = parseArgs(argv, { '--format': 'string' }, { '-f': '--format' });
  // Inspect prints JSON, as docker's does; a template is refused, not ignored.
  formatFlag(a);
  const refs = a.positional.length > 0 ? a.positional : ['self'];
  const all = await ctx.api.call<ShownNode[]>('GET', '/nodes');
  printJson(
    ctx,
    await Promise.all(
      refs.map((r) =>
        r === 'self' ? all.find((n) => n.self) : ctx.api.call('GET', `/nodes/${encodeURIComponent(r)}`),
      ),
    ),
  );
};

const nodeRm: Command = async (ctx, argv) => {
  const a = parseArgs(argv, { '--force': 'bool' }, { '-f': '--force' });
  if (a.positional.length === 0) throw new UsageError('usage: meshctl node rm [--force] NODE [NODE...]');
  for (const n of a.positional) {
    await ctx.api.call(
      'DELETE',
      `/nodes/${encodeURIComponent(n)}${flagBool(a, '--force') ? '?force=true' : ''}`,
    );
    ctx.out(`${n}\n`);
  }
};

export const nodeCommands: Record<string, Command> = {
  ls: nodeLs,
  list: nodeLs,
  inspect: nodeInspect,
  rm: nodeRm,
  remove: nodeRm,
};

/** `meshctl swarm join-token worker|manager [--rotate] [-q]`, as docker prints it. */
const joinToken: Command = async (ctx, argv) => {
  const a = parseArgs(argv, { '--rotate': 'bool', '--quiet': 'bool' }, { '-q': '--quiet' });
  const role = a.positional[0];
  if (role !== 'worker' && role !== 'manager')
    throw new UsageError('usage: meshctl swarm join-token [--rotate] [-q] worker|manager');
  const r = flagBool(a, '--rotate')
    ? await ctx.api.call<{ worker: string }>('POST', '/swarm/join-token/rotate')
    : await ctx.api.call<{ worker: string }>('GET', '/swarm/join-token');
  if (flagBool(a, '--quiet')) return ctx.out(`${r.worker}\n`);
  const info = await ctx.api.call<{ store: string }>('GET', '/info');
  const store = info.store.startsWith('etcd') ? info.store : 'etcd://HOST:2379';
  ctx.out(
    `${role === 'manager' ? 'meshd nodes are peers: every node can change the cluster state and sign certificates, so the manager and worker tokens are one.\n' : ''}` +
      `To add a node to this cluster, run the following command on it:\n\n    meshd --store ${store} --join-token ${r.worker} --advertise-addr <ADDRESS OF THE NEW NODE>\n\n`,
  );
};

export const swarmCommands: Record<string, Command> = { 'join-token': joinToken };

/** A name as `ip netns` makes it, or a path (/proc/PID/ns/net): the node opens it as a path. */
function netnsField(netns: string | undefined): { netns?: string } {
  return netns ? { netns: netns.startsWith('/') ? netns : `/run/netns/${netns}` } : {};
}
