import { parseDuration } from './duration.js';
import { invalid } from './errors.js';

/**
 * Reads one untrusted object (a JSON body, a YAML file) into typed values. Every failure names the
 * path of the bad key; `done()` rejects keys nobody read, so a typo is an error, not a silent default.
 */
export class Fields {
  private readonly seen = new Set<string>();

  constructor(
    private readonly obj: Readonly<Record<string, unknown>>,
    readonly path: string,
  ) {}

  /** Wraps a value that must be an object. */
  static of(value: unknown, path: string): Fields {
    if (value === undefined || value === null) return new Fields({}, path);
    if (typeof value !== 'object' || Array.isArray(value))
      throw invalid(`${path || 'body'}: must be an object`);
    return new Fields(value as Record<string, unknown>, path);
  }

  at(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  raw(key: string): unknown {
    this.seen.add(key);
    return this.obj[key];
  }

  string(key: string, def?: string): string {
    const v = this.raw(key);
    if (v === undefined || v === null) {
      if (def === undefined) throw invalid(`${this.at(key)}: is required`);
      return def;
    }
    if (typeof v !== 'string') throw invalid(`${this.at(key)}: must be a string`);
    return v;
  }

  optionalString(key: string): string | undefined {
    if (this.has(key)) return this.string(key);
    this.raw(key);
    return undefined;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], def: T): T {
    const v = this.string(key, def);
    if (!(allowed as readonly string[]).includes(v)) {
      throw invalid(`${this.at(key)}: must be one of ${allowed.join(', ')} (got "${v}")`);
    }
    return v as T;
  }

  bool(key: string, def: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined || v === null) return def;
    // Flags arrive as text.
    if (v === 'true' || v === 'false') return v === 'true';
    if (typeof v !== 'boolean') throw invalid(`${this.at(key)}: must be true or false`);
    return v;
  }

  int(key: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(key);
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw invalid(`${this.at(key)}: must be an integer`);
    if (v < min || v > max) throw invalid(`${this.at(key)}: must be between ${min} and ${max} (got ${v})`);
    return v;
  }

  /** A duration as milliseconds: a number of ms, or a string like `5s`. */
  duration(key: string, defMs: number): number {
    const v = this.raw(key);
    if (v === undefined || v === null) return defMs;
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return Math.round(v);
    if (typeof v === 'string') {
      try {
        return parseDuration(v);
      } catch {
        throw invalid(`${this.at(key)}: invalid duration "${v}" (use 500ms, 5s, 1m)`);
      }
    }
    throw invalid(`${this.at(key)}: must be a duration like 5s`);
  }

  strings(key: string): string[] {
    const v = this.raw(key);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) {
      throw invalid(`${this.at(key)}: must be a list of strings`);
    }
    return [...v] as string[];
  }

  record(key: string): Record<string, string> {
    const v = this.raw(key);
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`${this.at(key)}: must be a map of strings`);
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(v)) {
      if (typeof val !== 'string') throw invalid(`${this.at(key)}.${k}: must be a string`);
      out[k] = val;
    }
    return out;
  }

  object(key: string): Fields {
    return Fields.of(this.raw(key), this.at(key));
  }

  list(key: string): Fields[] {
    const v = this.raw(key);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw invalid(`${this.at(key)}: must be a list`);
    return v.map((item, i) => Fields.of(item, `${this.at(key)}[${i}]`));
  }

  /** Rejects keys that were never read. */
  done(): void {
    for (const key of Object.keys(this.obj)) {
      if (!this.seen.has(key)) throw invalid(`${this.at(key)}: unknown key`);
    }
  }
}
