import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { freePort } from '../../helpers/ports.js';

describe('meshctl against a real meshd', () => {
  let m: MeshdProcess;
  beforeAll(async () => {
    m = await startMeshd();
  });
  afterAll(async () => {
    await m?.stop();
  });

  /**
   * What a test builds on, made here when it runs alone (`-t`); when the tests run in order the
   * earlier ones made it already, the same way.
   */
  async function given(what: 'front' | 'web'): Promise<void> {
    const has = async (kind: string, name: string) =>
      (JSON.parse(await m.ctl(kind, 'ls', '--format', 'json')) as { name: string }[]).some(
        (x) => x.name === name,
      );
    if (!(await has('network', 'front')))
      await m.ctl(
        'network',
        'create',
        '--attachable',
        '--subnet',
        '10.11.0.0/16',
        '--gateway',
        '10.11.0.2',
        'front',
      );
    if (what === 'web' && !(await has('service', 'web')))
      await m.ctl(
        'service',
        'create',
        '--name',
        'web',
        '--network',
        'name=front,alias=www',
        '--health-type',
        'http',
      );
  }

  it('serves /health and /ready', async () => {
    expect(await (await fetch(`${m.api}/health`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${m.api}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready' });
  });

  it('creates, lists, inspects and removes networks', async () => {
    const id = (
      await m.ctl(
        'network',
        'create',
        '-d',
        'overlay',
        '--attachable',
        '--subnet',
        '10.11.0.0/16',
        '--gateway',
        '10.11.0.2',
        '--opt',
        'encrypted',
        '--opt',
        'com.docker.network.driver.mtu=1200',
        '--label',
        'team=a',
        'front',
      )
    ).trim();
    expect(id).toMatch(/^[a-z0-9]{25}$/);
    await m.ctl('network', 'create', '--internal', '--subnet', 'fd00:12::/64', 'back');
    const ls = await m.ctl('network', 'ls');
    expect(ls).toMatch(/NETWORK ID\s+NAME\s+DRIVER/);
    expect(ls).toMatch(/front\s+overlay\s+swarm\s+10\.11\.0\.0\/16\s+attachable,encrypted/);
    expect(ls).toMatch(/ingress\s+overlay/);
    const [net] = JSON.parse(await m.ctl('network', 'inspect', 'front')) as Record<string, unknown>[];
    expect(net).toMatchObject({
      id,
      gateway: '10.11.0.2',
      encrypted: true,
      mtu: 1200,
      labels: { team: 'a' },
    });
    const json = JSON.parse(await m.ctl('network', 'ls', '--format', 'json')) as { name: string }[];
    expect(json.map((n) => n.name).sort()).toEqual(['back', 'front', 'ingress']);
    await expect(m.ctl('network', 'create', '--ingress', '--subnet', '10.12.0.0/24', 'in2')).rejects.toThrow(
      /Error: ingress network \([a-z0-9]+\) is already present/,
    );
    await expect(m.ctl('network', 'create', '--subnet', '10.11.5.0/24', 'overlap')).rejects.toThrow(
      /Pool overlaps/,
    );
    await m.ctl('network', 'rm', 'back');
    await expect(m.ctl('network', 'inspect', 'back')).rejects.toThrow('Error: network back not found');
  });

  it('creates, updates, lists, inspects and removes services', async () => {
    await given('front');
    // Published ports bind 0.0.0.0: free ones picked for this run, never fixed numbers.
    const [tcpPort, udpPort] = [await freePort('0.0.0.0'), await freePort('0.0.0.0')];
    await m.ctl(
      'service',
      'create',
      '--name',
      'web',
      '--network',
      'name=front,alias=www',
      '--publish',
      `published=${tcpPort},target=80,protocol=tcp,mode=ingress`,
      '-p',
      `${udpPort}:81/udp`,
      '--health-type',
      'http',
      '--health-path',
      '/healthz',
      '--health-interval',
      '500ms',
      '--health-timeout',
      '1s',
      '--health-retries',
      '2',
      '--health-start-period',
      '1m',
      '--lb',
      'p2c',
      '--proxy-protocol',
      'v2',
      '--label',
      'tier=edge',
    );
    await m.ctl(
      'service',
      'create',
      '--name',
      'db',
      '--endpoint-mode',
      'dnsrr',
      '--network',
      'front',
      '--mode',
      'global',
    );
    await expect(
      m.ctl('service', 'create', '--name', 'bad', '--endpoint-mode', 'dnsrr', '-p', '9000:9000'),
    ).rejects.toThrow("port published with ingress mode can't be used with dnsrr mode");
    const ls = await m.ctl('service', 'ls');
    expect(ls).toMatch(
      // Each port with the data plane serving it (PROXY protocol and p2c keep it in userspace).
      new RegExp(
        `web\\s+replicated\\s+vip\\s+0/0\\s+p2c\\s+\\*:${tcpPort}->80/tcp \\[userspace\\], \\*:${udpPort}->81/udp \\[userspace\\]`,
      ),
    );
    expect(ls).toMatch(/db\s+global\s+dnsrr/);
    const [web] = JSON.parse(await m.ctl('service', 'inspect', 'web')) as Record<string, unknown>[];
    expect(web).toMatchObject({
      name: 'web',
      lb: 'p2c',
      proxyProtocol: 'v2',
      labels: { tier: 'edge' },
      healthcheck: {
        type: 'http',
        path: '/healthz',
        intervalMs: 500,
        timeoutMs: 1000,
        retries: 2,
        startPeriodMs: 60000,
      },
      networks: [{ aliases: ['www'], vip: '10.11.0.1' }],
    });
    await m.ctl(
      'service',
      'update',
      '--lb',
      'least-conn',
      '--publish-rm',
      String(udpPort),
      '--idle-timeout',
      '2h',
      'web',
    );
    const [after] = JSON.parse(await m.ctl('service', 'inspect', 'web')) as Record<string, unknown>[];
    expect(after).toMatchObject({ lb: 'least-conn', idleTimeoutMs: 7_200_000, proxyProtocol: 'v2' });
    expect((after as { ports: unknown[] }).ports).toHaveLength(1);
    expect(JSON.parse(await m.ctl('service', 'ls', '--format', 'json'))).toHaveLength(2);
    // Networks by name in updates; an update that changes nothing says so.
    await m.ctl('network', 'create', '--subnet', '10.19.0.0/24', 'side');
    await m.ctl('service', 'update', '--network-add', 'side', 'web');
    const netsOf = async () =>
      (JSON.parse(await m.ctl('service', 'inspect', 'web'))[0] as { networks: unknown[] }).networks.length;
    expect(await netsOf()).toBe(2);
    await expect(m.ctl('service', 'update', '--network-add', 'side', 'web')).rejects.toThrow(
      'service web is already attached to network side',
    );
    expect((await m.ctl('service', 'update', '--network-rm', 'side', 'web')).trim()).toBe('web');
    expect(await netsOf()).toBe(1);
    await expect(m.ctl('service', 'update', '--network-rm', 'side', 'web')).rejects.toThrow(
      'is not attached',
    );
    expect((await m.ctl('service', 'update', '--lb', 'least-conn', 'web')).trim()).toBe(
      'web: nothing to change',
    );
  });

  it('adds, lists and removes tasks; service ps shows them', async () => {
    await given('web');
    const t1 = (await m.ctl('task', 'add', 'web')).trim();
    await m.ctl('task', 'add', 'web', '--ip', '10.11.0.50', '--name', 'web-custom');
    await expect(m.ctl('task', 'add', 'web', '--ip', '10.11.0.50')).rejects.toThrow(
      'address 10.11.0.50 is already in use',
    );
    const ps = await m.ctl('service', 'ps', 'web');
    // An http probe with no backend behind it: never in rotation.
    expect(ps).toMatch(/web\.1\.[a-z0-9]+\s+web\s+\S+\s+10\.11\.0\.3\s+local\s+(starting|unhealthy)/);
    expect(ps).toMatch(/web-custom\s+web\s+\S+\s+10\.11\.0\.50/);
    const tasks = JSON.parse(await m.ctl('task', 'ls', '--format', 'json')) as { id: string }[];
    expect(tasks.map((t) => t.id)).toContain(t1);
    await m.ctl('task', 'health', 'web-custom', 'unhealthy');
    expect(await m.ctl('service', 'ps', 'web')).toMatch(/web-custom.*unhealthy/);
    // SERVICE.SLOT names a task, as `service ps` names suggest.
    expect(t1).toMatch(/^[a-z0-9]+$/);
    expect((await m.ctl('task', 'rm', 'web.1')).trim()).toBe('web.1');
    // service ps keeps the ended task after the running ones, as swarm's history does.
    await eventually(async () =>
      expect(await m.ctl('service', 'ps', 'web')).toMatch(/web\.1\.[a-z0-9]+.*shutdown \d{4}-/),
    );
    expect(JSON.parse(await m.ctl('task', 'ls', '--service', 'web', '--format', 'json'))).toHaveLength(1);
  });

  it('attaches and detaches containers', async () => {
    await given('front');
    await m.ctl('container', 'attach', 'front', '--name', 'redis', '--alias', 'cache', '--ip', '10.11.0.77');
    const ls = await m.ctl('container', 'ls');
    expect(ls).toMatch(/redis\s+cache\s+10\.11\.0\.77/);
    await expect(m.ctl('container', 'attach', 'ingress', '--name', 'x')).rejects.toThrow(
      'not manually attachable',
    );
    await m.ctl('container', 'detach', 'redis');
    expect(JSON.parse(await m.ctl('container', 'ls', '--format', 'json'))).toEqual([]);
  });

  it('lists and inspects nodes', async () => {
    expect(await m.ctl('node', 'ls')).toMatch(/\*\s+test-node\s+ready\s+127\.0\.0\.1/);
    const [self] = JSON.parse(await m.ctl('node', 'inspect')) as { name: string; state: string }[];
    expect(self).toMatchObject({ name: 'test-node', state: 'ready' });
    const nodes = JSON.parse(await m.ctl('node', 'ls', '--format', 'json')) as { id: string }[];
    const [byId] = JSON.parse(await m.ctl('node', 'inspect', nodes[0]?.id as string)) as { name: string }[];
    expect(byId?.name).toBe('test-node');
  });

  it('prints the usage of a verb with --help', async () => {
    expect(await m.ctl('service', 'create', '--help')).toMatch(/^usage: meshctl service create --name NAME/);
    expect(await m.ctl('task', 'rm', '--help')).toMatch(/SERVICE\.SLOT/);
    expect(await m.ctl('node', 'list', '--help')).toMatch(/^usage: meshctl node ls/);
    expect(await m.ctl('swarm', 'join-token', '--help')).toMatch(/worker and manager get the same token/);
  });

  it('prints one line and exits non-zero on errors', async () => {
    await expect(m.ctl('service', 'rm', 'nope')).rejects.toThrow(/\(1\): Error: service nope not found\n$/);
    await expect(m.ctl('service', 'create', '--name', 'x', '--bogus')).rejects.toThrow(
      'usage error: unknown flag: --bogus',
    );
    await expect(m.ctl('frobnicate', 'now')).rejects.toThrow('unknown command "frobnicate now"');
    // A flag that would do nothing is refused: a Go template is not silently printed as JSON.
    await expect(m.ctl('network', 'inspect', '-f', '{{.Name}}', 'ingress')).rejects.toThrow(
      '--format {{.Name}}: meshctl prints json or table; Go templates are not supported',
    );
    await expect(m.ctl('service', 'ls', '--format', '{{.Name}}')).rejects.toThrow(
      /Go templates are not supported/,
    );
    await expect(m.ctl('service', 'create', '--name', 'x', '--format', 'json')).rejects.toThrow(
      'unknown flag: --format',
    );
  });

  it('returns JSON errors with a code and status from the API', async () => {
    await given('web');
    const res = await fetch(`${m.api}/services/create`, { method: 'POST', body: '{"name": 5}' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ message: 'name: must be a string', code: 'invalid_argument' });
    const bad = await fetch(`${m.api}/services/create`, { method: 'POST', body: '{' });
    expect(await bad.json()).toMatchObject({
      code: 'invalid_argument',
      message: 'request body is not valid JSON',
    });
    // A body past the limit is refused with a clear error, not buffered; the API keeps serving.
    const huge = await fetch(`${m.api}/services/create`, { method: 'POST', body: 'x'.repeat(2 << 20) });
    expect(huge.status).toBe(400);
    expect(await huge.json()).toMatchObject({ message: 'request body exceeds 1048576 bytes' });
    expect((await fetch(`${m.api}/services`)).status).toBe(200);
    const conflict = await fetch(`${m.api}/services/web/update?version=1`, {
      method: 'POST',
      body: '{"name":"web"}',
    });
    expect(conflict.status).toBe(409);
  });
});

describe('default address pools', () => {
  it('gives a network created without --subnet one from the pools set at init, as swarm does', async () => {
    const m = await startMeshd({
      args: ['--default-addr-pool', '10.254.0.0/16', '--default-addr-pool-mask-length', '26'],
    });
    try {
      await m.ctl('network', 'create', '-d', 'overlay', 'auto1');
      await m.ctl('network', 'create', 'auto2');
      const subnets = await Promise.all(
        ['auto1', 'auto2'].map(async (n) => JSON.parse(await m.ctl('network', 'inspect', n))[0].subnet),
      );
      expect(subnets).toEqual(['10.254.0.0/26', '10.254.0.64/26']);
      await expect(m.ctl('network', 'create', '--gateway', '10.9.9.1', 'auto3')).rejects.toThrow(
        '--gateway and --vip-range need --subnet',
      );
    } finally {
      await m.stop();
    }
  });
});

describe('meshd lifecycle', () => {
  it('requires the bearer token when one is set, and keeps state across a restart', async () => {
    const first = await startMeshd({
      args: [
        '--api-token',
        's3cret',
        '--store',
        'file:STATE/store.json'.replace('STATE', '/tmp/meshd-lifecycle-' + process.pid),
      ],
    });
    const noToken = await fetch(`${first.api}/services`);
    expect(noToken.status).toBe(401);
    const ok = await fetch(`${first.api}/networks/create`, {
      method: 'POST',
      headers: { authorization: 'Bearer s3cret' },
      body: JSON.stringify({ name: 'kept', subnet: '10.40.0.0/24' }),
    });
    expect(ok.status).toBe(201);
    expect(await first.stop(true)).toBe(0);
    const second = await startMeshd({
      stateDir: first.stateDir,
      args: ['--store', `file:/tmp/meshd-lifecycle-${process.pid}/store.json`],
    });
    try {
      const nets = (await (await fetch(`${second.api}/networks`)).json()) as { name: string }[];
      expect(nets.map((n) => n.name).sort()).toEqual(['ingress', 'kept']);
      expect(((await (await fetch(`${second.api}/nodes`)).json()) as unknown[]).length).toBe(1);
    } finally {
      await second.stop();
    }
  });
});
