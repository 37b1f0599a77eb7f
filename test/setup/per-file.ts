import { afterAll, expect } from 'vitest';
import { childrenOf } from './leftovers.js';

// Every process a test file starts (meshd, etcd, dnsmasq, a backend...) is ended by that file,
// even when a test fails: after the file, none of this worker's children may still run.
afterAll(async () => {
  const deadline = Date.now() + 5000;
  let kids = childrenOf(process.pid);
  while (kids.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    kids = childrenOf(process.pid);
  }
  expect(
    kids.map((k) => `${k.pid} ${k.command.slice(0, 160)}`),
    'child processes left running by this file',
  ).toEqual([]);
});
