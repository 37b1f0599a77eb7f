import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MeshError } from '../model/errors.js';
import { newNodeId } from '../model/node.js';
import { writeFileDurably } from '../store/durable-file.js';

const idPattern = /^[a-z0-9]{10,64}$/;

/**
 * Reads this node's id from its state directory, creating one on first start, so restarts rejoin
 * as the same node. A file that exists but does not hold an id stops meshd: silently making a new
 * id would turn this node into a stranger (and, on a node holding the CA, lose the cluster's).
 */
export function loadNodeId(stateDir: string): string {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, 'node-id');
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) {
    const id = text.trim();
    if (idPattern.test(id)) return id;
    throw new MeshError(
      'failed_precondition',
      `${path} is corrupt (it does not hold a node id); restore it from a backup, or remove it to join as a new node (state dir: --state-dir ${stateDir})`,
    );
  }
  const id = newNodeId();
  writeFileDurably(path, `${id}\n`);
  return id;
}
