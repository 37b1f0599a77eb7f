import { Controller } from '../../src/state/controller.js';
import { Mirror } from '../../src/state/mirror.js';
import { MemoryStore } from '../../src/store/memory-store.js';

/**
 * A node's state path in-process: the memory store, a mirror of it and a controller writing to
 * it, as the daemon wires them. `closers` gets what closes them.
 */
export async function memoryCluster(closers: (() => Promise<void> | void)[]) {
  const store = MemoryStore.open();
  const mirror = new Mirror(store, '/m/', {
    onChange: () => undefined,
    onConnection: () => undefined,
    onBadObject: () => undefined,
  });
  await mirror.start();
  closers.push(() => {
    mirror.close();
    return store.close();
  });
  return { store, mirror, controller: new Controller(store, mirror, '/m/') };
}
