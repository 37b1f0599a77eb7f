/**
 * Values that several owners contribute to one key (a name several services and containers
 * answer, or `tasks.web`, which each task of web contributes its address to). Changing one owner
 * touches only the keys it contributes to. A key with several owners is merged again only when
 * it is next read, so a burst of task changes to one big service costs one merge, not one per
 * task. `merge` of a single value must return that value: the common single-owner key then keeps
 * only its owner's name beside the value.
 */
export class Contributions<V, M extends V> {
  /** The owner of a single-owner key, or every owner's value when there are several. */
  private readonly byKey = new Map<string, string | Map<string, V>>();
  /** Merged values, read by queries; a key in `stale` is merged on its next read. */
  private readonly merged = new Map<string, M>();
  private readonly stale = new Set<string>();

  constructor(
    private readonly merge: (values: V[]) => M,
    /** Told when a key gains its first owner or loses its last. */
    private readonly presence?: (key: string, present: boolean) => void,
  ) {}

  get(key: string): M | undefined {
    if (this.stale.delete(key)) {
      const owners = this.byKey.get(key) as Map<string, V>;
      this.merged.set(key, this.merge([...owners.values()]));
    }
    return this.merged.get(key);
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  set(key: string, owner: string, value: V): void {
    const had = this.byKey.get(key);
    if (had === undefined || had === owner) {
      this.byKey.set(key, owner);
      this.merged.set(key, this.merge([value]));
      if (had === undefined) this.presence?.(key, true);
      return;
    }
    const owners = typeof had === 'string' ? new Map<string, V>([[had, this.merged.get(key) as V]]) : had;
    owners.set(owner, value);
    this.byKey.set(key, owners);
    this.stale.add(key);
  }

  delete(key: string, owner: string): void {
    const had = this.byKey.get(key);
    if (had === undefined) return;
    if (typeof had !== 'string') {
      if (!had.delete(owner)) return;
      const [first] = had;
      if (had.size === 1 && first) {
        this.byKey.set(key, first[0]);
        this.merged.set(key, this.merge([first[1]]));
        this.stale.delete(key);
      } else this.stale.add(key);
      return;
    }
    if (had !== owner) return;
    this.byKey.delete(key);
    this.merged.delete(key);
    this.presence?.(key, false);
  }
}
