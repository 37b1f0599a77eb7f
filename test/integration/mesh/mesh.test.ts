import { createSocket } from 'node:dgram';
import { get } from 'node:http';
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Backend,
  echoAfterFin,
  fetchOnce,
  halfCloseExchange,
  httpBackend,
  tcpBackend,
  udpEcho,
} from '../../helpers/backends.js';
import { digShort } from '../../helpers/dns-tools.js';
import { eventually, sleep } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { freePort } from '../../helpers/ports.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let m: MeshdProcess;
beforeAll(async () => {
  m = await startMeshd({
    config: `
mesh:
  publishAddr: 127.0.0.1
  eject: 2s
  udpIdleTimeout: 600ms
declare:
  networks: [{ name: mesh, subnet: 127.210.0.0/16 }]
`,
  });
});
afterAll(async () => {
  await m?.stop();
});

async function service(name: string, ...flags: string[]): Promise<void> {
  await m.ctl('service', 'create', '--name', name, '--network', 'mesh', ...flags);
  cleanups.push(() => m.ctl('service', 'rm', name).catch(() => undefined));
}

async function backends(names: string[], addresses: string[], port: number): Promise<Backend[]> {
  const bs = await Promise.all(names.map((n, i) => httpBackend(n, addresses[i] as string, port)));
  cleanups.push(() => Promise.all(bs.map((b) => b.kill())));
  return bs;
}

