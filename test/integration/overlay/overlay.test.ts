import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EtcdServer, startEtcd } from '../../helpers/etcd.js';
import { eventually } from '../../helpers/eventually.js';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';
import { createTestLan, isRoot, sh, type TestLan } from '../../helpers/netns.js';

// Three nodes, each a namespace on one LAN bridge (the underlay), etcd on the bridge. Endpoints
// are namespaces of their own that meshd joins to its VXLAN overlays (`task add --netns`).
const prefix = `ov${process.pid % 1000}`;
const lanPrefix = `10.238.${process.pid % 200}`;
const o = 100 + (process.pid % 100);
const apps = `10.${o}.1.0/24`;
const other = `10.${o}.2.0/24`;
const secret = `10.${o}.3.0/24`;
const sealed = `10.${o}.4.0/24`;
const v6 = `fd00:${o}::/64`;
const token = 'overlay-token';
let lan: TestLan;
let etcd: EtcdServer;
const nodes: MeshdProcess[] = [];
const endpoints: string[] = [];
const servers: ChildProcess[] = [];

const serverScript = [
  fileURLToPath(new URL('../../helpers/task-server.mjs', import.meta.url)),
  fileURLToPath(new URL('../../../../test/helpers/task-server.mjs', import.meta.url)),
].find((p) => existsSync(p)) as string;

const nodeAddr = (n: number) => `${lanPrefix}.${n}`;
/** Runs a command in an endpoint namespace: exit code and output, never a throw. */
async function inEp(ep: string, ...args: string[]): Promise<{ code: number; out: string }> {
  return sh('ip', 'netns', 'exec', ep, ...args).then(
    (out) => ({ code: 0, out }),
    (err: { stdout?: string; stderr?: string }) => ({
      code: 1,
      out: `${err.stdout ?? ''}${err.stderr ?? ''}`,
    }),
  );
}
/** The overlay address meshd gave endpoint `ep` on eth0 (IPv4, or global IPv6), once it has one. */
async function addrOf(ep: string, family: 4 | 6 = 4): Promise<string> {
  let found = '';
  const shown =
    family === 4
      ? ['-4', '-o', 'addr', 'show', 'dev', 'eth0']
      : ['-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'];
  await eventually(async () => {
    const r = await inEp(ep, 'ip', ...shown);
    found = /inet6? (\S+)\//.exec(r.out)?.[1] ?? '';
    expect(found).not.toBe('');
  }, 20_000);
  return found;
}

/** Makes an empty namespace and registers it as a task of `service` on node `n`. */
async function endpoint(name: string, service: string, n: number, family: 4 | 6 = 4): Promise<string> {
  const ep = `${prefix}${name}`;
  await sh('ip', 'netns', 'add', ep);
  endpoints.push(ep);
  await nodes[0]?.ctl('task', 'add', service, '--node', `node${n}`, '--netns', ep, '--name', name);
  return addrOf(ep, family);
}

const ping = (ep: string, to: string, ...opts: string[]) =>
  inEp(ep, 'ping', '-c', '1', '-W', '2', ...opts, to);
/** A ping that must fail: one second is plenty on one machine (a reply takes well under 1 ms). */
const noPing = (ep: string, to: string) => inEp(ep, 'ping', '-c', '1', '-W', '1', to);

