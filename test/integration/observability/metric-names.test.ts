import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, fetchOnce, httpBackend } from '../../helpers/backends.js';
import { dig } from '../../helpers/dns-tools.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { freePort } from '../../helpers/ports.js';

/** Labels whose values would be unbounded (one series per client or name): never allowed. */
const unboundedLabels = new Set([
  'ip',
  'client',
  'client_ip',
  'remote',
  'remote_addr',
  'address',
  'addr',
  'src',
  'source_ip',
  'qname',
  'name',
  'peer_addr',
]);
/** Units spelled other than Prometheus base units. */
const badUnits =
  /_(ms|millis|milliseconds|us|microseconds|ns|minutes|hours|kb|kilobytes|mb|megabytes|percent)(_|$)/;

describe('metric names (a lint, as CoreDNS runs for its plugins)', () => {
  let m: MeshdProcess;
  let backend: Backend;
  let text = '';
  beforeAll(async () => {
    const port = await freePort();
    m = await startMeshd({
      config: `mesh:\n  publishAddr: 127.0.0.1\ndeclare:\n  networks: [{ name: lint, subnet: 127.236.0.0/16 }]\n  services: [{ name: web, networks: [{ network: lint }], ports: [{ published: ${port}, target: 8000 }] }]\n  tasks: [{ service: web, ips: [127.236.0.9] }]\n`,
      args: ['--upstream', '127.0.0.1:9'],
    });
    backend = await httpBackend('b', '127.236.0.9', 8000);
    await fetchOnce(`http://127.0.0.1:${port}/`);
    await dig(m.dns, '-b', '127.0.0.33', 'web');
    await dig(m.dns, '-b', '127.0.0.34', 'elsewhere.test');
    text = await (await fetch(`http://${m.metrics}/metrics`)).text();
  });
  afterAll(async () => {
    await backend?.kill();
    await m?.stop();
  });

  it('uses the meshd_ prefix, base units and _total on counters', () => {
    const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => ({
      name: x[1] as string,
      type: x[2] as string,
    }));
    expect(types.length).toBeGreaterThan(30);
    for (const { name, type } of types) {
      expect(/^(meshd|process|nodejs)_/.test(name), name).toBe(true);
      expect(badUnits.test(name), `${name} uses a non-base unit`).toBe(false);
      if (name.startsWith('meshd_') && type === 'counter') expect(name.endsWith('_total'), name).toBe(true);
      if (name.startsWith('meshd_') && type !== 'counter')
        expect(name.endsWith('_total'), `${name} is a ${type}`).toBe(false);
    }
    for (const required of [
      'meshd_build_info',
      'meshd_dns_requests_total',
      'meshd_dns_request_duration_seconds',
      'meshd_mesh_connections_total',
      'meshd_mesh_active_connections',
      'meshd_health_task_up',
      'meshd_store_connected',
      'meshd_cluster_nodes',
      'nodejs_eventloop_lag_p99_seconds',
      'meshd_event_loop_lag_seconds',
      'process_resident_memory_bytes',
    ]) {
      expect(types.map((t) => t.name)).toContain(required);
    }
    expect(text).toMatch(/meshd_build_info\{version="\d+\.\d+\.\d+",node="test-node"\} 1/);
  });

  it('never labels a series with a client address or another unbounded value', () => {
    let labelled = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith('meshd_')) continue;
      for (const [, label, value] of line.matchAll(/(\w+)="([^"]*)"/g)) {
        labelled++;
        expect(unboundedLabels.has(label as string), line).toBe(false);
        // Only configured upstreams carry an address; client addresses never do, v4 or v6.
        if (label !== 'upstream') {
          expect(/\d+\.\d+\.\d+\.\d+/.test(value as string), line).toBe(false);
          expect(
            /^[0-9a-f]*:[0-9a-f:]+$/i.test(value as string) && (value as string).includes('::'),
            line,
          ).toBe(false);
        }
      }
    }
    // Something was linted: a run with no labelled series would pass the loop above.
    expect(labelled).toBeGreaterThan(50);
    expect(text).not.toContain('127.0.0.33');
    expect(text).not.toContain('127.0.0.34');
  });
});
