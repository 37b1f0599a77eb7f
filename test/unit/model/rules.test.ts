import { describe, expect, it } from 'vitest';
import type { ClusterState } from '../../../src/model/cluster-state.js';
import { attachContainer, detachContainer } from '../../../src/model/container.js';
import { Fields } from '../../../src/model/fields.js';
import { createNetwork, readNetworkSpec, removeNetwork } from '../../../src/model/network.js';
import { initCluster, registerNode } from '../../../src/model/node.js';
import { createService, readServiceSpec, removeService, updateService } from '../../../src/model/service.js';
import { addTask, removeTask } from '../../../src/model/task.js';
import { applyChange, build } from '../../helpers/state.js';

const now = '2026-01-01T00:00:00.000Z';
const net = (body: Record<string, unknown>) => (s: ClusterState) =>
  createNetwork(s, readNetworkSpec(Fields.of(body, '')), now);
const svc = (body: Record<string, unknown>) => (s: ClusterState) =>
  createService(s, readServiceSpec(Fields.of(body, '')), now);
const task =
  (service: string, ips: string[] = []) =>
  (s: ClusterState) =>
    addTask(s, { service, ips, reportedHealth: 'none', labels: {} }, 'node1', now);
const node = (s: ClusterState) =>
  registerNode(
    s,
    {
      id: 'node1',
      name: 'n1',
      advertiseAddr: '127.0.0.1',
      datapathAddr: '127.0.0.1',
      dataListen: '',
      apiListen: '',
    },
    now,
  );
const base = () =>
  build(
    (s) => initCluster(s, '10.0.0.0/24', now),
    node,
    net({ name: 'front', subnet: '10.10.0.0/24', attachable: true }),
  );

/** Applies one operation to a state. */
function then(s: ClusterState, op: (s: ClusterState) => ReturnType<typeof createNetwork>): ClusterState {
  return applyChange(s, op(s));
}

function byName<T extends { name: string }>(m: ReadonlyMap<string, T>, name: string): T {
  const v = [...m.values()].find((x) => x.name === name);
  if (!v) throw new Error(`${name} missing`);
  return v;
}

describe('networks', () => {
  it('initialises the cluster once with the ingress network', () => {
    const s = base();
    expect(s.cluster?.id).toMatch(/^[a-z0-9]{25}$/);
    const ingress = byName(s.networks, 'ingress');
    expect(ingress).toMatchObject({
      ingress: true,
      attachable: false,
      subnet: '10.0.0.0/24',
      gateway: '10.0.0.1',
    });
    expect(initCluster(s, '10.9.0.0/24', now).puts).toEqual([]);
  });

  it('allows exactly one ingress network, with Docker text', () => {
    const s = base();
    const ingress = byName(s.networks, 'ingress');
    expect(() => net({ name: 'ingress2', subnet: '10.20.0.0/24', ingress: true })(s)).toThrow(
      `ingress network (${ingress.id}) is already present`,
    );
  });

  it('never makes ingress attachable', () => {
    const s = build((x) => initCluster(x, '10.0.0.0/24', now));
    const withoutIngress = applyChange(s, removeNetwork(s, 'ingress'));
    expect(() =>
      net({ name: 'in2', subnet: '10.20.0.0/24', ingress: true, attachable: true })(withoutIngress),
    ).toThrow('ingress network cannot be attachable');
  });

  it.each([
    ['10.10.0.0/16', /Pool overlaps with other one on this address space/],
    ['10.10.0.128/25', /Pool overlaps/],
    ['10.10.0.5/24', /host bits are set/],
    ['nonsense', /invalid subnet nonsense/],
  ])('refuses subnet %s', (subnet, err) => {
    expect(() => net({ name: 'x', subnet })(base())).toThrow(err);
  });

  it('checks gateway, names, options, driver and mtu', () => {
    const s = base();
    expect(() => net({ name: 'x', subnet: '10.30.0.0/24', gateway: '10.31.0.1' })(s)).toThrow(
      'ipam configuration: subnet 10.30.0.0/24 does not contain gateway 10.31.0.1',
    );
    expect(() => net({ name: 'front', subnet: '10.30.0.0/24' })(s)).toThrow(
      'network with name front already exists',
    );
    expect(() => net({ name: 'x', subnet: '10.30.0.0/24', options: { bogus: '1' } })(s)).toThrow(
      'unknown network option "bogus"',
    );
    expect(() => net({ name: 'x', subnet: '10.30.0.0/24', driver: 'bridge' })(s)).toThrow(
      'only the overlay driver',
    );
    expect(() =>
      net({ name: 'x', subnet: '10.30.0.0/24', options: { 'com.docker.network.driver.mtu': 'big' } })(s),
    ).toThrow('invalid mtu');
    const ok = applyChange(
      s,
      net({
        name: 'sec',
        subnet: 'fd00:10::/64',
        options: { encrypted: '', 'com.docker.network.driver.mtu': '1200' },
      })(s),
    );
    expect(byName(ok.networks, 'sec')).toMatchObject({ encrypted: true, mtu: 1200, gateway: 'fd00:10::1' });
  });

  it('refuses to remove a network in use, and ingress while ports are published', () => {
    let s = then(
      base(),
      svc({ name: 'web', networks: [{ network: 'front' }], ports: [{ published: 80, target: 8080 }] }),
    );
    const web = byName(s.services, 'web');
    expect(() => removeNetwork(s, 'front')).toThrow(
      `network ${byName(s.networks, 'front').id} is in use by service ${web.id}`,
    );
    expect(() => removeNetwork(s, 'ingress')).toThrow(
      `ingress network cannot be removed because service ${web.id} depends on it`,
    );
    s = applyChange(s, removeService(s, 'web'));
    s = applyChange(s, removeNetwork(s, 'front'));
    expect([...s.networks.values()].map((n) => n.name)).toEqual(['ingress']);
  });
});

