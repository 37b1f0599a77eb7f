import { hostState } from './leftovers.js';

/**
 * Fails the run when the tests leave something on the host: a network namespace, an address on
 * `lo` (a VIP meshd added), an nft table of meshd's. Compared with the host before the run, so
 * what was there already is not blamed on the tests.
 */
export default function setup(): () => void {
  const before = hostState();
  return () => {
    const after = hostState();
    const left = (k: keyof typeof before) =>
      after[k].filter((x) => !before[k].includes(x)).map((x) => `${k} ${x}`);
    const leftovers = [...left('netns'), ...left('lo'), ...left('nft')];
    if (leftovers.length > 0)
      throw new Error(`the tests left these behind on the host:\n  ${leftovers.join('\n  ')}`);
  };
}
