/**
 * Polls `check` until it stops throwing (or returns truthy), or fails with its last error. Each
 * attempt is bounded too (a check that hangs, on a socket that never answers, say, counts as a
 * failed attempt), so the deadline holds.
 */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 5000, everyMs = 25): Promise<T> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let last: unknown;
  let attempts = 0;
  for (;;) {
    attempts++;
    const left = Math.max(100, deadline - Date.now());
    let timer: NodeJS.Timeout | undefined;
    try {
      const v = await Promise.race([
        Promise.resolve().then(check),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`attempt did not finish within ${left} ms`)), left);
        }),
      ]);
      if (v !== false) return v;
      last = new Error('condition stayed false');
    } catch (err) {
      last = err;
    } finally {
      clearTimeout(timer);
    }
    if (Date.now() > deadline) {
      if (last instanceof Error)
        last.message = `${last.message}\n(gave up after ${attempts} attempts in ${Date.now() - started} ms)`;
      throw last;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