describe('services', () => {
  it('gives a VIP per network in vip mode and none in dnsrr mode', () => {
    let s = base();
    s = applyChange(s, net({ name: 'back', subnet: '10.11.0.0/24' })(s));
    s = applyChange(
      s,
      svc({ name: 'web', networks: [{ network: 'front', aliases: ['www'] }, { network: 'back' }] })(s),
    );
    s = applyChange(s, svc({ name: 'db', endpointMode: 'dnsrr', networks: [{ network: 'back' }] })(s));
    expect(byName(s.services, 'web').networks.map((n) => n.vip)).toEqual(['10.10.0.2', '10.11.0.2']);
    expect(byName(s.services, 'db').networks[0]?.vip).toBeUndefined();
  });

  it('rejects dnsrr with an ingress-published port, with Docker text', () => {
    expect(() =>
      svc({ name: 'db', endpointMode: 'dnsrr', ports: [{ published: 5432, target: 5432 }] })(base()),
    ).toThrow("EndpointSpec: port published with ingress mode can't be used with dnsrr mode");
    // host-mode publishing is fine with dnsrr
    expect(() =>
      svc({ name: 'db', endpointMode: 'dnsrr', ports: [{ published: 5432, target: 5432, mode: 'host' }] })(
        base(),
      ),
    ).not.toThrow();
  });

  it('keeps published ports unique per protocol, with Docker text', () => {
    let s = base();
    s = applyChange(s, svc({ name: 'web', ports: [{ published: 8080, target: 80 }] })(s));
    const web = byName(s.services, 'web');
    expect(() => svc({ name: 'web2', ports: [{ published: 8080, target: 80 }] })(s)).toThrow(
      `port '8080' is already in use by service 'web' (${web.id}) as an ingress port`,
    );
    expect(() =>
      svc({ name: 'dns', ports: [{ published: 8080, target: 53, protocol: 'udp' }] })(s),
    ).not.toThrow();
    expect(() =>
      svc({
        name: 'dup',
        ports: [
          { published: 9, target: 1 },
          { published: 9, target: 2 },
        ],
      })(s),
    ).toThrow('EndpointSpec: duplicate published ports provided');
    s = applyChange(s, svc({ name: 'h1', ports: [{ published: 7000, target: 7000, mode: 'host' }] })(s));
    expect(() =>
      svc({ name: 'h2', ports: [{ published: 7000, target: 7000, mode: 'host' }] })(s),
    ).not.toThrow();
    const h1 = byName(s.services, 'h1');
    expect(() => svc({ name: 'i', ports: [{ published: 7000, target: 7000 }] })(s)).toThrow(
      `port '7000' is already in use by service 'h1' (${h1.id}) as a host-published port`,
    );
  });

  it('assigns a published port from 30000-32767 when none is given', () => {
    let s = base();
    s = applyChange(s, svc({ name: 'a', ports: [{ target: 80 }] })(s));
    s = applyChange(s, svc({ name: 'b', ports: [{ target: 80 }] })(s));
    expect(byName(s.services, 'a').ports[0]?.published).toBe(30000);
    expect(byName(s.services, 'b').ports[0]?.published).toBe(30001);
    // Host mode too, as Docker does.
    s = applyChange(s, svc({ name: 'h', ports: [{ target: 80, mode: 'host' }] })(s));
    expect(byName(s.services, 'h').ports[0]).toMatchObject({ published: 30002, mode: 'host' });
  });

  it('shares a published port between services on different addresses, never with one on every address', () => {
    let s = base();
    s = applyChange(s, svc({ name: 'a', ports: [{ published: 8080, target: 80, hostIp: '192.0.2.10' }] })(s));
    s = applyChange(s, svc({ name: 'b', ports: [{ published: 8080, target: 80, hostIp: '192.0.2.11' }] })(s));
    const a = byName(s.services, 'a');
    expect(() => svc({ name: 'c', ports: [{ published: 8080, target: 80 }] })(s)).toThrow(
      `port '8080' is already in use by service 'a' (${a.id}) as an ingress port`,
    );
    expect(() =>
      svc({ name: 'd', ports: [{ published: 8080, target: 80, hostIp: '192.0.2.10' }] })(s),
    ).toThrow('already in use by service');
    expect(() => svc({ name: 'e', ports: [{ published: 1, target: 80, hostIp: 'nowhere' }] })(s)).toThrow(
      'is not an IP address',
    );
    expect(byName(s.services, 'b').ports[0]?.hostIp).toBe('192.0.2.11');
  });

  it('lets two host-mode services share a port on different nodes, never on one', () => {
    let s = base();
    s = applyChange(
      s,
      registerNode(
        s,
        { id: 'node2', name: 'n2', advertiseAddr: '', datapathAddr: '', dataListen: '', apiListen: '' },
        now,
      ),
    );
    const host = (name: string) => svc({ name, ports: [{ published: 7000, target: 7000, mode: 'host' }] });
    s = then(then(s, host('h1')), host('h2'));
    s = applyChange(s, task('h1')(s));
    const first = [...s.tasks.values()][0]?.name;
    expect(() => task('h2')(s)).toThrow(
      `host-mode port 7000/tcp is already in use on node node1 by task ${first}`,
    );
    // A second task of the same service on the same node binds the same port: refused too.
    expect(() => task('h1')(s)).toThrow('host-mode port 7000/tcp is already in use on node node1');
    const other = applyChange(
      s,
      addTask(s, { service: 'h2', node: 'node2', ips: [], reportedHealth: 'none', labels: {} }, 'node1', now),
    );
    expect([...other.tasks.values()].map((t) => t.node).sort()).toEqual(['node1', 'node2']);
  });

  it('needs an ingress network for ingress publishing', () => {
    const s = build((x) => initCluster(x, '10.0.0.0/24', now));
    const none = applyChange(s, removeNetwork(s, 'ingress'));
    expect(() => svc({ name: 'web', ports: [{ published: 80, target: 80 }] })(none)).toThrow(
      'service needs ingress network, but no ingress network is present',
    );
  });

  it('keeps names unique and DNS-safe', () => {
    const s = then(base(), svc({ name: 'web' }));
    expect(() => svc({ name: 'web' })(s)).toThrow(
      'name conflicts with an existing object: service web already exists',
    );
    expect(() => svc({ name: 'bad_name' })(s)).toThrow('invalid service name "bad_name"');
  });

  it('reads specs strictly, naming the bad key', () => {
    expect(() => readServiceSpec(Fields.of({ name: 'x', lb: 'random' }, ''))).toThrow('lb: must be one of');
    expect(() => readServiceSpec(Fields.of({ name: 'x', healthcheck: { interval: 'soon' } }, ''))).toThrow(
      'healthcheck.interval: invalid duration "soon"',
    );
    expect(() => readServiceSpec(Fields.of({ name: 'x', ports: [{ target: 80, publshed: 1 }] }, ''))).toThrow(
      'ports[0].publshed: unknown key',
    );
  });

  it('detects a concurrent update by version', () => {
    let s = then(base(), svc({ name: 'web' }));
    const web = byName(s.services, 'web');
    const spec = readServiceSpec(Fields.of({ name: 'web', lb: 'least-conn' }, ''));
    s = applyChange(s, updateService(s, 'web', spec, web.version, now));
    expect(byName(s.services, 'web').lb).toBe('least-conn');
    expect(() => updateService(s, 'web', spec, web.version, now)).toThrow(/update out of sequence/);
  });

  it('removes its tasks with it', () => {
    let s = then(base(), svc({ name: 'web', networks: [{ network: 'front' }] }));
    s = applyChange(s, task('web')(s));
    s = applyChange(s, removeService(s, 'web'));
    expect(s.tasks.size).toBe(0);
  });
});

