import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, fetchOnce, httpBackend, tcpBackend, udpEcho } from '../../helpers/backends.js';
import { digShort } from '../../helpers/dns-tools.js';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { freePort } from '../../helpers/ports.js';

// What the README claims of the mesh beyond round-robin, end to end on one node: least-conn,
// the per-task cap, the idle timeout, host-mode ports, and series of deleted services.
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
  shutdownGrace: 1s
  keepAlive: 1s
declare:
  networks: [{ name: pol, subnet: 127.213.0.0/16 }]
`,
  });
});
afterAll(async () => {
  await m?.stop();
});

async function service(name: string, ...flags: string[]): Promise<void> {
  await m.ctl('service', 'create', '--name', name, '--network', 'pol', ...flags);
  cleanups.push(() => m.ctl('service', 'rm', name).catch(() => undefined));
}

/** A TCP connection through the mesh that stays open (the task holds it) until destroyed. */
function hold(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

describe('balancing and limits', () => {
  it('least-conn sends new connections to the task with fewer open ones', async () => {
    const port = await freePort();
    await service('lc', '-p', `${port}:8000`, '--lb', 'least-conn');
    const bs: Backend[] = await Promise.all([
      httpBackend('x', '127.213.1.1', 8000),
      httpBackend('y', '127.213.1.2', 8000),
    ]);
    cleanups.push(() => Promise.all(bs.map((b) => b.kill())));
    await m.ctl('task', 'add', 'lc', '--ip', '127.213.1.1');
    await m.ctl('task', 'add', 'lc', '--ip', '127.213.1.2');
    await eventually(async () => expect((await fetchOnce(`http://127.0.0.1:${port}/`)).status).toBe(200));
    // One connection held open lands on one task; every short request then goes to the other.
    const held = await hold(port);
    cleanups.push(() => held.destroy());
    const before = { x: bs[0]?.hits ?? 0, y: bs[1]?.hits ?? 0 };
    held.write('GET /slow HTTP/1.1\r\nHost: h\r\n\r\n');
    await eventually(async () =>
      expect((bs[0]?.hits ?? 0) + (bs[1]?.hits ?? 0)).toBe(before.x + before.y + 1),
    );
    const busy = (bs[0]?.hits ?? 0) > before.x ? 'x' : 'y';
    // Each short connection has closed at the mesh before the next one starts (its close can
    // trail the response): then the counts are 1 (held) against 0.
    const open = async () =>
      [
        ...(await (await fetch(`http://${m.metrics}/metrics`)).text()).matchAll(
          /^meshd_mesh_task_connections\{service="lc",task="[^"]+"\} (\d+)$/gm,
        ),
      ].reduce((n, x) => n + Number(x[1]), 0);
    const bodies: string[] = [];
    for (let i = 0; i < 6; i++) {
      await eventually(async () => expect(await open()).toBe(1));
      bodies.push((await fetchOnce(`http://127.0.0.1:${port}/`)).body);
    }
    expect(bodies, `held on ${busy}`).toEqual(Array(6).fill(busy === 'x' ? 'y' : 'x'));
  });

  it('p2c never sends a new connection to the busier of the two it draws', async () => {
    const port = await freePort();
    await service('pc', '-p', `${port}:8000`, '--lb', 'p2c');
    const addrs = ['127.213.3.1', '127.213.3.2', '127.213.3.3'];
    const bs: Backend[] = await Promise.all(addrs.map((a, i) => httpBackend(`p${i}`, a, 8000)));
    cleanups.push(() => Promise.all(bs.map((b) => b.kill())));
    for (const a of addrs) await m.ctl('task', 'add', 'pc', '--ip', a);
    await eventually(async () => expect((await fetchOnce(`http://127.0.0.1:${port}/`)).status).toBe(200));
    const hits = () => bs.map((b) => b.hits);
    const held = await hold(port);
    cleanups.push(() => held.destroy());
    const before = hits();
    held.write('GET /slow HTTP/1.1\r\nHost: h\r\n\r\n');
    await eventually(async () =>
      expect(hits().reduce((a, b) => a + b, 0)).toBe(before.reduce((a, b) => a + b, 0) + 1),
    );
    const busy = hits().findIndex((h, i) => h > (before[i] ?? 0));
    const open = async () =>
      [
        ...(await (await fetch(`http://${m.metrics}/metrics`)).text()).matchAll(
          /^meshd_mesh_task_connections\{service="pc",task="[^"]+"\} (\d+)$/gm,
        ),
      ].reduce((n, x) => n + Number(x[1]), 0);
    // Whichever pair it draws, the task holding a connection loses to an idle one (two idle
    // ones tie): the busy task gets none of these.
    const bodies: string[] = [];
    for (let i = 0; i < 12; i++) {
      await eventually(async () => expect(await open()).toBe(1));
      bodies.push((await fetchOnce(`http://127.0.0.1:${port}/`)).body);
    }
    expect(bodies).toHaveLength(12);
    expect(bodies.filter((b) => b === `p${busy}`)).toEqual([]);
  });

  it('refuses a connection beyond a task cap, and counts it', async () => {
    const port = await freePort();
    await service('capped', '-p', `${port}:7000`, '--max-conns-per-task', '1');
    const sockets: Socket[] = [];
    const server = await tcpBackend('127.213.2.1', 7000, (s) => sockets.push(s));
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      server.close();
    });
    await m.ctl('task', 'add', 'capped', '--ip', '127.213.2.1');
    const first = await eventually(async () => {
      const s = await hold(port);
      await eventually(async () => expect(sockets.length).toBeGreaterThan(0), 2000);
      return s;
    });
    cleanups.push(() => first.destroy());
    // The second is reset by the mesh (at once, or right after its connect): it never reaches the task.
    const second = connect(port, '127.0.0.1');
    second.on('error', () => undefined);
    await new Promise((r) => second.once('close', r));
    expect(sockets).toHaveLength(1);
    const text = await (await fetch(`http://${m.metrics}/metrics`)).text();
    expect(text).toMatch(
      /meshd_mesh_connect_errors_total\{service="capped",reason="no_healthy_task"\} [1-9]/,
    );
  });

  it('closes a connection idle for longer than the service idle timeout, not before', async () => {
    const port = await freePort();
    await service('idle', '-p', `${port}:7000`, '--idle-timeout', '600ms');
    const server = await tcpBackend('127.213.3.1', 7000, () => undefined);
    cleanups.push(() => server.close());
    await m.ctl('task', 'add', 'idle', '--ip', '127.213.3.1');
    const s = await eventually(() => hold(port));
    const opened = Date.now();
    await new Promise((r) => s.once('close', r));
    const after = Date.now() - opened;
    expect(after).toBeGreaterThanOrEqual(550);
  });

  it('keeps an idle connection, probing it with TCP keepalive (IPVS drops it after 900 s, moby#31208)', async () => {
    // Scaled down: keepalive every second (mesh.keepAlive), the connection idle for three.
    const port = await freePort();
    await service('quiet', '-p', `${port}:7000`, '--idle-timeout', '20s');
    const server = await tcpBackend('127.213.3.2', 7000, (sock) => sock.pipe(sock));
    cleanups.push(() => server.close());
    await m.ctl('task', 'add', 'quiet', '--ip', '127.213.3.2');
    const { connect } = await import('node:net');
    const echo = (sock: Socket, text: string) =>
      new Promise<string>((resolve) => {
        sock.once('data', (d) => resolve(d.toString()));
        sock.write(text);
      });
    const sock = await eventually(
      () =>
        new Promise<Socket>((resolve, reject) => {
          const c = connect(port, '127.0.0.1', () => resolve(c));
          c.once('error', reject);
        }),
    );
    cleanups.push(() => sock.destroy());
    expect(await echo(sock, 'before')).toBe('before');
    await new Promise((r) => setTimeout(r, 3000));
    // The mesh's side of the connection has its keepalive timer running...
    const { execFile } = await import('node:child_process');
    const ss = await new Promise<string>((resolve, reject) =>
      execFile('ss', ['-tnoH', 'state', 'established', `( sport = :${port} )`], (err, out) =>
        err ? reject(err) : resolve(out),
      ),
    );
    expect(ss).toMatch(/timer:\(keepalive,/);
    // ...and the connection still carries data both ways.
    expect(await echo(sock, 'after')).toBe('after');
  });

  it('publishes through a custom ingress network made after the default one is removed', async () => {
    const own = await startMeshd({ config: 'mesh:\n  publishAddr: 127.0.0.1\n' });
    cleanups.push(() => own.stop());
    await own.ctl('network', 'rm', 'ingress');
    await own.ctl(
      'network',
      'create',
      '--ingress',
      '--subnet',
      '10.244.0.0/24',
      '--gateway',
      '10.244.0.5',
      '--opt',
      'com.docker.network.driver.mtu=1400',
      'edge',
    );
    const [edge] = JSON.parse(await own.ctl('network', 'inspect', 'edge')) as {
      ingress: boolean;
      gateway: string;
      mtu: number;
    }[];
    expect(edge).toMatchObject({ ingress: true, gateway: '10.244.0.5', mtu: 1400 });
    const port = await freePort();
    await own.ctl('network', 'create', '--subnet', '127.248.0.0/16', 'apps');
    await own.ctl('service', 'create', '--name', 'front', '--network', 'apps', '-p', `${port}:8000`);
    const b = await httpBackend('front', '127.248.0.10', 8000);
    cleanups.push(() => b.kill());
    await own.ctl('task', 'add', 'front', '--ip', '127.248.0.10');
    await eventually(async () => expect((await fetchOnce(`http://127.0.0.1:${port}/`)).body).toBe('front'));
    // While a service publishes through it, the custom ingress cannot go either.
    await expect(own.ctl('network', 'rm', 'edge')).rejects.toThrow(/ingress network cannot be removed/);
  });

  it('publishes a port on one address only, beside another service on another address', async () => {
    const port = await freePort('127.0.0.1');
    await service('onone', '--publish', `127.0.0.31:${port}:8000`);
    await service('ontwo', '--publish', `published=${port},target=8000,host_ip=127.0.0.32`);
    // An address this host does not have: nothing opens, and nothing fails.
    await service('elsewhere', '--publish', `10.255.255.77:${port}:8000`);
    await m.ctl('task', 'add', 'onone', '--ip', '127.213.9.1');
    await m.ctl('task', 'add', 'ontwo', '--ip', '127.213.9.2');
    const one = await httpBackend('one', '127.213.9.1', 8000);
    const two = await httpBackend('two', '127.213.9.2', 8000);
    cleanups.push(
      () => one.kill(),
      () => two.kill(),
    );
    await eventually(async () => {
      expect((await fetchOnce(`http://127.0.0.31:${port}/`)).body).toBe('one');
      expect((await fetchOnce(`http://127.0.0.32:${port}/`)).body).toBe('two');
    });
    // Not on the node's publish address, nor on any other.
    await expect(fetchOnce(`http://127.0.0.1:${port}/`)).rejects.toThrow(/ECONNREFUSED/);
    const [svc] = JSON.parse(await m.ctl('service', 'inspect', 'elsewhere')) as {
      status: { errors: string[] };
    }[];
    expect(svc?.status.errors).toEqual([]);
  });

  it('opens a host-mode port only where a task of the service runs', async () => {
    const port = await freePort();
    await service('hosted', '--publish', `published=${port},target=8000,mode=host`);
    const refused = () =>
      new Promise<boolean>((r) => {
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          r(false);
        });
        s.once('error', () => r(true));
      });
    expect(await refused()).toBe(true);
    const b = await httpBackend('h', '127.213.4.1', 8000);
    cleanups.push(() => b.kill());
    await m.ctl('task', 'add', 'hosted', '--ip', '127.213.4.1');
    await eventually(async () => expect((await fetchOnce(`http://127.0.0.1:${port}/`)).body).toBe('h'));
  });

  it('drops the metric series of a deleted service', async () => {
    const port = await freePort();
    await m.ctl('service', 'create', '--name', 'ephemeral', '--network', 'pol', '-p', `${port}:8000`);
    const b = await httpBackend('e', '127.213.5.1', 8000);
    cleanups.push(() => b.kill());
    await m.ctl('task', 'add', 'ephemeral', '--ip', '127.213.5.1');
    await eventually(async () => expect((await fetchOnce(`http://127.0.0.1:${port}/`)).status).toBe(200));
    const metrics = async () => (await fetch(`http://${m.metrics}/metrics`)).text();
    expect(await metrics()).toContain('service="ephemeral"');
    await m.ctl('service', 'rm', 'ephemeral');
    await eventually(async () => expect(await metrics()).not.toContain('service="ephemeral"'));
  });
});

