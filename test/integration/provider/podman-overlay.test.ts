import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { createTestLan, isRoot, sh, type TestLan } from '../../helpers/netns.js';
import {
  type EngineService,
  ensureImage,
  image,
  podman,
  podmanTry,
  startEngine,
} from '../../helpers/podman.js';

// A Podman container joins a meshd overlay network it is not on, as a swarm task's sandbox joins
// its networks: the provider hands meshd the container's namespace (`SandboxKey`), and meshd
// adds an interface with an IPAM address. meshd runs in a namespace of its own (a node on a LAN),
// where it may build the overlay; the engine and its containers are the machine's.
const tag = `meshd-ovl-${process.pid}`;
const engineNet = `mo${process.pid}`;
const prefix = `po${process.pid % 1000}`;
const joined = '10.227.1';
let engine: EngineService;
let lan: TestLan;
let m: MeshdProcess;
const endpoints: string[] = [];

const inNode = (...args: string[]) => sh('ip', 'netns', 'exec', lan.hosts[0]?.name as string, ...args);

beforeAll(async () => {
  if (!isRoot()) throw new Error('this test needs root (podman, namespaces); CI runs as root');
  await ensureImage();
  await podmanTry('network', 'rm', '-f', engineNet);
  await podman('network', 'create', '--subnet', '10.227.2.0/24', engineNet);
  engine = await startEngine();
  lan = await createTestLan(prefix, '10.227.9.254', ['10.227.9.1']);
  const a = '10.227.9.1';
  m = await startMeshd({
    netns: lan.hosts[0]?.name,
    token: 'podman-overlay-token',
    args: [
      '--provider',
      'docker',
      '--docker-host',
      `unix://${engine.socket}`,
      '--api-listen',
      `${a}:0`,
      '--dns-listen',
      `${a}:0`,
      '--advertise-addr',
      a,
    ],
  });
  await m.ctl('network', 'create', '--attachable', '--subnet', `${joined}.0/24`, 'joined');
  await m.ctl('service', 'create', '--name', 'peer', '--network', 'joined', '--endpoint-mode', 'dnsrr');
}, 120_000);

afterAll(async () => {
  const ids = (await podmanTry('ps', '-aq', '--filter', `label=meshd-test=${tag}`)).stdout
    .split('\n')
    .filter(Boolean);
  if (ids.length) await podmanTry('rm', '-f', '-t', '0', ...ids);
  await m?.stop();
  for (const ep of endpoints) await sh('ip', 'netns', 'del', ep).catch(() => undefined);
  await lan?.remove();
  await podmanTry('network', 'rm', '-f', engineNet);
  await engine?.stop();
}, 60_000);

describe('a Podman container on a meshd overlay network', () => {
  it('joins through its namespace: an interface after the engine one, an IPAM address, its own way out kept', async () => {
    await podman(
      'run',
      '-d',
      '--name',
      'join-a',
      '--network',
      engineNet,
      ...['meshd.service=joinsvc', 'meshd.network=joined', 'meshd.expose=80', `meshd-test=${tag}`].flatMap(
        (l) => ['--label', l],
      ),
      image,
      'sh',
      '-c',
      'echo join-a > /www/index.html; httpd -f -p 80 -h /www',
    );
    const sandbox = (await podman('inspect', 'join-a', '--format', '{{.NetworkSettings.SandboxKey}}')).trim();
    const inside = (...args: string[]) => sh('nsenter', `--net=${sandbox}`, 'ip', ...args);
    let addr = '';
    await eventually(
      async () => {
        addr = /inet (\S+)\/24/.exec(await inside('-o', '-4', 'addr', 'show', 'dev', 'eth1'))?.[1] ?? '';
        expect(addr.startsWith(`${joined}.`)).toBe(true);
      },
      20_000,
      200,
    );
    // The engine's eth0 and its default route stay as the engine made them.
    expect(await inside('-o', '-4', 'addr', 'show', 'dev', 'eth0')).toContain('10.227.2.');
    expect(await inside('route', 'show', 'default')).toContain('dev eth0');
    // meshd's DNS answers the address, asked from the network's side (its gateway on the node).
    const [host, port] = m.dns.split(':') as [string, string];
    const answer = await inNode(
      'dig',
      '+short',
      '-b',
      `${joined}.1`,
      `@${host}`,
      '-p',
      port,
      'tasks.joinsvc',
    );
    expect(answer.trim()).toBe(addr);
    // Another endpoint of the overlay, a namespace joined with task add --netns, reaches it.
    const ep = `${prefix}e1`;
    await sh('ip', 'netns', 'add', ep);
    endpoints.push(ep);
    await m.ctl('task', 'add', 'peer', '--netns', ep, '--name', 'peer-1');
    await eventually(
      async () =>
        expect(await sh('ip', 'netns', 'exec', ep, 'curl', '-s', '-m', '2', `http://${addr}/`)).toBe(
          'join-a\n',
        ),
      20_000,
    );
  }, 60_000);

  it('leaves the network when the container goes, and the task with it', async () => {
    await podman('rm', '-f', '-t', '0', 'join-a');
    await eventually(async () => expect(await m.ctl('task', 'ls')).not.toContain('join-a'), 20_000, 200);
  }, 40_000);
});
