import { mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The first line of every file meshd writes: only such a file is ever replaced or removed. */
const marker = '# written by meshd';

/**
 * Where `ip netns exec` finds a named namespace's own resolv.conf (it bind-mounts
 * `/etc/netns/NAME/resolv.conf` over `/etc/resolv.conf`), or undefined for a namespace that is
 * not an `ip netns` name (a container's, whose engine writes its own).
 */
export function netnsResolvConf(netns: string, root = '/etc/netns'): string | undefined {
  const m = /^\/run\/netns\/([^/]+)$/.exec(netns);
  return m ? `${root}/${m[1]}/resolv.conf` : undefined;
}

/**
 * What an endpoint's resolver should say: meshd's DNS through the network's gateway (port 53, on
 * every node), as a swarm task has Docker's embedded DNS at 127.0.0.11. `ndots:0`, as Docker
 * sets, sends a bare `web` to meshd as it is.
 */
export function resolvConfText(gateway: string): string {
  return `${marker}: the cluster's DNS on this node, reached through the overlay's gateway\nnameserver ${gateway}\noptions ndots:0\n`;
}

/** Writes the file unless someone else's is there. */
export async function writeResolvConf(path: string, gateway: string): Promise<'written' | 'kept'> {
  const had = await readFile(path, 'utf8').catch(() => undefined);
  if (had !== undefined && !had.startsWith(marker)) return 'kept';
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, resolvConfText(gateway));
  return 'written';
}

/** Removes the file if meshd wrote it, and its directory if that is then empty. */
export async function removeResolvConf(path: string): Promise<void> {
  const had = await readFile(path, 'utf8').catch(() => undefined);
  if (!had?.startsWith(marker)) return;
  await rm(path, { force: true });
  await rmdir(dirname(path)).catch(() => undefined);
}
