import type { Logger } from '../log.js';
import { ip, must } from './ip.js';
import { isIPv6Subnet, macOf, type OverlayNetwork } from './plan.js';

/**
 * The bridge's addresses: this node's own first (the primary, so the node's traffic into the
 * overlay, masqueraded routing-mesh traffic above all, leaves from it and its replies come
 * back over the overlay to this node), then the gateway every node holds for its own
 * endpoints. The bridge's MAC is made from the node's address, as other nodes' tables have it.
 */
export async function addressBridge(n: OverlayNetwork): Promise<void> {
  const gateway = `${n.gateway}/${n.prefix}`;
  if (isIPv6Subnet(n)) return addressBridge6(n);
  if (!n.address) {
    await must(ip('addr', 'replace', gateway, 'dev', n.bridge), `gateway of ${n.name}`);
    return;
  }
  await must(ip('link', 'set', n.bridge, 'address', macOf(n.address)), `MAC of ${n.bridge}`);
  const shown = (await ip('-4', '-o', 'addr', 'show', 'dev', n.bridge)).out;
  const have = [...shown.matchAll(/inet (\S+)/g)].map((m) => m[1]);
  if (have[0] === `${n.address}/${n.prefix}` && have.includes(gateway)) return;
  // The order decides which is primary: start again from none.
  await ip('addr', 'flush', 'dev', n.bridge);
  await must(ip('addr', 'add', `${n.address}/${n.prefix}`, 'dev', n.bridge), `address of ${n.name}`);
  await must(ip('addr', 'add', gateway, 'dev', n.bridge), `gateway of ${n.name}`);
}

/**
 * IPv6 chooses a source address by rules, not by order: the gateway every node holds is kept
 * valid but deprecated (`preferred_lft 0`), so it still answers its endpoints and is never the
 * source of the node's own traffic into the overlay. No duplicate address detection: the
 * addresses come from IPAM, and DAD would hold each one back for a second or two.
 */
async function addressBridge6(n: OverlayNetwork): Promise<void> {
  const gateway = ['addr', 'replace', `${n.gateway}/${n.prefix}`, 'dev', n.bridge, 'nodad'];
  if (!n.address) {
    await must(ip(...gateway), `gateway of ${n.name}`);
    return;
  }
  await must(ip('link', 'set', n.bridge, 'address', macOf(n.address)), `MAC of ${n.bridge}`);
  await must(
    ip('addr', 'replace', `${n.address}/${n.prefix}`, 'dev', n.bridge, 'nodad'),
    `address of ${n.name}`,
  );
  await must(ip(...gateway, 'preferred_lft', '0'), `gateway of ${n.name}`);
}

/**
 * The network's VIPs as addresses of its bridge (host routes: /32, /128), so endpoints reach
 * them through their node; on IPv6 deprecated, so never a source. Reads what the bridge holds,
 * so a re-addressed bridge or a restart gets them back. Says whether it changed any.
 */
export async function syncVips(n: OverlayNetwork, log: Logger): Promise<boolean> {
  const v6 = isIPv6Subnet(n);
  const host = v6 ? 128 : 32;
  const shown = (await ip(v6 ? '-6' : '-4', '-o', 'addr', 'show', 'dev', n.bridge)).out;
  const have = new Set(
    [...shown.matchAll(/inet6? (\S+)\/(\d+)/g)]
      .filter((m) => Number(m[2]) === host)
      .map((m) => m[1] as string),
  );
  const want = new Set(n.vips);
  let changed = false;
  for (const vip of want) {
    if (have.has(vip)) continue;
    changed = true;
    const extra = v6 ? ['nodad', 'preferred_lft', '0'] : [];
    const r = await ip('addr', 'replace', `${vip}/${host}`, 'dev', n.bridge, ...extra);
    if (r.code !== 0) log.warn('cannot put a VIP on its overlay bridge', { vip, error: r.err.trim() });
  }
  for (const vip of have) {
    if (want.has(vip)) continue;
    changed = true;
    await ip('addr', 'del', `${vip}/${host}`, 'dev', n.bridge);
  }
  return changed;
}
