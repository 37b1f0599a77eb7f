import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../helpers/eventually.js';
import { createTestLan, isRoot, type TestLan } from '../../helpers/netns.js';
import { dist, repoRoot } from '../../helpers/paths.js';

// The README's three-host recipe, run as written: three network namespaces on one bridge, each
// with its own hostname, default settings everywhere, no hand-made routes. The README's
// documentation addresses (192.0.2.N) become 10.213.77.N here: a machine may well sit on
// 192.0.2.0/24 itself, and tests send traffic only to hosts they create.
const net = '10.213.77';
const addrs = [`${net}.1`, `${net}.2`, `${net}.3`];
const here = (text: string) => text.replaceAll('192.0.2.', `${net}.`);
let lan: TestLan;
const procs: ChildProcess[] = [];
const dirs: string[] = [];
let token = '';
const logs = new Map<string, string[]>();

/** The README's first shell block after a heading. */
function block(heading: string, index = 0): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf(heading));
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  return (blocks[index] as string).split('\n').filter((l) => l.trim() !== '');
}

/** A README command as it runs here: our build for meshd/meshctl, temp dirs for state. */
function localize(line: string, dataDir: string): string {
  return here(line)
    .replace(/#.*$/, '')
    .replace(/&\s*$/, '')
    .replace(/(^|&&\s*)meshd /g, `$1${process.execPath} ${dist('src/bin/meshd.js')} `)
    .replace(/(^|&&\s*)meshctl /g, `$1${process.execPath} ${dist('src/bin/meshctl.js')} `)
    .replace('--data-dir /var/lib/etcd', `--data-dir ${dataDir}`)
    .replace('SWMTKN-1-...', token)
    .trim();
}

/** Runs a command on host `n` (its namespace, its hostname, its working directory). */
function onHost(n: number, command: string, cwd: string, replace = true): ChildProcess {
  // A long-running command replaces the shell, so its pid is the one to signal.
  const script = `hostname host${n} && ${replace ? 'exec ' : ''}${command}`;
  return spawn(
    'ip',
    ['netns', 'exec', lan.hosts[n - 1]?.name as string, 'unshare', '--uts', '--', 'sh', '-c', script],
    {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

async function run(
  n: number,
  command: string,
  cwd: string,
): Promise<{ code: number; out: string; err: string }> {
  const child = onHost(n, command, cwd, false);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    err += d;
  });
  const code = await new Promise<number>((r) => child.once('exit', (c) => r(c ?? -1)));
  return { code, out, err };
}

/** Starts a long-running command and resolves once its stderr shows `ready`. */
function background(n: number, command: string, cwd: string, ready: RegExp): Promise<ChildProcess> {
  const child = onHost(n, command, cwd);
  procs.push(child);
  const lines: string[] = [];
  logs.set(`${n}:${command.slice(0, 40)}`, lines);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready: ${command}\n${lines.join('\n')}`)), 30_000);
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (l) => {
      lines.push(l);
      if (ready.test(l)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code}: ${command}\n${lines.join('\n')}`));
    });
  });
}

const ctl = (n: number, args: string) =>
  run(n, `${process.execPath} ${dist('src/bin/meshctl.js')} ${args}`, dirs[n] as string);

beforeAll(async () => {
  if (!isRoot()) throw new Error('this test needs root (ip netns); CI runs as root');
  lan = await createTestLan(`mrc${process.pid % 1000}`, `${net}.254`, addrs);
  for (let i = 0; i <= 3; i++) dirs.push(mkdtempSync(join(tmpdir(), 'meshd-recipe-')));
}, 60_000);

afterAll(async () => {
  for (const p of procs.reverse()) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
    }
  }
  await lan?.remove();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

