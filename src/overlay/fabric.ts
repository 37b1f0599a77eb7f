import { writeFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { run, runNft } from '../host/commands.js';
import type { Logger } from '../log.js';
import type { Snapshot, SnapshotChange } from '../state/snapshot.js';
import { addressBridge, syncVips } from './bridge-addresses.js';
import { BridgeNetfilter } from './bridge-netfilter.js';
import type { EncryptedRelay } from './encrypted-relay.js';
import { FastPath } from './fast-path.js';
import { overlayFilterScript, overlayTable } from './filter.js';
import { ip, must } from './ip.js';
import {
  claimsWanted,
  isIPv6Subnet,
  type LocalEndpoint,
  type OverlayNetwork,
  overlayPlan,
  type RemoteEndpoint,
} from './plan.js';
import { netnsResolvConf, removeResolvConf, writeResolvConf } from './resolv-conf.js';

/** IANA's VXLAN port, which Docker, flannel and the kernel default to. */
const vxlanPort = 4789;

/**
 * The overlay on this node, as libnetwork's overlay driver and flannel's VXLAN backend build it:
 * per network a bridge holding the gateway and a VXLAN device (learning off, ARP answered from
 * its own neighbour table), static FDB and neighbour entries for every endpoint on other nodes,
 * and a veth into each local endpoint's namespace. Changes are applied in order, one at a time;
 * a command that fails is logged and retried with the next change.
 */
export class OverlayFabric {
  private applied = new Map<string, OverlayNetwork>();
  private filter = '';
  private readonly fastPath: FastPath;
  private readonly bridgeNetfilter: BridgeNetfilter;
  private chain: Promise<void> = Promise.resolve();
  /** Services with an endpoint that joined through meshd: only their changes can move the overlay. */
  private joinedServices = new Set<string>();

  constructor(
    private readonly self: string,
    /** This node's datapath address: the VXLAN source. */
    private readonly local: string,
    private readonly log: Logger,
    /** Carries encrypted networks' frames; without it (no perl) they get no devices here. */
    private readonly relay: EncryptedRelay | undefined,
    /** Claims this node's own address on a network (a store write); the next snapshot has it. */
    private readonly claim: (network: string) => Promise<void>,
    /**
     * Whether meshd's DNS answers on port 53 of every local address: then an endpoint in a
     * named namespace gets a resolv.conf naming its gateway (where `ip netns exec` reads it).
     */
    private readonly dnsOnGateways: 'ipv4' | 'both' | undefined = undefined,
    /** Tells DNS that the bridges' addresses changed, so a wildcard listener binds them now. */
    private readonly addressesChanged: () => Promise<void> = () => Promise.resolve(),
  ) {
    this.fastPath = new FastPath(log);
    this.bridgeNetfilter = new BridgeNetfilter(log);
    if (relay)
      relay.onLost = () => {
        this.chain = this.chain
          .then(() => this.apply(this.lastPlan))
          .catch((err: unknown) => this.log.warn('overlay update failed', { error: String(err) }));
      };
  }

  /** The last plan applied, for a rebuild that no change asked for (a lost TAP helper). */
  private lastPlan: readonly OverlayNetwork[] = [];

  /** Applies a snapshot when its change can touch the overlay; resolves once applied. */
  update(snap: Snapshot, change: SnapshotChange): Promise<void> {
    if (!this.touches(snap, change)) return this.chain;
    const plan = overlayPlan(snap.state, this.self);
    this.lastPlan = plan;
    this.claimAddresses(snap);
    this.joinedServices = new Set();
    for (const t of snap.state.tasks.values()) if (t.netns) this.joinedServices.add(t.service);
    this.chain = this.chain
      .then(() => this.apply(plan))
      .catch((err: unknown) => this.log.warn('overlay update failed', { error: String(err) }));
    return this.chain;
  }

  private readonly claiming = new Set<string>();
  private latest: Snapshot | undefined;

  /**
   * Claims this node's address on each network it carries without one. A failed claim (the store
   * away, a conflict) is tried again 2 s later while the network still wants it.
   */
  private claimAddresses(snap: Snapshot): void {
    this.latest = snap;
    for (const id of claimsWanted(snap.state, this.self)) {
      if (this.claiming.has(id)) continue;
      this.claiming.add(id);
      this.claim(id).then(
        () => this.claiming.delete(id),
        (err: unknown) => {
          this.log.warn('cannot claim an address of this node on an overlay network; retrying', {
            network: id,
            error: String(err),
          });
          const retry = setTimeout(() => {
            this.claiming.delete(id);
            if (this.latest && !this.closed) this.claimAddresses(this.latest);
          }, 2000);
          retry.unref();
        },
      );
    }
  }

  private closed = false;

  private touches(snap: Snapshot, change: SnapshotChange): boolean {
    if (change.full || change.nodes.size > 0) return true;
    for (const t of change.previousTasks) if (t.netns) return true;
    for (const id of change.tasks) if (snap.state.tasks.get(id)?.netns) return true;
    // Containers are few, and a detach leaves no trace in the new state: any change re-plans.
    if (change.containers.size > 0) return true;
    for (const id of change.services) if (this.joinedServices.has(id)) return true;
    // A VIP that comes or goes on a network built here.
    for (const id of change.specs)
      if (snap.state.services.get(id)?.networks.some((n) => this.applied.has(n.network))) return true;
    for (const svc of change.removedServices)
      if (svc.networks.some((n) => this.applied.has(n.network))) return true;
    return false;
  }

  /** A stream a peer opened to send frames of encrypted `network` here. */
  acceptFrames(stream: Duplex, network: string): void {
    if (this.relay) this.relay.accept(stream, network);
    else stream.destroy();
  }

  /** The VNI and peers of each network built here, for `network inspect`. */
  networks(): readonly OverlayNetwork[] {
    return [...this.applied.values()];
  }

  private async apply(all: readonly OverlayNetwork[]): Promise<void> {
    const plan = all.filter((n) => {
      if (!n.encrypted || this.relay) return true;
      this.warnOnce(
        n.name,
        'an encrypted network needs perl on this node to hold its TAP device; it gets no devices here (Debian: apt-get install perl-base)',
      );
      return false;
    });
    const want = new Map(plan.map((n) => [n.id, n]));
    for (const [id, old] of this.applied) if (!want.has(id)) await this.removeNetwork(old);
    for (const n of plan) await this.applyNetwork(n, this.applied.get(n.id));
    this.applied = want;
    // No table until a network needs one: a node without overlay endpoints leaves nftables alone.
    const filter = plan.length > 0 ? overlayFilterScript(plan) : '';
    if (filter !== this.filter) {
      await runNft(filter || `delete table inet ${overlayTable}\n`);
      this.filter = filter;
    }
    await this.fastPath.load(plan);
    // The way out is routed through the node: it must forward (Docker turns this on too).
    for (const v6 of [false, true]) {
      if (!plan.some((n) => !n.internal && isIPv6Subnet(n) === v6)) continue;
      const knob = v6 ? '/proc/sys/net/ipv6/conf/all/forwarding' : '/proc/sys/net/ipv4/ip_forward';
      await writeFile(knob, '1').catch((err: unknown) =>
        this.log.warn(`cannot enable ${v6 ? 'IPv6' : 'IPv4'} forwarding; overlay endpoints have no way out`, {
          error: String(err),
        }),
      );
    }
  }

  private readonly warned = new Set<string>();

  private warnOnce(network: string, message: string): void {
    if (this.warned.has(network)) return;
    this.warned.add(network);
    this.log.warn(message, { network });
  }

  private async applyNetwork(n: OverlayNetwork, old: OverlayNetwork | undefined): Promise<void> {
    // An encrypted network whose TAP helper was lost gets its device again.
    let readdressed = true;
    if (!old || (n.encrypted && this.relay && !this.relay.has(n.id))) await this.createDevices(n);
    else if (old.address !== n.address) await addressBridge(n);
    else readdressed = false;
    if (await syncVips(n, this.log)) readdressed = true;
    // Before any endpoint joins: its first query to the gateway finds a socket there.
    if (readdressed) await this.addressesChanged();
    const had = new Map((old?.locals ?? []).map((e) => [e.hostIf, e]));
    for (const e of n.locals) {
      if (had.delete(e.hostIf)) continue;
      await this.join(n, e);
    }
    for (const gone of had.values()) await this.leave(gone);
    // The relay routes an encrypted network's frames itself: no FDB or neighbour entries.
    if (n.encrypted) {
      this.relay?.update(n);
      return;
    }
    const before = new Map((old?.remotes ?? []).map((r) => [r.address, r]));
    for (const r of n.remotes) {
      const was = before.get(r.address);
      before.delete(r.address);
      if (was && was.node === r.node) continue;
      await this.addRemote(n, r);
    }
    for (const r of before.values()) await this.dropRemote(n, r);
  }

  /** The bridge and VXLAN device; kept when they exist (a restart), so endpoints stay connected. */
  private async createDevices(n: OverlayNetwork): Promise<void> {
    const mtu = String(n.mtu);
    await ip('link', 'add', n.bridge, 'type', 'bridge');
    await this.bridgeNetfilter.enable(n.bridge);
    await must(ip('link', 'set', n.bridge, 'mtu', mtu, 'up'), `bridge ${n.bridge}`);
    await addressBridge(n);
    if (n.encrypted) {
      await this.relay?.attach(n);
      await must(ip('link', 'set', n.carrier, 'master', n.bridge, 'mtu', mtu, 'up'), `TAP ${n.carrier}`);
      return;
    }
    const local = this.local ? ['local', this.local] : [];
    // Made once with every parameter (the kernel will not change most of them later); kept if there.
    await ip(
      'link',
      'add',
      n.carrier,
      'type',
      'vxlan',
      'id',
      String(n.vni),
      'dstport',
      String(vxlanPort),
      'nolearning',
      'proxy',
      ...local,
    );
    await must(ip('link', 'set', n.carrier, 'master', n.bridge, 'mtu', mtu, 'up'), `vxlan ${n.carrier}`);
    // A re-created device (or a restart) may hold entries of endpoints that left meanwhile.
    await ip('neigh', 'flush', 'dev', n.carrier);
  }

  /** A veth from the bridge into the endpoint's namespace, named and addressed as Docker does. */
  private async join(n: OverlayNetwork, e: LocalEndpoint): Promise<void> {
    if ((await ip('link', 'show', e.hostIf)).code === 0) return;
    const peer = `mt${e.hostIf.slice(2)}`;
    const mtu = String(n.mtu);
    try {
      await must(
        ip('link', 'add', e.hostIf, 'mtu', mtu, 'type', 'veth', 'peer', 'name', peer, 'mtu', mtu),
        'veth',
      );
      await must(ip('link', 'set', e.hostIf, 'master', n.bridge, 'up'), 'veth on the bridge');
      await must(ip('link', 'set', peer, 'netns', e.netns), `moving the veth into ${e.netns}`);
      const inside = (...args: string[]) =>
        must(run('nsenter', [`--net=${e.netns}`, 'ip', ...args]), e.netns);
      const shown = (...args: string[]) => run('nsenter', [`--net=${e.netns}`, 'ip', ...args]);
      // A namespace an engine made already has its own eth0: the next free name, as Docker does.
      const links = (await shown('-o', 'link', 'show')).out;
      let ifname = e.ifname;
      for (let i = Number(e.ifname.slice(3)); new RegExp(`^\\d+: ${ifname}[@:]`, 'm').test(links); i++)
        ifname = `eth${i + 1}`;
      await inside('link', 'set', peer, 'name', ifname);
      await inside('link', 'set', ifname, 'address', e.mac, 'mtu', mtu, 'up');
      const v6 = isIPv6Subnet(n);
      await inside('addr', 'add', `${e.address}/${n.prefix}`, 'dev', ifname, ...(v6 ? ['nodad'] : []));
      await inside('link', 'set', 'lo', 'up');
      // The way out, unless the namespace has one (an engine's container keeps its own); an
      // internal network has none at all.
      const family = v6 ? '-6' : '-4';
      const hasDefault = (await shown(family, 'route', 'show', 'default')).out.trim() !== '';
      if (!n.internal && !hasDefault)
        await inside(family, 'route', 'replace', 'default', 'via', n.gateway, 'dev', ifname);
      const served = this.dnsOnGateways === 'both' || (this.dnsOnGateways === 'ipv4' && !v6);
      const resolv = served ? netnsResolvConf(e.netns) : undefined;
      // The first network (eth0) names the resolver, as the first is the default route.
      if (resolv && ifname === 'eth0' && (await writeResolvConf(resolv, n.gateway)) === 'kept')
        this.log.info("an endpoint's namespace has a resolv.conf of its own; meshd leaves it", {
          path: resolv,
        });
      this.log.info('endpoint joined the overlay', { network: n.name, task: e.task, address: e.address });
    } catch (err) {
      this.log.warn('endpoint could not join the overlay', {
        network: n.name,
        task: e.task,
        error: String(err),
      });
      await ip('link', 'del', e.hostIf);
    }
  }

  /** An endpoint leaves: its veth, and the resolv.conf meshd wrote for it. */
  private async leave(e: LocalEndpoint): Promise<void> {
    await ip('link', 'del', e.hostIf);
    // Only ever a file meshd wrote (it says so on its first line).
    const resolv = this.dnsOnGateways && e.ifname === 'eth0' ? netnsResolvConf(e.netns) : undefined;
    if (resolv) await removeResolvConf(resolv);
  }

  private async addRemote(n: OverlayNetwork, r: RemoteEndpoint): Promise<void> {
    await ip('neigh', 'replace', r.address, 'lladdr', r.mac, 'dev', n.carrier, 'nud', 'permanent');
    await run('bridge', ['fdb', 'replace', r.mac, 'dev', n.carrier, 'dst', r.node, 'self', 'permanent']);
  }

  private async dropRemote(n: OverlayNetwork, r: RemoteEndpoint): Promise<void> {
    await ip('neigh', 'del', r.address, 'dev', n.carrier);
    await run('bridge', ['fdb', 'del', r.mac, 'dev', n.carrier, 'self']);
  }

  private async removeNetwork(n: OverlayNetwork): Promise<void> {
    for (const e of n.locals) await this.leave(e);
    if (n.encrypted) this.relay?.detach(n.id);
    await ip('link', 'del', n.carrier);
    await ip('link', 'del', n.bridge);
  }

  /** Takes down what this fabric built (a stop with `kernelStateOnStop: remove`). */
  async close(remove: boolean): Promise<void> {
    this.closed = true;
    await this.chain;
    // An encrypted network's TAP device cannot outlive its holder; plain VXLAN devices can.
    this.relay?.close();
    if (!remove) return;
    for (const n of this.applied.values()) await this.removeNetwork(n);
    this.applied.clear();
    if (this.filter) await runNft(`delete table inet ${overlayTable}\n`).catch(() => undefined);
    await this.fastPath.remove();
  }
}
