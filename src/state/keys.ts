import { type Kind, kinds } from '../model/cluster-state.js';

/** Bumped by every validated write, so a write validated against stale state fails its compare. */
export const seqKind = 'seq';

export function keyOf(prefix: string, kind: Kind | typeof seqKind, id: string): string {
  return `${prefix}${kind}/${id}`;
}

export function parseKey(
  prefix: string,
  key: string,
): { kind: Kind | typeof seqKind; id: string } | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return undefined;
  const kind = rest.slice(0, slash);
  if (kind !== seqKind && !(kinds as readonly string[]).includes(kind)) return undefined;
  return { kind: kind as Kind, id: rest.slice(slash + 1) };
}
