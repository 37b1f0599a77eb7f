import type { StoreSetting } from '../config/settings.js';
import { MemoryStore } from './memory-store.js';
import type { Store } from './store.js';

/** Opens the store a setting names. */
export async function openStore(setting: StoreSetting): Promise<Store> {
  switch (setting.kind) {
    case 'memory':
      return MemoryStore.open();
    case 'file':
      return MemoryStore.open(setting.path);
    case 'etcd': {
      // Loaded only when used: gRPC and etcd3 cost a quarter of a second at start-up, which a
      // single node (whose DNS should answer within a second of a restart) need not pay.
      const { EtcdStore } = await import('./etcd-store.js');
      return new EtcdStore(setting.endpoints, setting.tls);
    }
  }
}