describe('tasks and containers', () => {
  it('allocates task addresses, slots and names; releases on removal', () => {
    let s = then(base(), svc({ name: 'web', networks: [{ network: 'front' }] }));
    s = applyChange(s, task('web')(s));
    s = applyChange(s, task('web', ['10.10.0.50'])(s));
    const [t1, t2] = [...s.tasks.values()];
    expect(t1?.addresses[0]?.address).toBe('10.10.0.3'); // .1 gateway, .2 the VIP
    expect(t1?.name).toMatch(/^web\.1\.[a-z0-9]{25}$/);
    expect(t2?.addresses[0]?.address).toBe('10.10.0.50');
    expect(t2?.slot).toBe(2);
    expect(() => task('web', ['10.10.0.50'])(s)).toThrow(
      'address 10.10.0.50 is already in use in network front',
    );
    expect(() => task('web', ['10.99.0.1'])(s)).toThrow(
      'address 10.99.0.1 is in none of the networks of service web',
    );
    s = applyChange(s, removeTask(s, t1?.id as string));
    s = applyChange(s, task('web')(s));
    const t3 = [...s.tasks.values()].at(-1);
    expect(t3?.addresses[0]?.address).toBe('10.10.0.3');
    expect(t3?.slot).toBe(1);
  });

  it('allows one task per node for a global service, named by node', () => {
    let s = then(base(), svc({ name: 'agent', mode: 'global', networks: [{ network: 'front' }] }));
    s = applyChange(s, task('agent')(s));
    expect([...s.tasks.values()][0]?.name).toMatch(/^agent\.node1\./);
    expect(() => task('agent')(s)).toThrow('global service agent already has a task on node node1');
  });

  it('attaches containers only to attachable networks', () => {
    let s = base();
    s = applyChange(s, net({ name: 'private', subnet: '10.12.0.0/24' })(s));
    expect(() => attachContainer(s, { network: 'private', name: 'c1', aliases: [] }, 'node1', now)).toThrow(
      'network private not manually attachable',
    );
    expect(() => attachContainer(s, { network: 'ingress', name: 'c1', aliases: [] }, 'node1', now)).toThrow(
      'not manually attachable',
    );
    s = applyChange(
      s,
      attachContainer(s, { network: 'front', name: 'c1', aliases: ['cache'], ip: '10.10.0.9' }, 'node1', now),
    );
    expect(byName(s.containers, 'c1').addresses).toEqual([
      { network: byName(s.networks, 'front').id, address: '10.10.0.9' },
    ]);
    // The network is in use by the container's attachment, named as swarmkit names it: a task.
    expect(() => removeNetwork(s, 'front')).toThrow(
      `network ${byName(s.networks, 'front').id} is in use by task ${byName(s.containers, 'c1').id}`,
    );
    s = applyChange(s, detachContainer(s, 'c1', undefined, now));
    expect(s.containers.size).toBe(0);
  });

  it('pins a VIP a user asks for (moby#24170), refuses a taken one, and keeps it through an update', () => {
    const s = then(base(), svc({ name: 'db', networks: [{ network: 'front', vip: '10.10.0.50' }] }));
    expect(byName(s.services, 'db').networks[0]?.vip).toBe('10.10.0.50');
    expect(() => then(s, svc({ name: 'db2', networks: [{ network: 'front', vip: '10.10.0.50' }] }))).toThrow(
      'address 10.10.0.50 is already in use in network front',
    );
    expect(() => then(s, svc({ name: 'db3', networks: [{ network: 'front', vip: '10.99.0.1' }] }))).toThrow(
      'not in subnet 10.10.0.0/24',
    );
    expect(() =>
      then(
        s,
        svc({ name: 'db4', endpointMode: 'dnsrr', networks: [{ network: 'front', vip: '10.10.0.51' }] }),
      ),
    ).toThrow('needs endpoint mode vip');
    const db = byName(s.services, 'db');
    const spec = readServiceSpec(
      Fields.of({ name: 'db', lb: 'p2c', networks: [{ network: 'front', vip: '10.10.0.50' }] }, ''),
    );
    const updated = applyChange(s, updateService(s, 'db', spec, db.version, now));
    expect(byName(updated.services, 'db').networks[0]?.vip).toBe('10.10.0.50');
  });

  it("refuses an explicit attachment to the ingress network with swarmkit's text", () => {
    expect(() => then(base(), svc({ name: 'web', networks: [{ network: 'ingress' }] }))).toThrow(
      'Service cannot be explicitly attached to the ingress network "ingress"',
    );
  });

  it('refuses an alias or container name that another object answers on the network (no joining its records)', () => {
    let s = then(base(), svc({ name: 'web', networks: [{ network: 'front', aliases: ['www'] }] }));
    // A container named like the service, or aliased like it or its alias: refused.
    expect(() => attachContainer(s, { network: 'front', name: 'web', aliases: [] }, 'node1', now)).toThrow(
      'container name web is already in use on network front by service web',
    );
    expect(() =>
      attachContainer(s, { network: 'front', name: 'c1', aliases: ['WWW'] }, 'node1', now),
    ).toThrow('alias WWW is already in use on network front by service web');
    // Another service aliasing web's name on the same network: refused; on another network: fine.
    expect(() => svc({ name: 'api', networks: [{ network: 'front', aliases: ['web'] }] })(s)).toThrow(
      'network alias web is already in use on network front by service web',
    );
    s = then(s, net({ name: 'other', subnet: '10.13.0.0/24' }));
    s = then(s, svc({ name: 'api', networks: [{ network: 'other', aliases: ['web'] }] }));
    // A container first: a service may not take its name either.
    s = then(s, (st) =>
      attachContainer(st, { network: 'front', name: 'cache', aliases: ['db'] }, 'node1', now),
    );
    expect(() => svc({ name: 'db', networks: [{ network: 'front' }] })(s)).toThrow(
      'service name db is already in use on network front by container cache',
    );
    // An update of web keeps its own names.
    const web = byName(s.services, 'web');
    s = then(s, (st) =>
      updateService(
        st,
        'web',
        readServiceSpec(Fields.of({ name: 'web', networks: [{ network: 'front', aliases: ['www'] }] }, '')),
        web.version,
        now,
      ),
    );
  });

  it('joins a publishing service to ingress with a VIP of its own there, kept across updates, freed without ports', () => {
    const body = { name: 'web', networks: [{ network: 'front' }], ports: [{ published: 80, target: 8080 }] };
    let s = then(base(), svc(body));
    const ingress = byName(s.networks, 'ingress');
    const web = byName(s.services, 'web');
    expect(web.ingress).toEqual({ network: ingress.id, vip: '10.0.0.2' });
    // Its tasks take no ingress address: the mesh reaches them on their own network.
    s = then(s, task('web'));
    expect([...s.tasks.values()][0]?.addresses.map((a) => a.network)).toEqual([
      byName(s.networks, 'front').id,
    ]);
    // The VIP is in use: a publishing service without networks (on ingress itself) gets the next.
    s = then(s, svc({ name: 'only', ports: [{ published: 81, target: 80 }] }));
    expect(byName(s.services, 'only').ingress?.vip).toBe('10.0.0.3');
    const spec = (extra: Record<string, unknown>) => readServiceSpec(Fields.of({ ...body, ...extra }, ''));
    s = applyChange(s, updateService(s, 'web', spec({ lb: 'p2c' }), undefined, now));
    expect(byName(s.services, 'web').ingress?.vip).toBe('10.0.0.2');
    s = applyChange(s, updateService(s, 'web', spec({ ports: [] }), undefined, now));
    expect(byName(s.services, 'web').ingress).toBeUndefined();
    s = then(s, svc({ name: 'again', ports: [{ published: 82, target: 80 }] }));
    expect(byName(s.services, 'again').ingress?.vip).toBe('10.0.0.2');
  });
});
