import { describe, expect, it } from 'vitest';
import { type ClusterState, emptyState } from '../../../src/model/cluster-state.js';
import { Fields } from '../../../src/model/fields.js';
import { createNetwork, readNetworkSpec, removeNetwork } from '../../../src/model/network.js';
import { claimOverlayAddress, initCluster, registerNode } from '../../../src/model/node.js';
import { createService, readServiceSpec } from '../../../src/model/service.js';
import { addTask } from '../../../src/model/task.js';
import { fastPathScript } from '../../../src/overlay/fast-path.js';
import { overlayFilterScript } from '../../../src/overlay/filter.js';
import { claimsWanted, macOf, overlayPeers, overlayPlan } from '../../../src/overlay/plan.js';
import { applyChange } from '../../helpers/state.js';

const now = '2026-01-01T00:00:00.000Z';

function cluster(): ClusterState {
  let s: ClusterState = emptyState();
  const run = (op: (s: ClusterState) => ReturnType<typeof initCluster>) => {
    s = applyChange(s, op(s));
  };
  run((x) => initCluster(x, '10.0.0.0/24', now));
  for (const n of ['n1', 'n2', 'n3', 'n4'])
    run((x) =>
      registerNode(
        x,
        {
          id: n,
          name: n,
          advertiseAddr: '',
          datapathAddr: `192.168.9.${n.slice(1)}`,
          dataListen: '',
          apiListen: '',
        },
        now,
      ),
    );
  const net = (body: Record<string, unknown>) => (x: ClusterState) =>
    createNetwork(x, readNetworkSpec(Fields.of(body, '')), now);
  run(net({ name: 'apps', subnet: '10.5.0.0/24' }));
  run(net({ name: 'quiet', subnet: '10.6.0.0/24', internal: true }));
  run((x) =>
    createService(x, readServiceSpec(Fields.of({ name: 'web', networks: [{ network: 'apps' }] }, '')), now),
  );
  run((x) =>
    createService(x, readServiceSpec(Fields.of({ name: 'q', networks: [{ network: 'quiet' }] }, '')), now),
  );
  const task = (service: string, node: string, ip: string, netns?: string) => (x: ClusterState) =>
    addTask(x, { service, ips: [ip], reportedHealth: 'none', labels: {}, netns }, node, now);
  run(task('web', 'n1', '10.5.0.10', '/run/netns/a'));
  run(task('web', 'n2', '10.5.0.11', '/run/netns/b'));
  run(task('web', 'n3', '10.5.0.12', '/run/netns/c'));
  // Brings its own address: not on the overlay, so neither a local nor a remote endpoint.
  run(task('web', 'n2', '10.5.0.13'));
  // Its network has no endpoint joined through meshd: no devices for it.
  run(task('q', 'n1', '10.6.0.10'));
  // n1 holds its own address on apps, so it builds it (the fabric claims it on first sight).
  run((x) =>
    claimOverlayAddress(x, 'n1', [...x.networks.values()].find((n) => n.name === 'apps')?.id as string),
  );
  return s;
}