let web: string[] = [];
beforeAll(async () => {
  if (!isRoot()) throw new Error('this test needs root (ip netns, VXLAN, nft); CI runs as root');
  lan = await createTestLan(prefix, `${lanPrefix}.254`, [1, 2, 3].map(nodeAddr));
  etcd = await startEtcd(`${lanPrefix}.254`);
  // Nodes 2 and 3 join with node 1's token, as swarm workers do: each gets a certificate, which
  // the encrypted network's tunnels need.
  let join: string[] = [];
  for (const n of [1, 2, 3]) {
    const a = nodeAddr(n);
    // Node 1's DNS on port 53 of every address, as in production: its endpoints get a resolver.
    const dnsListen = n === 1 ? '0.0.0.0:53' : `${a}:0`;
    const args = ['--store', `etcd://${etcd.endpoint}`, '--api-listen', `${a}:0`, '--dns-listen', dnsListen];
    args.push('--data-listen', `${a}:0`, ...join);
    args.push('--advertise-addr', a, '--datapath-addr', a, '--node-name', `node${n}`);
    nodes.push(await startMeshd({ netns: lan.hosts[n - 1]?.name, token, args }));
    if (n === 1)
      join = ['--join-token', (await nodes[0]?.ctl('swarm', 'join-token', '-q', 'worker'))?.trim() ?? ''];
  }
  const ctl = nodes[0] as MeshdProcess;
  await ctl.ctl('network', 'create', '--attachable', '--subnet', apps, 'apps');
  await ctl.ctl('network', 'create', '--subnet', other, 'other');
  await ctl.ctl('network', 'create', '--internal', '--subnet', secret, 'secret');
  await ctl.ctl('service', 'create', '--name', 'web', '--network', 'apps', '--endpoint-mode', 'dnsrr');
  await ctl.ctl('service', 'create', '--name', 'db', '--network', 'other');
  await ctl.ctl('service', 'create', '--name', 'vault', '--network', 'secret');
  await ctl.ctl('network', 'create', '--opt', 'encrypted', '--subnet', sealed, 'sealed');
  await ctl.ctl('service', 'create', '--name', 'sec', '--network', 'sealed', '--endpoint-mode', 'dnsrr');
  web = [await endpoint('w1', 'web', 1), await endpoint('w2', 'web', 2), await endpoint('w3', 'web', 3)];
  for (const [i, ep] of ['w1', 'w2', 'w3'].entries()) await serve(ep, `web${i + 1}`);
}, 120_000);

/** Runs the task server in endpoint `ep`, answering as `name`. */
async function serve(ep: string, name: string): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', `${prefix}${ep}`, process.execPath, serverScript, name], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  servers.push(child);
  await new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()));
}

