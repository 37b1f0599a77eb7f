/** FNV-1a, 32 bits: fast, stable across processes, good enough spread for a ring. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // Final avalanche so that similar keys (adjacent IPs) land far apart.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Points per member: enough for an even spread (about ±10% at 150) without a big ring. */
const virtualNodes = 150;

/**
 * A consistent-hash ring. Members are placed by their stable id, so the same id lands on the same
 * points on every node and after every rebuild; a new member takes over only the arcs in front
 * of its own points.
 */
export class HashRing<T> {
  private readonly points: Uint32Array;
  private readonly owners: T[];

  constructor(members: readonly (readonly [string, T])[]) {
    const pts: { h: number; v: T }[] = [];
    for (const [id, v] of members)
      for (let i = 0; i < virtualNodes; i++) pts.push({ h: hashString(`${id}#${i}`), v });
    pts.sort((a, b) => a.h - b.h);
    this.points = Uint32Array.from(pts.map((p) => p.h));
    this.owners = pts.map((p) => p.v);
  }

  /** The first member at or after `hash` (clockwise) that `ok` accepts. */
  walk(hash: number, ok: (v: T) => boolean): T | undefined {
    const n = this.points.length;
    if (n === 0) return undefined;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.points[mid] as number) < hash) lo = mid + 1;
      else hi = mid;
    }
    const first = this.owners[lo % n] as T;
    if (ok(first)) return first;
    // Rare path (the owner is ejected or excluded): walk on, skipping members already refused.
    const tried = new Set<T>([first]);
    for (let i = 1; i < n; i++) {
      const v = this.owners[(lo + i) % n] as T;
      if (tried.has(v)) continue;
      if (ok(v)) return v;
      tried.add(v);
    }
    return undefined;
  }
}
