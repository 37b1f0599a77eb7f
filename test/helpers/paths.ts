import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** A compiled file under dist/ (tests spawn real processes; `npm test` builds first). */
export function dist(path: string): string {
  const full = `${root}dist/${path}`;
  if (!existsSync(full)) throw new Error(`${full} is missing: run \`npm run build\` first (npm test does)`);
  return full;
}

export const repoRoot = root;
