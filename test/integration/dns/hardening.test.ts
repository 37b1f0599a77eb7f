import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import * as packet from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig, digShort, digStatus, scriptedUpstream, startUnbound } from '../../helpers/dns-tools.js';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { freePort } from '../../helpers/ports.js';

/** The size dig reports for the response it received. */
function msgSize(out: string): number {
  return Number(/MSG SIZE\s+rcvd: (\d+)/.exec(out)?.[1]);
}

async function metric(m: MeshdProcess, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://${m.metrics}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}

function tcpTo(server: string, localAddress?: string): Promise<Socket> {
  const i = server.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const s = connect({ host: server.slice(0, i), port: Number(server.slice(i + 1)), localAddress });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) resolve();
    else s.once('close', () => resolve());
  });
}

describe('DNS hardening', () => {
  let m: MeshdProcess;
  beforeAll(async () => {
    m = await startMeshd({
      config: `
dns:
  unscopedClients: none
  recursionAllowed: [127.0.0.1/32]
  tcpMaxPerClient: 4
  tcpMaxLifetime: 1s
declare:
  networks:
    - { name: front, subnet: 127.211.0.0/16 }
    - { name: back, subnet: 127.212.0.0/16, internal: true }
  services:
    - { name: big, endpointMode: dnsrr, networks: [{ network: front }] }
    - { name: secret, networks: [{ network: back }] }
  tasks:
    - { service: big, count: 300 }
    - { service: secret, count: 1 }
`,
    });
  }, 60_000);
  afterAll(async () => {
    await m?.stop();
  });

  it('never sends a UDP answer over 1232 bytes, whatever EDNS size the client claims (amplification)', async () => {
    const out = await dig(m.dns, '-b', '127.211.9.9', '+ignore', '+bufsize=65000', 'tasks.big');
    expect(out).toMatch(/flags: qr aa tc/);
    expect(msgSize(out)).toBeGreaterThan(1000);
    expect(msgSize(out)).toBeLessThanOrEqual(1232);
    // The whole answer still comes over TCP.
    expect(await digShort(m.dns, '-b', '127.211.9.9', '+tcp', 'tasks.big')).toHaveLength(300);
  });

  it('answers PTR only to clients that see the network, as forward names', async () => {
    const tasks = JSON.parse(await m.ctl('task', 'ls', '--service', 'secret', '--format', 'json')) as {
      name: string;
      addresses: { address: string }[];
    }[];
    const addr = tasks[0]?.addresses[0]?.address as string;
    // A client on the internal network learns the task's name; an outsider does not.
    expect((await digShort(m.dns, '-b', '127.212.0.99', '-x', addr))[0]).toMatch(/^secret\.1\./);
    const outsider = await dig(m.dns, '-b', '127.0.0.1', '-x', addr);
    expect(digStatus(outsider)).toBe('NXDOMAIN');
    expect(outsider).not.toMatch(/secret\.1\./);
    // The VIP of a service on a network the client is not on: hidden too.
    const vip = JSON.parse(await m.ctl('service', 'inspect', 'secret'))[0].networks[0].vip as string;
    expect(digStatus(await dig(m.dns, '-b', '127.211.0.99', '-x', vip))).toBe('NXDOMAIN');
    expect(await digShort(m.dns, '-b', '127.212.0.99', '-x', vip)).toEqual(['secret.back.meshd.']);
  });

  it('sets RA on REFUSED only for clients allowed recursion', async () => {
    const refused = await dig(m.dns, '-b', '127.0.0.2', 'example.org');
    expect(digStatus(refused)).toBe('REFUSED');
    expect(refused).toMatch(/flags: qr rd;/);
  });

  it('caps TCP connections per client and the lifetime of each one', async () => {
    const mine: Socket[] = [];
    for (let i = 0; i < 4; i++) mine.push(await tcpTo(m.dns, '127.0.0.5'));
    const fifth = await tcpTo(m.dns, '127.0.0.5');
    await closed(fifth);
    // Another client still gets in while the first holds its share.
    const other = await tcpTo(m.dns, '127.0.0.6');
    expect(other.destroyed).toBe(false);
    expect(
      await metric(m, /meshd_dns_dropped_total\{reason="tcp_client_limit"\} (\d+)/),
    ).toBeGreaterThanOrEqual(1);
    // A connection kept busy (a byte now and then resets the idle timer) is still cut at its lifetime.
    // A 500-byte query announced, then trickled: each byte resets the idle timer.
    other.write(Buffer.from([0x01, 0xf4]));
    const busy = setInterval(() => other.write(Buffer.from([0])), 100);
    try {
      await closed(other);
    } finally {
      clearInterval(busy);
    }
    expect(await metric(m, /meshd_dns_dropped_total\{reason="tcp_lifetime"\} (\d+)/)).toBeGreaterThanOrEqual(
      1,
    );
    for (const s of mine) s.destroy();
  });
});

