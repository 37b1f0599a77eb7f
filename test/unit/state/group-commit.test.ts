import { afterEach, describe, expect, it } from 'vitest';
import { GroupCommit } from '../../../src/state/group-commit.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import type { Compare, Op, Store } from '../../../src/store/store.js';

/** A memory store that records each transaction's ops and can hold transactions until released. */
function recordingStore() {
  const store = MemoryStore.open();
  const txns: Op[][] = [];
  const compared: Compare[][] = [];
  let held: (() => void)[] | undefined;
  const recording: Store = Object.create(store);
  recording.txn = async (compares: readonly Compare[], ops: readonly Op[]) => {
    txns.push([...ops]);
    compared.push([...compares]);
    if (held) await new Promise<void>((r) => held?.push(r));
    return store.txn(compares, ops);
  };
  closers.push(() => store.close());
  return {
    store,
    commits: new GroupCommit(recording),
    txns,
    compared,
    hold: () => {
      held = [];
    },
    release: () => {
      const waiting = held ?? [];
      held = undefined;
      for (const r of waiting) r();
    },
  };
}

const put = (key: string, value = 'v'): Op[] => [{ type: 'put', key, value }];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

describe('group commit', () => {
  it('sends a lone write at once, alone', async () => {
    const { store, commits, txns } = recordingStore();
    const r = await commits.submit([], put('/k/1'));
    expect(r).toMatchObject({ succeeded: true, shared: false });
    expect(txns).toHaveLength(1);
    expect((await store.get('/k/1'))?.value).toBe('v');
  });

  it('sends the writes that arrive while transactions are in flight as one transaction', async () => {
    const { store, commits, txns, hold, release } = recordingStore();
    hold();
    // The first leaves at once (one in flight); the next eleven wait and leave together.
    const writes = Array.from({ length: 12 }, (_, i) => commits.submit([], put(`/k/${i}`)));
    await new Promise((r) => setTimeout(r, 10));
    expect(txns).toHaveLength(1);
    release();
    const results = await Promise.all(writes);
    expect(txns.map((t) => t.length)).toEqual([1, 11]);
    expect(results.every((r) => r.succeeded)).toBe(true);
    expect(new Set(results.slice(1).map((r) => r.revision)).size).toBe(1);
    expect((await store.list('/k/')).items).toHaveLength(12);
  });

  it('fails a whole batch on one conflict and says it was shared; a solo write is never batched', async () => {
    const { store, commits, txns, hold, release } = recordingStore();
    hold();
    const fillers = [commits.submit([], put('/f/1'))];
    const good = commits.submit([{ key: '/g/1', modRevision: 0 }], put('/g/1'));
    const bad = commits.submit([{ key: '/f/1', modRevision: 999 }], put('/b/1'));
    const solo = commits.submit([], put('/s/1'), true);
    await new Promise((r) => setTimeout(r, 10));
    release();
    await Promise.all(fillers);
    expect(await good).toMatchObject({ succeeded: false, shared: true });
    expect(await bad).toMatchObject({ succeeded: false, shared: true });
    expect(await solo).toMatchObject({ succeeded: true, shared: false });
    expect(txns.map((t) => t.map((o) => o.key))).toEqual([['/f/1'], ['/g/1', '/b/1'], ['/s/1']]);
    expect(await store.get('/g/1')).toBeUndefined();
    // Alone, the good write lands.
    expect(await commits.submit([{ key: '/g/1', modRevision: 0 }], put('/g/1'), true)).toMatchObject({
      succeeded: true,
    });
  });

  it('never puts two writes of one key in a batch, and keeps batches under etcd limits', async () => {
    const { commits, txns, hold, release } = recordingStore();
    hold();
    const writes = [commits.submit([], put('/x/a')), commits.submit([], put('/x/b'))];
    writes.push(commits.submit([], put('/same', '1')), commits.submit([], put('/same', '2')));
    for (let i = 0; i < 200; i++) writes.push(commits.submit([], put(`/many/${i}`)));
    await new Promise((r) => setTimeout(r, 10));
    release();
    await Promise.all(writes);
    for (const t of txns) {
      expect(t.length).toBeLessThanOrEqual(128);
      expect(new Set(t.map((o) => o.key)).size).toBe(t.length);
    }
    const sames = txns.flatMap((t, i) => (t.some((o) => o.key === '/same') ? [i] : []));
    expect(sames).toHaveLength(2);
  });

  it('merges the compares writes share, so sixteen registrations to one service leave together', async () => {
    const { commits, txns, compared, hold, release } = recordingStore();
    hold();
    const first = commits.submit([], put('/first'));
    // As a registration plans it: the service's version and removal guard (the same for every
    // one), the new task and three claims (its own): 6 compares and 4 puts each.
    const writes = Array.from({ length: 16 }, (_, i) =>
      commits.submit(
        [
          { key: '/svc/web', modRevision: 0 },
          { key: '/claims/removing/web', modRevision: 0 },
          ...['task', 'name', 'slot', 'addr'].map((k) => ({ key: `/${k}/${i}`, modRevision: 0 })),
        ],
        ['task', 'name', 'slot', 'addr'].flatMap((k) => put(`/${k}/${i}`)),
      ),
    );
    await new Promise((r) => setTimeout(r, 10));
    release();
    await Promise.all([first, ...writes]);
    expect(txns.map((t) => t.length)).toEqual([1, 64]);
    // 2 shared + 16 x 4 own: each list under etcd's 128, where 16 x 10 would not be.
    expect(compared[1]).toHaveLength(66);
    expect(compared[1]?.filter((c) => c.key === '/svc/web')).toHaveLength(1);
  });
});
