import { readFileSync } from 'node:fs';

/** The package version, for `meshd --version` and `meshd_build_info`. */
export function meshdVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}
