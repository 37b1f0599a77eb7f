import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, createRequest, signRequest } from '../../../src/security/pki.js';
import { eventually } from '../../helpers/eventually.js';
import { meshdFails, startMeshd } from '../../helpers/meshd.js';
import { freePort } from '../../helpers/ports.js';

// etcd with client-certificate authentication, and meshd talking to it over etcds:// with a
// client certificate; without one it is refused.
const dir = mkdtempSync(join(tmpdir(), 'meshd-etcd-tls-'));
let etcd: ChildProcess;
let endpoint = '';
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text, { mode: 0o600 });
  return p;
};
let ca = '';
let cert = '';
let key = '';

beforeAll(async () => {
  const authority = await createCa('etcd-test');
  const server = await createRequest('etcd');
  const client = await createRequest('meshd-client');
  ca = file('ca.crt', authority.cert);
  const serverCert = file(
    'server.crt',
    await signRequest(authority, server.csr, 'etcd', 3_600_000, ['127.0.0.1']),
  );
  const serverKey = file('server.key', server.key);
  cert = file('client.crt', await signRequest(authority, client.csr, 'meshd-client', 3_600_000));
  key = file('client.key', client.key);
  const port = await freePort();
  const peer = await freePort();
  endpoint = `127.0.0.1:${port}`;
  etcd = spawn(
    'etcd',
    [
      '--data-dir',
      join(dir, 'data'),
      '--listen-client-urls',
      `https://${endpoint}`,
      '--advertise-client-urls',
      `https://${endpoint}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-cluster',
      `default=http://127.0.0.1:${peer}`,
      '--client-cert-auth',
      '--trusted-ca-file',
      ca,
      '--cert-file',
      serverCert,
      '--key-file',
      serverKey,
      '--log-level',
      'error',
    ],
    { stdio: 'ignore' },
  );
}, 30_000);

afterAll(() => {
  etcd?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe('etcd over TLS with client certificates', () => {
  it('works with the client certificate and is refused without it', async () => {
    const m = await eventually(
      () =>
        startMeshd({
          args: [
            '--store',
            `etcds://${endpoint}`,
            '--store-ca',
            ca,
            '--store-cert',
            cert,
            '--store-key',
            key,
          ],
          timeoutMs: 8000,
        }),
      20_000,
      500,
    );
    try {
      await m.ctl('network', 'create', '--subnet', '10.77.0.0/16', 'over-tls');
      expect(await m.ctl('network', 'ls')).toContain('over-tls');
      expect(m.logs.join('\n')).toContain(`etcds://${endpoint}`);
    } finally {
      await m.stop();
    }
    const r = await meshdFails([
      '--store',
      `etcds://${endpoint}`,
      '--store-ca',
      ca,
      '--state-dir',
      join(dir, 'no-cert'),
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
    expect(r.stderr).toMatch(/etcd is unreachable/);
    const bad = await meshdFails(['--store', `etcds://${endpoint}`]);
    expect(bad.stderr).toContain('storeTls.ca: etcds:// needs the CA file');
  }, 60_000);
});
