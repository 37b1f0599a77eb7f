import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store, WatchEvent } from '../../../src/store/store.js';
import { eventually } from '../../helpers/eventually.js';

/** The behaviour every Store backend must have; run against the embedded store and etcd. */
export function storeContract(name: string, open: () => Promise<Store>, prefix = ''): void {
  // A prefix of its own per test, so each one runs alone (`-t`) or in any order on a shared etcd.
  let testPrefix = prefix;
  let tests = 0;
  const k = (key: string) => `${testPrefix}${key}`;
  describe(`${name} store contract`, () => {
    let store: Store;
    beforeEach(async () => {
      testPrefix = `${prefix}/${process.pid}-${tests++}`;
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    it('puts, gets and lists under a prefix with growing revisions', async () => {
      const r1 = await store.txn([], [{ type: 'put', key: k('/t/a'), value: '1' }]);
      const r2 = await store.txn([], [{ type: 'put', key: k('/t/b'), value: '2' }]);
      expect(r2.revision).toBeGreaterThan(r1.revision);
      const a = await store.get(k('/t/a'));
      expect(a).toMatchObject({ value: '1', modRevision: r1.revision, createRevision: r1.revision });
      await store.txn([], [{ type: 'put', key: k('/other/c'), value: '3' }]);
      const list = await store.list(k('/t/'));
      expect(list.items.map((i) => i.key)).toEqual([k('/t/a'), k('/t/b')]);
      expect(list.revision).toBeGreaterThanOrEqual(r2.revision);
    });

    it('lists a prefix leaving out a sub-prefix, keys on both sides of it kept', async () => {
      const keys = ['/t/a', '/t/claims/x', '/t/claims/y/z', '/t/claimsz', '/t/tasks/1'];
      await store.txn(
        [],
        keys.map((key) => ({ type: 'put' as const, key: k(key), value: '1' })),
      );
      const list = await store.list(k('/t/'), k('/t/claims/'));
      expect(list.items.map((i) => i.key)).toEqual([k('/t/a'), k('/t/claimsz'), k('/t/tasks/1')]);
    });

    it('applies a transaction only when every compare holds', async () => {
      const r1 = await store.txn(
        [{ key: k('/t/x'), modRevision: 0 }],
        [{ type: 'put', key: k('/t/x'), value: 'v1' }],
      );
      expect(r1.succeeded).toBe(true);
      const again = await store.txn(
        [{ key: k('/t/x'), modRevision: 0 }],
        [{ type: 'put', key: k('/t/x'), value: 'v2' }],
      );
      expect(again.succeeded).toBe(false);
      const cas = await store.txn(
        [{ key: k('/t/x'), modRevision: r1.revision }],
        [
          { type: 'put', key: k('/t/x'), value: 'v3' },
          { type: 'put', key: k('/t/y'), value: 'y' },
        ],
      );
      expect(cas.succeeded).toBe(true);
      const stale = await store.txn(
        [{ key: k('/t/x'), modRevision: r1.revision }],
        [{ type: 'delete', key: k('/t/y') }],
      );
      expect(stale.succeeded).toBe(false);
      expect((await store.get(k('/t/x')))?.value).toBe('v3');
      expect((await store.get(k('/t/y')))?.value).toBe('y');
      const del = await store.txn(
        [{ key: k('/t/x'), modRevision: cas.revision }],
        [{ type: 'delete', key: k('/t/x') }],
      );
      expect(del.succeeded).toBe(true);
      expect(await store.get(k('/t/x'))).toBeUndefined();
    });

    it('watches from a revision, replaying what came after it', async () => {
      const r1 = await store.txn([], [{ type: 'put', key: k('/w/1'), value: 'a' }]);
      await store.txn([], [{ type: 'put', key: k('/w/2'), value: 'b' }]);
      await store.txn([], [{ type: 'delete', key: k('/w/1') }]);
      const seen: WatchEvent[] = [];
      const w = store.watch(k('/w/'), r1.revision, { onEvents: (e) => seen.push(...e), onError: () => {} });
      await eventually(() =>
        expect(seen.map((e) => `${e.type} ${e.key}`)).toEqual([`put ${k('/w/2')}`, `delete ${k('/w/1')}`]),
      );
      await store.txn([], [{ type: 'put', key: k('/w/3'), value: 'c' }]);
      await store.txn([], [{ type: 'put', key: k('/elsewhere'), value: 'c' }]);
      await eventually(() => expect(seen.map((e) => e.key)).toEqual([k('/w/2'), k('/w/1'), k('/w/3')]));
      w.close();
    });

    it('deletes leased keys when the lease lapses, and keeps them while kept alive', async () => {
      const lease = await store.grantLease(1);
      await store.txn([], [{ type: 'put', key: k('/l/alive'), value: 'x', lease }]);
      const kept = await store.grantLease(2);
      await store.txn([], [{ type: 'put', key: k('/l/kept'), value: 'x', lease: kept }]);
      const timer = setInterval(() => void store.keepAlive(kept).catch(() => {}), 500);
      try {
        await eventually(async () => expect(await store.get(k('/l/alive'))).toBeUndefined(), 6000, 100);
        expect(await store.get(k('/l/kept'))).toBeDefined();
      } finally {
        clearInterval(timer);
      }
      await expect(store.keepAlive(lease)).rejects.toThrow(/not found/);
      await store.revokeLease(kept);
      await eventually(async () => expect(await store.get(k('/l/kept'))).toBeUndefined());
    });
  });
}
