import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdStore } from '../../../src/store/etcd-store.js';
import { type EtcdServer, startEtcd } from '../../helpers/etcd.js';
import { storeContract } from './contract.js';

let etcd: EtcdServer;
beforeAll(async () => {
  etcd = await startEtcd();
}, 30_000);
afterAll(async () => {
  await etcd?.remove();
});

// The same contract the embedded store passes, each test under a prefix of its own.
storeContract(
  'etcd',
  async () => new EtcdStore([`http://${etcd.endpoint}`]),
  `/t${randomBytes(4).toString('hex')}`,
);

describe('etcd store', () => {
  it('reports an unreachable etcd as unavailable', async () => {
    const store = new EtcdStore(['http://127.0.0.1:9']);
    await expect(store.get('/x')).rejects.toMatchObject({ code: 'unavailable' });
    await store.close();
  });

  it('lists a prefix larger than one gRPC message, in key order, at one revision', async () => {
    const store = new EtcdStore([`http://${etcd.endpoint}`]);
    const prefix = `/big${randomBytes(4).toString('hex')}/`;
    const value = 'x'.repeat(2048);
    // 3,000 keys of 2 KB: 6 MB, past gRPC's 4 MB limit for one response.
    for (let i = 0; i < 3000; i += 100) {
      const ops = Array.from({ length: 100 }, (_, k) => ({
        type: 'put' as const,
        key: `${prefix}${String(i + k).padStart(5, '0')}`,
        value,
      }));
      await store.txn([], ops);
    }
    const { revision, items } = await store.list(prefix);
    expect(items).toHaveLength(3000);
    expect(items.map((kv) => kv.key)).toEqual([...items.map((kv) => kv.key)].sort());
    expect(items.every((kv) => kv.modRevision <= revision)).toBe(true);
    await store.close();
  });
});
