import { execFile, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as packet from 'dns-packet';
import { eventually } from './eventually.js';

const execFileP = promisify(execFile);

/** Runs dig against a `HOST:PORT` server and returns its stdout. */
export async function dig(server: string, ...args: string[]): Promise<string> {
  const i = server.lastIndexOf(':');
  const { stdout } = await execFileP(
    'dig',
    [`@${server.slice(0, i)}`, '-p', server.slice(i + 1), '+time=3', '+tries=1', ...args],
    {
      timeout: 15_000,
    },
  );
  return stdout;
}

/** `dig +short`, sorted. */
export async function digShort(server: string, ...args: string[]): Promise<string[]> {
  return (await dig(server, '+short', ...args)).split('\n').filter(Boolean).sort();
}

/** The status word from dig's header line. */
export function digStatus(out: string): string {
  return /status: (\w+)/.exec(out)?.[1] ?? 'none';
}

export interface Dnsmasq {
  readonly address: string;
  stop(): Promise<void>;
}

/** Starts a real dnsmasq on loopback serving the given host records (and NXDOMAIN for the rest of `local`). */
export async function startDnsmasq(
  address: string,
  port: number,
  records: Record<string, string>,
  ttl = 60,
): Promise<Dnsmasq> {
  const args = [
    '--keep-in-foreground',
    '--no-resolv',
    '--no-hosts',
    '--no-poll',
    '--bind-interfaces',
    `--listen-address=${address}`,
    `--port=${port}`,
    '--pid-file=',
    '--user=root',
    `--local-ttl=${ttl}`,
    '--local=/example/',
    '--log-facility=/dev/null',
    ...Object.entries(records).map(([name, ip]) => `--host-record=${name},${ip}`),
  ];
  return runResolver('dnsmasq', args, `${address}:${port}`, Object.keys(records)[0] as string);
}

/**
 * Runs a resolver until it answers `probe` at `server`; ended (and `cleanup` run) if it never
 * does, so a failed start leaves no process behind.
 */
async function runResolver(
  cmd: string,
  args: string[],
  server: string,
  probe: string,
  cleanup = () => {},
): Promise<Dnsmasq> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    cleanup();
  };
  try {
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`${cmd} exited: ${stderr}`);
      const out = await digShort(server, probe);
      if (out.length === 0) throw new Error('not answering yet');
    }, 10_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { address: server, stop };
}

type Rcode = 'SERVFAIL' | 'REFUSED' | 'NOERROR';

/** A scripted upstream on a real UDP socket: answers every query with `rcode` after `delayMs`, counting queries. */
export async function scriptedUpstream(
  address: string,
  rcodeFor: Rcode | ((name: string) => Rcode),
  delayMs = 0,
) {
  const sock: Socket = createSocket('udp4');
  let count = 0;
  sock.on('message', (msg, rinfo) => {
    count++;
    const q = packet.decode(msg);
    const rcode = typeof rcodeFor === 'function' ? rcodeFor(q.questions?.[0]?.name ?? '') : rcodeFor;
    const answers =
      rcode === 'NOERROR'
        ? [
            {
              type: 'A',
              name: q.questions?.[0]?.name ?? '',
              ttl: 60,
              class: 'IN',
              data: '198.51.100.9',
            } as const,
          ]
        : [];
    // dns-packet takes the rcode from the low bits of `flags`.
    const flags = { NOERROR: 0, SERVFAIL: 2, REFUSED: 5 }[rcode];
    const res = packet.encode({ type: 'response', id: q.id, flags, questions: q.questions, answers });
    setTimeout(() => sock.send(res, rinfo.port, rinfo.address), delayMs);
  });
  await new Promise<void>((resolve) => sock.bind(0, address, () => resolve()));
  return {
    address: `${address}:${sock.address().port}`,
    get count() {
      return count;
    },
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
}

/**
 * Starts a real Unbound on loopback, authoritative (static local zone with an SOA, so negative
 * answers are cacheable) for `zone` with the given A records.
 */
export async function startUnbound(
  address: string,
  port: number,
  zone: string,
  records: Record<string, string>,
): Promise<Dnsmasq> {
  const dir = mkdtempSync(join(tmpdir(), 'meshd-unbound-'));
  const conf = join(dir, 'unbound.conf');
  writeFileSync(
    conf,
    [
      'server:',
      `  interface: ${address}`,
      `  port: ${port}`,
      '  do-daemonize: no',
      '  chroot: ""',
      '  username: ""',
      '  pidfile: ""',
      '  use-syslog: no',
      '  logfile: ""',
      '  verbosity: 0',
      `  directory: "${dir}"`,
      '  access-control: 127.0.0.0/8 allow',
      '  do-ip6: no',
      `  local-zone: "${zone}." static`,
      `  local-data: "${zone}. 60 IN SOA ns.${zone}. hostmaster.${zone}. 1 3600 600 86400 60"`,
      ...Object.entries(records).map(([name, ip]) => `  local-data: "${name}. 60 IN A ${ip}"`),
      'remote-control:',
      '  control-enable: no',
      '',
    ].join('\n'),
  );
  return runResolver('unbound', ['-c', conf], `${address}:${port}`, Object.keys(records)[0] as string, () =>
    rmSync(dir, { recursive: true, force: true }),
  );
}
