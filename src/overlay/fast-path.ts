import { runNft } from '../host/commands.js';
import type { Logger } from '../log.js';
import { ip } from './ip.js';
import type { OverlayNetwork } from './plan.js';

/** meshd's netdev table for the overlay's fast path; it touches no other table. */
export const fastPathTable = 'meshd_fastpath';

/**
 * The overlay's fast path between its carrier and its local endpoints, as one `nft -f`
 * transaction that replaces the table whole.
 *
 * On a host where br_netfilter is loaded (any Docker or Kubernetes host), every frame a bridge
 * forwards also passes the IP hooks and conntrack: a fifth of an overlay's request rate here
 * (bench/overlay). A frame from the VXLAN (or TAP) device to a local endpoint's MAC, and a frame
 * from a local endpoint to an endpoint or node on another node, needs none of that: it is never
 * NATed or filtered on this node (DNAT and the overlay's isolation act on routed traffic, which
 * is addressed to the bridge). So an ingress hook on those devices hands such frames straight
 * to their port (`fwd`), past the bridge. Everything else still crosses the bridge as before:
 * broadcast and multicast (ARP, neighbour discovery), frames to the bridge itself (the gateway,
 * VIPs, the node's own address), and frames between two local endpoints, whose replies may need
 * conntrack to undo a DNAT (a task answering a VIP connection of an endpoint on its own node).
 *
 * `present` names the devices that exist now: a chain naming a missing device fails to load.
 */
export function fastPathScript(networks: readonly OverlayNetwork[], present: ReadonlySet<string>): string {
  const body: string[] = [];
  for (const n of networks) {
    if (!present.has(n.carrier)) continue;
    const locals = n.locals.filter((e) => present.has(e.hostIf));
    const remotes = [...new Set(n.remotes.map((r) => r.mac))];
    if (locals.length > 0) {
      body.push(
        `  map to_local_${n.vni} {`,
        '    type ether_addr : iface_index',
        // Each element counts the frames it sent past the bridge.
        '    counter',
        `    elements = { ${locals.map((e) => `${e.mac} : ${JSON.stringify(e.hostIf)}`).join(', ')} }`,
        '  }',
        `  chain from_carrier_${n.vni} {`,
        `    type filter hook ingress device ${JSON.stringify(n.carrier)} priority 0; policy accept;`,
        `    fwd to ether daddr map @to_local_${n.vni}`,
        '  }',
      );
    }
    if (locals.length > 0 && remotes.length > 0) {
      body.push(
        `  set to_remote_${n.vni} {`,
        '    type ether_addr',
        '    counter',
        `    elements = { ${remotes.join(', ')} }`,
        '  }',
        `  chain from_endpoints_${n.vni} {`,
        `    type filter hook ingress devices = { ${locals.map((e) => JSON.stringify(e.hostIf)).join(', ')} } priority 0; policy accept;`,
        `    ether daddr @to_remote_${n.vni} fwd to ${JSON.stringify(n.carrier)}`,
        '  }',
      );
    }
  }
  if (body.length === 0) return '';
  return [
    `table netdev ${fastPathTable} {}`,
    `delete table netdev ${fastPathTable}`,
    `table netdev ${fastPathTable} {`,
    ...body,
    '}',
    '',
  ].join('\n');
}

const dropTable = `table netdev ${fastPathTable} {}\ndelete table netdev ${fastPathTable}\n`;

/**
 * Keeps the fast path's table in step with the overlay. Its maps hold interface indexes, so a
 * device made again under the same name reloads it too. It only saves work: when it cannot be
 * loaded, the table goes and every frame takes the bridge, as without it.
 */
export class FastPath {
  /** The script as loaded, with the interface indexes its names had then ('': no table). */
  private loaded = '';

  constructor(private readonly log: Logger) {}

  /** Loads the fast path for `plan`, as far as its devices exist now. */
  async load(plan: readonly OverlayNetwork[]): Promise<void> {
    // Nothing carried and nothing loaded: a node without overlays never lists its links for it.
    if (plan.length === 0 && !this.loaded) return;
    const index = new Map<string, string>();
    for (const m of (await ip('-o', 'link', 'show')).out.matchAll(/^(\d+): ([^:@\s]+)[@:]/gm))
      index.set(m[2] as string, m[1] as string);
    const script = fastPathScript(plan, new Set(index.keys()));
    const names = plan.flatMap((n) => [n.carrier, ...n.locals.map((e) => e.hostIf)]);
    const key = `${script}${names.map((d) => `${d}=${index.get(d) ?? ''}`).join(' ')}`;
    if (key === this.loaded) return;
    try {
      await runNft(script || dropTable);
      this.loaded = key;
    } catch (err) {
      this.log.warn('cannot load the overlay fast path; frames take the bridge', { error: String(err) });
      await runNft(dropTable).catch(() => undefined);
      this.loaded = '';
    }
  }

  /** Removes the table, if this node loaded one. */
  async remove(): Promise<void> {
    if (this.loaded) await runNft(dropTable).catch(() => undefined);
    this.loaded = '';
  }
}
