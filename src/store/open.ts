import type { StoreSetting } from '../config/settings.js';
import { EtcdStore } from './etcd-store.js';
import { MemoryStore } from './memory-store.js';
import type { Store } from './store.js';

/** Opens the store a setting names. */
export async function openStore(setting: StoreSetting): Promise<Store> {
  switch (setting.kind) {
    case 'memory':
      return MemoryStore.open();
    case 'file':
      return MemoryStore.open(setting.path);
    case 'etcd':
      return new EtcdStore(setting.endpoints, setting.tls);
  }
}
