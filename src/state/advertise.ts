import { createSocket } from 'node:dgram';
import type { ClusterState } from '../model/cluster-state.js';
import { MeshError } from '../model/errors.js';

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1';
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

/** The hosts of a store description (`etcd://h1:p1,h2:p2`). */
function storeHosts(description: string): { host: string; port: number }[] {
  const m = /^etcds?:\/\/(.*)$/.exec(description);
  if (!m) return [];
  return (m[1] as string).split(',').map((e) => {
    const hp = /^\[?([^\]]*?)\]?:(\d+)$/.exec(e);
    return { host: hp?.[1] ?? e, port: Number(hp?.[2] ?? 2379) };
  });
}

/** The local address this host uses towards `host` (a UDP connect sends nothing). */
function localAddressTowards(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.on('error', () => {
      s.close();
      resolve(undefined);
    });
    s.connect(port, host, () => {
      const a = s.address().address;
      s.close();
      resolve(a);
    });
  });
}

/**
 * Refuses an advertise or datapath address other nodes cannot dial, when the store is shared:
 * a wildcard never, and loopback when the store or another node is on another host (the other
 * nodes would dial themselves). Nodes that all share one host (tests) may use loopback addresses.
 */
export async function checkAdvertise(
  addrs: { readonly advertiseAddr: string; readonly datapathAddr: string },
  storeDescription: string,
  state: ClusterState,
  self: string,
): Promise<void> {
  const hosts = storeHosts(storeDescription);
  if (hosts.length === 0) return;
  for (const [flag, addr] of [
    ['--advertise-addr', addrs.advertiseAddr],
    ['--datapath-addr', addrs.datapathAddr],
  ] as const) {
    if (isWildcard(addr))
      throw new MeshError(
        'invalid_argument',
        `${flag} ${addr} is not an address other nodes can dial; give this node's own address`,
      );
  }
  const remoteStore = hosts.find((h) => !isLoopback(h.host));
  const remoteNode = [...state.nodes.values()].find((n) => n.id !== self && !isLoopback(n.advertiseAddr));
  if (!remoteStore && !remoteNode) return;
  for (const [flag, addr] of [
    ['--advertise-addr', addrs.advertiseAddr],
    ['--datapath-addr', addrs.datapathAddr],
  ] as const) {
    if (!isLoopback(addr)) continue;
    const towards = remoteStore ?? { host: remoteNode?.advertiseAddr as string, port: 2377 };
    const suggestion = await localAddressTowards(towards.host, towards.port);
    const why = remoteStore
      ? `the store is at ${remoteStore.host}, on another host`
      : `node ${remoteNode?.name} is at ${remoteNode?.advertiseAddr}, on another host`;
    throw new MeshError(
      'invalid_argument',
      `${flag} is ${addr} (loopback) but ${why}: other nodes could not reach this one; start it with ${flag} ${suggestion ?? "<this node's address>"}`,
    );
  }
}
