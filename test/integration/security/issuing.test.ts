import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseToken } from '../../../src/security/join-token.js';
import { createRequest } from '../../../src/security/pki.js';
import { joinProof } from '../../../src/security/seal.js';
import { type EtcdServer, startEtcd } from '../../helpers/etcd.js';
import { eventually, sleep } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';

// Who may issue certificates, and how joining proves the token: three nodes on one etcd, each
// with its own loopback address; certificates live 8 s (rotation 4 s) so renewals are frequent.
let etcd: EtcdServer;
const nodes: MeshdProcess[] = [];
let token = '';
const rotation = ['--cert-rotation', '4s', '--lease-ttl', '2s'];

function node(i: number, extra: string[] = []): Promise<MeshdProcess> {
  const addr = `127.0.7${i}.1`;
  return startMeshd({
    args: [
      '--store',
      `etcd://${etcd.endpoint}`,
      '--node-name',
      `n${i}`,
      '--advertise-addr',
      addr,
      '--api-listen',
      `${addr}:0`,
      '--data-listen',
      `${addr}:0`,
      ...rotation,
      ...extra,
    ],
  });
}

async function metric(m: MeshdProcess, name: string): Promise<number> {
  const text = await (await fetch(`http://${m.metrics}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
}

async function nodeList(
  m: MeshdProcess,
): Promise<{ id: string; name: string; state: string; canIssue?: boolean; dataTls?: boolean }[]> {
  return JSON.parse(await m.ctl('node', 'ls', '--format', 'json'));
}

beforeAll(async () => {
  etcd = await startEtcd();
  nodes.push(await node(1));
  token = (await nodes[0]?.ctl('swarm', 'join-token', '-q', 'worker'))?.trim() ?? '';
  expect(token).toMatch(/^SWMTKN-1-/);
}, 60_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await etcd?.remove();
});

describe('joining', () => {
  it('never sends the join secret on the wire, even over plain HTTP', async () => {
    const a = nodes[0] as MeshdProcess;
    const port = a.api.split(':').at(-1) as string;
    const dir = mkdtempSync(join(tmpdir(), 'meshd-cap-'));
    const pcap = join(dir, 'join.pcap');
    // --immediate-mode: without it libpcap hands packets over in blocks, and a block not yet
    // full when tcpdump is stopped is lost, with the join in it.
    const dump: ChildProcess = spawn(
      'tcpdump',
      ['-i', 'lo', '--immediate-mode', '-U', '-s', '0', '-w', pcap, `tcp port ${port}`],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    try {
      // Capturing once tcpdump says it listens (a fixed wait lost the join on a loaded machine).
      await new Promise<void>((resolve) => {
        let said = '';
        dump.stderr?.on('data', (d: Buffer) => {
          said += d.toString();
          if (said.includes('listening on')) resolve();
        });
        setTimeout(resolve, 10_000);
      });
      nodes.push(await node(2, ['--join-token', token]));
      await eventually(
        async () => expect((await nodeList(a)).find((n) => n.name === 'n2')?.dataTls).toBe(true),
        15_000,
      );
      await sleep(500);
    } finally {
      dump.kill('SIGTERM');
      await new Promise((r) => dump.once('exit', r));
    }
    const wire = readFileSync(pcap);
    rmSync(dir, { recursive: true, force: true });
    const secret = parseToken(token)?.secret as string;
    // Positive control: the capture holds the join request itself.
    expect(wire.includes('/swarm/join')).toBe(true);
    expect(wire.includes(secret)).toBe(false);
    expect(wire.includes(token)).toBe(false);
  }, 60_000);

  it('refuses a join for a node id that already has a certificate, even with a valid token', async () => {
    const a = nodes[0] as MeshdProcess;
    const secret = parseToken(token)?.secret as string;
    const victim = (await nodeList(a)).find((n) => n.name === 'n2')?.id as string;
    const ask = async (id: string) => {
      const { csr } = await createRequest(id);
      const nonce = randomBytes(16).toString('hex');
      const res = await fetch(`${a.api}/swarm/join`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ node: id, csr, nonce, proof: joinProof(secret, id, nonce, csr) }),
      });
      return { status: res.status, body: (await res.json()) as { message?: string; cert?: string } };
    };
    const stolen = await ask(victim);
    expect(stolen.status).toBe(403);
    expect(stolen.body.message).toContain('already has a certificate');
    // Positive control: the same request for a new id is signed.
    const fresh = await ask(randomBytes(12).toString('hex'));
    expect(fresh.status).toBe(200);
    expect(fresh.body.cert).toMatch(/BEGIN CERTIFICATE/);
    // And a wrong proof is refused.
    const { csr } = await createRequest('someoneelse0');
    const wrong = await fetch(`${a.api}/swarm/join`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ node: 'someoneelse0', csr, nonce: '0'.repeat(32), proof: 'ab'.repeat(32) }),
    });
    expect(wrong.status).toBe(403);
  });

  it('keeps issuing without the node that made the CA: a fourth node joins through another, renewals go on', async () => {
    nodes.push(await node(3, ['--join-token', token]));
    const [a, b, c] = nodes as [MeshdProcess, MeshdProcess, MeshdProcess];
    await eventually(async () => {
      const list = await nodeList(b);
      expect(
        list
          .filter((n) => n.canIssue)
          .map((n) => n.name)
          .sort(),
      ).toEqual(['n1', 'n2', 'n3']);
    }, 15_000);
    await a.kill();
    await eventually(
      async () => expect((await nodeList(b)).find((n) => n.name === 'n1')?.state).toBe('down'),
      15_000,
    );
    const d = await node(4, ['--join-token', token]);
    nodes.push(d);
    await eventually(
      async () => expect(await metric(d, 'meshd_cert_expiry_timestamp_seconds')).toBeGreaterThan(0),
      15_000,
    );
    // Renewals: with 8 s certificates, b and c are renewed (self-signed by members) while n1 is gone,
    // and at no moment is a certificate past its expiry.
    const firstB = await metric(b, 'meshd_cert_expiry_timestamp_seconds');
    const firstC = await metric(c, 'meshd_cert_expiry_timestamp_seconds');
    for (let i = 0; i < 10; i++) {
      await sleep(1000);
      for (const m of [b, c, d])
        expect(await metric(m, 'meshd_cert_expiry_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000);
    }
    expect(await metric(b, 'meshd_cert_expiry_timestamp_seconds')).toBeGreaterThan(firstB);
    expect(await metric(c, 'meshd_cert_expiry_timestamp_seconds')).toBeGreaterThan(firstC);
  }, 90_000);
});
