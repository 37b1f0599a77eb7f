import { isIPv6Subnet, type OverlayNetwork } from './plan.js';

/** meshd's table for the overlay's filtering and way out; it touches no other table. */
export const overlayTable = 'meshd_overlay';

/**
 * The overlay's forwarding rules as one `nft -f` transaction that replaces the table whole:
 * - no forwarding between two networks' bridges (Docker isolates overlay networks);
 * - an internal network forwards nowhere but inside its own bridge, both ways;
 * - any other network reaches the world through its node, masqueraded (docker_gwbridge's job);
 * - the routing mesh's own connections pass all of these.
 */
export function overlayFilterScript(networks: readonly OverlayNetwork[]): string {
  const forward: string[] = [];
  const nat: string[] = [];
  for (const n of networks) {
    const br = JSON.stringify(n.bridge);
    forward.push(`    iifname ${br} oifname "mbr*" oifname != ${br} drop`);
    if (n.internal) {
      forward.push(`    iifname ${br} oifname != ${br} drop`, `    oifname ${br} iifname != ${br} drop`);
      continue;
    }
    // By address, not interface: with br_netfilter, frames bridged inside the overlay pass this
    // hook too, with a bridge port as their interface.
    const ip = isIPv6Subnet(n) ? 'ip6' : 'ip';
    nat.push(`    ${ip} saddr ${n.subnet} ${ip} daddr != ${n.subnet} masquerade`);
  }
  return [
    `table inet ${overlayTable} {}`,
    `delete table inet ${overlayTable}`,
    `table inet ${overlayTable} {`,
    '  chain forward {',
    '    type filter hook forward priority filter - 1; policy accept;',
    // The routing mesh's connections (DNAT to a task, both ways) reach any network, internal
    // ones too, as swarm's ingress reaches every task with a published port.
    '    ct status dnat accept',
    ...forward,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...nat,
    '  }',
    '}',
    '',
  ].join('\n');
}
