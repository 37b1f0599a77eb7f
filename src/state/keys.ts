import { type Kind, kinds } from '../model/cluster-state.js';

export function keyOf(prefix: string, kind: Kind, id: string): string {
  return `${prefix}${kind}/${id}`;
}

/** Where a claim (see model/claims.ts) is stored: beside the objects, under the same prefix. */
export function claimKey(prefix: string, claim: string): string {
  return `${prefix}claims/${claim}`;
}

/** The kind and id of an object key; undefined for claims and anything else under the prefix. */
export function parseKey(prefix: string, key: string): { kind: Kind; id: string } | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return undefined;
  const kind = rest.slice(0, slash);
  if (!(kinds as readonly string[]).includes(kind)) return undefined;
  return { kind: kind as Kind, id: rest.slice(slash + 1) };
}