describe("the README's three-host recipe", () => {
  it('joins three nodes with default settings: ready, certificates issued, every node an issuer', async () => {
    let host = 1;
    for (const line of block('### Three hosts, step by step')) {
      const marker = /^# host (\d)/.exec(line);
      if (marker) {
        host = Number(marker[1]);
        continue;
      }
      if (line.startsWith('#')) continue;
      const cmd = localize(line, join(dirs[0] as string, 'etcd'));
      const cwd = dirs[host] as string;
      if (line.startsWith('etcd ')) {
        await background(host, cmd, cwd, /ready to serve client requests/);
      } else if (line.startsWith('meshd ')) {
        await background(host, cmd, cwd, /meshd is ready/);
      } else if (line.startsWith('meshctl swarm join-token')) {
        const r = await run(host, cmd, cwd);
        expect(r.code).toBe(0);
        // The printed command names the store and the token.
        expect(r.out).toContain(here('meshd --store etcd://192.0.2.1:2379 --join-token SWMTKN-1-'));
        token = /(SWMTKN-1-[0-9a-f-]+)/.exec(r.out)?.[1] as string;
      } else if (line.startsWith('meshctl node ls')) {
        await eventually(
          async () => {
            const r = await run(host, cmd, cwd);
            const rows = r.out.split('\n').slice(1).filter(Boolean);
            expect(rows).toHaveLength(3);
            for (const row of rows)
              expect(row).toMatch(/ready\s+10\.213\.77\.\d\s+10\.213\.77\.\d\s+until \S+\s+yes/);
            expect(rows.map((r) => /host\d/.exec(r)?.[0]).sort()).toEqual(['host1', 'host2', 'host3']);
          },
          20_000,
          500,
        );
      } else {
        throw new Error(`the recipe has a line this test does not know: ${line}`);
      }
    }
    for (const n of [1, 2, 3]) {
      const r = await run(n, 'curl -s 127.0.0.1:2377/ready', dirs[n] as string);
      expect(JSON.parse(r.out)).toMatchObject({ status: 'ready' });
    }
  }, 120_000);

  it('publishes a port on every node that reaches the tasks on the other nodes', async () => {
    const [create] = block('### Three hosts, step by step', 1);
    const created = await run(1, localize(create as string, ''), dirs[1] as string);

    expect(created.code, `${localize(create as string, '')}\n${created.out}${created.err}`).toBe(0);
    expect(created.out.trim().split('\n'), created.err).toHaveLength(2);
    for (const n of [2, 3]) {
      const ip = `10.50.0.1${n}`;
      await lan.hosts[n - 1]?.exec('ip', 'addr', 'add', `${ip}/32`, 'dev', 'lo');
      const server = `require('http').createServer((q,s)=>s.end('task-on-host${n}')).listen(80,'${ip}',()=>console.error('listening'))`;
      await background(n, `${process.execPath} -e "${server}"`, dirs[n] as string, /listening/);
      // Host n's mirror has the service within milliseconds of its creation on host 1.
      await eventually(async () => {
        const add = await ctl(n, `task add web --ip ${ip}`);
        expect(add.code, add.err).toBe(0);
      }, 10_000);
    }
    for (const n of [1, 2, 3]) {
      await eventually(
        async () => {
          const seen = new Set<string>();
          for (let i = 0; i < 12; i++) {
            const body = await curl(`http://${net}.${n}:8080/`);
            seen.add(body);
          }
          expect([...seen].sort()).toEqual(['task-on-host2', 'task-on-host3']);
        },
        20_000,
        500,
      );
    }
    // service ps on host 1: both tasks reached through the data plane, healthy.
    const ps = await ctl(1, 'service ps web');
    expect(ps.out).toMatch(/10\.50\.0\.12\s+dataplane\s+healthy/);
    expect(ps.out).toMatch(/10\.50\.0\.13\s+dataplane\s+healthy/);
  }, 90_000);

  it('refuses a wrong token and leaves no node behind; refuses a loopback advertise address', async () => {
    const other = [
      '--api-listen 127.0.0.1:2388',
      '--dns-listen 127.0.0.1:1063',
      '--metrics-listen 127.0.0.1:9388',
      `--data-listen ${net}.3:4799`,
    ].join(' ');
    const wrong = `${token.slice(0, -32)}${'0'.repeat(32)}`;
    const meshd = `${process.execPath} ${dist('src/bin/meshd.js')}`;
    const refused = await run(
      3,
      `${meshd} --store etcd://${net}.1:2379 --join-token ${wrong} --advertise-addr ${net}.3 ${other}`,
      dirs[0] as string,
    );
    expect(refused.code).toBe(2);
    expect(refused.err).toContain('join token is invalid or has been rotated');
    const rows = (await ctl(1, 'node ls -q')).out.split('\n').filter(Boolean);
    expect(rows).toHaveLength(3);
    rmSync(join(dirs[0] as string, 'var'), { recursive: true, force: true });
    const loop = await run(3, `${meshd} --store etcd://${net}.1:2379 ${other}`, dirs[0] as string);
    expect(loop.code).toBe(2);
    expect(loop.err).toContain(`--advertise-addr is 127.0.0.1 (loopback) but the store is at ${net}.1`);
    expect(loop.err).toContain(`start it with --advertise-addr ${net}.3`);
  }, 60_000);
});

function curl(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const s = connect(Number(u.port), u.hostname);
    let body = '';
    s.on('data', (d) => {
      body += d;
    });
    s.on('end', () => resolve(body.split('\r\n\r\n').slice(1).join('')));
    s.on('error', reject);
    s.end(`GET / HTTP/1.0\r\nHost: x\r\n\r\n`);
  });
}
