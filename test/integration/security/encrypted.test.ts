import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, createRequest, signRequest } from '../../../src/security/pki.js';
import { tlsOptions } from '../../../src/security/tls.js';
import {
  type Backend,
  echoAfterFin,
  fetchOnce,
  halfCloseExchange,
  httpBackend,
  udpEcho,
} from '../../helpers/backends.js';
import { type EtcdServer, startEtcd } from '../../helpers/etcd.js';
import { eventually, sleep } from '../../helpers/eventually.js';
import { clusterCaKey } from '../../helpers/member.js';
import { type MeshdProcess, meshdFails, startMeshd } from '../../helpers/meshd.js';
import { freePort } from '../../helpers/ports.js';

// Node A (the CA holder) publishes the services; node B runs their tasks. Between them sits a
// tap: B advertises its data plane on the tap's address, and the tap relays to B while keeping
// every byte it sees, so the test can look for a marker on the wire.
let etcd: EtcdServer;
let a: MeshdProcess;
let b: MeshdProcess;
let tap: Server;
const wire: Buffer[] = [];
const backends: Backend[] = [];
let token = '';
let bData = 0;

const tapConns = new Set<Socket>();

function startTap(listenHost: string, listenPort: number, toHost: string, toPort: number): Promise<Server> {
  const server = createServer((c: Socket) => {
    const up = connect(toPort, toHost);
    tapConns.add(c);
    c.on('close', () => tapConns.delete(c));
    c.on('data', (d) => wire.push(Buffer.from(d)));
    up.on('data', (d) => wire.push(Buffer.from(d)));
    c.pipe(up);
    up.pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  return new Promise((resolve) => server.listen(listenPort, listenHost, () => resolve(server)));
}

const rotation = ['--cert-rotation', '3s'];

beforeAll(async () => {
  etcd = await startEtcd();
  a = await startMeshd({
    config: 'mesh:\n  remoteTasks: dataplane\n',
    args: [
      '--store',
      `etcd://${etcd.endpoint}`,
      '--node-name',
      'A',
      '--publish-addr',
      '127.0.51.1',
      '--advertise-addr',
      '127.0.51.1',
      '--api-listen',
      '127.0.51.1:0',
      ...rotation,
    ],
  });
  token = (await a.ctl('swarm', 'join-token', '-q', 'worker')).trim();
  expect(token).toMatch(/^SWMTKN-1-[0-9a-f]{64}-[0-9a-f]{32}$/);
  bData = await freePort('127.0.52.1');
  const tapPort = await freePort('127.0.57.1');
  tap = await startTap('127.0.57.1', tapPort, '127.0.52.1', bData);
  b = await startMeshd({
    args: [
      '--store',
      `etcd://${etcd.endpoint}`,
      '--node-name',
      'B',
      '--join-token',
      token,
      '--data-listen',
      `127.0.52.1:${bData}`,
      '--data-advertise',
      `127.0.57.1:${tapPort}`,
      '--advertise-addr',
      '127.0.52.1',
      '--publish-addr',
      '127.0.52.1',
      '--api-listen',
      '127.0.52.1:0',
      ...rotation,
    ],
  });
  await eventually(
    async () => {
      const nodes = JSON.parse(await a.ctl('node', 'ls', '--format', 'json')) as {
        name: string;
        dataTls?: boolean;
      }[];
      expect(nodes.map((n) => `${n.name}:${n.dataTls}`).sort()).toEqual(['A:true', 'B:true']);
    },
    15_000,
    100,
  );
}, 60_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  tap?.close();
  await Promise.all(backends.map((x) => x.kill()));
  await etcd?.remove();
});

async function serviceOnB(name: string, net: string, subnet: string, opts: string[]): Promise<number> {
  const port = await freePort('127.0.51.1');
  await a.ctl('network', 'create', '--subnet', `${subnet}.0.0/16`, ...opts, net);
  await a.ctl('service', 'create', '--name', name, '--network', net, '-p', `${port}:8000`);
  const backend = await httpBackend(`secret-${name}`, `${subnet}.0.10`, 8000);
  backends.push(backend);
  await b.ctl('task', 'add', name, '--ip', `${subnet}.0.10`);
  await eventually(
    async () => expect((await fetchOnce(`http://127.0.51.1:${port}/`)).status).toBe(200),
    10_000,
    100,
  );
  return port;
}

/** The encrypted network `secnet` with `vault` on B: made once, by whichever test needs it first (so each runs alone too). */
let vault: Promise<number> | undefined;
const givenVault = () => {
  vault ??= serviceOnB('vault', 'secnet', '127.241', ['--opt', 'encrypted']);
  return vault;
};

describe('encrypted overlay networks', () => {
  it("never puts a network's traffic between nodes on the wire in clear (a clear probe through the tap shows it would)", async () => {
    const enc = await givenVault();
    const plain = await serviceOnB('open', 'plainnet', '127.242', []);
    wire.length = 0;
    const marker = `MARKER-${Math.random().toString(36).slice(2)}`;
    const r = await fetchOnce(`http://127.0.51.1:${enc}/${marker}`);
    expect(r.body).toBe('secret-vault');
    const seen = Buffer.concat(wire);
    expect(seen.length).toBeGreaterThan(100);
    expect(seen.includes(marker)).toBe(false);
    expect(seen.includes('secret-vault')).toBe(false);
    // TLS records (handshake 0x16 or application data 0x17: the tunnel may already be up).
    expect([0x16, 0x17]).toContain(seen[0]);
    // The unencrypted network takes the same authenticated tunnel (the data plane speaks only
    // mTLS), so its marker stays off the wire too.
    wire.length = 0;
    expect((await fetchOnce(`http://127.0.51.1:${plain}/${marker}`)).body).toBe('secret-open');
    expect(Buffer.concat(wire).length).toBeGreaterThan(100);
    expect(Buffer.concat(wire).includes(marker)).toBe(false);
    // Positive control: bytes sent in clear through the tap do show up, so the checks above can fail.
    wire.length = 0;
    const [tapHost, tapPort] = JSON.parse(await a.ctl('node', 'ls', '--format', 'json'))
      .find((n: { name: string }) => n.name === 'B')
      .dataListen.split(':');
    const probe = connect(Number(tapPort), tapHost);
    probe.on('error', () => undefined);
    probe.end(marker);
    await eventually(async () => expect(Buffer.concat(wire).includes(marker)).toBe(true));
    const metrics = await (await fetch(`http://${a.metrics}/metrics`)).text();
    expect(metrics).toMatch(/meshd_dataplane_handshakes_total\{peer="B",result="(ok|resumed)"\} [1-9]/);
    expect(metrics).toMatch(/meshd_cert_expiry_timestamp_seconds [1-9]/);
  });

  it('carries UDP flows of an encrypted network through the tunnel too', async () => {
    await givenVault();
    const port = await freePort('127.0.51.1');
    await a.ctl('service', 'create', '--name', 'usec', '--network', 'secnet', '-p', `${port}:5300/udp`);
    const echo = await udpEcho('far', '127.241.0.20', 5300);
    try {
      await b.ctl('task', 'add', 'usec', '--ip', '127.241.0.20');
      const client = createSocket('udp4');
      const replies: string[] = [];
      client.on('message', (m) => replies.push(m.toString()));
      await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
      const marker = `UDPMARK-${Math.random().toString(36).slice(2)}`;
      await eventually(
        async () => {
          wire.length = 0;
          client.send(marker, port, '127.0.51.1');
          await sleep(100);
          expect(replies.at(-1)).toBe(`far:${marker}`);
        },
        15_000,
        200,
      );
      client.close();
      const seen = Buffer.concat(wire);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.includes(marker)).toBe(false);
    } finally {
      echo.close();
    }
  });

  it('forwards half-close through the tunnel: the client FIN reaches the task, which still answers', async () => {
    await givenVault();
    const port = await freePort('127.0.51.1');
    await a.ctl('service', 'create', '--name', 'halfsec', '--network', 'secnet', '-p', `${port}:7000`);
    const server = await echoAfterFin('127.241.0.30', 7000);
    try {
      await b.ctl('task', 'add', 'halfsec', '--ip', '127.241.0.30');
      await eventually(
        async () => {
          wire.length = 0;
          const reply = await halfCloseExchange('127.0.51.1', port, 'hello');
          expect(reply).toBe('got hello');
          // And it did cross the tunnel (through the tap), not some other path.
          expect(Buffer.concat(wire).length).toBeGreaterThan(0);
        },
        15_000,
        200,
      );
    } finally {
      server.close();
    }
  });

  it('refuses a certificate from another CA, an expired one, and one of a removed node', async () => {
    await givenVault();
    const dial = (cert: string, key: string, ca: string) =>
      new Promise<string>((resolve) => {
        // The data plane's own opening: one STARTTLS byte, its go-ahead, then TLS on the socket.
        const raw = connect(bData, '127.0.52.1');
        raw.on('error', (e) => resolve(`error ${e.message}`));
        raw.once('connect', () => raw.write(Buffer.from('T')));
        raw.once('data', () => {
          const s = tlsConnect({
            socket: raw,
            cert,
            key,
            ca,
            ...tlsOptions,
            checkServerIdentity: () => undefined,
          });
          // A real request through the tunnel protocol: an OPEN for vault's task, then an HTTP GET.
          s.on('secureConnect', () =>
            s.write(
              Buffer.concat([frame(1, `MESHD/1 ${vaultTask} 8000`), frame(2, 'GET / HTTP/1.0\r\n\r\n')]),
            ),
          );
          s.on('data', () => resolve('data'));
          s.on('error', (e) => resolve(`error ${e.message}`));
          s.on('close', () => resolve('closed'));
        });
      });
    const frame = (type: number, text: string) => {
      const body = Buffer.from(text);
      const h = Buffer.alloc(9);
      h[0] = type;
      h.writeUInt32BE(1, 1);
      h.writeUInt32BE(body.length, 5);
      return Buffer.concat([h, body]);
    };
    const vaultTask = (
      JSON.parse(await a.ctl('task', 'ls', '--service', 'vault', '--format', 'json')) as { id: string }[]
    )[0]?.id;
    // Sanity (so the refusals below mean something): a member's certificate gets an answer.
    const member = readFileSync(join(a.stateDir, 'node.crt'), 'utf8');
    const memberKey = readFileSync(join(a.stateDir, 'node.key'), 'utf8');
    expect(await dial(member, memberKey, readFileSync(join(a.stateDir, 'ca.crt'), 'utf8'))).toBe('data');
    const stranger = await createCa('other');
    const req = await createRequest('intruder');
    const cert = await signRequest(stranger, req.csr, 'intruder', 60_000);
    const caPem = readFileSync(join(b.stateDir, 'ca.crt'), 'utf8');
    expect(await dial(cert, req.key, caPem)).toMatch(/closed|error/);
    // A certificate of this cluster's CA that has expired, for a real member's id: refused too.
    const caKey = await clusterCaKey(a.stateDir, a.api);
    const [bSelf] = JSON.parse(await b.ctl('node', 'inspect')) as { id: string }[];
    const old = await createRequest(bSelf?.id as string);
    const expired = await signRequest({ cert: caPem, key: caKey }, old.csr, bSelf?.id as string, -30_000);
    expect(await dial(expired, old.key, caPem)).toMatch(/closed|error/);
    // A node that joined, then was removed: its own valid certificate no longer gets in.
    const c = await startMeshd({
      args: [
        '--store',
        `etcd://${etcd.endpoint}`,
        '--node-name',
        'C',
        '--join-token',
        token,
        '--lease-ttl',
        '1s',
      ],
    });
    const cCert = readFileSync(join(c.stateDir, 'node.crt'), 'utf8');
    const cKey = readFileSync(join(c.stateDir, 'node.key'), 'utf8');
    expect((await import('node:fs')).statSync(join(c.stateDir, 'node.key')).mode & 0o777).toBe(0o600);
    // Accepted while C is a member (so the refusal below is the removal's doing).
    await eventually(async () => expect(await dial(cCert, cKey, caPem)).toBe('data'), 10_000, 200);
    await c.stop(true);
    await eventually(async () => expect(await a.ctl('node', 'rm', 'C')).toContain('C'), 10_000, 200);
    expect(await dial(cCert, cKey, caPem)).toMatch(/closed|error/);
  });

  it('refuses a wrong or rotated join token with a clear error', async () => {
    const wrong = token.replace(/-[0-9a-f]{32}$/, `-${'0'.repeat(32)}`);
    const r = await meshdFails([
      '--store',
      `etcd://${etcd.endpoint}`,
      '--node-name',
      'D',
      '--join-token',
      wrong,
      '--state-dir',
      `/tmp/meshd-d-${process.pid}`,
      '--api-listen',
      '127.0.0.1:0',
      '--dns-listen',
      'off',
      '--metrics-listen',
      'off',
      '--data-listen',
      '127.0.0.1:0',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('join token is invalid or has been rotated');
    const rotated = (await a.ctl('swarm', 'join-token', '--rotate', '-q', 'worker')).trim();
    expect(rotated).not.toBe(token);
    const old = await meshdFails([
      '--store',
      `etcd://${etcd.endpoint}`,
      '--node-name',
      'E',
      '--join-token',
      token,
      '--state-dir',
      `/tmp/meshd-e-${process.pid}`,
      '--api-listen',
      '127.0.0.1:0',
      '--dns-listen',
      'off',
      '--metrics-listen',
      'off',
      '--data-listen',
      '127.0.0.1:0',
    ]);
    expect(old.stderr).toContain('join token is invalid or has been rotated');
  });

  it('rotates certificates under traffic without a failed request', async () => {
    await givenVault();
    const [svc] = JSON.parse(await a.ctl('service', 'inspect', 'vault')) as {
      ports: { published: number }[];
    }[];
    const port = svc?.ports[0]?.published as number;
    const expiry = async () =>
      Number(
        /^meshd_cert_expiry_timestamp_seconds (\S+)$/m.exec(
          await (await fetch(`http://${b.metrics}/metrics`)).text(),
        )?.[1],
      );
    const first = await expiry();
    const failures: string[] = [];
    const until = Date.now() + 7000;
    while (Date.now() < until) {
      const r = await fetchOnce(`http://127.0.51.1:${port}/`).catch((e: Error) => ({
        status: 0,
        body: e.message,
      }));
      if (r.status !== 200) failures.push(r.body);
      await sleep(20);
    }
    expect(failures).toEqual([]);
    expect(await expiry()).toBeGreaterThan(first);
    // A new tunnel after the first certificate expired handshakes with a renewed one: cut the
    // tunnel (at the tap) and the next request must still get through, over a new handshake.
    const handshakes = async () =>
      Number(
        /^meshd_dataplane_handshakes_total\{peer="B",result="ok"\} (\S+)$/m.exec(
          await (await fetch(`http://${a.metrics}/metrics`)).text(),
        )?.[1] ?? 0,
      );
    await eventually(async () => expect(Date.now() / 1000).toBeGreaterThan(first), 15_000, 200);
    const before = await handshakes();
    for (const c of tapConns) c.destroy();
    await eventually(
      async () => expect((await fetchOnce(`http://127.0.51.1:${port}/`)).status).toBe(200),
      10_000,
      100,
    );
    expect(await handshakes()).toBeGreaterThan(before);
  }, 40_000);
});
