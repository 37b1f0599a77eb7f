import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newNodeId } from '../model/node.js';

/** Reads this node's id from its state directory, creating one on first start, so restarts rejoin as the same node. */
export function loadNodeId(stateDir: string): string {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, 'node-id');
  try {
    const id = readFileSync(path, 'utf8').trim();
    if (/^[a-z0-9]{10,64}$/.test(id)) return id;
  } catch {
    // No id yet: this is the node's first start.
  }
  const id = newNodeId();
  writeFileSync(path, `${id}\n`, { mode: 0o600 });
  return id;
}
