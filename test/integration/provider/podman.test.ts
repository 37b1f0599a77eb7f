import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyState } from '../../../src/model/cluster-state.js';
import { serviceFromLabels } from '../../../src/provider/labels.js';
import { plan } from '../../../src/provider/reconcile.js';
import { digShort } from '../../helpers/dns-tools.js';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { isRoot, sh } from '../../helpers/netns.js';
import {
  cleanupDir,
  type EngineService,
  ensureImage,
  type FaultyEngine,
  faultyEngine,
  image,
  podman,
  podmanTry,
  startEngine,
} from '../../helpers/podman.js';

// Real containers on a real engine: Podman's Docker-compatible API, containers from a busybox
// image built locally. Needs root (CI runs as root).
const tag = `meshd-test-${process.pid}`;
const net = `mt${process.pid}`;
const subnet = '10.89.91';
const dnsAddr = `${subnet}.250`;
let engine: EngineService;
let faulty: FaultyEngine;
let m: MeshdProcess;

async function run(
  name: string,
  labels: Record<string, string>,
  extra: string[] = [],
  cmd?: string,
): Promise<string> {
  const l = Object.entries({ ...labels, 'meshd-test': tag }).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
  await podman(
    'run',
    '-d',
    '--name',
    name,
    '--network',
    net,
    ...l,
    ...extra,
    image,
    'sh',
    '-c',
    cmd ?? `echo ${name} > /www/index.html; httpd -f -p 80 -h /www`,
  );
  return (
    await podman('inspect', name, '--format', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`)
  ).trim();
}

/** Runs a command in a client container whose resolver is meshd, as a swarm task's would be. */
async function client(script: string): Promise<string> {
  const r = await podmanTry(
    'run',
    '--rm',
    '--network',
    net,
    '--dns',
    dnsAddr,
    '--label',
    `meshd-test=${tag}`,
    image,
    'sh',
    '-c',
    script,
  );
  return r.stdout;
}

/** The addresses busybox nslookup printed for `name` (it repeats `Name:` per address). */
function addressesOf(text: string, name: string): string[] {
  const out: string[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    const n = /^Name:\s+(\S+)/.exec(line);
    if (n) current = n[1] as string;
    const a = /^Address(?: \d+)?:\s+([\d.]+)$/.exec(line);
    if (a && current === name) out.push(a[1] as string);
  }
  return out;
}

beforeAll(async () => {
  if (!isRoot()) throw new Error('this test needs root (podman, ip addr); CI runs as root');
  await ensureImage();
  await podmanTry('network', 'rm', '-f', net);
  await podman('network', 'create', '--subnet', `${subnet}.0/24`, '--ip-range', `${subnet}.0/25`, net);
  await sh('ip', 'addr', 'add', `${dnsAddr}/32`, 'dev', 'lo').catch(() => undefined);
  engine = await startEngine();
  faulty = await faultyEngine(engine.socket);
  m = await startMeshd({
    config: `provider:\n  serviceGrace: 3s\ndeclare:\n  networks: [{ name: apps, subnet: ${subnet}.0/24, vipRange: ${subnet}.192/26, attachable: true }]\n`,
    args: [
      '--provider',
      'docker',
      '--docker-host',
      `unix://${faulty.socket}`,
      '--dns-listen',
      `${dnsAddr}:53`,
    ],
  });
}, 120_000);

afterAll(async () => {
  await m?.stop();
  const ids = (await podmanTry('ps', '-aq', '--filter', `label=meshd-test=${tag}`)).stdout
    .split('\n')
    .filter(Boolean);
  if (ids.length) await podmanTry('rm', '-f', '-t', '0', ...ids);
  await podmanTry('network', 'rm', '-f', net);
  await faulty?.close();
  await engine?.stop();
  await sh('ip', 'addr', 'del', `${dnsAddr}/32`, 'dev', 'lo').catch(() => undefined);
  cleanupDir();
}, 60_000);

