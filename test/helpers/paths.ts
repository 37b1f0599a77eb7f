import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest folder above this file with a package.json (works from dist/ too). */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return `${dir}/`;
}

const root = findRoot();

/** A compiled file under dist/ (tests spawn real processes; `npm test` builds first). */
export function dist(path: string): string {
  const full = `${root}dist/${path}`;
  if (!existsSync(full)) throw new Error(`${full} is missing: run \`npm run build\` first (npm test does)`);
  return full;
}

export const repoRoot = root;
