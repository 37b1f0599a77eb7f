import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

// Integration files run two at once, and meshd puts VIPs on the host's lo and tasks bind their
// addresses: two files using the same block collide at random. Each literal subnet block in
// 127.x (outside 127.0.x, the node addresses) and 10.x belongs to one file.
function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('test addresses', () => {
  it('gives every subnet block (a /16) to one integration file', () => {
    const root = join(import.meta.dirname, '..', '..', 'integration');
    const owners = new Map<string, Set<string>>();
    for (const file of testFiles(root)) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/\b(127\.(?!0\.)\d{1,3}|10\.\d{1,3})\.\d{1,3}\.\d{1,3}\/\d{1,2}\b/g)) {
        const block = m[1] as string;
        const set = owners.get(block) ?? new Set<string>();
        set.add(relative(root, file));
        owners.set(block, set);
      }
    }
    // Positive control: the scan finds the blocks the files declare.
    expect(owners.size).toBeGreaterThan(20);
    const shared = [...owners]
      .filter(([, files]) => files.size > 1)
      .map(([b, f]) => `${b}: ${[...f].join(', ')}`);
    expect(shared).toEqual([]);
  });
});