describe('TCP mesh', () => {
  it('balances a published port and the VIP round-robin across tasks', async () => {
    const port = await freePort();
    await service('rr', '-p', `${port}:8000`);
    const bs = await backends(['a', 'b', 'c'], ['127.210.1.1', '127.210.1.2', '127.210.1.3'], 8000);
    for (let i = 1; i <= 3; i++) await m.ctl('task', 'add', 'rr', '--ip', `127.210.1.${i}`);
    await eventually(async () => expect((await fetchOnce(`http://127.0.0.1:${port}/`)).status).toBe(200));
    for (const b of bs) b.hits = 0;
    for (let i = 0; i < 30; i++) expect((await fetchOnce(`http://127.0.0.1:${port}/`)).status).toBe(200);
    expect(bs.map((b) => b.hits)).toEqual([10, 10, 10]);
    const [vip] = await digShort(m.dns, 'rr');
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await fetchOnce(`http://${vip}:8000/`)).body);
    expect([...seen].sort()).toEqual(['a', 'b', 'c']);
  });

  it('fails no request when a backend dies mid-traffic: connects are retried and the task ejected', async () => {
    const port = await freePort();
    await service('retry', '-p', `${port}:8000`);
    const bs = await backends(['a', 'b', 'c'], ['127.210.2.1', '127.210.2.2', '127.210.2.3'], 8000);
    for (let i = 1; i <= 3; i++) await m.ctl('task', 'add', 'retry', '--ip', `127.210.2.${i}`);
    await eventually(async () => expect((await fetchOnce(`http://127.0.0.1:${port}/`)).status).toBe(200));
    const results: number[] = [];
    for (let i = 0; i < 60; i++) {
      if (i === 10) await bs[1]?.kill();
      results.push((await fetchOnce(`http://127.0.0.1:${port}/`)).status);
    }
    expect(results.every((s) => s === 200)).toBe(true);
    const metrics = await (await fetch(`http://${m.metrics}/metrics`)).text();
    expect(metrics).toMatch(/meshd_mesh_ejections_total\{service="retry"\} [1-9]/);
    expect(metrics).toMatch(/meshd_mesh_connect_errors_total\{service="retry",reason="refused"\} [1-9]/);
  });

  it('keeps out tasks whose http probe fails, in the mesh and in DNS; refuses when none is healthy', async () => {
    const port = await freePort();
    await service(
      'probed',
      '-p',
      `${port}:8000`,
      '--health-type',
      'http',
      '--health-interval',
      '200ms',
      '--health-unhealthy-interval',
      '100ms',
      '--health-retries',
      '1',
    );
    const bs = await backends(['good', 'bad'], ['127.210.3.1', '127.210.3.2'], 8000);
    (bs[1] as Backend).status = 500;
    await m.ctl('task', 'add', 'probed', '--ip', '127.210.3.1');
    await m.ctl('task', 'add', 'probed', '--ip', '127.210.3.2');
    await eventually(async () => expect(await digShort(m.dns, 'tasks.probed')).toEqual(['127.210.3.1']));
    for (let i = 0; i < 10; i++) expect((await fetchOnce(`http://127.0.0.1:${port}/`)).body).toBe('good');
    (bs[0] as Backend).status = 503;
    await eventually(async () => expect(await digShort(m.dns, 'tasks.probed')).toEqual([]));
    // No healthy task and the default panic rule `refuse`: the connection is reset, not hung.
    await expect(fetchOnce(`http://127.0.0.1:${port}/`)).rejects.toThrow(/ECONNRESET|socket hang up/);
    // The VIP stays in DNS even with no healthy task (moby#37623).
    expect(await digShort(m.dns, 'probed')).toHaveLength(1);
    const ps = await m.ctl('service', 'ps', 'probed');
    expect(ps).toMatch(/unhealthy/);
    // NODE is the node's name, as `docker service ps` prints it.
    expect(ps.split('\n')[1]).toMatch(/ test-node /);
  });

  it('lets an in-flight transfer to a removed task finish, sends nothing new to it', async () => {
    const port = await freePort();
    await service('drain', '-p', `${port}:8000`, '--drain', '5s');
    const bs = await backends(['a', 'b'], ['127.210.4.1', '127.210.4.2'], 8000);
    const ids = [
      (await m.ctl('task', 'add', 'drain', '--ip', '127.210.4.1')).trim(),
      (await m.ctl('task', 'add', 'drain', '--ip', '127.210.4.2')).trim(),
    ];
    await eventually(async () => expect((await fetchOnce(`http://127.0.0.1:${port}/`)).status).toBe(200));
    // Start slow transfers until one lands on task a, then remove task a while it streams.
    let transfer: Promise<{ body: string }> | undefined;
    for (let i = 0; i < 4 && !transfer; i++) {
      const before = (bs[0] as Backend).hits;
      const total = before + (bs[1] as Backend).hits;
      const t = fetchOnce(`http://127.0.0.1:${port}/slow`);
      // Wait until one of the two tasks has the request (observable), not for a fixed time.
      await eventually(async () =>
        expect((bs[0] as Backend).hits + (bs[1] as Backend).hits).toBeGreaterThan(total),
      );
      if ((bs[0] as Backend).hits > before) transfer = t;
      else await t;
    }
    expect(transfer).toBeDefined();
    await m.ctl('task', 'rm', ids[0] as string);
    for (const b of bs) b.hits = 0;
    for (let i = 0; i < 6; i++) expect((await fetchOnce(`http://127.0.0.1:${port}/`)).body).toBe('b');
    expect((bs[0] as Backend).hits).toBe(0);
    const body = (await transfer)?.body ?? '';
    expect(body.split('\n').filter(Boolean)).toHaveLength(10);
  });

  it('closes in-flight connections to a removed task after the grace period', async () => {
    const port = await freePort();
    await service('cut', '-p', `${port}:8000`, '--drain', '200ms');
    await backends(['a'], ['127.210.5.1'], 8000);
    const id = (await m.ctl('task', 'add', 'cut', '--ip', '127.210.5.1')).trim();
    await eventually(async () => expect((await fetchOnce(`http://127.0.0.1:${port}/`)).status).toBe(200));
    // A slow transfer (10 chunks over 6 s, far longer than the drain plus a loaded machine's
    // delays), watched chunk by chunk.
    const chunks: number[] = [];
    let ended = 0;
    const done = new Promise<void>((resolve) => {
      const req = get(`http://127.0.0.1:${port}/slow?every=600`, { agent: false }, (res) => {
        res.on('data', () => chunks.push(Date.now()));
        res.on('close', () => {
          ended = Date.now();
          resolve();
        });
        res.on('error', () => undefined);
      });
      req.on('error', () => {
        ended = Date.now();
        resolve();
      });
    });
    await eventually(async () => expect(chunks.length).toBeGreaterThan(0));
    const removed = Date.now();
    await m.ctl('task', 'rm', id);
    await done;
    // Some chunks arrived, not all ten: the transfer was cut, and no earlier than the drain.
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.length).toBeLessThan(10);
    expect(ended - removed).toBeGreaterThanOrEqual(200);
  });

  it('forwards half-close: the client FIN reaches the task, which still answers', async () => {
    const port = await freePort();
    await service('half', '-p', `${port}:7000`);
    const server = await echoAfterFin('127.210.6.1', 7000);
    cleanups.push(() => new Promise((r) => server.close(r)));
    await m.ctl('task', 'add', 'half', '--ip', '127.210.6.1');
    await eventually(async () => {
      expect(await halfCloseExchange('127.0.0.1', port, 'hello')).toBe('got hello');
    });
  });

  it('sends PROXY protocol v1 and v2 headers with the real client address', async () => {
    for (const version of ['v1', 'v2'] as const) {
      const port = await freePort();
      const name = `pp${version}`;
      await service(name, '-p', `${port}:7000`, '--proxy-protocol', version);
      const host = version === 'v1' ? '127.210.7.1' : '127.210.7.2';
      const headers: Buffer[] = [];
      const server = await tcpBackend(host, 7000, (s) => {
        s.once('data', (d) => {
          headers.push(d);
          s.end('ok');
        });
      });
      cleanups.push(() => new Promise((r) => server.close(r)));
      await m.ctl('task', 'add', name, '--ip', host);
      await eventually(async () => {
        await new Promise<void>((resolve, reject) => {
          const c = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.77' }, () => c.write('x'));
          c.on('data', () => c.destroy());
          c.on('close', () => resolve());
          c.on('error', reject);
        });
        expect(headers.length).toBeGreaterThan(0);
      });
      const h = headers.at(-1) as Buffer;
      if (version === 'v1') {
        expect(h.toString('latin1')).toMatch(
          new RegExp(`^PROXY TCP4 127\\.0\\.0\\.77 127\\.0\\.0\\.1 \\d+ ${port}\\r\\n`),
        );
      } else {
        expect(h.subarray(0, 12).toString('hex')).toBe('0d0a0d0a000d0a515549540a');
        expect(h[12]).toBe(0x21);
        expect(h[13]).toBe(0x11);
        expect([...h.subarray(16, 20)]).toEqual([127, 0, 0, 77]);
        expect([...h.subarray(20, 24)]).toEqual([127, 0, 0, 1]);
        expect(h.readUInt16BE(26)).toBe(port);
      }
    }
  });

  it('keeps a client on one task with source-ip affinity', async () => {
    const port = await freePort();
    await service('sticky', '-p', `${port}:8000`, '--lb', 'source-ip');
    await backends(['a', 'b', 'c'], ['127.210.8.1', '127.210.8.2', '127.210.8.3'], 8000);
    for (let i = 1; i <= 3; i++) await m.ctl('task', 'add', 'sticky', '--ip', `127.210.8.${i}`);
    await eventually(async () => expect((await fetchOnce(`http://127.0.0.1:${port}/`)).status).toBe(200));
    const owners = new Set<string>();
    for (let c = 1; c <= 12; c++) {
      const src = `127.0.8.${c}`;
      const first = (await fetchOnce(`http://127.0.0.1:${port}/`, src)).body;
      for (let i = 0; i < 3; i++)
        expect((await fetchOnce(`http://127.0.0.1:${port}/`, src)).body).toBe(first);
      owners.add(first);
    }
    expect(owners.size).toBeGreaterThan(1);
  });

  it('opens, moves and closes published ports at run time; reports a port another process holds', async () => {
    const port = await freePort();
    await service('dyn');
    await backends(['a'], ['127.210.9.1'], 8000);
    await m.ctl('task', 'add', 'dyn', '--ip', '127.210.9.1');
    await expect(fetchOnce(`http://127.0.0.1:${port}/`)).rejects.toThrow(/ECONNREFUSED/);
    await m.ctl('service', 'update', '--publish-add', `${port}:8000`, 'dyn');
    await eventually(async () => expect((await fetchOnce(`http://127.0.0.1:${port}/`)).body).toBe('a'));
    await m.ctl('service', 'update', '--publish-rm', String(port), 'dyn');
    await eventually(() => expect(fetchOnce(`http://127.0.0.1:${port}/`)).rejects.toThrow(/ECONNREFUSED/));
    // A port held by another process: the service says so, the others keep serving.
    const taken = await freePort();
    const squatter = await tcpBackend('127.0.0.1', taken, (s) => s.destroy());
    cleanups.push(() => new Promise((r) => squatter.close(r)));
    await m.ctl('service', 'update', '--publish-add', `${taken}:8000`, 'dyn');
    await eventually(async () => {
      const [svc] = JSON.parse(await m.ctl('service', 'inspect', 'dyn')) as {
        status: { errors: string[] };
      }[];
      expect(svc?.status.errors.join()).toContain(
        `tcp 127.0.0.1:${taken}: address already in use by another process`,
      );
    });
    const [vip] = await digShort(m.dns, 'dyn');
    expect((await fetchOnce(`http://${vip}:8000/`)).body).toBe('a');
    // Once the other process lets go, the port opens by itself, with no change to the service.
    await new Promise((r) => squatter.close(r));
    await eventually(
      async () => expect((await fetchOnce(`http://127.0.0.1:${taken}/`)).body).toBe('a'),
      10_000,
    );
  });
});

