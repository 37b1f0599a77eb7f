import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { type HostPort, listenOn } from '../config/listen.js';

/** Serves `GET /metrics` in the Prometheus text format. */
export class MetricsServer {
  private server: Server | undefined;

  constructor(
    private readonly listen: HostPort,
    private readonly registry: Registry,
  ) {}

  async start(): Promise<AddressInfo> {
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
        res.writeHead(404).end('not found\n');
        return;
      }
      this.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': this.registry.contentType });
          res.end(text);
        },
        (err: Error) => res.writeHead(500).end(`${err.message}\n`),
      );
    });
    this.server = server;
    await listenOn(server, this.listen);
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