describe('forwarding hardening', () => {
  it('keeps a label that holds a dot apart from the name with that many labels (cache poisoning)', async () => {
    const address = '127.0.54.1';
    const upstream = await startUnbound(address, await freePort(address), 'test', {
      'api.bank.test': '192.0.2.10',
    });
    const m = await startMeshd({ args: ['--upstream', upstream.address] });
    try {
      // One label "api.bank" under test: the upstream says NXDOMAIN with a cacheable SOA.
      expect(digStatus(await dig(m.dns, 'api\\.bank.test'))).toBe('NXDOMAIN');
      // The three-label name must not be answered from that negative entry.
      expect(await digShort(m.dns, 'api.bank.test')).toEqual(['192.0.2.10']);
      // And the other way round, after the real name is cached.
      expect(digStatus(await dig(m.dns, 'api\\.bank.test'))).toBe('NXDOMAIN');
    } finally {
      await m.stop();
      await upstream.stop();
    }
  });

  it("leaves out an upstream that is meshd's own wildcard listen address", async () => {
    const good = await scriptedUpstream('127.0.54.2', 'NOERROR');
    const port = await freePort('0.0.0.0');
    const m = await startMeshd({
      args: [
        '--dns-listen',
        `0.0.0.0:${port}`,
        '--upstream',
        `127.0.0.1:${port}`,
        '--upstream',
        good.address,
      ],
    });
    try {
      expect(await digShort(`127.0.0.1:${port}`, 'anything.test')).toEqual(['198.51.100.9']);
      expect(good.count).toBe(1);
      expect(m.logs.some((l) => l.includes('leaving out an upstream that is meshd itself'))).toBe(true);
      await eventually(async () => {
        const text = await (await fetch(`http://${m.metrics}/metrics`)).text();
        expect(text).toMatch(
          /meshd_dns_upstream_requests_total\{upstream="127\.0\.54\.2:\d+",result="ok"\} 1/,
        );
        expect(text).not.toContain(`upstream="127.0.0.1:${port}"`);
      });
    } finally {
      await Promise.all([m.stop(), good.close()]);
    }
  });
});

describe('the forward cache', () => {
  it('caches NXDOMAIN for the SOA minimum, and answers SERVFAIL once the serve-stale window has passed', async () => {
    // An upstream that says NXDOMAIN with an SOA whose minimum is 1 s, and counts the questions.
    const upstream = createSocket('udp4');
    let asked = 0;
    upstream.on('message', (msg, r) => {
      asked++;
      const q = packet.decode(msg);
      const res = packet.encode({
        type: 'response',
        id: q.id,
        flags: 3, // NXDOMAIN
        questions: q.questions,
        authorities: [
          {
            type: 'SOA',
            name: 'test',
            ttl: 1,
            class: 'IN',
            data: {
              mname: 'ns.test',
              rname: 'h.test',
              serial: 1,
              refresh: 60,
              retry: 60,
              expire: 60,
              minimum: 1,
            },
          },
        ],
      });
      upstream.send(res, r.port, r.address);
    });
    await new Promise<void>((r) => upstream.bind(0, '127.0.54.3', () => r()));
    const m = await startMeshd({
      config: 'dns:\n  serveStale: 1s\n',
      args: ['--upstream', `127.0.54.3:${upstream.address().port}`],
    });
    try {
      expect(digStatus(await dig(m.dns, 'gone.test'))).toBe('NXDOMAIN');
      expect(digStatus(await dig(m.dns, 'gone.test'))).toBe('NXDOMAIN');
      expect(asked).toBe(1); // the second from the cache
      // After the SOA minimum, asked again.
      await eventually(
        async () => {
          expect(digStatus(await dig(m.dns, 'gone.test'))).toBe('NXDOMAIN');
          expect(asked).toBe(2);
        },
        10_000,
        200,
      );
      // The upstream goes away: a stale answer only within serveStale (1 s), SERVFAIL after.
      upstream.close();
      await eventually(
        async () => expect(digStatus(await dig(m.dns, '+time=2', 'gone.test'))).toBe('SERVFAIL'),
        15_000,
        300,
      );
    } finally {
      await m.stop();
    }
  }, 60_000);
});