describe('UDP mesh', () => {
  it('keeps a flow on one task, answers from the published port, expires idle flows', async () => {
    const port = await freePort();
    await service('udp', '-p', `${port}:5300/udp`);
    const echoes = await Promise.all([
      udpEcho('u1', '127.210.10.1', 5300),
      udpEcho('u2', '127.210.10.2', 5300),
    ]);
    cleanups.push(() => {
      for (const e of echoes) e.close();
    });
    await m.ctl('task', 'add', 'udp', '--ip', '127.210.10.1');
    await m.ctl('task', 'add', 'udp', '--ip', '127.210.10.2');
    const client = createSocket('udp4');
    cleanups.push(() => client.close());
    const replies: { text: string; port: number }[] = [];
    client.on('message', (msg, r) => replies.push({ text: msg.toString(), port: r.port }));
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    await eventually(async () => {
      client.send('ping', port, '127.0.0.1');
      await sleep(50);
      expect(replies.length).toBeGreaterThan(0);
    });
    for (let i = 0; i < 5; i++) client.send(`m${i}`, port, '127.0.0.1');
    await eventually(() => expect(replies.filter((r) => r.text.includes(':m')).length).toBe(5));
    const owners = new Set(replies.filter((r) => r.text.includes(':m')).map((r) => r.text.split(':')[0]));
    expect(owners.size).toBe(1);
    expect(new Set(replies.map((r) => r.port))).toEqual(new Set([port]));
    const text = await (await fetch(`http://${m.metrics}/metrics`)).text();
    expect(text).toMatch(/meshd_mesh_udp_flows\{service="udp"\} 1/);
    await eventually(async () => {
      const t = await (await fetch(`http://${m.metrics}/metrics`)).text();
      expect(t).toMatch(/meshd_mesh_udp_flows\{service="udp"\} 0/);
    }, 5000);
  });
});
