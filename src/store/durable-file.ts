import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Writes a small file so that after a crash it holds the old content or the new, never a torn
 * mix: write to a temp file, fsync it, rename it over the target, fsync the directory.
 */
export function writeFileDurably(path: string, text: string, mode = 0o600): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameDurably(tmp, path);
}

/** Renames a synced temp file over its target and fsyncs the directory, so the rename survives a crash. */
export function renameDurably(tmp: string, path: string): void {
  renameSync(tmp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
