import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { dist } from '../../helpers/paths.js';
import { freePort } from '../../helpers/ports.js';

interface Ev {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: string;
  timeNano: number;
}

/** A running `meshctl events` whose output lines are collected as they arrive. */
function follow(
  m: MeshdProcess,
  ...args: string[]
): { child: ChildProcess; lines: string[]; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [dist('src/bin/meshctl.js'), '--host', m.api, 'events', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => lines.push(l));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, lines, exited };
}

describe('meshctl events', () => {
  let m: MeshdProcess;
  const followers: ChildProcess[] = [];
  beforeAll(async () => {
    m = await startMeshd({
      config: 'mesh:\n  publishAddr: 127.0.0.1\n  connectRetries: 0\n',
    });
    await m.ctl('network', 'create', '--subnet', '127.238.0.0/16', 'evnet');
  });
  afterAll(async () => {
    for (const c of followers) c.kill();
    await m?.stop();
  });

  it("shows a change made through the API within a second, in Docker's shape", async () => {
    const f = follow(m, '--format', 'json');
    followers.push(f.child);
    // Connected for sure (never by a guessed delay): a marker change made now shows up.
    await eventually(async () => {
      const marker = `evmark${Math.floor(Math.random() * 1e6)}`;
      await fetch(`${m.api}/networks/create`, { method: 'POST', body: JSON.stringify({ name: marker }) });
      await eventually(async () => expect(f.lines.join()).toContain(marker), 500, 20);
    }, 15_000);
    const made = Date.now();
    const id = (await m.ctl('service', 'create', '--name', 'evweb', '--network', 'evnet')).trim();
    await eventually(
      async () => expect(f.lines.map((l) => JSON.parse(l) as Ev).some((e) => e.Actor.ID === id)).toBe(true),
      1000,
      10,
    );
    const e = f.lines.map((l) => JSON.parse(l) as Ev).find((x) => x.Actor.ID === id) as Ev;
    expect(e).toMatchObject({
      Type: 'service',
      Action: 'create',
      Actor: { Attributes: { name: 'evweb' } },
      scope: 'swarm',
    });
    expect(e.timeNano / 1e6).toBeGreaterThanOrEqual(made - 1000);
    console.log(`event seen ${Date.now() - made} ms after the write`);
  });

  it('filters by type and service, and replays history with --since and --until', async () => {
    await m.ctl('service', 'create', '--name', 'evother', '--network', 'evnet');
    // --since: what happens before the stream is connected is replayed, so no event is missed.
    const only = follow(
      m,
      '--format',
      'json',
      '--since',
      '1m',
      '--filter',
      'type=task',
      '--filter',
      'service=evweb',
    );
    followers.push(only.child);
    const other = (await m.ctl('task', 'add', 'evother', '--ip', '127.238.0.20')).trim();
    const mine = (await m.ctl('task', 'add', 'evweb', '--ip', '127.238.0.10')).trim();
    await m.ctl('task', 'health', mine, 'unhealthy');
    await eventually(async () => {
      const evs = only.lines.map((l) => JSON.parse(l) as Ev);
      expect(evs.map((e) => `${e.Type} ${e.Action} ${e.Actor.ID}`)).toEqual([
        `task create ${mine}`,
        `task health_status: unhealthy ${mine}`,
      ]);
    });
    expect(only.lines.join()).not.toContain(other);
    // History: everything of the last minute that matches, then the stream ends at --until.
    const past = follow(m, '--since', '1m', '--until', '0s', '--filter', 'service=evother');
    expect(await past.exited).toBe(0);
    expect(past.lines.some((l) => l.includes('service create') && l.includes('name=evother'))).toBe(true);
    expect(past.lines.some((l) => / task create /.test(l) && l.includes(other))).toBe(true);
    expect(past.lines.every((l) => l.includes('evother'))).toBe(true);
    expect(past.lines[0]).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z service create \w+ \(name=evother\)$/,
    );
  });

  it('reports a task the mesh ejected after a failed connect, as a local event', async () => {
    const port = await freePort('127.0.0.1');
    await m.ctl('service', 'create', '--name', 'evdead', '--network', 'evnet', '-p', `${port}:7999`);
    // Nothing listens at the task's address: the connect fails and the task is ejected.
    const task = (await m.ctl('task', 'add', 'evdead', '--ip', '127.238.0.30')).trim();
    const f = follow(m, '--format', 'json', '--since', '1m', '--filter', 'event=eject');
    followers.push(f.child);
    await eventually(async () => {
      await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined);
      const evs = f.lines.map((l) => JSON.parse(l) as Ev);
      expect(evs[0]).toMatchObject({
        Type: 'task',
        Action: 'eject',
        Actor: { ID: task, Attributes: { service: 'evdead', reason: expect.any(String) } },
        scope: 'local',
      });
    });
  });

  it('ends quietly when its reader goes (meshctl events | head -1)', async () => {
    const { execFile } = await import('node:child_process');
    const cli = `${JSON.stringify(process.execPath)} ${JSON.stringify(dist('src/bin/meshctl.js'))} --host ${m.api}`;
    // More history than a pipe holds (64 kB): meshctl is still writing when head has gone.
    await m.ctl('service', 'create', '--name', 'evpipe', '--network', 'evnet', '--endpoint-mode', 'dnsrr');
    for (let i = 0; i < 500; i++) {
      const r = await fetch(`${m.api}/tasks/create`, {
        method: 'POST',
        body: JSON.stringify({ service: 'evpipe' }),
      });
      expect(r.status).toBe(201);
    }
    const out = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile(
        'bash',
        ['-c', `set -o pipefail; ${cli} events --since 1m --until 0s | head -1`],
        (err, stdout, stderr) => (err ? reject(Object.assign(err, { stderr })) : resolve({ stdout, stderr })),
      ),
    );
    expect(out.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expect(out.stderr).toBe('');
  });

  it('refuses a filter it does not know, and a Go template', async () => {
    await expect(m.ctl('events', '--filter', 'colour=red')).rejects.toThrow(/invalid filter 'colour=red'/);
    await expect(m.ctl('events', '--filter', 'type=volume')).rejects.toThrow(/types are service, task/);
    await expect(m.ctl('events', '--format', '{{.Type}}')).rejects.toThrow(/Go templates are not supported/);
    const r = await fetch(`${m.api}/events?filters=${encodeURIComponent('{"colour":["red"]}')}`);
    expect(r.status).toBe(400);
  });
});
