import type { LbPolicy } from '../model/types.js';
import type { Endpoint, Load } from './endpoint.js';
import { HashRing, hashString } from './hash-ring.js';

/** The key a pick is made for: the client address (affinity) and tasks to avoid (retries). */
export interface PickKey {
  readonly client: string;
  readonly exclude?: ReadonlySet<string>;
}

/**
 * An immutable chooser over one service port's endpoints (grpc-js's Picker): rebuilt whenever the
 * endpoints change; `pick` never awaits and never allocates on the common path.
 */
export interface Picker {
  readonly endpoints: readonly Endpoint[];
  pick(key: PickKey, load: Load, now: number): Endpoint | undefined;
}

/** Whether an endpoint may take this pick. */
function usable(e: Endpoint, key: PickKey, load: Load, now: number): boolean {
  return !key.exclude?.has(e.task) && !load.ejected(e.task, now);
}

/** Round-robin from a shared cursor; skips ejected or excluded endpoints. */
class RoundRobin implements Picker {
  private next = 0;
  constructor(readonly endpoints: readonly Endpoint[]) {
    this.next = Math.floor(Math.random() * Math.max(1, endpoints.length));
  }
  pick(key: PickKey, load: Load, now: number): Endpoint | undefined {
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const e = this.endpoints[(this.next + i) % n] as Endpoint;
      if (usable(e, key, load, now)) {
        this.next = (this.next + i + 1) % n;
        return e;
      }
    }
    return undefined;
  }
}

/** Fewest active connections; ties broken by rotating start so equal tasks share evenly. */
class LeastConn implements Picker {
  private start = 0;
  constructor(readonly endpoints: readonly Endpoint[]) {}
  pick(key: PickKey, load: Load, now: number): Endpoint | undefined {
    const n = this.endpoints.length;
    let best: Endpoint | undefined;
    let bestActive = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const e = this.endpoints[(this.start + i) % n] as Endpoint;
      if (!usable(e, key, load, now)) continue;
      const a = load.active(e.task);
      if (a < bestActive) {
        best = e;
        bestActive = a;
      }
    }
    this.start = (this.start + 1) % Math.max(1, n);
    return best;
  }
}

/** A source of numbers in [0, 1): Math.random in service, a seeded one in tests. */
export type Random = () => number;

/** Power of two choices: two different random endpoints, the less loaded one wins. */
class PowerOfTwo implements Picker {
  constructor(
    readonly endpoints: readonly Endpoint[],
    private readonly random: Random,
  ) {}
  pick(key: PickKey, load: Load, now: number): Endpoint | undefined {
    const n = this.endpoints.length;
    if (n === 0) return undefined;
    // Two different endpoints: drawing one twice would hand a busy task a connection unchallenged.
    const i = Math.floor(this.random() * n);
    const j = n > 1 ? (i + 1 + Math.floor(this.random() * (n - 1))) % n : i;
    const a = this.endpoints[i] as Endpoint;
    const b = this.endpoints[j] as Endpoint;
    const ua = usable(a, key, load, now);
    const ub = usable(b, key, load, now);
    if (ua && ub) return load.active(a.task) <= load.active(b.task) ? a : b;
    if (ua) return a;
    if (ub) return b;
    // Both random picks were unusable: fall back to the least loaded usable one.
    return new LeastConn(this.endpoints).pick(key, load, now);
  }
}

/** Client-IP affinity on a consistent-hash ring: adding a task moves only about 1/n of clients. */
class SourceIp implements Picker {
  private readonly ring: HashRing<Endpoint>;
  constructor(readonly endpoints: readonly Endpoint[]) {
    this.ring = new HashRing(endpoints.map((e) => [e.task, e]));
  }
  pick(key: PickKey, load: Load, now: number): Endpoint | undefined {
    return this.ring.walk(hashString(key.client), (e) => usable(e, key, load, now));
  }
}

export function makePicker(
  policy: LbPolicy,
  endpoints: readonly Endpoint[],
  random: Random = Math.random,
): Picker {
  switch (policy) {
    case 'round-robin':
      return new RoundRobin(endpoints);
    case 'least-conn':
      return new LeastConn(endpoints);
    case 'p2c':
      return new PowerOfTwo(endpoints, random);
    case 'source-ip':
      return new SourceIp(endpoints);
  }
}
