import type { Registry } from 'prom-client';
import type { Settings } from '../config/settings.js';
import { logger } from '../log.js';
import { MeshError } from '../model/errors.js';
import { ForwardCache } from './forward-cache.js';
import { Forwarder } from './forwarder.js';
import { DnsMetrics } from './metrics.js';
import { portHolder } from './port-holder.js';
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

/** The DNS subsystem once started: its responder, the address it bound (empty while waiting). */
export interface RunningDns {
  readonly responder: Responder;
  address(): string;
  /** Local addresses changed: a wildcard listener binds the new ones at once. */
  addressesChanged(): Promise<void>;
  close(): Promise<void>;
}

/** How often a DNS address that is not on this host yet is tried again. */
const waitForAddressMs = 2000;

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Starts DNS. An address that is not on this host yet (a bridge the engine creates when its
 * first container joins, after a reboot too) is waited for: meshd starts, says so, and binds it
 * when it appears. A port another process holds stops meshd with that process named.
 */
export async function startDns(
  dns: Settings['dns'] & { listen: NonNullable<Settings['dns']['listen']> },
  registry: Registry,
): Promise<RunningDns> {
  const log = logger('dns');
  const { responder, server, upstreams } = setupDns(dns, registry);
  if (upstreams === 0) log.warn('no upstream resolvers: names meshd does not own will get SERVFAIL');
  let bound = '';
  let timer: NodeJS.Timeout | undefined;
  const running: RunningDns = {
    responder,
    address: () => bound,
    addressesChanged: () => server.addressesChanged(),
    async close() {
      clearInterval(timer);
      await server.close();
    },
  };
  const where = hostPort(dns.listen.host, dns.listen.port);
  try {
    const a = await server.start();
    bound = hostPort(a.address, a.port);
    return running;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      const holder = portHolder(dns.listen.port);
      throw new MeshError(
        'unavailable',
        `dns.listen ${where}: the port is already in use${holder ? ` by ${holder}` : ''}; run meshd on another address (--dns-listen), or stop the other resolver there (with Podman's netavark, create the network with --disable-dns)`,
      );
    }
    if (code !== 'EADDRNOTAVAIL') throw err;
  }
  log.warn('the DNS address is not on this host yet; meshd binds it when it appears', { address: where });
  timer = setInterval(() => {
    server.start().then(
      (a) => {
        clearInterval(timer);
        bound = hostPort(a.address, a.port);
        log.info('DNS is listening', { address: bound });
      },
      () => undefined,
    );
  }, waitForAddressMs);
  timer.unref();
  return running;
}
