import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { dist } from '../../helpers/paths.js';
import { storeContract } from './contract.js';

const dir = mkdtempSync(join(tmpdir(), 'meshd-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

storeContract('memory', async () => MemoryStore.open());
let n = 0;
storeContract('file', async () => MemoryStore.open(join(dir, `contract-${n++}.json`)));

describe('file persistence', () => {
  it('never shows or saves a change whose write failed (a full disk)', async () => {
    // The state directory is a 256 KB file system: a write bigger than that cannot be logged.
    const sub = mkdtempSync(join(dir, 'full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', sub]);
    try {
      const path = join(sub, 'store.json');
      const store = MemoryStore.open(path);
      const seen: string[] = [];
      store.watch('/k/', 0, {
        onEvents: (evs) => seen.push(...evs.map((e) => `${e.type} ${e.key} ${e.value?.length}`)),
        onError: () => undefined,
      });
      await store.txn([], [{ type: 'put', key: '/k/a', value: 'one' }]);
      const big = 'x'.repeat(512 * 1024);
      await expect(store.txn([], [{ type: 'put', key: '/k/a', value: big }])).rejects.toMatchObject({
        code: 'unavailable',
      });
      await expect(store.txn([], [{ type: 'put', key: '/k/b', value: big }])).rejects.toMatchObject({
        code: 'unavailable',
      });
      // Not visible to readers, nor to watchers.
      expect((await store.get('/k/a'))?.value).toBe('one');
      expect(await store.get('/k/b')).toBeUndefined();
      expect(seen).toEqual(['put /k/a 3']);
      // The next successful write does not carry the failed ones to disk either, nor does a
      // partly written record of theirs come back when the log is read.
      await store.txn([], [{ type: 'put', key: '/k/c', value: 'three' }]);
      await store.close();
      const again = MemoryStore.open(path);
      expect((await again.get('/k/a'))?.value).toBe('one');
      expect(await again.get('/k/b')).toBeUndefined();
      expect((await again.get('/k/c'))?.value).toBe('three');
      await again.close();
    } finally {
      execFileSync('umount', [sub]);
    }
  });

  it('replays its log after a crash: a torn last record is dropped, a damaged one before others refused', async () => {
    const path = join(dir, 'log.json');
    const store = MemoryStore.open(path);
    await store.txn([], [{ type: 'put', key: '/l/a', value: '1' }]);
    await store.txn([], [{ type: 'put', key: '/l/b', value: '2' }]);
    // No close: the log holds both writes, as after kill -9.
    const log = readFileSync(`${path}.log`, 'utf8');
    const [first, second] = log.split('\n') as [string, string];
    writeFileSync(`${path}.log`, `${first}\n${second.slice(0, 20)}`);
    const torn = MemoryStore.open(path);
    expect((await torn.get('/l/a'))?.value).toBe('1');
    expect(await torn.get('/l/b')).toBeUndefined();
    await torn.close();
    writeFileSync(`${path}.log`, `${first.replace('"1"', '"9"')}\n${second}\n`);
    expect(() => MemoryStore.open(path)).toThrow(/store log .* is corrupt at line 1/);
  });

  it('keeps every acknowledged write across kill -9 at any moment', async () => {
    for (const killAfter of [5, 40, 150]) {
      const path = join(dir, `crash-${killAfter}.json`);
      const child = spawn(process.execPath, [dist('test/helpers/store-writer.js'), path], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let acked = -1;
      await new Promise<void>((resolve) => {
        const lines = createInterface({ input: child.stdout });
        lines.on('line', (line) => {
          acked = Number(line.split(' ')[1]);
          if (acked >= killAfter) {
            child.kill('SIGKILL');
            resolve();
          }
        });
      });
      await new Promise((r) => child.once('exit', r));
      const store = MemoryStore.open(path);
      for (let i = 0; i <= acked; i++) expect((await store.get(`/k/${i}`))?.value).toBe('x'.repeat(200) + i);
      await store.close();
    }
  });

  it('refuses a truncated or corrupt file with a clear error, leaving it in place', () => {
    const path = join(dir, 'corrupt.json');
    const good = join(dir, 'good.json');
    const s = MemoryStore.open(good);
    return s.txn([], [{ type: 'put', key: '/a', value: '1' }]).then(async () => {
      await s.close();
      const text = readFileSync(good, 'utf8');
      writeFileSync(path, text.slice(0, text.length - 5));
      expect(() => MemoryStore.open(path)).toThrow(
        `store file ${path} is corrupt (length mismatch; the file is truncated)`,
      );
      writeFileSync(path, text.replace('"1"', '"2"'));
      expect(() => MemoryStore.open(path)).toThrow(/checksum mismatch/);
      writeFileSync(path, 'garbage');
      expect(() => MemoryStore.open(path)).toThrow(/corrupt/);
      expect(readFileSync(path, 'utf8')).toBe('garbage');
      const reopened = MemoryStore.open(good);
      expect((await reopened.get('/a'))?.value).toBe('1');
      await reopened.close();
    });
  });

  it('reports a compacted revision to a watcher so it re-lists', async () => {
    const store = MemoryStore.open();
    for (let i = 0; i < 10_050; i++)
      await store.txn([], [{ type: 'put', key: `/c/${i % 10}`, value: String(i) }]);
    const err = await new Promise<Error>((resolve) =>
      store.watch('/c/', 1, { onEvents: () => {}, onError: resolve }),
    );
    expect(err.message).toMatch(/compacted/);
    await store.close();
  });
});
