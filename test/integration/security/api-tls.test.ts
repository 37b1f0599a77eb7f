import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EtcdServer, startEtcd } from '../../helpers/etcd.js';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { dist } from '../../helpers/paths.js';

const execFileP = promisify(execFile);

// The management API over HTTPS with the cluster certificate: a client gets in with the token or
// with a current node's certificate; a removed node's certificate does not.
let etcd: EtcdServer;
let a: MeshdProcess;
let b: MeshdProcess;
let url = '';

async function ctl(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await execFileP(process.execPath, [
      dist('src/bin/meshctl.js'),
      '--host',
      url,
      ...args,
    ]);
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? -1, out: e.stderr ?? '' };
  }
}

beforeAll(async () => {
  etcd = await startEtcd();
  a = await startMeshd({
    args: [
      '--store',
      `etcd://${etcd.endpoint}`,
      '--node-name',
      'A',
      '--api-tls',
      'true',
      '--api-token',
      's3cret',
      '--api-listen',
      '127.0.71.1:0',
      '--advertise-addr',
      '127.0.71.1',
    ],
  });
  url = a.api.replace('http://', 'https://');
  const token = (
    await ctl(
      '--tls-ca',
      join(a.stateDir, 'ca.crt'),
      '--token',
      's3cret',
      'swarm',
      'join-token',
      '-q',
      'worker',
    )
  ).out.trim();
  expect(token).toMatch(/^SWMTKN-1-/);
  // B joins by asking A over HTTPS, checking A's certificate against the CA the token pins.
  b = await startMeshd({
    args: [
      '--store',
      `etcd://${etcd.endpoint}`,
      '--node-name',
      'B',
      '--join-token',
      token,
      '--advertise-addr',
      '127.0.72.1',
      '--api-listen',
      '127.0.72.1:0',
      '--lease-ttl',
      '1s',
    ],
  });
}, 60_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await etcd?.remove();
});

describe('the management API over HTTPS', () => {
  it('serves TLS 1.3 with the cluster certificate and wants the token or a member certificate', async () => {
    const ca = join(a.stateDir, 'ca.crt');
    const noCa = await ctl('node', 'ls');
    expect(noCa.code).toBe(1);
    expect(noCa.out).toMatch(/cannot reach meshd|certificate/i);
    const noAuth = await ctl('--tls-ca', ca, 'node', 'ls');
    expect(noAuth.out).toContain('missing or wrong bearer token');
    expect((await ctl('--tls-ca', ca, '--token', 's3cret', 'node', 'ls')).out).toMatch(/A\s+ready/);
    // meshctl on node B, with B's state: its node certificate is its credential.
    expect((await ctl('--state-dir', b.stateDir, 'node', 'ls')).out).toMatch(/B\s+ready/);
    // The certificate names the node id: curl checks it as a host name.
    const [self] = JSON.parse((await ctl('--tls-ca', ca, '--token', 's3cret', 'node', 'inspect')).out) as {
      id: string;
    }[];
    const port = new URL(url).port;
    // /health over HTTPS with curl limited by `versions`: its HTTP status, or how curl failed.
    const health = (...versions: string[]) =>
      execFileP('curl', [
        '-s',
        '--cacert',
        ca,
        ...versions,
        '--resolve',
        `${self?.id}:${port}:127.0.71.1`,
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        `https://${self?.id}:${port}/health`,
      ]).then(
        (r) => r.stdout,
        (e: { code?: number }) => `failed ${e.code}`,
      );
    expect(await health('--tlsv1.3')).toBe('200');
    // TLS 1.3 only: a client that stops at 1.2 gets no handshake (--tlsv1.3 above is a minimum).
    const old = await health('--tls-max', '1.2');
    expect(old).toMatch(/^failed \d+$/);
  });

  it('refuses the certificate of a removed node', async () => {
    await b.stop(true);
    await eventually(
      async () =>
        expect(
          (await ctl('--tls-ca', join(a.stateDir, 'ca.crt'), '--token', 's3cret', 'node', 'rm', 'B')).code,
        ).toBe(0),
      10_000,
      200,
    );
    const r = await ctl('--state-dir', b.stateDir, 'node', 'ls');
    expect(r.out).toContain('missing or wrong bearer token');
  });
});
