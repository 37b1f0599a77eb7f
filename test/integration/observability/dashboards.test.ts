import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as packet from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, fetchOnce, httpBackend, udpEcho } from '../../helpers/backends.js';
import { dig, scriptedUpstream } from '../../helpers/dns-tools.js';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { repoRoot } from '../../helpers/paths.js';
import { freePort } from '../../helpers/ports.js';

const execFileP = promisify(execFile);

interface Target {
  expr: string;
}
interface Panel {
  title: string;
  type: string;
  targets?: Target[];
  fieldConfig?: { defaults?: { unit?: string } };
}
interface Variable {
  name: string;
  type: string;
  query?: { query: string };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

const dashboards = readdirSync(join(repoRoot, 'grafana/dashboards'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(repoRoot, 'grafana/dashboards', f), 'utf8')) as Dashboard);

describe('Grafana dashboards', () => {
  it('have stable uids, units on every panel, $__rate_interval in rates, and the template variables', () => {
    expect(dashboards.map((d) => d.uid).sort()).toEqual([
      'meshd-cluster',
      'meshd-dns',
      'meshd-mesh',
      'meshd-overview',
    ]);
    for (const d of dashboards) {
      const vars = d.templating.list.map((v) => v.name);
      expect(vars).toEqual(expect.arrayContaining(['datasource', 'job', 'instance']));
      for (const p of d.panels) {
        expect(p.fieldConfig?.defaults?.unit, `${d.uid} / ${p.title}`).toBeTruthy();
        for (const t of p.targets ?? []) {
          for (const m of t.expr.matchAll(/rate\([^[]+\[([^\]]+)\]/g))
            expect(m[1], `${d.uid} / ${p.title}`).toBe('$__rate_interval');
        }
      }
    }
    expect(dashboards.find((d) => d.uid === 'meshd-mesh')?.templating.list.map((v) => v.name)).toContain(
      'service',
    );
  });
});

describe('every panel query against a real Prometheus scraping a real meshd', () => {
  let m: MeshdProcess;
  let prom: ChildProcess;
  let promUrl = '';
  let dir = '';
  const closers: (() => unknown)[] = [];

  beforeAll(async () => {
    const upstream = await scriptedUpstream('127.0.54.1', (name) =>
      name.startsWith('fail') ? 'SERVFAIL' : 'NOERROR',
    );
    closers.push(() => upstream.close());
    const webPort = await freePort();
    const deadPort = await freePort();
    const udpPort = await freePort();
    m = await startMeshd({
      config: `
mesh:
  publishAddr: 127.0.0.1
declare:
  networks: [{ name: obs, subnet: 127.230.0.0/16 }]
  services:
    - { name: web, networks: [{ network: obs }], ports: [{ published: ${webPort}, target: 8000 }], healthcheck: { type: tcp, interval: 500ms } }
    - { name: echo, networks: [{ network: obs }], ports: [{ published: ${udpPort}, target: 5300, protocol: udp }] }
    - { name: big, endpointMode: dnsrr, networks: [{ network: obs }] }
    - { name: flaky, networks: [{ network: obs }], ports: [{ published: ${deadPort}, target: 8000 }] }
  tasks:
    - { service: web, ips: [127.230.1.1] }
    - { service: flaky, ips: [127.230.3.1, 127.230.3.2] }
    - { service: echo, ips: [127.230.2.1] }
    - { service: big, count: 40 }
`,
      args: ['--upstream', upstream.address],
    });
    // Traffic that makes every panel's series exist: local, forwarded, cached and failed DNS,
    // a truncated answer, TCP connections with a dead task (errors, ejections), a UDP flow,
    // an unhealthy task.
    const live: Backend = await httpBackend('web-1', '127.230.1.1', 8000);
    closers.push(() => live.kill());
    const flaky: Backend = await httpBackend('flaky-1', '127.230.3.1', 8000);
    closers.push(() => flaky.kill());
    const echo = await udpEcho('e', '127.230.2.1', 5300);
    closers.push(() => echo.close());
    await m.ctl('task', 'add', 'web', '--ip', '127.230.1.3', '--health', 'unhealthy');
    await eventually(
      async () => expect((await fetchOnce(`http://127.0.0.1:${webPort}/`)).status).toBe(200),
      10_000,
    );
    for (let i = 0; i < 10; i++) {
      await fetchOnce(`http://127.0.0.1:${webPort}/`);
      await fetchOnce(`http://127.0.0.1:${deadPort}/`);
    }
    await dig(m.dns, 'web');
    await dig(m.dns, 'ext.example');
    await dig(m.dns, 'ext.example');
    await dig(m.dns, 'fail.example');
    await dig(m.dns, '+ignore', '+noedns', 'tasks.big');
    const udp = createSocket('udp4');
    udp.send('hi', udpPort, '127.0.0.1');
    closers.push(() => udp.close());
    const junk = createSocket('udp4');
    const [dh, dp] = m.dns.split(':') as [string, string];
    junk.send(Buffer.from([1, 2, 3]), Number(dp), dh, () => junk.close());
    void packet;

    dir = mkdtempSync(join(tmpdir(), 'meshd-prom-'));
    const promPort = await freePort();
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: meshd\n    static_configs:\n      - targets: ['${m.metrics}']\n`,
    );
    prom = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=error',
      ],
      { stdio: 'ignore' },
    );
    promUrl = `http://127.0.0.1:${promPort}`;
    await eventually(
      async () => {
        const r = (await (await fetch(`${promUrl}/api/v1/query?query=up`)).json()) as {
          data: { result: { value: [number, string] }[] };
        };
        expect(r.data.result[0]?.value[1]).toBe('1');
      },
      30_000,
      250,
    );
    // Keep traffic flowing until Prometheus holds enough samples for rate() over the panels'
    // windows (observed in Prometheus itself, not assumed from elapsed time).
    await eventually(
      async () => {
        await fetchOnce(`http://127.0.0.1:${webPort}/`);
        await dig(m.dns, 'web');
        udp.send('again', udpPort, '127.0.0.1');
        const q = encodeURIComponent('count_over_time(meshd_build_info[1m])');
        const r = (await (await fetch(`${promUrl}/api/v1/query?query=${q}`)).json()) as {
          data: { result: { value: [number, string] }[] };
        };
        expect(Number(r.data.result[0]?.value[1] ?? 0)).toBeGreaterThanOrEqual(5);
      },
      30_000,
      300,
    );
  }, 90_000);

  afterAll(async () => {
    prom?.kill('SIGTERM');
    await m?.stop();
    for (const c of closers.reverse()) await c();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const substitute = (expr: string, instance: string) =>
    expr
      .replaceAll('$__rate_interval', '15s')
      .replaceAll('$job', 'meshd')
      .replaceAll('$instance', instance.replaceAll('.', '\\\\.'))
      .replaceAll('$service', '.+');

  it('evaluates every panel query with results, and every variable query with values', async () => {
    const failures: string[] = [];
    for (const d of dashboards) {
      for (const v of d.templating.list) {
        if (v.type !== 'query' || !v.query) continue;
        const mm = /^label_values\((.+), (\w+)\)$/.exec(substitute(v.query.query, m.metrics));
        if (!mm) {
          failures.push(`${d.uid} variable ${v.name}: unsupported query`);
          continue;
        }
        const r = (await (
          await fetch(
            `${promUrl}/api/v1/label/${mm[2]}/values?match[]=${encodeURIComponent(mm[1] as string)}`,
          )
        ).json()) as { data: string[] };
        if (!r.data?.length) failures.push(`${d.uid} variable ${v.name}: no values`);
      }
      for (const p of d.panels) {
        for (const t of p.targets ?? []) {
          const expr = substitute(t.expr, m.metrics);
          const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
          const body = (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } };
          if (body.status !== 'success') failures.push(`${d.uid} / ${p.title}: ${body.error} (${expr})`);
          else if (!body.data?.result.length) failures.push(`${d.uid} / ${p.title}: no series (${expr})`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('shows 0, not "No data", in every counting stat panel for a node that has nothing to count', async () => {
    const empty: string[] = [];
    let checked = 0;
    for (const d of dashboards)
      for (const p of d.panels) {
        // A presence, not a count: "No data" (unknown) is the honest answer there.
        if (p.type !== 'stat' || p.title === 'Store connected') continue;
        for (const t of p.targets ?? []) {
          checked++;
          // An instance with no series at all: what a fresh node, or a quiet one, looks like.
          const expr = substitute(t.expr, 'no-such-instance:9');
          const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
          const body = (await res.json()) as { data?: { result: { value: [number, string] }[] } };
          const value = body.data?.result[0]?.value[1];
          if (value !== '0') empty.push(`${d.uid} / ${p.title}: ${value ?? 'No data'}`);
        }
      }
    expect(checked).toBeGreaterThanOrEqual(7);
    expect(empty).toEqual([]);
  });
});

describe('alert rules', () => {
  it('pass promtool check rules and promtool test rules', async () => {
    const rules = join(repoRoot, 'deploy/prometheus/meshd-alerts.yml');
    const check = await execFileP('promtool', ['check', 'rules', rules]);
    expect(check.stdout).toMatch(/SUCCESS: 6 rules found/);
    const test = await execFileP('promtool', [
      'test',
      'rules',
      join(repoRoot, 'deploy/prometheus/meshd-alerts.test.yml'),
    ]);
    expect(test.stdout).toMatch(/SUCCESS/);
  });
});
