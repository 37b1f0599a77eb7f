import { Counter, Gauge, type Registry } from 'prom-client';
import { type CounterChild, FastCounter, FastHistogram, type HistogramChild } from '../metrics/fast.js';
import { qtypes } from './wire.js';

const rcodeNames = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** The DNS subsystem's metrics. Labels are bounded: known qtypes or `other`, the six rcodes. */
export class DnsMetrics {
  private readonly requests: FastCounter;
  private readonly duration: FastHistogram;
  readonly upstream: Counter<'upstream' | 'result'>;
  readonly truncated: FastCounter;
  readonly dropped: Counter<'reason'>;
  /** Children by a numeric key (proto, qtype, rcode, source), so a query costs one map lookup. */
  private readonly children = new Map<number, CounterChild>();
  private readonly durations = new Map<string, HistogramChild>();

  constructor(registry: Registry, cacheSize: () => number) {
    const registers = [registry];
    this.requests = new FastCounter(
      registry,
      'meshd_dns_requests_total',
      'DNS requests answered, by transport, query type, response code and source (local, forward, cache).',
      ['proto', 'qtype', 'rcode', 'source'],
    );
    this.duration = new FastHistogram(
      registry,
      'meshd_dns_request_duration_seconds',
      'Time from receiving a DNS request to sending its response.',
      ['source'],
      [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5],
    );
    this.upstream = new Counter({
      name: 'meshd_dns_upstream_requests_total',
      help: 'Questions sent to upstream resolvers, by upstream and result.',
      labelNames: ['upstream', 'result'],
      registers,
    });
    this.truncated = new FastCounter(
      registry,
      'meshd_dns_truncated_total',
      'UDP responses truncated (TC set) because they exceeded 512 bytes or the client EDNS size.',
    );
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
    for (const proto of ['udp', 'tcp']) this.requests.child(proto, 'A', 'NOERROR', 'local');
    this.truncated.child();
    for (const reason of [
      'oversize',
      'malformed',
      'tcp_limit',
      'tcp_idle',
      'tcp_client_limit',
      'tcp_lifetime',
      'tcp_bad_length',
      'tcp_slow_reader',
    ]) {
      this.dropped.labels(reason).inc(0);
    }
  }

  request(proto: 'udp' | 'tcp', qtype: number, code: number, source: string, seconds: number): void {
    const qt = qtypes[qtype] ? qtype : 0;
    const src = source === 'local' ? 0 : source === 'cache' ? 1 : 2;
    const key = (((qt * 16 + (code & 15)) * 3 + src) << 1) | (proto === 'tcp' ? 1 : 0);
    let child = this.children.get(key);
    if (!child) {
      child = this.requests.child(proto, qtypes[qt] ?? 'other', rcodeNames[code] ?? 'other', source);
      this.children.set(key, child);
    }
    child.value++;
    let d = this.durations.get(source);
    if (!d) {
      d = this.duration.child(source);
      this.durations.set(source, d);
    }
    FastHistogram.observe(this.duration, d, seconds);
  }
}
