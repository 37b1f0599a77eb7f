import { Counter, Gauge, type Registry } from 'prom-client';

/** Data-plane metrics; `peer` is a node name (bounded by the cluster's nodes). */
export class DataPlaneMetrics {
  private readonly tunnels: Gauge<'peer' | 'encrypted'>;
  private readonly handshakes: Counter<'peer' | 'result'>;
  private readonly bytes: Counter<'peer' | 'direction'>;
  private readonly refusals: Counter<'reason'>;
  readonly certExpiry: Gauge;
  readonly certIssued: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.tunnels = new Gauge({
      name: 'meshd_dataplane_tunnels',
      help: "Connections open between this node and a peer node's data plane.",
      labelNames: ['peer', 'encrypted'],
      registers,
    });
    this.handshakes = new Counter({
      name: 'meshd_dataplane_handshakes_total',
      help: 'TLS handshakes on the data plane, by peer and result (ok, resumed, refused, error).',
      labelNames: ['peer', 'result'],
      registers,
    });
    this.bytes = new Counter({
      name: 'meshd_dataplane_bytes_total',
      help: 'Bytes carried for a peer node over the data plane, by direction.',
      labelNames: ['peer', 'direction'],
      registers,
    });
    this.refusals = new Counter({
      name: 'meshd_dataplane_refused_total',
      help: 'Connections and streams the data plane refused, by reason (not_tls, handshake, not_member, target, limit, window, protocol).',
      labelNames: ['reason'],
      registers,
    });
    for (const r of [
      'not_tls',
      'no_certificate',
      'handshake',
      'not_member',
      'target',
      'limit',
      'window',
      'protocol',
    ])
      this.refusals.labels(r).inc(0);
    this.certExpiry = new Gauge({
      name: 'meshd_cert_expiry_timestamp_seconds',
      help: "When this node's cluster certificate expires (0 without one).",
      registers,
    });
    this.certExpiry.set(0);
    this.certIssued = new Gauge({
      name: 'meshd_cert_issued_timestamp_seconds',
      help: "When this node's cluster certificate became valid (0 without one); with the expiry, its lifetime.",
      registers,
    });
    this.certIssued.set(0);
  }

  refused(reason: string): void {
    this.refusals.labels(reason).inc();
  }

  handshake(peer: string, result: string): void {
    this.handshakes.labels(peer, result).inc();
  }

  opened(peer: string, encrypted: boolean): void {
    this.tunnels.labels(peer, String(encrypted)).inc();
  }

  closed(peer: string, encrypted: boolean, sent: number, received: number): void {
    this.tunnels.labels(peer, String(encrypted)).dec();
    this.bytes.labels(peer, 'out').inc(sent);
    this.bytes.labels(peer, 'in').inc(received);
  }
}
