import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest folder above this file with a package.json (works from dist/ too). */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return `${dir}/`;
}

const root = findRoot();

/** The newest modification time of the .ts files under `dir`. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

let checked = false;

/**
 * A compiled file under dist/ (tests spawn real processes; `npm test` builds first). A build
 * older than the sources would test yesterday's code: refused, once per run.
 */
export function dist(path: string): string {
  const full = `${root}dist/${path}`;
  if (!existsSync(full)) throw new Error(`${full} is missing: run \`npm run build\` first (npm test does)`);
  if (!checked) {
    checked = true;
    const built = statSync(`${root}dist/src/bin/meshd.js`).mtimeMs;
    if (newestSource(`${root}src`) > built)
      throw new Error('dist/ is older than src/: run `npm run build` (npm test does) before these tests');
  }
  return full;
}

export const repoRoot = root;
