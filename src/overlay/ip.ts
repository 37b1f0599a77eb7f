import { run } from '../host/commands.js';

/** Runs `ip` with `args`: its exit code and output, never a throw. */
export function ip(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return run('ip', args);
}

/** Awaits an `ip` run and throws, naming `what`, when it failed. */
export async function must(p: Promise<{ code: number; err: string }>, what: string): Promise<void> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what}: ${r.err.trim()}`);
}