describe('UDP through the mesh', () => {
  it("moves a client's flow off a task that departs, and sends PROXY v2 before each datagram when asked", async () => {
    const port = await freePort();
    await service('uflow', '-p', `${port}:5300/udp`, '--proxy-protocol', 'v2');
    const echoes = await Promise.all([
      udpEcho('u1', '127.213.6.1', 5300),
      udpEcho('u2', '127.213.6.2', 5300),
    ]);
    cleanups.push(() => {
      for (const e of echoes) e.close();
    });
    const ids = [
      (await m.ctl('task', 'add', 'uflow', '--ip', '127.213.6.1')).trim(),
      (await m.ctl('task', 'add', 'uflow', '--ip', '127.213.6.2')).trim(),
    ];
    const client = createSocket('udp4');
    cleanups.push(() => client.close());
    const replies: string[] = [];
    client.on('message', (msg) => replies.push(msg.toString('latin1')));
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    await eventually(async () => {
      client.send('first', port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 50));
      expect(replies.length).toBeGreaterThan(0);
    });
    // The task saw a PROXY v2 header (its 12-byte signature) with the client's address, then the payload.
    const seen = echoes.flatMap((e) => e.seen);
    const signature = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
    expect(seen[0]?.subarray(0, 12).equals(signature)).toBe(true);
    expect(seen[0]?.toString('latin1').endsWith('first')).toBe(true);
    const owner = (replies.at(-1) as string).split(':')[0] as string;
    // The task that holds the flow departs: the next datagram from the same client goes to the other.
    await m.ctl('task', 'rm', ids[owner === 'u1' ? 0 : 1] as string);
    const other = owner === 'u1' ? 'u2' : 'u1';
    await eventually(async () => {
      client.send('again', port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 50));
      expect(replies.at(-1)?.startsWith(`${other}:`)).toBe(true);
    });
  });
});

