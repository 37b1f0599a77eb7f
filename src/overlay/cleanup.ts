import { run, runNft } from '../host/commands.js';
import { fastPathTable } from './fast-path.js';
import { overlayTable } from './filter.js';
import { ip } from './ip.js';

/**
 * Removes every overlay device and table this host holds (`meshd --cleanup`): what a node killed
 * or stopped with `kernelStateOnStop: keep` left.
 */
export async function removeOverlay(): Promise<string[]> {
  const removed: string[] = [];
  const links = await ip('-o', 'link', 'show');
  for (const m of links.out.matchAll(/^\d+: (m(?:br|vx|tp|v)[0-9a-f]+)[@:]/gm)) {
    const name = m[1] as string;
    if ((await ip('link', 'del', name)).code === 0) removed.push(name);
  }
  const tables = await run('nft', ['list', 'tables']);
  if (tables.out.includes(`table inet ${overlayTable}`)) {
    await runNft(`delete table inet ${overlayTable}\n`);
    removed.push(`inet ${overlayTable}`);
  }
  if (tables.out.includes(`table netdev ${fastPathTable}`)) {
    await runNft(`delete table netdev ${fastPathTable}\n`);
    removed.push(`netdev ${fastPathTable}`);
  }
  return removed;
}
