#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../cli/args.js';
import { ApiClient, type ClientTls } from '../cli/client.js';
import type { Command } from '../cli/context.js';
import { events } from '../cli/events-cmd.js';
import { networkCommands } from '../cli/network-cmd.js';
import { serviceCommands } from '../cli/service-cmd.js';
import { containerCommands, nodeCommands, ps, swarmCommands, taskCommands } from '../cli/task-cmd.js';
import { verbUsage, wantsHelp } from '../cli/usage.js';

const groups: Record<string, Record<string, Command>> = {
  network: networkCommands,
  service: { ...serviceCommands, ps },
  task: taskCommands,
  container: containerCommands,
  node: nodeCommands,
  swarm: swarmCommands,
};

const topLevel: Record<string, Command> = { events };

const usage = `usage: meshctl [--host URL] [--token TOKEN] COMMAND

  network  create|ls|inspect|rm
  service  create|ls|inspect|update|rm|ps
  task     add|rm|ls|health
  container attach|detach|ls
  node     ls|inspect|rm
  swarm    join-token worker|manager [--rotate]
  events   [--filter KEY=VALUE] [--since T] [--until T] [--format json]

MESHD_HOST (default http://127.0.0.1:2377) and MESHD_TOKEN set --host and --token.
For an https:// API: --tls-ca FILE, or --state-dir DIR of a node (its CA and certificate).
Read verbs take --format json.
`;

/**
 * TLS for an https:// API: `--tls-ca FILE`, or `--state-dir DIR` of a node, whose CA certificate
 * and node certificate (a client certificate the API accepts in place of a token) are used.
 */
function clientTls(ca: string | undefined, stateDir: string | undefined): ClientTls | undefined {
  const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : undefined);
  if (stateDir) {
    return {
      ca: ca ? read(ca) : read(join(stateDir, 'ca.crt')),
      cert: read(join(stateDir, 'node.crt')),
      key: read(join(stateDir, 'node.key')),
    };
  }
  return ca ? { ca: read(ca) } : undefined;
}

async function main(argv: string[]): Promise<number> {
  let host = process.env.MESHD_HOST ?? 'http://127.0.0.1:2377';
  let token = process.env.MESHD_TOKEN;
  let tlsCa: string | undefined;
  let stateDir: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (rest.length === 0 && (a === '--host' || a === '-H')) host = argv[++i] ?? host;
    else if (rest.length === 0 && a.startsWith('--host=')) host = a.slice(7);
    else if (rest.length === 0 && a === '--token') token = argv[++i];
    else if (rest.length === 0 && a === '--tls-ca') tlsCa = argv[++i];
    else if (rest.length === 0 && a === '--state-dir') stateDir = argv[++i];
    else rest.push(a);
  }
  if (!/^https?:\/\//.test(host)) host = `http://${host}`;
  const [group, verb, ...args] = rest;
  if (!group || group === '--help' || group === 'help') {
    process.stdout.write(usage);
    return group ? 0 : 1;
  }
  // `events` has no verb, as `docker events`.
  const single = topLevel[group];
  if (single) {
    const all = rest.slice(1);
    if (wantsHelp(all)) {
      process.stdout.write(`${verbUsage[group]?.[''] ?? usage}\n`);
      return 0;
    }
    return run(single, host, token, clientTls(tlsCa, stateDir), all);
  }
  const help = verbUsage[group];
  if (help && (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help')) {
    process.stdout.write(`${Object.values(help).join('\n\n')}\n`);
    return verb ? 0 : 1;
  }
  const verbHelp = help?.[verb ?? ''] ?? help?.[{ list: 'ls', remove: 'rm' }[verb ?? ''] ?? ''];
  if (verbHelp && wantsHelp(args)) {
    process.stdout.write(`${verbHelp}\n`);
    return 0;
  }
  const cmd = groups[group]?.[verb ?? ''];
  if (!cmd) {
    process.stderr.write(`meshctl: unknown command "${[group, verb].filter(Boolean).join(' ')}"\n${usage}`);
    return 1;
  }
  return run(cmd, host, token, clientTls(tlsCa, stateDir), args);
}

async function run(
  cmd: Command,
  host: string,
  token: string | undefined,
  tls: ClientTls | undefined,
  args: readonly string[],
): Promise<number> {
  try {
    await cmd({ api: new ApiClient(host, token, tls), out: (t) => process.stdout.write(t) }, args);
    return 0;
  } catch (err) {
    const prefix = err instanceof UsageError ? 'usage error: ' : 'Error: ';
    process.stderr.write(`${prefix}${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

// `meshctl events | head`: the reader went away, which ends the command, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
