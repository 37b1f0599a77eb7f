import {
  addEntry,
  addSlotMap,
  type Block,
  baseScript,
  deleteEntry,
  entryRule,
  flushEntry,
  maxTrafficId,
  replaceSlot,
  setElements,
  shardOf,
  shards,
  slotElements,
  slotMap,
  trafficMarkValue,
} from './nft-script.js';
import { type Family, type KernelEntry, sameEntry } from './plan.js';

/** A script to send, and what to remember once the kernel took it. */
export interface PlannedScript {
  readonly script: string;
  /** Entries the script adds, rewrites or removes. */
  readonly changed: number;
  commit(): void;
}

const families: readonly Family[] = ['ip', 'ip6'];

/** Slot blocks within each shard map: first fit from freed blocks of the same size, else fresh. */
class Slots {
  private next = new Array<number>(shards).fill(0);
  private free = new Map<string, number[]>();

  clone(): Slots {
    const c = new Slots();
    c.next = [...this.next];
    c.free = new Map([...this.free].map(([k, v]) => [k, [...v]]));
    return c;
  }

  take(shard: number, size: number): Block {
    if (size === 0) return { shard, offset: 0 };
    const offset = this.free.get(`${shard}/${size}`)?.pop();
    if (offset !== undefined) return { shard, offset };
    const at = this.next[shard] as number;
    this.next[shard] = at + size;
    return { shard, offset: at };
  }

  give(block: Block, size: number): void {
    if (size === 0) return;
    const k = `${block.shard}/${size}`;
    const list = this.free.get(k) ?? [];
    list.push(block.offset);
    this.free.set(k, list);
  }
}

/** Traffic ids (the entry named in a connection's mark): the lowest free one, reused after removal. */
class TrafficIds {
  private next = 1;
  private free: number[] = [];

  clone(): TrafficIds {
    const c = new TrafficIds();
    c.next = this.next;
    c.free = [...this.free];
    return c;
  }

  /** An id, or 0 (not counted) once all 65,535 are in use. */
  take(): number {
    const id = this.free.pop();
    if (id !== undefined) return id;
    if (this.next > maxTrafficId) return 0;
    return this.next++;
  }

  give(id: number): void {
    if (id > 0) this.free.push(id);
  }
}

interface Installed {
  readonly entry: KernelEntry;
  readonly block: Block;
  /** The entry's traffic id (0: not counted). */
  readonly traffic: number;
}

/** Reference counts of the masquerade sets' elements, per family. */
type Refs = Map<string, number>;

function masqueradeItems(e: KernelEntry): { remote: string[]; hairpin: string[] } {
  const remote: string[] = [];
  const hairpin: string[] = [];
  for (const t of e.targets) {
    if (t.masquerade) remote.push(t.addr);
    hairpin.push(`${t.addr} . ${t.addr}`);
  }
  return { remote, hairpin };
}

/**
 * What meshd's tables hold, and the smallest script that brings them to what is wanted. Pure:
 * the kernel side (`nft -f`) runs the script and calls `commit` only when it succeeded, so a
 * failed transaction leaves this in step with the kernel, which kept its old rules.
 */
export class TableState {
  private installed = new Map<string, Installed>();
  private slots = new Slots();
  private ids = new TrafficIds();
  private refs = new Map<string, Refs>();
  /** The slot maps the tables hold (`family|name`): made when first needed. */
  private maps = new Set<string>();

  get size(): number {
    return this.installed.size;
  }

  /** The conntrack mark naming an entry's connections in the traffic set (0: not counted). */
  trafficMark(key: string): number {
    return trafficMarkValue(this.installed.get(key)?.traffic ?? 0);
  }

  *entries(): Iterable<KernelEntry> {
    for (const i of this.installed.values()) yield i.entry;
  }

  /** Both tables from scratch with every wanted entry (start-up, and after a failed update). */
  rebuild(wanted: Iterable<KernelEntry>): PlannedScript {
    const lines: string[] = families.map(baseScript);
    const slots = new Slots();
    const ids = new TrafficIds();
    const refs = new Map<string, Refs>();
    const installed = new Map<string, Installed>();
    const rules: string[] = [];
    const maps = new Set<string>();
    for (const e of wanted) {
      const block = slots.take(shardOf(e.key), e.targets.length);
      const traffic = ids.take();
      installed.set(e.key, { entry: e, block, traffic });
      lines.push(...addEntry(e, traffic));
      const add = slotElements(e, block, 'add');
      if (add) lines.push(...mapFor(maps, e, block), add);
      rules.push(entryRule(e, block, traffic));
      count(refs, e, 1);
    }
    lines.push(...rules, ...refLines(new Map(), refs));
    return {
      script: `${lines.join('\n')}\n`,
      changed: installed.size,
      commit: () => {
        this.installed = installed;
        this.slots = slots;
        this.ids = ids;
        this.refs = refs;
        this.maps = maps;
      },
    };
  }

