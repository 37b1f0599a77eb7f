import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../../helpers/paths.js';

const execFileP = promisify(execFile);

/** Dockerfile instructions, continuation lines joined. */
function instructions(text: string): { op: string; args: string }[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: (op as string).toUpperCase(), args: rest.join(' ') };
    });
}

// No Docker engine runs here, so these check what can be checked without one: the stages and
// their commands, the files they copy, and that the production dependencies alone run meshd.
describe('Dockerfile', () => {
  const ins = instructions(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
  const stages = ins.filter((i) => i.op === 'FROM');
  const finalStage = ins.slice(ins.lastIndexOf(stages.at(-1) as { op: string; args: string }));
  const scratch = mkdtempSync(join(tmpdir(), 'meshd-docker-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('is multi-stage with a non-root final stage on the production ports, with a health check', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const user = finalStage.find((i) => i.op === 'USER');
    expect(user?.args).toBeTruthy();
    expect(user?.args).not.toMatch(/^(root|0)$/);
    const exposed = finalStage.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
    expect(exposed).toEqual(expect.arrayContaining(['53/udp', '53/tcp', '2377/tcp', '4789/tcp', '9377/tcp']));
    expect(finalStage.find((i) => i.op === 'HEALTHCHECK')?.args).toMatch(/\/health/);
    expect(finalStage.some((i) => i.op === 'VOLUME')).toBe(true);
    // Only production dependencies reach the final image.
    const depsRun = ins.filter((i) => i.op === 'RUN' && i.args.includes('npm ci --omit=dev'));
    expect(depsRun).toHaveLength(1);
    expect(
      finalStage
        .filter((i) => i.op === 'COPY' && i.args.includes('node_modules'))
        .every((i) => i.args.includes('--from=deps')),
    ).toBe(true);
  });

  it('copies only files that exist in the repository', () => {
    for (const c of ins.filter((i) => i.op === 'COPY' && !i.args.includes('--from'))) {
      const parts = c.args.split(/\s+/);
      for (const src of parts.slice(0, -1)) expect(existsSync(join(repoRoot, src)), src).toBe(true);
    }
  });

  it('runs meshd from the compiled code with production dependencies only (the final stage)', async () => {
    cpSync(join(repoRoot, 'package.json'), join(scratch, 'package.json'));
    cpSync(join(repoRoot, 'package-lock.json'), join(scratch, 'package-lock.json'));
    await execFileP('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd: scratch,
      timeout: 180_000,
    });
    cpSync(join(repoRoot, 'dist/src'), join(scratch, 'dist/src'), { recursive: true });
    const { stdout } = await execFileP(
      process.execPath,
      [join(scratch, 'dist/src/bin/meshd.js'), '--version'],
      { cwd: scratch },
    );
    expect(stdout).toMatch(/^meshd \d+\.\d+\.\d+/);
    // The container's config parses (ports overridden: no root needed for this check).
    const { stdout: help } = await execFileP(
      process.execPath,
      [join(scratch, 'dist/src/bin/meshd.js'), '--help'],
      { cwd: scratch },
    );
    expect(help).toMatch(/--dns-listen/);
    const { loadSettings, parseFlags } = await import('../../../src/config/load.js');
    const s = loadSettings(parseFlags(['--config', join(repoRoot, 'deploy/meshd.yaml')]));
    expect(s.dns.listen).toEqual({ host: '0.0.0.0', port: 53 });
    expect(s.node.stateDir).toBe('/var/lib/meshd');
  }, 240_000);
});

describe('deploy/compose.yml', () => {
  const file = join(repoRoot, 'deploy/compose.yml');
  const compose = parse(readFileSync(file, 'utf8')) as {
    services: Record<string, { volumes?: string[]; build?: string; image?: string }>;
  };

  it('brings up meshd, Prometheus and Grafana', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['grafana', 'meshd', 'prometheus']);
    expect(existsSync(join(dirname(file), compose.services.meshd?.build as string, 'Dockerfile'))).toBe(true);
  });

  it('refuses to start without an API token instead of falling back to a public one', () => {
    const meshd = compose.services.meshd as unknown as { command: string[] };
    const token = meshd.command[meshd.command.indexOf('--api-token') + 1] as string;
    // Compose's `${VAR:?message}` stops `up` with the message when VAR is unset or empty.
    expect(token).toMatch(/^\$\{MESHD_TOKEN:\?[^}]+\}$/);
    expect(readFileSync(file, 'utf8')).not.toContain('change-me');
  });

  it('mounts only files and folders that exist', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const v of svc.volumes ?? []) {
        const host = v.split(':')[0] as string;
        if (!host.startsWith('.')) continue; // a named volume
        expect(existsSync(resolve(dirname(file), host)), `${name}: ${host}`).toBe(true);
      }
    }
  });

  it('gives Prometheus a valid config and Grafana the provisioning folders', async () => {
    const { stdout } = await execFileP('promtool', [
      'check',
      'config',
      '--syntax-only',
      join(repoRoot, 'deploy/prometheus/prometheus.yml'),
    ]).catch((e) => e);
    expect(String(stdout)).toMatch(/SUCCESS/);
    const grafanaMounts = compose.services.grafana?.volumes?.join(' ') ?? '';
    expect(grafanaMounts).toContain('/etc/grafana/provisioning');
    expect(grafanaMounts).toContain('/var/lib/grafana/dashboards');
    const provider = parse(
      readFileSync(join(repoRoot, 'grafana/provisioning/dashboards/meshd.yaml'), 'utf8'),
    ) as {
      providers: { options: { path: string } }[];
    };
    expect(provider.providers[0]?.options.path).toBe('/var/lib/grafana/dashboards');
  });
});
