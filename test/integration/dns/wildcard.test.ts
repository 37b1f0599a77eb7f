import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { createTestHost, isRoot, sh, type TestHost } from '../../helpers/netns.js';
import { freePort } from '../../helpers/ports.js';

let host: TestHost | undefined;
let m: MeshdProcess | undefined;
afterAll(async () => {
  await m?.stop();
  await host?.remove();
});

describe('DNS on a wildcard listener', () => {
  it('answers over UDP from the address the query was sent to, secondary addresses included', async () => {
    expect(isRoot()).toBe(true);
    host = await createTestHost(`mdnsw${process.pid % 1000}`, '10.196.3.1', '10.196.3.2');
    const port = await freePort('0.0.0.0');
    m = await startMeshd({
      args: ['--dns-listen', `0.0.0.0:${port}`],
      config: `declare:
  networks: [{ name: front, subnet: 127.242.0.0/16 }]
  services: [{ name: web, networks: [{ network: front }] }]
`,
    });
    const ask = async (server: string) => {
      const r = await (host as TestHost).exec(
        'dig',
        `@${server}`,
        '-p',
        String(port),
        '+short',
        '+time=1',
        '+tries=1',
        'web',
      );
      return r.stdout.trim();
    };
    expect(await ask('10.196.3.1')).toBe('127.242.0.2');
    // A second address on the same interface, added while meshd runs: a reply from the primary
    // address would be dropped by the client ("reply from unexpected source").
    await sh('ip', 'addr', 'add', '10.196.3.3/24', 'dev', host.hostIf);
    await eventually(async () => expect(await ask('10.196.3.3')).toBe('127.242.0.2'), 10_000, 500);
  }, 60_000);
});