describe('overlay plan', () => {
  it('builds a joined network with its local veths and remote FDB entries, VNI and MTU', () => {
    const s = cluster();
    (s.heartbeats as Map<string, unknown>).delete('n3');
    const [apps, ...rest] = overlayPlan(s, 'n1');
    expect(rest).toEqual([]);
    expect(apps).toMatchObject({ name: 'apps', gateway: '10.5.0.1', prefix: 24, mtu: 1450, internal: false });
    expect(apps?.vni).toBeGreaterThan(4096);
    expect(apps?.bridge).toBe(`mbr${apps?.vni}`);
    expect(apps?.locals).toEqual([
      expect.objectContaining({
        address: '10.5.0.10',
        ifname: 'eth0',
        netns: '/run/netns/a',
        mac: '02:42:0a:05:00:0a',
      }),
    ]);
    expect((apps?.locals[0]?.hostIf.length ?? 99) <= 15).toBe(true);
    // n3's lease lapsed: its endpoint is left out.
    expect(apps?.remotes).toEqual([
      { address: '10.5.0.11', mac: macOf('10.5.0.11'), node: '192.168.9.2', nodeId: 'n2' },
    ]);
    // A plain network's frames leave by VXLAN; an encrypted one's by a TAP device and meshd's tunnels.
    expect(apps).toMatchObject({ encrypted: false, carrier: `mvx${apps?.vni}` });
    expect(overlayPeers(s, apps?.id as string).map((p) => ({ name: p.name, ip: p.ip }))).toEqual([
      { name: 'n1', ip: '192.168.9.1' },
      { name: 'n2', ip: '192.168.9.2' },
    ]);
  });

  it('isolates networks, closes internal ones and masquerades the way out by address', () => {
    const plan = overlayPlan(cluster(), 'n1');
    const script = overlayFilterScript([
      ...plan,
      { ...(plan[0] as (typeof plan)[0]), bridge: 'mbr9', subnet: '10.9.0.0/24', internal: true },
    ]);
    expect(script).toContain(
      `iifname "${plan[0]?.bridge}" oifname "mbr*" oifname != "${plan[0]?.bridge}" drop`,
    );
    expect(script).toContain('ip saddr 10.5.0.0/24 ip daddr != 10.5.0.0/24 masquerade');
    expect(script).toContain('iifname "mbr9" oifname != "mbr9" drop');
    expect(script).not.toContain('10.9.0.0/24 masquerade');
    // The routing mesh's connections pass the isolation and internal rules (checked first).
    expect(script.indexOf('ct status dnat accept')).toBeLessThan(script.indexOf('drop'));
  });

  it('passes frames between the carrier and local endpoints past the bridge, never local to local', () => {
    const [apps] = overlayPlan(cluster(), 'n1');
    const n = apps as NonNullable<typeof apps>;
    const local = n.locals[0] as (typeof n.locals)[0];
    const present = new Set([n.carrier, local.hostIf]);
    const script = fastPathScript([n], present);
    // From the VXLAN device: a frame for a local endpoint's MAC goes straight to its veth.
    expect(script).toContain(`type filter hook ingress device "${n.carrier}"`);
    expect(script).toContain(`${macOf('10.5.0.10')} : "${local.hostIf}"`);
    // From a local endpoint: frames for endpoints and nodes elsewhere go straight to the carrier.
    expect(script).toContain(`devices = { "${local.hostIf}" }`);
    for (const r of n.remotes) expect(script).toContain(r.mac);
    expect(script).toContain(`fwd to "${n.carrier}"`);
    // A local endpoint's MAC is never a target from another local endpoint (a VIP's reply may need
    // conntrack on the bridge): it is only in the carrier's map.
    expect(script.match(new RegExp(macOf('10.5.0.10'), 'g'))).toHaveLength(1);
    // A device that does not exist (yet) is never named: the whole table would fail to load.
    expect(fastPathScript([n], new Set([n.carrier]))).toBe('');
    expect(fastPathScript([n], new Set())).toBe('');
  });

  it("has every node carry a joined network once it holds an address of its own there (swarm's lb endpoint)", () => {
    let s = cluster();
    const apps = [...s.networks.values()].find((n) => n.name === 'apps')?.id as string;
    // n4 has no endpoint of apps: nothing to build until it holds an address, which it wants.
    expect(overlayPlan(s, 'n4')).toEqual([]);
    expect(claimsWanted(s, 'n4')).toEqual([apps]);
    expect(claimsWanted(s, 'n2')).toEqual([apps]);
    expect(claimsWanted(s, 'n1')).toEqual([]);
    for (const n of ['n2', 'n4']) s = applyChange(s, claimOverlayAddress(s, n, apps));
    expect(claimsWanted(s, 'n4')).toEqual([]);
    // A claim again changes nothing.
    expect(claimOverlayAddress(s, 'n4', apps).puts).toEqual([]);
    const own = (n: string) => s.nodes.get(n)?.overlayAddresses?.[apps] as string;
    // From IPAM: not the gateway, nor any endpoint's address, and one per node.
    const taken = ['10.5.0.1', '10.5.0.10', '10.5.0.11', '10.5.0.12', '10.5.0.13'];
    for (const n of ['n1', 'n2', 'n4']) expect(taken).not.toContain(own(n));
    expect(new Set(['n1', 'n2', 'n4'].map(own)).size).toBe(3);
    const [carried] = overlayPlan(s, 'n4');
    expect(carried).toMatchObject({ name: 'apps', address: own('n4'), locals: [] });
    // Its forwarding tables hold every endpoint and the other nodes' own addresses.
    expect(carried?.remotes.map((r) => r.address).sort()).toEqual(
      ['10.5.0.10', '10.5.0.11', '10.5.0.12', own('n1'), own('n2')].sort(),
    );
    // A restart keeps them: the node's record is rewritten with its addresses.
    s = applyChange(
      s,
      registerNode(
        s,
        {
          id: 'n4',
          name: 'n4',
          advertiseAddr: 'x',
          datapathAddr: '192.168.9.4',
          dataListen: '',
          apiListen: '',
        },
        now,
      ),
    );
    expect(own('n4')).toBeDefined();
  });

  it('gives nodes their addresses back when the network is removed', () => {
    let s = cluster();
    const quiet = [...s.networks.values()].find((n) => n.name === 'quiet')?.id as string;
    s = applyChange(s, claimOverlayAddress(s, 'n2', quiet));
    // The service's VIP and the task hold .2 and .10.
    expect(s.nodes.get('n2')?.overlayAddresses?.[quiet]).toBe('10.6.0.3');
    for (const svc of [...s.services.values()].filter((x) => x.name === 'q'))
      (s.services as Map<string, unknown>).delete(svc.id);
    const change = removeNetwork(s, 'quiet');
    expect(change.puts).toEqual([
      expect.objectContaining({
        kind: 'nodes',
        id: 'n2',
        value: expect.not.objectContaining({ overlayAddresses: expect.anything() }),
      }),
    ]);
  });

  it("puts the VIPs of a network's services on its bridge, and builds IPv6 networks, encrypted ones too", () => {
    let s = cluster();
    const [apps] = overlayPlan(s, 'n1');
    const web = [...s.services.values()].find((x) => x.name === 'web');
    expect(apps?.vips).toEqual([web?.networks[0]?.vip]);
    const run = (op: (x: ClusterState) => ReturnType<typeof initCluster>) => {
      s = applyChange(s, op(s));
    };
    run((x) => createNetwork(x, readNetworkSpec(Fields.of({ name: 'six', subnet: 'fd00:5::/64' }, '')), now));
    run((x) =>
      createNetwork(
        x,
        readNetworkSpec(
          Fields.of({ name: 'sealed6', subnet: 'fd00:6::/64', options: { encrypted: '' } }, ''),
        ),
        now,
      ),
    );
    for (const [svc, net] of [
      ['w6', 'six'],
      ['e6', 'sealed6'],
    ])
      run((x) =>
        createService(x, readServiceSpec(Fields.of({ name: svc, networks: [{ network: net }] }, '')), now),
      );
    run((x) =>
      addTask(
        x,
        { service: 'w6', ips: [], reportedHealth: 'none', labels: {}, netns: '/run/netns/s' },
        'n1',
        now,
      ),
    );
    run((x) =>
      addTask(
        x,
        { service: 'e6', ips: [], reportedHealth: 'none', labels: {}, netns: '/run/netns/e' },
        'n1',
        now,
      ),
    );
    run((x) =>
      claimOverlayAddress(x, 'n1', [...x.networks.values()].find((n) => n.name === 'six')?.id as string),
    );
    const six = overlayPlan(s, 'n1').find((n) => n.name === 'six');
    const address = six?.locals[0]?.address as string;
    expect(address.startsWith('fd00:5::')).toBe(true);
    // The MAC takes the address's last four bytes.
    expect(macOf('fd00:5::a:3')).toBe('02:42:00:0a:00:03');
    expect(six?.locals[0]?.mac).toBe(macOf(address));
    expect(overlayFilterScript([six as NonNullable<typeof six>])).toContain(
      'ip6 saddr fd00:5::/64 ip6 daddr != fd00:5::/64 masquerade',
    );
    // An encrypted IPv6 network is built too: its relay answers neighbour solicitations.
    run((x) =>
      claimOverlayAddress(x, 'n1', [...x.networks.values()].find((n) => n.name === 'sealed6')?.id as string),
    );
    expect(overlayPlan(s, 'n1').find((n) => n.name === 'sealed6')).toMatchObject({ encrypted: true });
  });
});
