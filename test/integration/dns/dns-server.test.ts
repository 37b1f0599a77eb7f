import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Dnsmasq,
  dig,
  digShort,
  digStatus,
  scriptedUpstream,
  startDnsmasq,
} from '../../helpers/dns-tools.js';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { freePort } from '../../helpers/ports.js';

const config = `
dns:
  ttl: 5
declare:
  networks:
    - { name: front, subnet: 127.201.0.0/16, attachable: true }
    - { name: back, subnet: 127.202.0.0/16 }
  services:
    - { name: web, networks: [{ network: front, aliases: [www] }], ports: [{ published: 0, target: 80 }] }
    - { name: api, endpointMode: dnsrr, networks: [{ network: front }] }
    - { name: big, endpointMode: dnsrr, networks: [{ network: back }] }
    - { name: db, networks: [{ network: back }] }
  tasks:
    - { service: web, count: 3 }
    - { service: api, count: 2 }
    - { service: big, count: 500 }
    - { service: db, count: 1 }
`;

describe('DNS server with real clients', () => {
  let m: MeshdProcess;
  let upstream: Dnsmasq;
  beforeAll(async () => {
    upstream = await startDnsmasq('127.0.53.1', await freePort('127.0.53.1'), { 'ext.example': '192.0.2.7' });
    m = await startMeshd({ config, args: ['--upstream', upstream.address.replace(/:(\d+)$/, ':$1')] });
  }, 60_000);
  afterAll(async () => {
    await m?.stop();
    await upstream?.stop();
  });

  it('answers service, alias and tasks names over UDP and TCP', async () => {
    expect(await digShort(m.dns, 'web')).toEqual(['127.201.0.2']);
    expect(await digShort(m.dns, 'WWW.meshd.')).toEqual(['127.201.0.2']);
    expect(await digShort(m.dns, '+tcp', 'tasks.web')).toEqual(['127.201.0.3', '127.201.0.4', '127.201.0.5']);
    expect(await digShort(m.dns, 'api')).toHaveLength(2);
  });

  it('scopes answers by the client source address (dig -b)', async () => {
    expect(await digShort(m.dns, '-b', '127.201.0.99', 'api')).toHaveLength(2);
    expect(digStatus(await dig(m.dns, '-b', '127.202.0.99', 'api'))).toBe('NXDOMAIN');
    expect(await digShort(m.dns, '-b', '127.202.0.99', 'db')).toEqual(['127.202.0.2']);
    expect(digStatus(await dig(m.dns, '-b', '127.201.0.99', 'db'))).toBe('NXDOMAIN');
  });

  it('sets AA, echoes EDNS, puts an SOA in negative answers', async () => {
    const pos = await dig(m.dns, 'web');
    expect(pos).toMatch(/flags: qr aa rd ra;/);
    expect(pos).toMatch(/EDNS: version: 0, flags:; udp: 1232/);
    const nx = await dig(m.dns, 'nosuch.meshd');
    expect(digStatus(nx)).toBe('NXDOMAIN');
    expect(nx).toMatch(/meshd\.\s+5\s+IN\s+SOA\s+ns\.meshd\. hostmaster\.meshd\./);
    const nodata = await dig(m.dns, 'web', 'AAAA');
    expect(digStatus(nodata)).toBe('NOERROR');
    expect(nodata).toMatch(/ANSWER: 0, AUTHORITY: 1/);
  });

  it('truncates big UDP answers and returns all 500 records over TCP', async () => {
    const udp = await dig(m.dns, '+ignore', '+noedns', 'tasks.big');
    expect(udp).toMatch(/flags: qr aa tc rd ra;/);
    const bufsize = await dig(m.dns, '+ignore', '+bufsize=1232', 'tasks.big');
    expect(bufsize).toMatch(/ tc /);
    const count = Number(/ANSWER: (\d+)/.exec(bufsize)?.[1]);
    expect(count).toBeGreaterThan(60);
    expect(count).toBeLessThan(80);
    expect(await digShort(m.dns, '+tcp', 'tasks.big')).toHaveLength(500);
    // dig retries over TCP by itself on TC, as a stub resolver does
    expect(await digShort(m.dns, 'big')).toHaveLength(500);
  });

  it('answers PTR and SRV', async () => {
    expect(await digShort(m.dns, '-x', '127.201.0.2')).toEqual(['web.front.meshd.']);
    const [port] = JSON.parse(await m.ctl('service', 'inspect', 'web')).map(
      (s: { ports: { published: number }[] }) => s.ports[0]?.published,
    );
    expect(await digShort(m.dns, 'SRV', `_${port}._tcp.web`)).toEqual(['0 10 80 web.meshd.']);
  });

  it('serves node:dns', async () => {
    const r = new Resolver();
    r.setServers([m.dns]);
    expect(await r.resolve4('web')).toEqual(['127.201.0.2']);
    expect((await r.resolve4('tasks.web')).sort()).toEqual(['127.201.0.3', '127.201.0.4', '127.201.0.5']);
    await expect(r.resolve4('nosuch.meshd')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('shuffles multi-record answers', async () => {
    const r = new Resolver();
    r.setServers([m.dns]);
    const firsts = new Set<string>();
    for (let i = 0; i < 30; i++) firsts.add((await r.resolve4('tasks.web'))[0] as string);
    expect(firsts.size).toBe(3);
  });

  it('forwards other names and passes NXDOMAIN through', async () => {
    expect(await digShort(m.dns, 'ext.example')).toEqual(['192.0.2.7']);
    expect(digStatus(await dig(m.dns, 'missing.example'))).toBe('NXDOMAIN');
  });

  it('follows changes at once: a removed task leaves, a new one appears', async () => {
    const tasks = JSON.parse(await m.ctl('task', 'ls', '--service', 'web', '--format', 'json')) as {
      id: string;
    }[];
    await m.ctl('task', 'rm', tasks[0]?.id as string);
    expect(await digShort(m.dns, 'tasks.web')).toHaveLength(2);
    await m.ctl('task', 'add', 'web', '--ip', '127.201.9.9');
    expect(await digShort(m.dns, 'tasks.web')).toContain('127.201.9.9');
  });

  it('exports DNS metrics', async () => {
    // The traffic each series counts, so the test holds alone (`-t`) as well as after the others.
    await dig(m.dns, 'web');
    await dig(m.dns, 'ext.example');
    await dig(m.dns, '+ignore', '+noedns', 'tasks.big');
    const text = await (await fetch(`http://${m.metrics}/metrics`)).text();
    expect(text).toMatch(
      /meshd_dns_requests_total\{proto="udp",qtype="A",rcode="NOERROR",source="local"\} \d+/,
    );
    expect(text).toMatch(
      /meshd_dns_requests_total\{proto="udp",qtype="A",rcode="NOERROR",source="forward"\} \d+/,
    );
    expect(text).toMatch(/meshd_dns_truncated_total [1-9]/);
    expect(text).toMatch(/meshd_dns_upstream_requests_total\{upstream="127\.0\.53\.1:\d+",result="ok"\}/);
    expect(text).toMatch(/meshd_dns_cache_entries [1-9]/);
    expect(text).toMatch(/meshd_dns_request_duration_seconds_bucket/);
  });
});

describe('forwarding policy', () => {
  it('moves to the next upstream on SERVFAIL and REFUSED, SERVFAIL when all fail', async () => {
    const servfail = await scriptedUpstream('127.0.53.2', 'SERVFAIL');
    const refused = await scriptedUpstream('127.0.53.2', 'REFUSED');
    const good = await scriptedUpstream('127.0.53.2', 'NOERROR');
    const m = await startMeshd({
      args: ['--upstream', servfail.address, '--upstream', refused.address, '--upstream', good.address],
    });
    const alone = await startMeshd({ args: ['--upstream', servfail.address] });
    try {
      expect(await digShort(m.dns, 'anything.test')).toEqual(['198.51.100.9']);
      expect([servfail.count, refused.count, good.count]).toEqual([1, 1, 1]);
      expect(digStatus(await dig(alone.dns, 'other.test'))).toBe('SERVFAIL');
    } finally {
      await Promise.all([m.stop(), alone.stop(), servfail.close(), refused.close(), good.close()]);
    }
  });

  it('sends identical concurrent questions upstream once, and caches the answer', async () => {
    const slow = await scriptedUpstream('127.0.53.3', 'NOERROR', 300);
    const m = await startMeshd({ args: ['--upstream', slow.address] });
    try {
      const r = new Resolver({ timeout: 3000, tries: 1 });
      r.setServers([m.dns]);
      const answers = await Promise.all(Array.from({ length: 30 }, () => r.resolve4('same.test')));
      expect(answers.every((a) => a[0] === '198.51.100.9')).toBe(true);
      expect(slow.count).toBe(1);
      await r.resolve4('same.test');
      expect(slow.count).toBe(1);
    } finally {
      await Promise.all([m.stop(), slow.close()]);
    }
  });

  it('serves stale answers when every upstream is down', async () => {
    const up = await startDnsmasq(
      '127.0.53.4',
      await freePort('127.0.53.4'),
      { 'stale.example': '192.0.2.8' },
      1,
    );
    const m = await startMeshd({ args: ['--upstream', up.address] });
    try {
      expect(await digShort(m.dns, 'stale.example')).toEqual(['192.0.2.8']);
      await up.stop();
      // Once the 1 s TTL has run out, the answer comes from the stale cache (TTL 30).
      await eventually(
        async () => {
          const out = await dig(m.dns, '+noall', '+answer', 'stale.example');
          expect(out).toMatch(/stale\.example\.\s+30\s+IN\s+A\s+192\.0\.2\.8/);
        },
        10_000,
        200,
      );
    } finally {
      await m.stop();
      await up.stop();
    }
  });

  it('refuses recursion to clients outside the allowed ranges but still answers its own names', async () => {
    const good = await scriptedUpstream('127.0.53.5', 'NOERROR');
    const m = await startMeshd({
      config:
        'dns:\n  recursionAllowed: [127.0.0.1/32]\ndeclare:\n  networks: [{ name: n, subnet: 127.203.0.0/16 }]\n  services: [{ name: web, networks: [{ network: n }] }]\n',
      args: ['--upstream', good.address],
    });
    try {
      expect(digStatus(await dig(m.dns, '-b', '127.0.0.2', 'example.org'))).toBe('REFUSED');
      expect(await digShort(m.dns, '-b', '127.0.0.2', 'web')).toEqual(['127.203.0.2']);
      expect(await digShort(m.dns, '-b', '127.0.0.1', 'example.org')).toEqual(['198.51.100.9']);
      const out = await dig(m.dns, '-b', '127.0.0.2', 'web');
      expect(out).toMatch(/flags: qr aa rd;/);
    } finally {
      await Promise.all([m.stop(), good.close()]);
    }
  });

  it('moves on from a silent upstream after upstreamTimeout, answering its own names meanwhile', async () => {
    // An upstream that receives and never replies: the timeout path, not a quick ECONNREFUSED.
    const silent = createSocket('udp4');
    let received = 0;
    silent.on('message', () => {
      received++;
    });
    await new Promise<void>((r) => silent.bind(0, '127.0.53.6', () => r()));
    const silentAddr = `127.0.53.6:${silent.address().port}`;
    const good = await scriptedUpstream('127.0.53.7', 'NOERROR');
    const m = await startMeshd({
      config:
        'dns:\n  upstreamTimeout: 1500ms\ndeclare:\n  networks: [{ name: n, subnet: 127.204.0.0/16 }]\n  services: [{ name: web, networks: [{ network: n }] }]\n',
      args: ['--upstream', silentAddr, '--upstream', good.address],
    });
    try {
      const forwarded = digShort(m.dns, '+time=5', 'slow.test');
      // While the forward waits on the silent upstream, own names answer at once.
      await eventually(async () => expect(received).toBeGreaterThan(0));
      expect(await digShort(m.dns, 'web')).toEqual(['127.204.0.2']);
      // Then the next upstream answers.
      expect(await forwarded).toEqual(['198.51.100.9']);
      await eventually(async () => {
        const text = await (await fetch(`http://${m.metrics}/metrics`)).text();
        expect(text).toContain(
          `meshd_dns_upstream_requests_total{upstream="${silentAddr}",result="timeout"} 1`,
        );
        expect(text).toMatch(
          /meshd_dns_upstream_requests_total\{upstream="127\.0\.53\.7:\d+",result="ok"\} 1/,
        );
      });
    } finally {
      await m.stop();
      await good.close();
      silent.close();
    }
  });
});
