import type { ApiClient } from './client.js';

/** What every command gets: the API client and a place to write output. */
export interface CommandContext {
  readonly api: ApiClient;
  out(text: string): void;
}

export type Command = (ctx: CommandContext, argv: readonly string[]) => Promise<void>;

/** `--format json` prints the API's objects as they are. */
export function printJson(ctx: CommandContext, value: unknown): void {
  ctx.out(`${JSON.stringify(value, null, 2)}\n`);
}
