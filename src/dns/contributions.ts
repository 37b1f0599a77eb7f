/**
 * Values that several owners contribute to one key (a name several services and containers
 * answer), merged into the map the hot path reads. Changing one owner re-merges only the keys it
 * touches, so an update costs what it changes. `merge` of a single value must return that value:
 * the common single-owner key then keeps only its owner's name beside the merged map.
 */
export class Contributions<V, M extends V> {
  /** The owner of a single-owner key, or every owner's value when there are several. */
  private readonly byKey = new Map<string, string | Map<string, V>>();

  constructor(
    /** The merged view, read by queries. */
    readonly merged: Map<string, M>,
    private readonly merge: (values: V[]) => M,
    /** Told when a key gains its first owner or loses its last. */
    private readonly presence?: (key: string, present: boolean) => void,
  ) {}

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
    this.merged.set(key, this.merge([...owners.values()]));
  }

  delete(key: string, owner: string): void {
    const had = this.byKey.get(key);
    if (had === undefined) return;
    if (typeof had !== 'string') {
      if (!had.delete(owner)) return;
      const [first] = had;
      if (had.size === 1 && first) this.byKey.set(key, first[0]);
      this.merged.set(key, this.merge([...had.values()]));
      return;
    }
    if (had !== owner) return;
    this.byKey.delete(key);
    this.merged.delete(key);
    this.presence?.(key, false);
  }
}
