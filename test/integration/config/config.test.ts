import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSettings, parseFlags } from '../../../src/config/load.js';
import { meshdFails } from '../../helpers/meshd.js';
import { repoRoot } from '../../helpers/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'meshd-config-'));
function load(yaml: string, flags: string[] = []) {
  const path = join(dir, `c${Math.random()}.yaml`);
  writeFileSync(path, yaml);
  return loadSettings(parseFlags(['--config', path, ...flags]));
}

describe('config', () => {
  it('loads the shipped default config', () => {
    const s = loadSettings(parseFlags(['--config', join(repoRoot, 'config/meshd.yaml')]));
    expect(s.api.listen).toEqual({ host: '127.0.0.1', port: 2377 });
    expect(s.declare.services.map((x) => x.name)).toEqual(['web', 'api', 'echo']);
  });

  it('lets flags override the file, repeatable flags replacing lists', () => {
    const s = load('dns:\n  upstreams: [9.9.9.9]\napi:\n  listen: 127.0.0.1:1\n', [
      '--api-listen',
      '127.0.0.2:2377',
      '--upstream',
      '1.1.1.1',
      '--upstream=8.8.8.8:5353',
      '--store',
      'etcd://127.0.0.1:2379,127.0.0.2:2379',
    ]);
    expect(s.api.listen).toEqual({ host: '127.0.0.2', port: 2377 });
    expect(s.dns.upstreams).toEqual(['1.1.1.1', '8.8.8.8:5353']);
    expect(s.store).toEqual({ kind: 'etcd', endpoints: ['http://127.0.0.1:2379', 'http://127.0.0.2:2379'] });
  });

  it.each([
    ['dns:\n  ttl: forever\n', 'dns.ttl: must be an integer'],
    ['dns:\n  tll: 5\n', 'dns.tll: unknown key'],
    ['mesh:\n  panic: sometimes\n', 'mesh.panic: must be one of refuse, all'],
    ['api:\n  listen: nowhere\n', 'api.listen: "nowhere" is not HOST:PORT'],
    ['store: postgres://x\n', 'store: "postgres://x" is not memory'],
    ['declare:\n  services:\n    - name: web\n      lb: fastest\n', 'declare.services[0].lb: must be one of'],
    ['dns:\n  recursionAllowed: [10.0.0.0/33]\n', 'dns.recursionAllowed: "10.0.0.0/33" is not a CIDR block'],
    ['- a list\n', 'must be a mapping'],
    ['a: [unclosed\n', 'not valid YAML'],
  ])('names the bad key: %s', (yaml, message) => {
    expect(() => load(yaml)).toThrow(message);
  });

  it('rejects unknown flags and flags without values', () => {
    expect(() => parseFlags(['--dns-lisen', 'x'])).toThrow('flag --dns-lisen: unknown flag');
    expect(() => parseFlags(['--store'])).toThrow('flag --store: needs a value');
  });

  it('exits non-zero naming the key when started with a bad file or flag', async () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'mesh:\n  connectRetries: -1\n');
    const r = await meshdFails(['--config', path]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('mesh.connectRetries: must be between 0 and 10');
    const f = await meshdFails(['--no-such-flag', '1']);
    expect(f.code).toBe(2);
    expect(f.stderr).toContain('flag --no-such-flag: unknown flag');
    const t = await meshdFails(['--api-listen', '0.0.0.0:0', '--store', 'memory', '--state-dir', dir]);
    expect(t.code).toBe(2);
    expect(t.stderr).toContain('so api.token (or api.tls) must be set');
  });
});
