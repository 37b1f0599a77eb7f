import { randomBytes } from 'node:crypto';

const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';

const idLength = 25;
/** Random bytes drawn 64 ids at a time: one `randomBytes` call per id costs more than the id. */
let pool = Buffer.alloc(0);
let used = 0;

/** A random 25-character lowercase id, the shape swarmkit gives its objects. */
export function newId(): string {
  if (used + idLength > pool.length) {
    pool = randomBytes(idLength * 64);
    used = 0;
  }
  let id = '';
  for (let i = used; i < used + idLength; i++) id += alphabet[(pool[i] as number) % alphabet.length];
  used += idLength;
  return id;
}

/** The 12-character short form shown by `ls` verbs, as docker prints it. */
export function shortId(id: string): string {
  return id.slice(0, 12);
}
