import type { Registry } from 'prom-client';
import type { Settings } from '../config/settings.js';
import { logger } from '../log.js';
import { ForwardCache } from './forward-cache.js';
import { Forwarder } from './forwarder.js';
import { DnsMetrics } from './metrics.js';
import { systemNameservers, toUpstreams } from './resolv-conf.js';
import { Responder } from './responder.js';
import { DnsServer } from './server.js';

/** The DNS subsystem, built from its settings: the responder (fed views) and its listening server. */
export interface Dns {
  readonly responder: Responder;
  readonly server: DnsServer;
  readonly upstreams: number;
}

/** Turns `dns` settings into a running subsystem (CoreDNS's setup step); the caller starts the server. */
export function setupDns(
  dns: Settings['dns'] & { listen: NonNullable<Settings['dns']['listen']> },
  registry: Registry,
): Dns {
  const log = logger('dns');
  const upstreams = toUpstreams(
    dns.upstreams.length > 0 ? dns.upstreams : systemNameservers(),
    dns.listen,
    (e) => log.warn('leaving out an upstream that is meshd itself', { upstream: e }),
  );
  const cache = new ForwardCache(dns.cacheEntries, dns.serveStaleMs);
  const metrics = new DnsMetrics(registry, () => cache.size);
  const forwarder = new Forwarder(upstreams, dns.upstreamTimeoutMs, dns.maxInflight, cache, {
    upstreamResult: (u, r) => metrics.upstream.labels(u, r).inc(),
  });
  const responder = new Responder(
    {
      domain: dns.domain,
      ttl: dns.ttl,
      unscopedClients: dns.unscopedClients,
      recursionAllowed: dns.recursionAllowed,
    },
    forwarder,
    metrics,
  );
  const server = new DnsServer(
    {
      listen: dns.listen,
      tcpMaxConnections: dns.tcpMaxConnections,
      tcpIdleTimeoutMs: dns.tcpIdleTimeoutMs,
      tcpMaxPerClient: dns.tcpMaxPerClient,
      tcpMaxLifetimeMs: dns.tcpMaxLifetimeMs,
    },
    responder,
    metrics,
    log,
  );
  return { responder, server, upstreams: upstreams.length };
}
