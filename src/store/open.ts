import type { StoreSetting } from '../config/settings.js';
import { MeshError } from '../model/errors.js';
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
      throw new MeshError('invalid_argument', 'store: the etcd backend is not available in this build');
  }
}