  /**
   * Brings the entries named in `keys` to `wanted` (absent there: removed). A change of tasks
   * that keeps their number rewrites only their slots; only the entries named change.
   */
  update(wanted: ReadonlyMap<string, KernelEntry>, keys: Iterable<string>): PlannedScript | undefined {
    const slots = this.slots.clone();
    const ids = this.ids.clone();
    const maps = new Set(this.maps);
    // Copy-on-write of the reference counts: only the sets an update touches are copied.
    const refs = new Map(this.refs);
    const touched = new Map<string, Set<string>>();
    const own = (e: KernelEntry) => {
      for (const set of ['remote', 'hairpin'])
        if (refs.get(`${e.family}|${set}`) === this.refs.get(`${e.family}|${set}`))
          refs.set(`${e.family}|${set}`, new Map(this.refs.get(`${e.family}|${set}`)));
    };
    const next = new Map<string, Installed | undefined>();
    const before: string[] = [];
    const after: string[] = [];
    let changed = 0;
    for (const key of keys) {
      const want = wanted.get(key);
      const have = this.installed.get(key);
      if (have && want && sameEntry(have.entry, want)) continue;
      if (!have && !want) continue;
      changed++;
      if (have) {
        own(have.entry);
        count(refs, have.entry, -1, touched);
      }
      if (want) {
        own(want);
        count(refs, want, 1, touched);
      }
      if (!have && want) {
        const block = slots.take(shardOf(key), want.targets.length);
        const traffic = ids.take();
        const add = slotElements(want, block, 'add');
        before.push(
          ...addEntry(want, traffic),
          ...(add ? [...mapFor(maps, want, block), add] : []),
          entryRule(want, block, traffic),
        );
        next.set(key, { entry: want, block, traffic });
      } else if (have && !want) {
        before.push(flushEntry(have.entry), ...deleteEntry(have.entry, have.traffic));
        const del = slotElements(have.entry, have.block, 'delete');
        if (del) after.push(del);
        slots.give(have.block, have.entry.targets.length);
        ids.give(have.traffic);
        next.set(key, undefined);
      } else if (have && want) {
        next.set(key, {
          entry: want,
          block: this.rewrite(have, want, slots, maps, before, after),
          traffic: have.traffic,
        });
      }
    }
    if (changed === 0) return undefined;
    const lines = [...before, ...after, ...refLines(this.refs, refs, touched)];
    return {
      script: `${lines.join('\n')}\n`,
      changed,
      commit: () => {
        for (const [k, v] of next) {
          if (v) this.installed.set(k, v);
          else this.installed.delete(k);
        }
        this.slots = slots;
        this.ids = ids;
        this.refs = refs;
        this.maps = maps;
      },
    };
  }

  /** Rewrites an entry: its changed slots alone when the rule stays the same, else a new block. */
  private rewrite(
    have: Installed,
    want: KernelEntry,
    slots: Slots,
    maps: Set<string>,
    before: string[],
    after: string[],
  ): Block {
    const old = have.entry;
    const sameRule =
      old.targets.length === want.targets.length &&
      old.pick === want.pick &&
      old.proto === want.proto &&
      JSON.stringify(old.match) === JSON.stringify(want.match);
    if (sameRule) {
      want.targets.forEach((t, i) => {
        const o = old.targets[i];
        if (!o || o.addr !== t.addr || o.port !== t.port) before.push(...replaceSlot(want, have.block, i));
      });
      return have.block;
    }
    const block = slots.take(have.block.shard, want.targets.length);
    const add = slotElements(want, block, 'add');
    if (add) before.push(...mapFor(maps, want, block), add);
    before.push(flushEntry(want), entryRule(want, block, have.traffic));
    const del = slotElements(old, have.block, 'delete');
    if (del) after.push(del);
    slots.give(have.block, old.targets.length);
    return block;
  }
}

/** The slot map an entry's block lives in, made first if the tables do not hold it yet. */
function mapFor(maps: Set<string>, e: KernelEntry, block: Block): string[] {
  const name = slotMap(e, block.shard);
  const key = `${e.family}|${name}`;
  if (maps.has(key)) return [];
  maps.add(key);
  return [addSlotMap(e.family, name)];
}

/** Counts an entry's masquerade set items in or out; notes which items it touched. */
function count(
  refs: Map<string, Refs>,
  e: KernelEntry,
  by: number,
  touched?: Map<string, Set<string>>,
): void {
  const items = masqueradeItems(e);
  for (const set of ['remote', 'hairpin'] as const) {
    const k = `${e.family}|${set}`;
    const r = refs.get(k) ?? new Map<string, number>();
    refs.set(k, r);
    const t = touched?.get(k) ?? new Set<string>();
    touched?.set(k, t);
    for (const item of items[set]) {
      const n = (r.get(item) ?? 0) + by;
      if (n > 0) r.set(item, n);
      else r.delete(item);
      t.add(item);
    }
  }
}

/**
 * Set elements now referenced that were not are added; the reverse deleted. Only `touched`
 * items are compared when given, so an update costs what it changed.
 */
function refLines(
  was: Map<string, Refs>,
  now: Map<string, Refs>,
  touched?: Map<string, Set<string>>,
): string[] {
  const out: string[] = [];
  for (const family of families)
    for (const set of ['remote', 'hairpin'] as const) {
      const k = `${family}|${set}`;
      const a = was.get(k) ?? new Map<string, number>();
      const b = now.get(k) ?? new Map<string, number>();
      const items = touched ? (touched.get(k) ?? new Set<string>()) : new Set([...a.keys(), ...b.keys()]);
      const adds = [...items].filter((x) => b.has(x) && !a.has(x));
      const dels = [...items].filter((x) => a.has(x) && !b.has(x));
      out.push(...setElements(family, set, 'add', adds), ...setElements(family, set, 'delete', dels));
    }
  return out;
}
