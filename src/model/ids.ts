import { randomBytes } from 'node:crypto';

const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A random 25-character lowercase id, the shape swarmkit gives its objects. */
export function newId(): string {
  const bytes = randomBytes(25);
  let id = '';
  for (const b of bytes) id += alphabet[b % alphabet.length];
  return id;
}

/** The 12-character short form shown by `ls` verbs, as docker prints it. */
export function shortId(id: string): string {
  return id.slice(0, 12);
}
