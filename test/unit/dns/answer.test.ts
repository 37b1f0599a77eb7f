import { describe, expect, it } from 'vitest';
import { answer } from '../../../src/dns/answer.js';
import { scopeOf } from '../../../src/dns/scope.js';
import { buildDnsView } from '../../../src/dns/zone.js';
import { type ClusterState, emptyState } from '../../../src/model/cluster-state.js';
import { attachContainer } from '../../../src/model/container.js';
import { Fields } from '../../../src/model/fields.js';
import { createNetwork, readNetworkSpec } from '../../../src/model/network.js';
import { initCluster, registerNode } from '../../../src/model/node.js';
import { createService, readServiceSpec } from '../../../src/model/service.js';
import { addTask } from '../../../src/model/task.js';
import { applyChange } from '../../helpers/state.js';
import { zoneText } from '../../helpers/zone-text.js';

const now = '2026-01-01T00:00:00.000Z';
type Op = (s: ClusterState) => ReturnType<typeof initCluster>;
const net =
  (body: Record<string, unknown>): Op =>
  (s) =>
    createNetwork(s, readNetworkSpec(Fields.of(body, '')), now);
const svc =
  (body: Record<string, unknown>): Op =>
  (s) =>
    createService(s, readServiceSpec(Fields.of(body, '')), now);
const task =
  (service: string, ips: string[], reportedHealth: 'none' | 'unhealthy' = 'none'): Op =>
  (s) =>
    addTask(s, { service, ips, reportedHealth, labels: {}, name: undefined }, 'n1', now);

/**
 * Two networks: front 10.1.0.0/24 (web vip with alias www, api dnsrr, a container) and back
 * 10.2.0.0/24 (web also, db vip with no healthy task, an internal-only service on secret).
 */
function cluster(): ClusterState {
  const ops: Op[] = [
    (s) => initCluster(s, '10.0.0.0/24', now),
    (s) =>
      registerNode(
        s,
        { id: 'n1', name: 'n1', advertiseAddr: '', datapathAddr: '', dataListen: '', apiListen: '' },
        now,
      ),
    net({ name: 'front', subnet: '10.1.0.0/24', attachable: true }),
    net({ name: 'back', subnet: '10.2.0.0/24' }),
    net({ name: 'secret', subnet: '10.3.0.0/24', internal: true }),
    net({ name: 'six', subnet: 'fd00:6::/64' }),
    svc({
      name: 'web',
      networks: [{ network: 'front', aliases: ['www'] }, { network: 'back' }],
      ports: [{ published: 8080, target: 80 }],
    }),
    svc({ name: 'api', endpointMode: 'dnsrr', networks: [{ network: 'front' }], expose: [9000] }),
    svc({ name: 'db', networks: [{ network: 'back' }] }),
    svc({ name: 'vault', networks: [{ network: 'secret' }] }),
    svc({ name: 'v6', networks: [{ network: 'six' }] }),
    task('web', ['10.1.0.10', '10.2.0.10']),
    task('web', ['10.1.0.11', '10.2.0.11']),
    task('api', ['10.1.0.20']),
    task('api', ['10.1.0.21']),
    task('api', ['10.1.0.22'], 'unhealthy'),
    task('db', ['10.2.0.30'], 'unhealthy'),
    task('v6', ['fd00:6::10']),
    (s) =>
      attachContainer(s, { network: 'front', name: 'redis', aliases: ['cache'], ip: '10.1.0.50' }, 'n1', now),
  ];
  let s: ClusterState = emptyState();
  for (const op of ops) s = applyChange(s, op(s));
  return s;
}

const state = cluster();
const view = buildDnsView(state, 'meshd');
const opts = { domain: 'meshd', ttl: 5 };
const webTask = (n: number) =>
  [...state.tasks.values()].filter((t) => t.name.startsWith('web.'))[n - 1]?.name as string;
const A = 1;
const AAAA = 28;
const PTR = 12;
const SRV = 33;

