import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdStore } from '../../src/store/etcd-store.js';
import { type EtcdServer, startEtcd } from '../helpers/etcd.js';
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
});