describe('labels', () => {
  it('describe a service the way Traefik and stack labels do', () => {
    const spec = serviceFromLabels(
      {
        'meshd.service': 'web',
        'meshd.publish': '8080:80,5353:53/udp',
        'meshd.alias': 'www,front',
        'meshd.lb': 'p2c',
        'meshd.proxy-protocol': 'v2',
        'meshd.expose': '9000',
      },
      'apps',
    );
    expect(spec).toMatchObject({
      name: 'web',
      lb: 'p2c',
      proxyProtocol: 'v2',
      expose: [9000],
      networks: [{ network: 'apps', aliases: ['www', 'front'] }],
      ports: [
        { published: 8080, target: 80, protocol: 'tcp' },
        { published: 5353, target: 53, protocol: 'udp' },
      ],
    });
    expect(() => serviceFromLabels({ 'meshd.service': 'web', 'meshd.publish': 'eighty' }, 'apps')).toThrow(
      'label meshd.publish',
    );
    expect(() => serviceFromLabels({ 'meshd.service': 'web', 'meshd.lb': 'random' }, 'apps')).toThrow(
      /lb: must be one of/,
    );
    expect(
      plan(
        emptyState(),
        {
          containers: [
            {
              id: 'x',
              name: 'x',
              running: true,
              labels: { 'meshd.service': 'web' },
              health: 'none',
              networks: [{ name: 'n', address: '192.0.2.9', aliases: [] }],
            },
          ],
          unknown: [],
        },
        'node',
      ),
    ).toEqual([
      {
        kind: 'skip',
        container: 'x',
        category: 'network',
        reason:
          "none of its addresses (192.0.2.9) is in a meshd network: create one with the engine network's subnet (meshctl network create --subnet ...)",
      },
    ]);
  });
});

