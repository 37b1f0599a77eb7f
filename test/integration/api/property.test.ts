import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MeshdProcess, startMeshd } from '../../helpers/meshd.js';

// The management API fed random methods, paths, query strings and bodies: every answer is a
// client error or a success, never a 5xx or a crash, and a refused request changes nothing.
let m: MeshdProcess;

beforeAll(async () => {
  m = await startMeshd({
    config: `
declare:
  networks:
    - { name: apps, subnet: 127.233.0.0/16, attachable: true }
  services:
    - { name: web, networks: [{ network: apps }], ports: [{ published: 0, target: 80 }] }
  tasks:
    - { service: web, count: 2 }
`,
  });
}, 60_000);

afterAll(async () => {
  await m?.stop();
});

const templates = [
  '/networks',
  '/networks/create',
  '/networks/{}',
  '/services',
  '/services/create',
  '/services/{}',
  '/services/{}/update',
  '/tasks',
  '/tasks/create',
  '/tasks/{}',
  '/tasks/{}/health',
  '/containers',
  '/containers/attach',
  '/containers/detach',
  '/nodes',
  '/nodes/{}',
  '/swarm/join',
  '/swarm/renew',
  '/swarm/join-token',
  '/info',
  '/{}',
];

/** Path segments with the characters that break decoders: `%`, bad escapes, unicode, dots. */
const segment = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('web', 'apps', '%E0%A4', '%', '%zz', '..', '%2F', '%00', 'ingress'),
  fc.stringMatching(/^[a-z0-9%.\-_]{1,16}$/),
);

/** Bodies: JSON of every shape, JSON of the right shape with wrong field types, and non-JSON. */
const body = fc.oneof(
  fc.json({ maxDepth: 3 }),
  fc
    .record(
      {
        name: fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.constant(null)),
        subnet: fc.oneof(fc.constantFrom('10.98.0.0/16', '127.234.0.0/16', '1.2.3.4/40', 'x'), fc.string()),
        networks: fc.oneof(fc.array(fc.anything(), { maxLength: 3 }), fc.string()),
        ports: fc.array(
          fc.record({
            published: fc.integer({ min: -5, max: 70_000 }),
            target: fc.anything(),
            protocol: fc.string(),
          }),
          { maxLength: 2 },
        ),
        service: fc.constantFrom('web', 'nope', ''),
        ips: fc.array(fc.oneof(fc.ipV4(), fc.string()), { maxLength: 2 }),
        token: fc.string(),
        node: fc.string(),
        csr: fc.oneof(
          fc.string(),
          fc.constant('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n'),
        ),
        cert: fc.string(),
        signature: fc.string(),
      },
      { requiredKeys: [] },
    )
    .map((o) => JSON.stringify(o)),
  fc.string({ maxLength: 64 }),
);

async function revision(): Promise<number> {
  return ((await (await fetch(`${m.api}/info`)).json()) as { revision: number }).revision;
}

/**
 * What requests can change: the objects, not the node's own heartbeat (refreshed about once per
 * lease TTL, so the store's revision alone moves under a test that takes longer than that).
 */
async function objects(): Promise<string> {
  const lists = await Promise.all(
    ['/networks', '/services', '/tasks?all=true', '/containers?all=true'].map(async (p) =>
      (await fetch(`${m.api}${p}`)).text(),
    ),
  );
  return lists.join('\n');
}

describe('the management API under random input (property)', () => {
  it('answers 2xx or 4xx, never 5xx, and a refused request leaves the store as it was', async () => {
    const seen = { ok: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH'),
        fc.constantFrom(...templates),
        segment,
        fc.dictionary(fc.constantFrom('version', 'force', 'service', 'x'), fc.string({ maxLength: 8 }), {
          maxKeys: 2,
        }),
        body,
        async (method, template, seg, query, text) => {
          const path = template.replace('{}', seg.replace(/[/?#]/g, ''));
          const qs = new URLSearchParams(query).toString();
          const before = await revision();
          const beforeObjects = await objects();
          const res = await fetch(`${m.api}${path}${qs ? `?${qs}` : ''}`, {
            method,
            headers: { 'content-type': 'application/json' },
            body: method === 'GET' ? undefined : text,
          });
          const answer = await res.text();
          expect(res.status, `${method} ${path} -> ${answer}`).toBeLessThan(500);
          if (res.status < 400) seen.ok++;
          else seen.refused++;
          if (res.status >= 400) {
            // A heartbeat refresh may move the revision meanwhile: then the objects must be as they were.
            if ((await revision()) !== before)
              expect(await objects(), `${method} ${path} changed the store`).toBe(beforeObjects);
            expect(JSON.parse(answer)).toHaveProperty('code');
          }
        },
      ),
      { numRuns: 400 },
    );
    // Both kinds of answer were exercised, so the property says something about each.
    expect(seen.ok).toBeGreaterThan(10);
    expect(seen.refused).toBeGreaterThan(100);
    expect((await fetch(`${m.api}/health`)).status).toBe(200);
  }, 120_000);

  it('answers malformed percent-encoding with 400', async () => {
    const res = await fetch(`${m.api}/networks/%E0%A4`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('invalid_argument');
  });
});
