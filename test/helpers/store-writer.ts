// A child process for the crash test: writes keys in a loop and prints each one the store acked.
import { MemoryStore } from '../../src/store/memory-store.js';

const path = process.argv[2] as string;
const store = MemoryStore.open(path);
let i = 0;
const loop = async () => {
  for (;;) {
    const key = `/k/${i}`;
    await store.txn([], [{ type: 'put', key, value: 'x'.repeat(200) + i }]);
    process.stdout.write(`ack ${i}\n`);
    i++;
  }
};
void loop();
