import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { qtypes } from './wire.js';

const rcodeNames = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** The DNS subsystem's metrics. Labels are bounded: known qtypes or `other`, the six rcodes. */
export class DnsMetrics {
  private readonly requests: Counter<'proto' | 'qtype' | 'rcode' | 'source'>;
  private readonly duration: Histogram<'source'>;
  readonly upstream: Counter<'upstream' | 'result'>;
  readonly truncated: Counter;
  readonly dropped: Counter<'reason'>;
  /** Labelled children cached by key: the per-query cost is one map lookup, not label hashing. */
  private readonly children = new Map<string, { inc(): void }>();
  private readonly durations = new Map<string, { observe(v: number): void }>();

  constructor(registry: Registry, cacheSize: () => number) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'meshd_dns_requests_total',
      help: 'DNS requests answered, by transport, query type, response code and source (local, forward, cache).',
      labelNames: ['proto', 'qtype', 'rcode', 'source'],
      registers,
    });
    this.duration = new Histogram({
      name: 'meshd_dns_request_duration_seconds',
      help: 'Time from receiving a DNS request to sending its response.',
      labelNames: ['source'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5],
      registers,
    });
    this.upstream = new Counter({
      name: 'meshd_dns_upstream_requests_total',
      help: 'Questions sent to upstream resolvers, by upstream and result.',
      labelNames: ['upstream', 'result'],
      registers,
    });
    this.truncated = new Counter({
      name: 'meshd_dns_truncated_total',
      help: 'UDP responses truncated (TC set) because they exceeded 512 bytes or the client EDNS size.',
      registers,
    });
    this.dropped = new Counter({
      name: 'meshd_dns_dropped_total',
      help: 'DNS packets or connections dropped without an answer, by reason.',
      labelNames: ['reason'],
      registers,
    });
    new Gauge({
      name: 'meshd_dns_cache_entries',
      help: 'Entries in the cache of forwarded answers.',
      registers,
      collect() {
        this.set(cacheSize());
      },
    });
    // Start the common series at zero so rates exist before the first query of each kind.
    for (const proto of ['udp', 'tcp']) this.requests.labels(proto, 'A', 'NOERROR', 'local').inc(0);
    this.truncated.inc(0);
  }

  request(proto: string, qtype: number, code: number, source: string, seconds: number): void {
    const qt = qtypes[qtype] ?? 'other';
    const rc = rcodeNames[code] ?? 'other';
    const key = `${proto}|${qt}|${rc}|${source}`;
    let child = this.children.get(key);
    if (!child) {
      child = this.requests.labels(proto, qt, rc, source);
      this.children.set(key, child);
    }
    child.inc();
    let d = this.durations.get(source);
    if (!d) {
      d = this.duration.labels(source);
      this.durations.set(source, d);
    }
    d.observe(seconds);
  }
}
