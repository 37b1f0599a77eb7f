import type { Registry } from 'prom-client';

/**
 * Counters and histograms for hot paths. prom-client hashes the label object on every `inc()`,
 * which costs more than answering a DNS query from a template; these keep one plain object per
 * label set (looked up once, by a caller-chosen key) and hand prom-client the values only when
 * Prometheus scrapes. They plug into a prom-client Registry like any metric.
 */
interface Child {
  readonly labels: Readonly<Record<string, string>>;
}

abstract class FastMetric<C extends Child> {
  protected readonly children = new Map<string, C>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }

  protected abstract make(labels: Record<string, string>): C;

  /** The child for these label values (in labelNames order); cache it, or look it up by key. */
  child(...values: string[]): C {
    const key = values.join('\u0000');
    let c = this.children.get(key);
    if (!c) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => {
        labels[n] = values[i] ?? '';
      });
      c = this.make(labels);
      this.children.set(key, c);
    }
    return c;
  }

  /** Drops every series whose label `name` is `value`. */
  removeWhere(name: string, value: string): void {
    for (const [k, c] of this.children) if (c.labels[name] === value) this.children.delete(k);
  }

  reset(): void {
    this.children.clear();
  }

  get aggregator(): string {
    return 'sum';
  }
}

export interface CounterChild extends Child {
  value: number;
}

export class FastCounter extends FastMetric<CounterChild> {
  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, 'counter', labelNames, registry);
  }

  protected make(labels: Record<string, string>): CounterChild {
    return { labels, value: 0 };
  }

  inc(value = 1): void {
    this.child().value += value;
  }

  async get() {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: 'sum',
      values: [...this.children.values()].map((c) => ({ value: c.value, labels: c.labels })),
    };
  }
}

export interface HistogramChild extends Child {
  readonly counts: number[];
  sum: number;
  count: number;
}

export class FastHistogram extends FastMetric<HistogramChild> {
  constructor(
    registry: Registry,
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {
    super(name, help, 'histogram', labelNames, registry);
  }

  protected make(labels: Record<string, string>): HistogramChild {
    return { labels, counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
  }

  /** Records one observation into a child (non-cumulative bucket counts; summed at scrape). */
  static observe(h: FastHistogram, c: HistogramChild, v: number): void {
    const b = h.buckets;
    let i = 0;
    while (i < b.length && v > (b[i] as number)) i++;
    if (i < b.length) (c.counts[i] as number)++;
    c.sum += v;
    c.count++;
  }

  async get() {
    const values: { value: number; labels: Record<string, string | number>; metricName: string }[] = [];
    for (const c of this.children.values()) {
      let acc = 0;
      this.buckets.forEach((le, i) => {
        acc += c.counts[i] as number;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...c.labels, le }, value: acc });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { ...c.labels, le: '+Inf' }, value: c.count });
      values.push({ metricName: `${this.name}_sum`, labels: c.labels, value: c.sum });
      values.push({ metricName: `${this.name}_count`, labels: c.labels, value: c.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: 'sum', values };
  }
}
