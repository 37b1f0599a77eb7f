import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, fetchOnce, httpBackend } from '../../helpers/backends.js';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { freePort } from '../../helpers/ports.js';

const execFileP = promisify(execFile);

// The real docker CLI against meshd's Engine API subset. DOCKER_CONFIG points at a directory of
// the test's own, so nothing of the machine's docker setup is read or written.
const configDir = mkdtempSync(join(tmpdir(), 'meshd-docker-'));
let m: MeshdProcess;
const backends: Backend[] = [];

async function docker(host: string, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP('docker', args, {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: configDir,
        DOCKER_HOST: host.replace('http://', 'tcp://'),
        DOCKER_CONFIG: configDir,
      },
      timeout: 30_000,
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(e.stderr || e.message);
  }
}

beforeAll(async () => {
  m = await startMeshd({ config: 'mesh:\n  publishAddr: 127.0.0.1\n' });
});
afterAll(async () => {
  await m?.stop();
  await Promise.all(backends.map((b) => b.kill()));
  rmSync(configDir, { recursive: true, force: true });
});

describe('the docker CLI as a client of meshd', () => {
  it('negotiates the API version and sees an active swarm manager', async () => {
    expect((await docker(m.api, 'version', '--format', '{{.Server.APIVersion}}')).trim()).toBe('1.47');
    expect(
      (
        await docker(m.api, 'info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')
      ).trim(),
    ).toBe('active true');
  });

  it('creates, lists, inspects with a Go template and removes overlay networks', async () => {
    const id = (await docker(m.api, 'network', 'create', '-d', 'overlay', '--attachable', 'dapps')).trim();
    expect(id).toMatch(/^\w{20,}$/);
    // No --subnet: one from the default address pools, as swarm does.
    expect(
      (
        await docker(m.api, 'network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}}{{end}}', 'dapps')
      ).trim(),
    ).toMatch(/^10\.\d+\.\d+\.0\/24$/);
    expect(
      (
        await docker(
          m.api,
          'network',
          'inspect',
          '-f',
          '{{.Scope}} {{.Driver}} {{.Attachable}} {{.Ingress}}',
          'dapps',
        )
      ).trim(),
    ).toBe('swarm overlay true false');
    const ls = await docker(m.api, 'network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}');
    expect(ls.split('\n')).toContain('dapps overlay swarm');
    expect(ls.split('\n')).toContain('ingress overlay swarm');
    await docker(m.api, 'network', 'create', '-d', 'overlay', '--subnet', '127.246.0.0/16', 'dfixed');
    await docker(m.api, 'network', 'rm', 'dfixed');
    expect(await docker(m.api, 'network', 'ls', '--format', '{{.Name}}')).not.toContain('dfixed');
    await expect(docker(m.api, 'network', 'create', '-d', 'bridge', 'dbridge')).rejects.toThrow(
      /only the overlay driver/,
    );
  });

  it('creates a service that meshd serves, lists, inspects, shows its tasks, updates and removes it', async () => {
    await docker(m.api, 'network', 'create', '-d', 'overlay', '--subnet', '127.247.0.0/16', 'dweb');
    const port = await freePort('127.0.0.1');
    // Without -d the CLI waits for the service to converge: meshd starts no tasks, so at once.
    const started = Date.now();
    const id = (
      await docker(
        m.api,
        'service',
        'create',
        '--name',
        'dsvc',
        '--network',
        'dweb',
        '--publish',
        `${port}:8000`,
        '--endpoint-mode',
        'vip',
        '--no-resolve-image',
        'nginx:alpine',
      )
    )
      .trim()
      .split('\n')[0] as string;
    expect(Date.now() - started).toBeLessThan(4000);
    /** `docker service inspect --format FORMAT dsvc`. */
    const inspect = (format: string) => docker(m.api, 'service', 'inspect', '--format', format, 'dsvc');
    const vipsOf = async () =>
      JSON.parse(await inspect('{{json .Endpoint.VirtualIPs}}')) as { NetworkID: string; Addr: string }[];
    // As in swarm, a service that publishes joins ingress too: its ingress VIP comes first.
    const ingressId = (await docker(m.api, 'network', 'inspect', '-f', '{{.Id}}', 'ingress')).trim();
    const vips = await vipsOf();
    expect(vips.map((v) => v.NetworkID)).toEqual([
      ingressId,
      (await docker(m.api, 'network', 'inspect', '-f', '{{.Id}}', 'dweb')).trim(),
    ]);
    expect(vips[1]?.Addr).toBe('127.247.0.2/16');
    expect(vips[0]?.Addr).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+$/);
    // ...but ingress is not one of the networks its spec names.
    expect(await inspect('{{len .Spec.TaskTemplate.Networks}}')).toBe('1\n');
    expect((await inspect('{{.ID}} {{.Spec.TaskTemplate.ContainerSpec.Image}}')).trim()).toBe(
      `${id} nginx:alpine`,
    );
    // Its tasks come from meshd (a provider, or task add), and the CLI shows them.
    backends.push(await httpBackend('dsvc-1', '127.247.0.10', 8000));
    await m.ctl('task', 'add', 'dsvc', '--ip', '127.247.0.10');
    await eventually(async () => {
      const ls = await docker(
        m.api,
        'service',
        'ls',
        '--format',
        '{{.Name}} {{.Mode}} {{.Replicas}} {{.Image}} {{.Ports}}',
      );
      expect(ls.trim()).toBe(`dsvc replicated 1/1 nginx:alpine *:${port}->8000/tcp`);
    });
    expect((await fetchOnce(`http://127.0.0.1:${port}/`)).body).toBe('dsvc-1');
    const ps = await docker(
      m.api,
      'service',
      'ps',
      '--format',
      '{{.Name}} {{.Node}} {{.DesiredState}} {{.CurrentState}}',
      'dsvc',
    );
    expect(ps.trim()).toMatch(/^dsvc\.1 test-node Running Running /);
    // A setting Docker's spec cannot say (the balancing policy), set through meshctl...
    await m.ctl('service', 'update', '--lb', 'least-conn', 'dsvc');
    const port2 = await freePort('127.0.0.1');
    await docker(m.api, 'service', 'update', '-d', '--publish-add', `${port2}:8000`, 'dsvc');
    await eventually(async () => expect((await fetchOnce(`http://127.0.0.1:${port2}/`)).body).toBe('dsvc-1'));
    expect((await inspect('{{range .Endpoint.Ports}}{{.PublishedPort}} {{end}}')).trim()).toBe(
      `${port} ${port2}`,
    );
    // ...survives an update through the docker CLI.
    const [svc] = JSON.parse(await m.ctl('service', 'inspect', 'dsvc')) as { lb: string }[];
    expect(svc?.lb).toBe('least-conn');
    // With no published port left it leaves ingress, and its ingress VIP is free again. (The
    // CLI's --publish-rm names the target port: both published ports go.)
    await docker(m.api, 'service', 'update', '-d', '--publish-rm', '8000', 'dsvc');
    expect((await vipsOf()).map((v) => v.Addr)).toEqual(['127.247.0.2/16']);
    await docker(m.api, 'service', 'rm', 'dsvc');
    expect((await docker(m.api, 'service', 'ls', '-q')).trim()).toBe('');
  });

  it('lists and inspects nodes, marking this one', async () => {
    const ls = await docker(
      m.api,
      'node',
      'ls',
      '--format',
      '{{.Self}} {{.Hostname}} {{.Status}} {{.ManagerStatus}}',
    );
    expect(ls.trim()).toBe('true test-node Ready Leader');
    expect(
      (
        await docker(m.api, 'node', 'inspect', 'self', '--format', '{{.Description.Hostname}} {{.Spec.Role}}')
      ).trim(),
    ).toBe('test-node manager');
  });

  it('needs the API token when one is set, sent as the docker CLI sends custom headers', async () => {
    const token = 'docker-cli-token-0123';
    const guarded = await startMeshd({ args: ['--api-token', token] });
    try {
      await expect(docker(guarded.api, 'network', 'ls')).rejects.toThrow(/missing or wrong bearer token/);
      writeFileSync(
        join(configDir, 'config.json'),
        JSON.stringify({ HttpHeaders: { Authorization: `Bearer ${token}` } }),
      );
      expect(await docker(guarded.api, 'network', 'ls', '--format', '{{.Name}}')).toContain('ingress');
    } finally {
      rmSync(join(configDir, 'config.json'), { force: true });
      await guarded.stop();
    }
  });
});
