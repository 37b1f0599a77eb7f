import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  netnsResolvConf,
  removeResolvConf,
  resolvConfText,
  writeResolvConf,
} from '../../../src/overlay/resolv-conf.js';

const root = mkdtempSync(join(tmpdir(), 'meshd-netns-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("an endpoint's resolver", () => {
  it('is written only for ip netns names, where ip netns exec finds it', () => {
    expect(netnsResolvConf('/run/netns/web1', root)).toBe(`${root}/web1/resolv.conf`);
    expect(netnsResolvConf('/proc/123/ns/net', root)).toBeUndefined();
    expect(netnsResolvConf('/run/netns/a/b', root)).toBeUndefined();
  });

  it('names the gateway, and never replaces or removes a file meshd did not write', async () => {
    const mine = netnsResolvConf('/run/netns/mine', root) as string;
    expect(await writeResolvConf(mine, '10.20.0.1')).toBe('written');
    expect(readFileSync(mine, 'utf8')).toBe(resolvConfText('10.20.0.1'));
    expect(readFileSync(mine, 'utf8')).toContain('nameserver 10.20.0.1\noptions ndots:0\n');
    await removeResolvConf(mine);
    expect(existsSync(join(root, 'mine'))).toBe(false);

    const theirs = netnsResolvConf('/run/netns/theirs', root) as string;
    mkdirSync(join(root, 'theirs'));
    writeFileSync(theirs, 'nameserver 9.9.9.9\n');
    expect(await writeResolvConf(theirs, '10.20.0.1')).toBe('kept');
    await removeResolvConf(theirs);
    expect(readFileSync(theirs, 'utf8')).toBe('nameserver 9.9.9.9\n');
  });
});
