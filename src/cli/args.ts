/** A flag a command takes: a switch, a single value, or a value that repeats into a list. */
export type FlagKind = 'bool' | 'string' | 'list';

export interface ParsedArgs {
  readonly flags: ReadonlyMap<string, string[]>;
  readonly positional: readonly string[];
}

export class UsageError extends Error {}

/**
 * Parses docker-CLI-style arguments: `--flag value`, `--flag=value`, short aliases (`-d`, `-p`),
 * repeatable flags, and positionals anywhere.
 */
export function parseArgs(
  argv: readonly string[],
  spec: Readonly<Record<string, FlagKind>>,
  aliases: Readonly<Record<string, string>> = {},
): ParsedArgs {
  const flags = new Map<string, string[]>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    let name = eq > 0 ? arg.slice(0, eq) : arg;
    name = aliases[name] ?? name;
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown flag: ${name}`);
    let value: string;
    if (kind === 'bool') {
      value = eq > 0 ? arg.slice(eq + 1) : 'true';
      if (value !== 'true' && value !== 'false') throw new UsageError(`flag ${name} takes true or false`);
    } else if (eq > 0) {
      value = arg.slice(eq + 1);
    } else {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`flag needs an argument: ${name}`);
      value = next;
    }
    const list = flags.get(name) ?? [];
    if (kind !== 'list') list.length = 0;
    list.push(value);
    flags.set(name, list);
  }
  return { flags, positional };
}

export function flag(args: ParsedArgs, name: string): string | undefined {
  return args.flags.get(name)?.at(-1);
}

/**
 * `--format`: `json`, or `table` (the default). Anything else (a Go template, as docker takes)
 * is refused rather than ignored, so a script never reads a table it did not ask for.
 */
export function formatFlag(args: ParsedArgs): 'json' | 'table' {
  const f = flag(args, '--format');
  if (f === undefined || f === 'table') return 'table';
  if (f === 'json') return 'json';
  throw new UsageError(`--format ${f}: meshctl prints json or table; Go templates are not supported`);
}

export function flagList(args: ParsedArgs, name: string): string[] {
  return args.flags.get(name) ?? [];
}

export function flagBool(args: ParsedArgs, name: string): boolean | undefined {
  const v = flag(args, name);
  return v === undefined ? undefined : v === 'true';
}

/** Parses `k=v` pairs (labels, options); a bare `k` means an empty value, as docker's `--opt encrypted`. */
export function keyValues(items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq === 0) throw new UsageError(`bad key=value: ${item}`);
    if (eq < 0) out[item] = '';
    else out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}
