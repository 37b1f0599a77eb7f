import type { Kind } from './kinds.js';

/**
 * Checks an object read from the store before anything uses it: a record another version wrote,
 * or a hand edit, must not reach the hot paths as a cast. Returns why it is refused, or undefined.
 * The checks cover what meshd reads without a guard (names, lists, addresses), not every field.
 */
export function checkStored(kind: Kind, obj: Record<string, unknown>): string | undefined {
  const str = (k: string) => (typeof obj[k] === 'string' ? undefined : `${k} is not a string`);
  const num = (k: string) => (typeof obj[k] === 'number' ? undefined : `${k} is not a number`);
  const list = (k: string, item?: (x: unknown) => boolean) =>
    Array.isArray(obj[k]) && (!item || (obj[k] as unknown[]).every(item))
      ? undefined
      : `${k} is not a valid list`;
  const attachment = (x: unknown) =>
    typeof x === 'object' &&
    x !== null &&
    typeof (x as Record<string, unknown>).network === 'string' &&
    typeof (x as Record<string, unknown>).address === 'string';
  const isString = (x: unknown) => typeof x === 'string';
  const first = (...checks: (string | undefined)[]) => checks.find((c) => c !== undefined);
  switch (kind) {
    case 'networks':
      return first(str('name'), str('subnet'), str('gateway'));
    case 'services':
      return first(
        str('name'),
        str('mode'),
        str('endpointMode'),
        list(
          'networks',
          (n) =>
            typeof n === 'object' &&
            n !== null &&
            typeof (n as { network?: unknown }).network === 'string' &&
            Array.isArray((n as { aliases?: unknown }).aliases),
        ),
        list('ports'),
        list('expose'),
        typeof obj.healthcheck === 'object' && obj.healthcheck !== null
          ? undefined
          : 'healthcheck is not an object',
      );
    case 'tasks':
      return first(str('name'), str('service'), str('node'), num('slot'), list('addresses', attachment));
    case 'containers':
      return first(str('name'), str('node'), list('aliases', isString), list('addresses', attachment));
    case 'nodes':
      return first(
        str('name'),
        str('advertiseAddr'),
        obj.overlayAddresses === undefined ||
          (typeof obj.overlayAddresses === 'object' &&
            obj.overlayAddresses !== null &&
            Object.values(obj.overlayAddresses).every(isString))
          ? undefined
          : 'overlayAddresses is not a map of addresses',
      );
    case 'heartbeats':
      return str('node');
    case 'health':
      return typeof obj.healthy === 'boolean' ? undefined : 'healthy is not a boolean';
    case 'cluster':
      return str('id');
  }
}
