// bench/file-store: the embedded store (one node, --store file) at 10,000 services x 10 tasks:
// how long opening the file takes, and the latency of one write while the file holds it all,
// beside the same write on the store without a file (memory) in the same run.
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { claimsOf } from '../src/model/claims.js';
import type { Kind } from '../src/model/kinds.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { bigState } from './big-state.js';
import { median, workdir } from './lib.js';

const prefix = '/meshd/v1/';
const services = Number(process.env.BENCH_SERVICES ?? 10_000);
const writes = Number(process.env.BENCH_WRITES ?? 50);

async function fill(store: MemoryStore): Promise<void> {
  const state = bigState(services, 10);
  const ops: { type: 'put'; key: string; value: string }[] = [];
  const add = (kind: Kind, id: string, value: object) => {
    const { version: _v, ...stored } = value as { version?: number };
    ops.push({ type: 'put', key: `${prefix}${kind}/${id}`, value: JSON.stringify(stored) });
    for (const c of claimsOf(kind, value))
      ops.push({ type: 'put', key: `${prefix}claims/${c}`, value: `${kind}/${id}` });
  };
  for (const n of state.networks.values()) add('networks', n.id, n);
  for (const s of state.services.values()) add('services', s.id, s);
  for (const t of state.tasks.values()) add('tasks', t.id, t);
  for (let i = 0; i < ops.length; i += 5000) await store.txn([], ops.slice(i, i + 5000));
}

/** Latencies of `writes` single-task writes, one after the other. */
async function latencies(store: MemoryStore): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < writes; i++) {
    const t0 = performance.now();
    await store.txn([], [{ type: 'put', key: `${prefix}tasks/extra${i}`, value: JSON.stringify({ i }) }]);
    out.push(performance.now() - t0);
  }
  return out;
}

async function main(): Promise<void> {
  const dir = workdir('file-store');
  const path = join(dir, 'store.json');
  try {
    const file = MemoryStore.open(path);
    await fill(file);
    await file.close();
    const t0 = performance.now();
    const reopened = MemoryStore.open(path);
    const openMs = performance.now() - t0;
    const onFile = await latencies(reopened);
    await reopened.close();
    const memory = MemoryStore.open();
    await fill(memory);
    const inMemory = await latencies(memory);
    await memory.close();
    console.log(
      `embedded store with ${services * 10} tasks (${(statSync(path).size / 1e6).toFixed(0)} MB file): opened in ${openMs.toFixed(0)} ms`,
    );
    console.log(
      `one write, durable in the file: median ${median(onFile).toFixed(1)} ms, max ${Math.max(...onFile).toFixed(1)} ms; without a file: median ${median(inMemory).toFixed(3)} ms`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
