import { describe, expect, it } from 'vitest';
import { Mirror } from '../../../src/state/mirror.js';
import { MemoryStore } from '../../../src/store/memory-store.js';

const prefix = '/meshd/';
const task = (over: Record<string, unknown>) =>
  JSON.stringify({
    name: 'web.1.a',
    service: 's1',
    node: 'n1',
    slot: 1,
    addresses: [{ network: 'net', address: '10.0.0.2' }],
    ...over,
  });

describe('mirror', () => {
  it('leaves out, and names, stored objects that do not check; a bad rewrite drops the old value', async () => {
    const store = MemoryStore.open();
    const bad: string[] = [];
    await store.txn(
      [],
      [
        { type: 'put', key: `${prefix}tasks/good`, value: task({}) },
        { type: 'put', key: `${prefix}tasks/list`, value: task({ addresses: 'not a list' }) },
        { type: 'put', key: `${prefix}tasks/array`, value: '[1,2]' },
        { type: 'put', key: `${prefix}tasks/text`, value: 'not json' },
      ],
    );
    const mirror = new Mirror(store, prefix, {
      onChange: () => undefined,
      onConnection: () => undefined,
      onBadObject: (key, reason) => bad.push(`${key}: ${reason}`),
    });
    await mirror.start();
    expect([...mirror.state.tasks.keys()]).toEqual(['good']);
    expect(bad).toHaveLength(3);
    expect(bad.find((b) => b.includes('/list'))).toContain('addresses is not a valid list');
    // A watched rewrite that does not check takes the task out rather than keep a stale copy.
    const r = await store.txn([], [{ type: 'put', key: `${prefix}tasks/good`, value: task({ node: 7 }) }]);
    await mirror.waitFor(r.revision);
    expect(mirror.state.tasks.has('good')).toBe(false);
    expect(bad.at(-1)).toContain('node is not a string');
    mirror.close();
    await store.close();
  });
});
