import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { MeshError, messageOf } from '../model/errors.js';
import { renameDurably } from './durable-file.js';
import type { KeyValue } from './store.js';

const format = 'meshd-store/1';

/** What the embedded store keeps on disk: every unleased key and the revision. */
export interface PersistedState {
  readonly revision: number;
  readonly items: readonly KeyValue[];
}

/**
 * Reads the store file. A missing file is an empty store; anything else that does not parse and
 * match its checksum is an error that names the file, because silently starting empty would
 * throw away the cluster.
 */
export function readStoreFile(path: string): PersistedState | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new MeshError('internal', `cannot read store file ${path}: ${messageOf(err)}`);
  }
  const corrupt = (why: string) =>
    new MeshError(
      'internal',
      `store file ${path} is corrupt (${why}); refusing to start: restore it or move it away`,
    );
  const newline = text.indexOf('\n');
  if (newline < 0) throw corrupt('no header line; the file is truncated');
  const header = text.slice(0, newline);
  const body = text.slice(newline + 1);
  const m = /^meshd-store\/1 sha256=([0-9a-f]{64}) length=(\d+)$/.exec(header);
  if (!m) throw corrupt('bad header');
  if (Buffer.byteLength(body) !== Number(m[2])) throw corrupt('length mismatch; the file is truncated');
  if (createHash('sha256').update(body).digest('hex') !== m[1]) throw corrupt('checksum mismatch');
  try {
    const parsed = JSON.parse(body) as PersistedState;
    if (!Number.isInteger(parsed.revision) || !Array.isArray(parsed.items)) throw new Error('bad shape');
    return parsed;
  } catch (err) {
    throw corrupt(messageOf(err));
  }
}

/** Serialises a state with a header that lets a reader detect truncation and bit rot. */
function encode(state: PersistedState): string {
  const body = JSON.stringify(state);
  const sum = createHash('sha256').update(body).digest('hex');
  return `${format} sha256=${sum} length=${Buffer.byteLength(body)}\n${body}`;
}

/** Write-to-temp, fsync, rename, fsync the directory: after a crash the file is the old or the new one. */
export async function writeStoreFile(path: string, state: PersistedState): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(encode(state));
    await fh.sync();
  } finally {
    await fh.close();
  }
  renameDurably(tmp, path);
}