describe('a Podman engine as the source of tasks', () => {
  it('makes labelled containers tasks that other containers resolve and reach through the VIP', async () => {
    const a = await run('web-a', { 'meshd.service': 'web', 'meshd.expose': '80' });
    const b = await run('web-b', { 'meshd.service': 'web', 'meshd.expose': '80' });
    await eventually(
      async () => expect(await digShort(`${dnsAddr}:53`, 'tasks.web')).toEqual([a, b].sort()),
      15_000,
      200,
    );
    const [vip] = await digShort(`${dnsAddr}:53`, 'web');
    expect(vip).toMatch(new RegExp(`^${subnet.replaceAll('.', '\\.')}\\.(19[2-9]|2\\d\\d)$`));
    const out = await client(
      'nslookup web; nslookup tasks.web; for i in 1 2 3 4; do wget -q -O- http://web/; done',
    );
    expect(out).toContain(`Address: ${vip}`);
    expect(new Set(addressesOf(out, 'tasks.web'))).toEqual(new Set([a, b]));
    expect(addressesOf(out, 'web')).toEqual([vip]);
    const served = out.split('\n').filter((l) => l === 'web-a' || l === 'web-b');
    expect(served).toHaveLength(4);
    expect(new Set(served)).toEqual(new Set(['web-a', 'web-b']));
  }, 60_000);

  it('takes a stopped container out at once and puts it back when it starts again', async () => {
    await podman('stop', '-t', '0', 'web-b');
    await eventually(
      async () => expect(await digShort(`${dnsAddr}:53`, 'tasks.web')).toHaveLength(1),
      10_000,
      100,
    );
    const out = await client('for i in 1 2 3 4; do wget -q -O- http://web/; done');
    expect(out.split('\n').filter((l) => l.startsWith('web-'))).toEqual(['web-a', 'web-a', 'web-a', 'web-a']);
    await podman('start', 'web-b');
    await eventually(
      async () => expect(await digShort(`${dnsAddr}:53`, 'tasks.web')).toHaveLength(2),
      10_000,
      100,
    );
  }, 60_000);

  it('gives no traffic and no DNS record to a starting or unhealthy HEALTHCHECK container', async () => {
    const ok = await run('web-ok', { 'meshd.service': 'web' }, [
      '--health-cmd',
      'true',
      '--health-interval',
      '1h',
      '--health-retries',
      '1',
    ]);
    const bad = await run('web-bad', { 'meshd.service': 'web' }, [
      '--health-cmd',
      'false',
      '--health-interval',
      '1h',
      '--health-retries',
      '1',
    ]);
    // Both start in `starting`: neither is in rotation yet (swarm's rule).
    await eventually(
      async () => {
        const tasks = JSON.parse(await m.ctl('task', 'ls', '--service', 'web', '--format', 'json')) as {
          name: string;
          health: string;
        }[];
        expect(
          tasks
            .filter((t) => t.name === 'web-ok' || t.name === 'web-bad')
            .map((t) => t.health)
            .sort(),
        ).toEqual(['starting', 'starting']);
      },
      15_000,
      200,
    );
    expect(await digShort(`${dnsAddr}:53`, 'tasks.web')).not.toContain(ok);
    // No systemd timers here: run the engine's health checks by hand, as its timer would.
    await podmanTry('healthcheck', 'run', 'web-ok');
    await podmanTry('healthcheck', 'run', 'web-bad');
    await eventually(
      async () => expect(await digShort(`${dnsAddr}:53`, 'tasks.web')).toContain(ok),
      15_000,
      200,
    );
    expect(await digShort(`${dnsAddr}:53`, 'tasks.web')).not.toContain(bad);
    const out = await client('for i in 1 2 3 4 5 6; do wget -q -O- http://web/; done');
    expect(out).not.toContain('web-bad');
    // The answers came back (a run where every request fails would pass the line above), all
    // from healthy tasks.
    const answers = out.split('\n').filter((l) => l.startsWith('web-'));
    expect(answers).toHaveLength(6);
  }, 60_000);

  it('registers an unlabelled container on an attachable network by name and alias', async () => {
    const ip = await run('redis-1', {}, ['--network-alias', 'cache'], 'sleep 600');
    await eventually(
      async () => {
        expect(await digShort(`${dnsAddr}:53`, 'redis-1')).toEqual([ip]);
        expect(await digShort(`${dnsAddr}:53`, 'cache')).toEqual([ip]);
      },
      15_000,
      200,
    );
  }, 60_000);

  it('keeps a task whose inspect fails for a moment (an engine hiccup is not a stop)', async () => {
    const ip = await run('flaky', { 'meshd.service': 'flaky', 'meshd.expose': '80' });
    await eventually(
      async () => expect(await digShort(`${dnsAddr}:53`, 'tasks.flaky')).toEqual([ip]),
      15_000,
      200,
    );
    faulty.failInspect = (await podman('inspect', 'flaky', '--format', '{{.Id}}')).trim();
    try {
      // Another container's start makes the provider re-list; flaky's inspect fails in it.
      const other = await run('flaky-witness', { 'meshd.service': 'witness', 'meshd.expose': '80' });
      await eventually(
        async () => expect(await digShort(`${dnsAddr}:53`, 'tasks.witness')).toEqual([other]),
        15_000,
        200,
      );
      expect(await digShort(`${dnsAddr}:53`, 'tasks.flaky')).toEqual([ip]);
    } finally {
      faulty.failInspect = undefined;
    }
    // A real stop still takes it out.
    await podman('stop', '-t', '0', 'flaky');
    await eventually(
      async () => expect(await digShort(`${dnsAddr}:53`, 'tasks.flaky')).toEqual([]),
      15_000,
      200,
    );
  });

  it('says once when a container stays starting past its start period, and why', async () => {
    await run('stuck', { 'meshd.service': 'stuck', 'meshd.expose': '80' }, [
      '--health-cmd',
      'true',
      '--health-interval',
      '1h',
      '--health-start-period',
      '1s',
    ]);
    const lines = () =>
      m.logs.filter(
        (l) => l.includes('stays starting past its start period') && l.includes('"container":"stuck"'),
      );
    await eventually(async () => expect(lines()).toHaveLength(1), 30_000, 500);
    // No systemd here: the engine never ran the check, and the line says so.
    expect(lines()[0]).toContain('the engine has run no health check');
    await podman('rm', '-f', '-t', '0', 'stuck');
  }, 60_000);

  it("converges a label-made service on its containers' labels, and says once when replicas disagree", async () => {
    await run('conv-1', { 'meshd.service': 'conv', 'meshd.endpoint-mode': 'dnsrr' });
    const inspect = async () =>
      JSON.parse(await m.ctl('service', 'inspect', 'conv'))[0] as {
        endpointMode: string;
        expose: number[];
        networks: { aliases: string[] }[];
      };
    await eventually(async () => expect((await inspect()).endpointMode).toBe('dnsrr'), 15_000, 200);
    // All replicas recreated with new labels: the service follows.
    await podman('rm', '-f', '-t', '0', 'conv-1');
    const relabel = {
      'meshd.service': 'conv',
      'meshd.endpoint-mode': 'vip',
      'meshd.expose': '9000',
      'meshd.alias': 'backend',
    };
    await run('conv-2', relabel);
    await eventually(
      async () =>
        expect(await inspect()).toMatchObject({
          endpointMode: 'vip',
          expose: [9000],
          networks: [{ aliases: ['backend'] }],
        }),
      15_000,
      200,
    );
    expect(
      m.logs.some((l) => l.includes("service updated: its containers' labels changed") && l.includes('conv')),
    ).toBe(true);
    // A replica that says otherwise: warned once, with the names; the agreed spec stays.
    await run('conv-3', { ...relabel, 'meshd.alias': 'other' });
    const disagree = () => m.logs.filter((l) => l.includes('replicas of service conv disagree')).length;
    await eventually(async () => expect(disagree()).toBe(1), 15_000, 200);
    expect(m.logs.find((l) => l.includes('replicas of service conv disagree'))).toMatch(
      /conv-2.*conv-3|conv-3.*conv-2/,
    );
    await podman('ps', '-q'); // another re-list happens meanwhile (events, anti-entropy)
    await client('true');
    expect(disagree()).toBe(1);
    expect((await inspect()).networks[0]?.aliases).toEqual(['backend']);
  }, 90_000);

  it('logs a rejected container once with its name and the exact reason, counts it, lists it', async () => {
    await run('lost-net', { 'meshd.service': 'lost', 'meshd.network': 'nosuchnet' });
    const reason = 'meshd.network=nosuchnet: there is no meshd network of that name';
    await eventually(
      async () =>
        expect(m.logs.filter((l) => l.includes('"container":"lost-net"') && l.includes(reason))).toHaveLength(
          1,
        ),
      15_000,
      200,
    );
    const all = await m.ctl('container', 'ls', '--all');
    expect(all).toMatch(/lost-net\s+rejected: meshd\.network=nosuchnet/);
    const metrics = await (await fetch(`http://${m.metrics}/metrics`)).text();
    expect(metrics).toMatch(/meshd_provider_rejected_containers\{reason="network"\} [1-9]/);
    await client('true'); // a re-list: still one line
    expect(m.logs.filter((l) => l.includes('"container":"lost-net"') && l.includes(reason))).toHaveLength(1);
  }, 60_000);

  it('removes a service made from labels once its last container has been gone for the grace period', async () => {
    await run('gone-1', { 'meshd.service': 'gone', 'meshd.publish': '18099:80' });
    await eventually(
      async () => expect(await digShort(`${dnsAddr}:53`, 'tasks.gone')).toHaveLength(1),
      15_000,
      200,
    );
    await podman('rm', '-f', '-t', '0', 'gone-1');
    await eventually(async () => expect(await m.ctl('service', 'ls')).not.toMatch(/\bgone\b/), 30_000, 500);
    expect(m.logs.some((l) => l.includes('service removed') && l.includes('"service":"gone"'))).toBe(true);
  }, 60_000);

  it('picks up, at the periodic re-list with no event, a container whose meshd network appears later', async () => {
    // The container runs on an engine network no meshd network covers yet: rejected, said once.
    await podmanTry('network', 'rm', '-f', `${net}b`);
    await podman('network', 'create', '--subnet', '10.89.92.0/24', '--ip-range', '10.89.92.0/25', `${net}b`);
    const ip = (
      await podman(
        'run',
        '-d',
        '--name',
        'late-net',
        '--network',
        `${net}b`,
        '--label',
        'meshd.service=latenet',
        '--label',
        'meshd.expose=80',
        '--label',
        `meshd-test=${tag}`,
        image,
        'sh',
        '-c',
        'httpd -f -p 80 -h /',
      ).then(() =>
        podman(
          'inspect',
          'late-net',
          '--format',
          `{{(index .NetworkSettings.Networks "${net}b").IPAddress}}`,
        ),
      )
    ).trim();
    try {
      await eventually(
        async () => expect(await m.ctl('container', 'ls', '--all')).toMatch(/late-net\s+rejected/),
        15_000,
        300,
      );
      // The meshd network appears; no container event follows: the 10 s re-list finds it.
      await m.ctl(
        'network',
        'create',
        '--subnet',
        '10.89.92.0/24',
        '--vip-range',
        '10.89.92.192/26',
        'appsb',
      );
      await eventually(
        async () => expect(await m.ctl('service', 'ps', 'latenet')).toContain(ip),
        25_000,
        500,
      );
    } finally {
      await podmanTry('rm', '-f', '-t', '0', 'late-net');
      await podmanTry('network', 'rm', '-f', `${net}b`);
    }
  }, 60_000);

  it('keeps serving while the engine is away and catches up when it returns', async () => {
    const before = await digShort(`${dnsAddr}:53`, 'tasks.web');
    expect(before.length).toBeGreaterThan(0);
    await engine.stop();
    // Longer than the 10 s re-list: the tasks (not just the VIP, which resolves with none) stay.
    const until = Date.now() + 11_000;
    while (Date.now() < until) {
      expect(await digShort(`${dnsAddr}:53`, 'tasks.web')).toEqual(before);
      await new Promise((r) => setTimeout(r, 1000));
    }
    // Changes made while the API service is down (the CLI works without it)...
    const c = await run('web-late', { 'meshd.service': 'web' });
    await podman('rm', '-f', '-t', '0', 'web-a');
    await engine.start();
    // ...are picked up by the full re-list after the reconnect.
    await eventually(
      async () => {
        const now = await digShort(`${dnsAddr}:53`, 'tasks.web');
        expect(now).toContain(c);
        expect(now).toHaveLength(3);
      },
      20_000,
      200,
    );
  }, 90_000);
});