/** What crosses the underlay (the LAN bridge) while `during` runs, as tcpdump prints it. */
async function underlay(filter: string[], during: () => Promise<unknown>): Promise<string> {
  const cap = spawn(
    'tcpdump',
    ['-i', `${prefix}br`, '--immediate-mode', '-n', '-l', '-A', '-s', '0', '-v', ...filter],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  cap.stdout?.on('data', (d: Buffer) => {
    out += d.toString('latin1');
  });
  await new Promise<void>((resolve) => cap.stderr?.once('data', () => resolve()));
  await during();
  await new Promise((r) => setTimeout(r, 500));
  cap.kill('SIGTERM');
  await new Promise((r) => cap.once('exit', r));
  return out;
}

afterAll(async () => {
  for (const s of servers) s.kill('SIGTERM');
  for (const n of nodes.reverse()) await n.stop();
  for (const ep of endpoints) await sh('ip', 'netns', 'del', ep).catch(() => undefined);
  // What node 1 wrote for its endpoints goes with a clean stop; this catches a failed one.
  for (const ep of endpoints) rmSync(`/etc/netns/${ep}`, { recursive: true, force: true });
  await etcd?.remove();
  await lan?.remove();
}, 60_000);

describe('VXLAN overlay networks across three nodes', () => {
  it('gives each endpoint eth0 with its address, the network MTU and a route through its node', async () => {
    const link = await inEp(`${prefix}w1`, 'ip', '-o', 'link', 'show', 'dev', 'eth0');
    expect(link.out).toContain('mtu 1450');
    expect(link.out).toMatch(/link\/ether 02:42:/);
    const route = await inEp(`${prefix}w1`, 'ip', 'route', 'show', 'default');
    expect(route.out).toContain(`via 10.${o}.1.1 dev eth0`);
    expect(new Set(web).size).toBe(3);
    for (const a of web) expect(a.startsWith(`10.${o}.1.`)).toBe(true);
  });

  it('lets every endpoint reach every other by overlay address, ping and TCP, across nodes', async () => {
    for (const [i, from] of ['w1', 'w2', 'w3'].entries())
      for (const [j, to] of web.entries()) {
        if (i === j) continue;
        await eventually(async () => expect((await ping(`${prefix}${from}`, to)).code).toBe(0), 10_000);
        const r = await inEp(`${prefix}${from}`, 'curl', '-s', '-m', '3', `http://${to}/`);
        // The answer names the task, and the task saw the caller's own overlay address.
        expect(r.out).toBe(`web${j + 1} ${web[i]}`);
      }
  });

  it('hands frames between the VXLAN device and local endpoints past the bridge (the fast path)', async () => {
    // Frames each way, as the map's and the set's elements count them: into local endpoints
    // from the VXLAN device, and out of them to other nodes.
    const counters = async () => {
      const r = await inEp(lan.hosts[0]?.name as string, 'nft', 'list', 'table', 'netdev', 'meshd_fastpath');
      const sum = (section: string | undefined) =>
        [...(section ?? '').matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
      const [, toLocal, toRemote] =
        /map to_local_\d+ \{([^}]*)\}[\s\S]*set to_remote_\d+ \{([^}]*)\}/.exec(r.out) ?? [];
      return [sum(toLocal), sum(toRemote)];
    };
    const before = await counters();
    const r = await inEp(`${prefix}w1`, 'curl', '-s', '-m', '3', `http://${web[1]}/`);
    expect(r.out).toBe(`web2 ${web[0]}`);
    const after = await counters();
    // Both ways: out of w1's veth to node 2, and from node 2 into it.
    for (const [i, n] of after.entries()) expect(n).toBeGreaterThan(before[i] as number);
  });

  it('answers tasks.web through meshd DNS from inside the overlay', async () => {
    const [host, port] = (nodes[1] as MeshdProcess).dns.split(':') as [string, string];
    const r = await inEp(`${prefix}w2`, 'dig', '+short', `@${host}`, '-p', port, 'tasks.web');
    expect(r.out.trim().split('\n').sort()).toEqual([...web].sort());
  });

  it("gives an endpoint's named namespace a resolver: meshd's DNS through the network's gateway", async () => {
    // ip netns exec puts /etc/netns/NAME/resolv.conf over /etc/resolv.conf: dig and glibc use it.
    const conf = await inEp(`${prefix}w1`, 'cat', '/etc/resolv.conf');
    expect(conf.out).toContain(`nameserver 10.${o}.1.1`);
    // The first query of a fresh namespace is answered at once: DNS binds a bridge's addresses
    // when meshd adds them, not at its next scan (a query before that was answered from another
    // address, and dropped).
    const r = await inEp(`${prefix}w1`, 'dig', '+short', '+tries=1', '+time=2', 'tasks.web');
    expect(r.out.trim().split('\n').sort()).toEqual([...web].sort());
    const glibc = await inEp(`${prefix}w1`, 'getent', 'ahostsv4', 'web');
    for (const a of web) expect(glibc.out).toContain(a);
    // Node 2's DNS is not on port 53: its endpoints' namespaces are left as they were.
    expect(existsSync(`/etc/netns/${prefix}w2/resolv.conf`)).toBe(false);
  });

  it('carries the traffic over UDP 4789 with the network VNI on the underlay', async () => {
    const vni = JSON.parse(await (nodes[0] as MeshdProcess).ctl('network', 'inspect', 'apps'))[0]
      .vni as number;
    expect(vni).toBeGreaterThanOrEqual(4096);
    const cap = spawn(
      'tcpdump',
      ['-i', `${prefix}br`, '--immediate-mode', '-n', '-v', '-c', '2', 'udp', 'port', '4789'],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    let out = '';
    cap.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await new Promise((r) => setTimeout(r, 1000));
    await ping(`${prefix}w1`, web[1] as string);
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        cap.kill('SIGTERM');
        resolve();
      }, 5000);
      cap.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
    expect(out).toContain(`vni ${vni}`);
  });

  it('carries a full-size packet at the MTU and refuses one byte more (no fragmentation)', async () => {
    // 1450 - 20 (IP) - 8 (ICMP) = 1422 bytes of payload.
    expect((await ping(`${prefix}w1`, web[2] as string, '-M', 'do', '-s', '1422')).code).toBe(0);
    expect((await ping(`${prefix}w1`, web[2] as string, '-M', 'do', '-s', '1423')).code).not.toBe(0);
  });

  it('keeps two networks apart, even on the same nodes', async () => {
    const d1 = await endpoint('d1', 'db', 1);
    await endpoint('d2', 'db', 2);
    // The other network works (a positive control), but reaches no endpoint of apps.
    await eventually(async () => expect((await ping(`${prefix}d2`, d1)).code).toBe(0), 10_000);
    expect((await noPing(`${prefix}d1`, web[0] as string)).code).not.toBe(0);
    expect((await noPing(`${prefix}d2`, web[0] as string)).code).not.toBe(0);
    expect((await noPing(`${prefix}d2`, web[1] as string)).code).not.toBe(0);
  });

  it('gives a plain network a way out through its node, and an internal one none', async () => {
    await eventually(
      async () => expect((await ping(`${prefix}w2`, `${lanPrefix}.254`)).code).toBe(0),
      10_000,
    );
    await endpoint('v1', 'vault', 2);
    expect((await noPing(`${prefix}v1`, `${lanPrefix}.254`)).code).not.toBe(0);
    expect((await inEp(`${prefix}v1`, 'ip', 'route', 'show', 'default')).out.trim()).toBe('');
  });

  it('shows the VNI and, per node, the peers in network inspect', async () => {
    const [net] = JSON.parse(await (nodes[1] as MeshdProcess).ctl('network', 'inspect', 'apps'));
    expect(net.peers.map((p: { name: string; ip: string }) => ({ name: p.name, ip: p.ip }))).toEqual(
      [1, 2, 3].map((n) => ({ name: `node${n}`, ip: nodeAddr(n) })),
    );
    // Each node's own address on the network (swarm's lb endpoint): one each, from its subnet.
    const own = net.peers.map((p: { address?: string }) => p.address);
    expect(new Set(own).size).toBe(3);
    for (const a of own) expect(a).toMatch(new RegExp(`^10\\.${o}\\.1\\.`));
  });

  it('joins a container to an attachable network with container attach --netns', async () => {
    const ep = `${prefix}c1`;
    await sh('ip', 'netns', 'add', ep);
    endpoints.push(ep);
    await (nodes[1] as MeshdProcess).ctl('container', 'attach', 'apps', '--name', 'c1', '--netns', ep);
    await addrOf(ep);
    const r = await inEp(ep, 'curl', '-s', '-m', '3', `http://${web[0]}/`);
    expect(r.out).toBe(`web1 ${await addrOf(ep)}`);
  });

  it('removes the endpoint interface when its task is removed, and the resolver meshd wrote', async () => {
    await (nodes[0] as MeshdProcess).ctl('task', 'rm', 'd2');
    await eventually(async () =>
      expect((await inEp(`${prefix}d2`, 'ip', 'link', 'show', 'eth0')).code).not.toBe(0),
    );
    expect(existsSync(`/etc/netns/${prefix}d1/resolv.conf`)).toBe(true);
    await (nodes[0] as MeshdProcess).ctl('task', 'rm', 'd1');
    await eventually(async () => expect(existsSync(`/etc/netns/${prefix}d1`)).toBe(false));
  });

  /** Node `n`'s own address on a network (swarm's lb endpoint), as network inspect shows it. */
  async function nodeAddress(network: string, n: number): Promise<string> {
    let found = '';
    await eventually(async () => {
      const [net] = JSON.parse(await (nodes[0] as MeshdProcess).ctl('network', 'inspect', network));
      found = net.peers.find((p: { name: string }) => p.name === `node${n}`)?.address ?? '';
      expect(found).not.toBe('');
    });
    return found;
  }

  /**
   * Creates `service` on `network` publishing `port`, one task on node 2 answering as `name`, and
   * waits until node 1 serves the port from the kernel, its task seeing node 1's own address on
   * the network (the reply comes back over the overlay to node 1, not to node 2's gateway).
   */
  async function publishedOnNode2(service: string, network: string, port: number, name: string) {
    await (nodes[0] as MeshdProcess).ctl(
      'service',
      'create',
      '--name',
      service,
      '--network',
      network,
      '-p',
      `${port}:80`,
    );
    await endpoint(`${service}2`, service, 2);
    await serve(`${service}2`, name);
    const from = await nodeAddress(network, 1);
    await eventually(async () => {
      expect(await nodes[0]?.ctl('service', 'ls')).toContain(`*:${port}->80/tcp [kernel]`);
      const r = await sh('curl', '-s', '-m', '2', `http://${nodeAddr(1)}:${port}/`);
      expect(r).toBe(`${name} ${from}`);
    }, 15_000);
    return from;
  }

  it('routes a published port on node 1 to a task joined to the overlay on node 2, in the kernel', async () => {
    // From the LAN (this host's side of the bridge) to node 1's address: the only task is on node 2.
    const from = await publishedOnNode2('pub', 'apps', 8088, 'pub2');
    // The service's VIP from an endpoint of its network on node 1: node 1 answers for the VIP on
    // the network's bridge, and its kernel sends the connection on to the task on node 2.
    const [svc] = JSON.parse(await (nodes[0] as MeshdProcess).ctl('service', 'inspect', 'pub'));
    const vip = svc.networks[0].vip as string;
    await eventually(async () => {
      const r = await inEp(`${prefix}w1`, 'curl', '-s', '-m', '2', `http://${vip}/`);
      expect(r.out).toBe(`pub2 ${from}`);
    }, 15_000);
    // The VIP is an address of the bridge on every node that carries the network, until the
    // service goes.
    const bridgeHolds = async (n: number) =>
      (await inEp(lan.hosts[n]?.name as string, 'ip', '-4', '-o', 'addr', 'show')).out.includes(
        `inet ${vip}/32`,
      );
    for (const n of [0, 1, 2]) expect(await bridgeHolds(n)).toBe(true);
    await (nodes[0] as MeshdProcess).ctl('service', 'rm', 'pub');
    await eventually(async () => {
      for (const n of [0, 1, 2]) expect(await bridgeHolds(n)).toBe(false);
    }, 10_000);
  });

  it("serves a VIP to a task on the caller's own node where the host's bridges skip netfilter", async () => {
    // A host without br_netfilter (no Docker, no Kubernetes) or with bridge-nf-call-iptables=0:
    // the task's reply to a caller on its own bridge is bridged, and only netfilter on that
    // bridge can undo the VIP's DNAT on it. meshd turns it on for its own bridges alone.
    const node2 = lan.hosts[1]?.name as string;
    const knobs = ['iptables', 'ip6tables'].map((f) => `net.bridge.bridge-nf-call-${f}`);
    for (const k of knobs) await inEp(node2, 'sysctl', '-qw', `${k}=0`);
    try {
      await (nodes[0] as MeshdProcess).ctl('service', 'create', '--name', 'near', '--network', 'apps');
      await endpoint('near2', 'near', 2);
      await serve('near2', 'near2');
      const [svc] = JSON.parse(await (nodes[0] as MeshdProcess).ctl('service', 'inspect', 'near'));
      const vip = svc.networks[0].vip as string;
      // w2 is on node 2 too: the task sees the caller's own address, as on Docker.
      await eventually(async () => {
        const r = await inEp(`${prefix}w2`, 'curl', '-s', '-m', '2', `http://${vip}/`);
        expect(r.out).toBe(`near2 ${web[1]}`);
      }, 15_000);
    } finally {
      for (const k of knobs) await inEp(node2, 'sysctl', '-qw', `${k}=1`);
      await (nodes[0] as MeshdProcess).ctl('service', 'rm', 'near').catch(() => undefined);
    }
  });

  it('carries an encrypted network between nodes, never in clear on the underlay', async () => {
    const s1 = await endpoint('s1', 'sec', 1);
    const s2 = await endpoint('s2', 'sec', 2);
    await serve('s2', 'sec2');
    await eventually(async () => expect((await ping(`${prefix}s1`, s2)).code).toBe(0), 15_000);
    const marker = `meshd-marker-${process.pid}`;
    const sealedTraffic = await underlay([], async () => {
      const r = await inEp(`${prefix}s1`, 'curl', '-s', '-m', '5', `http://${s2}/${marker}`);
      // The task saw the caller's own overlay address: frames, not a proxied connection.
      expect(r.out).toBe(`sec2 ${s1}`);
    });
    const vni = JSON.parse(await (nodes[0] as MeshdProcess).ctl('network', 'inspect', 'sealed'))[0]
      .vni as number;
    expect(sealedTraffic).not.toContain(marker);
    expect(sealedTraffic).not.toContain(`vni ${vni}`);
    // The same capture sees the marker on a plain network: the check above can fail.
    const plainTraffic = await underlay([], () =>
      inEp(`${prefix}w1`, 'curl', '-s', '-m', '5', `http://${web[1]}/${marker}`),
    );
    expect(plainTraffic).toContain(marker);
    // Full-size frames pass too (the TAP device has the network's MTU).
    expect((await ping(`${prefix}s1`, s2, '-M', 'do', '-s', '1422')).code).toBe(0);
    // Another encrypted network's endpoint, or a plain one, cannot reach it.
    expect((await noPing(`${prefix}w1`, s2)).code).not.toBe(0);
    // Node 1 counts what its tunnels carried for the network, both ways.
    const metrics = await sh(
      'ip',
      ...['netns', 'exec', lan.hosts[0]?.name as string, 'curl', '-s', `http://${nodes[0]?.metrics}/metrics`],
    );
    for (const direction of ['sent', 'received']) {
      const m = new RegExp(
        `^meshd_overlay_encrypted_bytes_total\\{direction="${direction}"\\} (\\d+)`,
        'm',
      ).exec(metrics);
      expect(Number(m?.[1] ?? 0)).toBeGreaterThan(1000);
    }
    // The helper holding node 1's TAP device dies (meshd's own child, found by its parent pid):
    // meshd starts it again and the network carries again, with no change to the cluster.
    const helper = (await sh('pgrep', '-P', String(nodes[0]?.child.pid), 'perl'))
      .trim()
      .split('\n')[0] as string;
    expect(Number(helper)).toBeGreaterThan(0);
    process.kill(Number(helper), 'SIGKILL');
    await eventually(async () =>
      expect(nodes[0]?.logs.some((l) => l.includes('the TAP helper stopped'))).toBe(true),
    );
    await eventually(async () => expect((await ping(`${prefix}s1`, s2)).code).toBe(0), 15_000);
    const again = (await sh('pgrep', '-P', String(nodes[0]?.child.pid), 'perl')).trim();
    expect(again).not.toBe('');
    expect(again.split('\n')).not.toContain(helper);
  });

  it('routes a published port to a task of an encrypted network on another node, in the kernel and never in clear', async () => {
    await publishedOnNode2('vaultweb', 'sealed', 8089, 'sealed2');
    const marker = `meshd-published-${process.pid}`;
    // Only the node-to-node leg is captured: the client's own leg to node 1 is in clear by design.
    const between = await underlay(['src', nodeAddr(1), 'and', 'dst', nodeAddr(2)], () =>
      sh('curl', '-s', '-m', '3', `http://${nodeAddr(1)}:8089/${marker}`),
    );
    expect(between).not.toBe('');
    expect(between).not.toContain(marker);
  });

  it('carries IPv6 overlays, plain and encrypted: addresses, ping and TCP across nodes, the MTU, a VIP served by the kernel', async () => {
    const ctl = nodes[0] as MeshdProcess;
    await ctl.ctl('network', 'create', '--subnet', v6, 'six');
    await ctl.ctl('service', 'create', '--name', 'web6', '--network', 'six');
    const a = await endpoint('x1', 'web6', 1, 6);
    const b = await endpoint('x2', 'web6', 2, 6);
    expect(a.startsWith(`fd00:${o}::`)).toBe(true);
    await serve('x2', 'six2');
    await eventually(
      async () => expect((await inEp(`${prefix}x1`, 'ping', '-6', '-c', '1', '-W', '2', b)).code).toBe(0),
      15_000,
    );
    const r = await inEp(`${prefix}x1`, 'curl', '-s', '-m', '3', `http://[${b}]/`);
    expect(r.out).toBe(`six2 ${a}`);
    // 1450 - 40 (IPv6) - 8 (ICMPv6) = 1402 bytes of payload, and not one more.
    expect(
      (await inEp(`${prefix}x1`, 'ping', '-6', '-c', '1', '-W', '2', '-M', 'do', '-s', '1402', b)).code,
    ).toBe(0);
    expect(
      (await inEp(`${prefix}x1`, 'ping', '-6', '-c', '1', '-W', '1', '-M', 'do', '-s', '1403', b)).code,
    ).not.toBe(0);
    // The VIP from the endpoint on node 1, served by node 1's kernel, reaches the task on node 2
    // from node 1's own address on the network.
    const [svc] = JSON.parse(await ctl.ctl('service', 'inspect', 'web6'));
    const vip = svc.networks[0].vip as string;
    const from = await nodeAddress('six', 1);
    expect(from.startsWith(`fd00:${o}::`)).toBe(true);
    await eventually(async () => {
      const viaVip = await inEp(`${prefix}x1`, 'curl', '-s', '-m', '2', `http://[${vip}]/`);
      expect(viaVip.out).toBe(`six2 ${from}`);
    }, 15_000);
    // An encrypted IPv6 network: the relay answers neighbour solicitations for the far side.
    await ctl.ctl('network', 'create', '--opt', 'encrypted', '--subnet', `fd01:${o}::/64`, 'sealed6');
    await ctl.ctl('service', 'create', '--name', 'sec6', '--network', 'sealed6', '--endpoint-mode', 'dnsrr');
    await endpoint('y1', 'sec6', 1, 6);
    const y2 = await endpoint('y2', 'sec6', 2, 6);
    await serve('y2', 'sealed62');
    await eventually(async () => {
      const r6 = await inEp(`${prefix}y1`, 'curl', '-s', '-m', '2', `http://[${y2}]/`);
      expect(r6.out.startsWith('sealed62 fd01:')).toBe(true);
    }, 15_000);
  });

  it("drops a dead node's endpoints from the other nodes' forwarding within the lease TTL", async () => {
    const mac = `02:42:${(web[2] as string)
      .split('.')
      .map((x) => Number(x).toString(16).padStart(2, '0'))
      .join(':')}`;
    // The VXLAN device's own entries (MAC -> node): what meshd programs (the bridge also learns).
    const fdb = async () =>
      (await sh('ip', 'netns', 'exec', lan.hosts[0]?.name as string, 'bridge', 'fdb', 'show'))
        .split('\n')
        .filter((l) => l.includes(' dst '))
        .join('\n')
        .toLowerCase();
    expect(await fdb()).toContain(mac);
    await (nodes[2] as MeshdProcess).kill();
    // The lease TTL is 5 s by default.
    await eventually(async () => expect(await fdb()).not.toContain(mac), 15_000);
  });

  it('removes what a killed node left, devices and tables, with meshd --cleanup', async () => {
    // Node 3 was killed above: its bridges, VXLAN devices and tables are still there.
    const node3 = lan.hosts[2] as TestLan['hosts'][number];
    const tables = async () => (await node3.exec('nft', 'list', 'tables')).stdout;
    expect(await tables()).toContain('table netdev meshd_fastpath');
    const out = await node3.exec(process.execPath, `${process.cwd()}/dist/src/bin/meshd.js`, '--cleanup');
    expect(out.stdout).toContain('netdev meshd_fastpath');
    expect(await tables()).not.toMatch(/meshd/);
    expect((await node3.exec('ip', '-o', 'link', 'show')).stdout).not.toMatch(/: mbr\d+[@:]/);
  });
});