function ask(client: string, name: string, qtype = A, unscoped: 'all' | 'none' = 'all') {
  const a = answer(view, scopeOf(view, client, unscoped), name, qtype, opts);
  if (a.kind === 'forward') return 'forward';
  return {
    rcode: a.rcode,
    answers: zoneText(a.answers),
    authority: zoneText(a.authority),
    additional: zoneText(a.additional),
  };
}

const soa = 'meshd. 5 IN SOA ns.meshd. hostmaster.meshd. 1 3600 600 86400 5';
const nodata = { rcode: 0, answers: [], authority: [soa], additional: [] };
const nxdomain = { rcode: 3, answers: [], authority: [soa], additional: [] };
const ok = (...answers: string[]) => ({ rcode: 0, answers: answers.sort(), authority: [], additional: [] });

describe('answer(): names', () => {
  it.each([
    ['a client on front asks web', '10.1.0.99', 'web', ok('web. 5 IN A 10.1.0.2')],
    ['a client on back asks web', '10.2.0.99', 'web', ok('web. 5 IN A 10.2.0.2')],
    ['an alias', '10.1.0.99', 'www', ok('www. 5 IN A 10.1.0.2')],
    [
      'tasks.<service>',
      '10.1.0.99',
      'tasks.web',
      ok('tasks.web. 5 IN A 10.1.0.10', 'tasks.web. 5 IN A 10.1.0.11'),
    ],
    [
      'tasks.<alias>',
      '10.1.0.99',
      'tasks.www',
      ok('tasks.www. 5 IN A 10.1.0.10', 'tasks.www. 5 IN A 10.1.0.11'),
    ],
    ['dnsrr: healthy tasks only', '10.1.0.99', 'api', ok('api. 5 IN A 10.1.0.20', 'api. 5 IN A 10.1.0.21')],
    ['the cluster domain', '10.1.0.99', 'web.meshd', ok('web.meshd. 5 IN A 10.1.0.2')],
    [
      'name.network',
      '10.1.0.99',
      'tasks.web.front',
      ok('tasks.web.front. 5 IN A 10.1.0.10', 'tasks.web.front. 5 IN A 10.1.0.11'),
    ],
    ['a container name', '10.1.0.99', 'redis', ok('redis. 5 IN A 10.1.0.50')],
    ['a container alias', '10.1.0.99', 'cache', ok('cache. 5 IN A 10.1.0.50')],
    ['the container itself sees its network', '10.1.0.50', 'web', ok('web. 5 IN A 10.1.0.2')],
    ['a task on both networks: first network wins', '10.2.0.10', 'web', ok('web. 5 IN A 10.1.0.2')],
  ])('%s', (_what, client, name, want) => {
    expect(ask(client, name)).toEqual(want);
  });

  it('answers task names, on each network', () => {
    expect(ask('10.1.0.99', webTask(1))).toEqual(ok(`${webTask(1)}. 5 IN A 10.1.0.10`));
    expect(ask('10.2.0.99', webTask(2))).toEqual(ok(`${webTask(2)}. 5 IN A 10.2.0.11`));
  });

  it('keeps the VIP of a service whose tasks are all unhealthy (moby#37623), tasks.<svc> NODATA', () => {
    expect(ask('10.2.0.99', 'db')).toEqual(ok('db. 5 IN A 10.2.0.3'));
    expect(ask('10.2.0.99', 'tasks.db')).toEqual(nodata);
  });
});

