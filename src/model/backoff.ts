/**
 * A wait that doubles after each failure up to a cap and starts over after a success: how meshd
 * comes back to a store, a container engine or a certificate issuer that went away, without
 * hammering it and without waiting long once it is back.
 */
export class Backoff {
  private nextMs: number;

  constructor(
    private readonly firstMs: number,
    private readonly maxMs: number,
  ) {
    this.nextMs = firstMs;
  }

  /** The wait before the next attempt; the one after is twice as long, up to the cap. */
  next(): number {
    const wait = this.nextMs;
    this.nextMs = Math.min(this.nextMs * 2, this.maxMs);
    return wait;
  }

  /** An attempt succeeded: the next failure waits the first delay again. */
  reset(): void {
    this.nextMs = this.firstMs;
  }
}
