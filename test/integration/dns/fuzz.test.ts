import { randomBytes, randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import * as packet from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';

const config = `
declare:
  networks: [{ name: front, subnet: 127.237.0.0/16 }]
  services: [{ name: web, endpointMode: dnsrr, networks: [{ network: front }] }]
  tasks: [{ service: web, count: 5 }]
`;

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]);
}

const valid = packet.encode({
  type: 'query',
  id: 1,
  flags: packet.RECURSION_DESIRED,
  questions: [{ type: 'A', name: 'tasks.web', class: 'IN' }],
});

/** Random bytes, or a valid query with a few bytes flipped, truncated or extended. */
function junk(): Buffer {
  if (Math.random() < 0.4) return randomBytes(randomInt(0, 700));
  const b = Buffer.from(valid);
  for (let i = randomInt(1, 6); i > 0; i--) b[randomInt(0, b.length)] = randomInt(0, 256);
  if (Math.random() < 0.3) return b.subarray(0, randomInt(0, b.length));
  if (Math.random() < 0.3) return Buffer.concat([b, randomBytes(randomInt(1, 100))]);
  return b;
}

/** A 64 KiB message whose question is a long chain of compression pointers (the dns2 stall). */
function pointerBomb(): Buffer {
  const b = Buffer.alloc(65000);
  b.writeUInt16BE(1, 4);
  for (let off = 12; off + 2 <= b.length; off += 2)
    b.writeUInt16BE(0xc000 | (off + 2 < b.length ? off + 2 : 12), off);
  return b;
}

describe('DNS under malformed input', () => {
  let m: MeshdProcess;
  beforeAll(async () => {
    m = await startMeshd({ config });
  });
  afterAll(async () => {
    await m?.stop();
  });

  it('keeps answering valid queries through 30,000 bad UDP packets and bad TCP streams, with bounded memory', async () => {
    const [host, portText] = m.dns.split(':') as [string, string];
    const port = Number(portText);
    const r = new Resolver({ timeout: 2000, tries: 2 });
    r.setServers([m.dns]);
    expect(await r.resolve4('tasks.web')).toHaveLength(5);
    const pid = m.child.pid as number;
    const before = rssKb(pid);
    const sock = createSocket('udp4');
    let answered = 0;
    let failed = 0;
    for (let round = 0; round < 30; round++) {
      for (let i = 0; i < 1000; i++) sock.send(junk(), port, host);
      // TCP: junk frames, bad lengths, a pointer bomb, and connections left half-written.
      for (let i = 0; i < 3; i++) {
        const c = connect(port, host);
        c.on('error', () => {});
        const body = round % 10 === 0 && i === 0 ? pointerBomb() : junk();
        const len = Buffer.alloc(2);
        len.writeUInt16BE(Math.random() < 0.5 ? body.length : randomInt(0, 65536));
        c.write(Buffer.concat([len, body]));
        setTimeout(() => c.destroy(), 200);
      }
      try {
        const got = await r.resolve4('tasks.web');
        if (got.length === 5) answered++;
      } catch {
        failed++;
      }
    }
    sock.close();
    expect(answered).toBeGreaterThanOrEqual(28);
    expect(failed).toBeLessThanOrEqual(2);
    // After the storm, still answering (the resolver's own 1 s timeout and single try bound it).
    expect(await r.resolve4('tasks.web')).toHaveLength(5);
    const after = rssKb(pid);
    expect(after - before).toBeLessThan(64 * 1024);
    const metrics = await (await fetch(`http://${m.metrics}/metrics`)).text();
    expect(metrics).toMatch(
      /meshd_dns_requests_total\{proto="udp",qtype="\w+",rcode="FORMERR",source="local"\} [1-9]/,
    );
  });

  it('answers a pointer bomb over TCP at once and keeps serving', async () => {
    const [host, portText] = m.dns.split(':') as [string, string];
    const bomb = pointerBomb();
    const reply = await new Promise<Buffer | undefined>((resolve) => {
      const c = connect(Number(portText), host);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(bomb.length);
      c.write(Buffer.concat([len, bomb]));
      let buf = Buffer.alloc(0);
      c.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          c.destroy();
          resolve(buf.subarray(2));
        }
      });
      c.on('close', () => resolve(undefined));
      c.on('error', () => resolve(undefined));
    });
    // FORMERR, or the connection closed (too large to be a query): either way, at once. The
    // promise above settles only on one of the two; the test's own timeout bounds it.
    expect(reply === undefined || (reply.readUInt16BE(2) & 0xf) === 1).toBe(true);
    const r = new Resolver({ timeout: 1000, tries: 1 });
    r.setServers([m.dns]);
    expect(await r.resolve4('tasks.web')).toHaveLength(5);
  });
});