describe('answer(): scope', () => {
  it('NXDOMAIN for a name that exists only on a network the client is not on', () => {
    expect(ask('10.2.0.99', 'api')).toEqual(nxdomain);
    expect(ask('10.2.0.99', 'redis')).toEqual(nxdomain);
    expect(ask('10.1.0.99', 'db')).toEqual(nxdomain);
    expect(ask('10.1.0.99', 'web.back')).toEqual(nxdomain);
  });

  it('unscoped clients see every non-internal name, or none by policy', () => {
    expect(ask('192.0.2.1', 'db')).toEqual(ok('db. 5 IN A 10.2.0.3'));
    expect(ask('192.0.2.1', 'vault')).toEqual(nxdomain);
    expect(ask('10.3.0.5', 'vault')).toEqual(ok('vault. 5 IN A 10.3.0.2'));
    expect(ask('192.0.2.1', 'web', A, 'none')).toEqual(nxdomain);
  });

  it('forwards names nobody owns', () => {
    expect(ask('10.1.0.99', 'example.com')).toBe('forward');
    expect(ask('10.1.0.99', 'nosuch')).toBe('forward');
    expect(ask('10.1.0.99', 'nosuch.meshd')).toEqual(nxdomain);
  });
});

describe('answer(): types', () => {
  it('NODATA (with SOA) for a known name of the other family, never forwarded', () => {
    expect(ask('10.1.0.99', 'web', AAAA)).toEqual(nodata);
    expect(ask('10.1.0.99', 'web', 16)).toEqual(nodata); // TXT
  });

  it('AAAA on IPv6 networks', () => {
    expect(ask('192.0.2.1', 'v6', AAAA)).toEqual(ok('v6. 5 IN AAAA fd00:6::2'));
    expect(ask('192.0.2.1', 'tasks.v6', AAAA)).toEqual(ok('tasks.v6. 5 IN AAAA fd00:6::10'));
    expect(ask('192.0.2.1', 'v6', A)).toEqual(nodata);
  });

  it('PTR for VIPs, tasks and containers; unknown addresses forwarded', () => {
    expect(ask('10.1.0.99', '2.0.1.10.in-addr.arpa', PTR)).toEqual(
      ok('2.0.1.10.in-addr.arpa. 5 IN PTR web.front.meshd.'),
    );
    expect(ask('10.1.0.99', '10.0.1.10.in-addr.arpa', PTR)).toEqual(
      ok(`10.0.1.10.in-addr.arpa. 5 IN PTR ${webTask(1)}.front.meshd.`),
    );
    expect(ask('10.1.0.99', '50.0.1.10.in-addr.arpa', PTR)).toEqual(
      ok('50.0.1.10.in-addr.arpa. 5 IN PTR redis.front.meshd.'),
    );
    expect(ask('10.1.0.99', '9.9.9.9.in-addr.arpa', PTR)).toBe('forward');
  });

  it('SRV for target and published ports: the VIP in vip mode, the tasks in dnsrr mode', () => {
    const vip = ask('10.1.0.99', '_80._tcp.web', SRV);
    expect(vip).toEqual({
      rcode: 0,
      answers: ['_80._tcp.web. 5 IN SRV 0 10 80 web.meshd.'],
      authority: [],
      additional: ['web.meshd. 5 IN A 10.1.0.2'],
    });
    expect(ask('10.1.0.99', '_8080._tcp.web', SRV)).toMatchObject({
      answers: ['_8080._tcp.web. 5 IN SRV 0 10 80 web.meshd.'],
    });
    const rr = ask('10.1.0.99', '_9000._tcp.api', SRV);
    expect(rr).not.toBe('forward');
    if (rr === 'forward') return;
    expect(rr.answers).toHaveLength(2);
    expect(rr.answers[0]).toMatch(/^_9000\._tcp\.api\. 5 IN SRV 0 10 9000 api\.\d\.[a-z0-9]+\.meshd\.$/);
    expect(rr.additional.sort()).toEqual(
      [...state.tasks.values()]
        .filter((t) => t.name.startsWith('api.') && t.reportedHealth === 'none')
        .map((t) => `${t.name}.meshd. 5 IN A ${t.addresses[0]?.address}`)
        .sort(),
    );
    // A port the service does not have is not a name meshd owns.
    expect(ask('10.1.0.99', '_81._tcp.web', SRV)).toBe('forward');
  });
});
