/** The kinds of stored objects; each is a key prefix in the store. */
export const kinds = [
  'cluster',
  'networks',
  'services',
  'tasks',
  'containers',
  'nodes',
  'heartbeats',
  'health',
] as const;
export type Kind = (typeof kinds)[number];