describe('the panic rule', () => {
  it('with panic: all, routes to every task when none is healthy (refuse is the default)', async () => {
    const p = await startMeshd({
      config: `
mesh:
  publishAddr: 127.0.0.1
  panic: all
declare:
  networks: [{ name: panic, subnet: 127.214.0.0/16 }]
`,
    });
    cleanups.push(() => p.stop());
    const port = await freePort();
    await p.ctl(
      'service',
      'create',
      '--name',
      'sick',
      '--network',
      'panic',
      '-p',
      `${port}:8000`,
      '--health-type',
      'http',
      '--health-path',
      '/healthz',
      '--health-interval',
      '200ms',
      '--health-retries',
      '1',
    );
    const b = await httpBackend('sick-but-up', '127.214.1.1', 8000);
    b.status = 500; // every probe fails
    cleanups.push(() => b.kill());
    await p.ctl('task', 'add', 'sick', '--ip', '127.214.1.1');
    await eventually(async () => expect(await p.ctl('service', 'ps', 'sick')).toMatch(/unhealthy/), 10_000);
    const r = await fetchOnce(`http://127.0.0.1:${port}/`);
    expect(r.body).toBe('sick-but-up');
  });
});

describe('IPv6 end to end', () => {
  it('answers AAAA for a service on an IPv6 network and balances its VIP and a published port on an IPv6 address to an IPv6 task', async () => {
    const task = 'fd00:214::10';
    execFileSync('ip', ['-6', 'addr', 'add', `${task}/128`, 'dev', 'lo', 'nodad']);
    cleanups.push(() => execFileSync('ip', ['-6', 'addr', 'del', `${task}/128`, 'dev', 'lo']));
    await m.ctl('network', 'create', '--subnet', 'fd00:214::/64', 'six');
    cleanups.push(() => m.ctl('network', 'rm', 'six').catch(() => undefined));
    const port = await freePort();
    await m.ctl(
      'service',
      'create',
      '--name',
      'six',
      '--network',
      'six',
      '--expose',
      '8000',
      '-p',
      `[::1]:${port}:8000`,
    );
    cleanups.push(() => m.ctl('service', 'rm', 'six').catch(() => undefined));
    const b = await httpBackend('v6-task', task, 8000);
    cleanups.push(() => b.kill());
    await m.ctl('task', 'add', 'six', '--ip', task);
    const vip = JSON.parse(await m.ctl('service', 'inspect', 'six'))[0].networks[0].vip as string;
    expect(vip).toMatch(/^fd00:214::/);
    expect(await digShort(m.dns, 'AAAA', 'six')).toEqual([vip]);
    await eventually(
      async () => expect((await fetchOnce(`http://[${vip}]:8000/`)).body).toBe('v6-task'),
      10_000,
    );
    // The published port listens on the IPv6 address it names.
    await eventually(async () => expect((await fetchOnce(`http://[::1]:${port}/`)).body).toBe('v6-task'));
  });
});
