import { expect, it } from 'vitest';
import { Backoff } from '../../../src/model/backoff.js';

it('doubles the wait up to its cap and starts over after a success', () => {
  const b = new Backoff(200, 1000);
  expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([200, 400, 800, 1000, 1000]);
  b.reset();
  expect(b.next()).toBe(200);
});
