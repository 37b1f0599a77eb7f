import {
  addElement,
  baseScript,
  deleteElement,
  deleteEntry,
  deleteTarget,
  entryCommands,
  targetCommands,
  targetKey,
} from './nft-script.js';
import { type Family, type KernelEntry, sameEntry } from './plan.js';

/** A script to send, and what to remember once the kernel took it. */
export interface PlannedScript {
  readonly script: string;
  /** Entries the script adds or rewrites, and ones it removes: for the log and the metrics. */
  readonly changed: number;
  commit(): void;
}

const families: readonly Family[] = ['ip', 'ip6'];

/**
 * What meshd's tables hold, and the smallest script that brings them to what is wanted. Pure:
 * the kernel side (`nft -f`) runs the script and calls `commit` only when it succeeded, so a
 * failed transaction leaves this in step with the kernel, which kept its old rules.
 */
export class TableState {
  private installed = new Map<string, KernelEntry>();
  /** Task chains in use, with how many entries send to each. */
  private targets = new Map<string, { family: Family; count: number }>();

  get size(): number {
    return this.installed.size;
  }

  entries(): Iterable<KernelEntry> {
    return this.installed.values();
  }

  /** Both tables from scratch with every wanted entry (start-up, and after a failed update). */
  rebuild(wanted: Iterable<KernelEntry>): PlannedScript {
    const lines: string[] = families.map(baseScript);
    const entries = [...wanted];
    const targets = new Map<string, { family: Family; count: number }>();
    for (const e of entries) {
      for (const t of e.targets) {
        const k = targetKey(e.family, e.proto, t);
        const ref = targets.get(k);
        if (ref) ref.count++;
        else {
          targets.set(k, { family: e.family, count: 1 });
          lines.push(...targetCommands(e.family, e.proto, t));
        }
      }
    }
    for (const e of entries) lines.push(...entryCommands(e, true), addElement(e));
    return {
      script: `${lines.join('\n')}\n`,
      changed: entries.length,
      commit: () => {
        this.installed = new Map(entries.map((e) => [e.key, e]));
        this.targets = targets;
      },
    };
  }

  /**
   * Brings the entries named in `keys` to `wanted` (absent there: removed). Only those entries'
   * chains, their map elements and task chains no longer used change; undefined when nothing does.
   */
  update(wanted: ReadonlyMap<string, KernelEntry>, keys: Iterable<string>): PlannedScript | undefined {
    const adds: KernelEntry[] = [];
    const rewrites: KernelEntry[] = [];
    const removes: KernelEntry[] = [];
    for (const key of keys) {
      const want = wanted.get(key);
      const have = this.installed.get(key);
      if (want && have) {
        if (!sameEntry(want, have)) rewrites.push(want);
      } else if (want) adds.push(want);
      else if (have) removes.push(have);
    }
    if (adds.length + rewrites.length + removes.length === 0) return undefined;

    // Reference counts after the change, computed on a copy: committed only with the script.
    const targets = new Map([...this.targets].map(([k, v]) => [k, { ...v }]));
    const created: string[] = [];
    const dropped = new Map<string, Family>();
    const ref = (e: KernelEntry, by: number) => {
      for (const t of e.targets) {
        const k = targetKey(e.family, e.proto, t);
        const r = targets.get(k) ?? { family: e.family, count: 0 };
        if (r.count === 0 && by > 0) {
          created.push(...targetCommands(e.family, e.proto, t));
          dropped.delete(k);
        }
        r.count += by;
        targets.set(k, r);
        if (r.count === 0) dropped.set(k, r.family);
      }
    };
    for (const e of [...adds, ...rewrites]) ref(e, 1);
    for (const e of [...rewrites.map((w) => this.installed.get(w.key) as KernelEntry), ...removes])
      ref(e, -1);
    for (const k of dropped.keys()) targets.delete(k);

    // In an order the kernel accepts within one transaction: task chains before the rules that
    // jump to them; elements gone before the chains they name; chains unused before deletion.
    const lines = [
      ...created,
      ...adds.flatMap((e) => entryCommands(e, true)),
      ...rewrites.flatMap((e) => entryCommands(e, false)),
      ...adds.map(addElement),
      ...removes.map(deleteElement),
      ...removes.flatMap(deleteEntry),
      ...[...dropped].map(([k, family]) => deleteTarget(family, k)),
    ];
    return {
      script: `${lines.join('\n')}\n`,
      changed: adds.length + rewrites.length + removes.length,
      commit: () => {
        for (const e of [...adds, ...rewrites]) this.installed.set(e.key, e);
        for (const e of removes) this.installed.delete(e.key);
        this.targets = targets;
      },
    };
  }
}
