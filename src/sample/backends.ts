import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server } from 'node:http';
import { listenOn } from '../config/listen.js';
import type { Logger } from '../log.js';
import type { ClusterState } from '../model/cluster-state.js';

/**
 * Tiny stand-in backends for the first run: every task of a declared service on this node gets an
 * HTTP server (TCP ports) or a UDP echo (UDP ports) on its own address, answering with the task's
 * name, so the quick tour can show balancing without the user starting anything.
 */
export class SampleBackends {
  private readonly servers: (Server | UdpSocket)[] = [];

  constructor(private readonly log: Logger) {}

  async start(state: ClusterState, nodeId: string, services: ReadonlySet<string>): Promise<void> {
    for (const task of state.tasks.values()) {
      const svc = state.services.get(task.service);
      if (!svc || !services.has(svc.name) || task.node !== nodeId) continue;
      const address = task.addresses[0]?.address;
      if (!address) continue;
      const tcp = new Set([
        ...svc.ports.filter((p) => p.protocol === 'tcp').map((p) => p.target),
        ...svc.expose,
      ]);
      const udp = new Set(svc.ports.filter((p) => p.protocol === 'udp').map((p) => p.target));
      for (const port of tcp) await this.http(address, port, task.name);
      for (const port of udp) await this.udp(address, port, task.name);
    }
  }

  private http(address: string, port: number, name: string): Promise<void> {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`hello from ${name}\n`);
    });
    this.servers.push(server);
    return listenOn(server, { host: address, port }).catch((err: Error) => {
      this.log.warn('sample backend could not listen', { address, port, error: err.message });
    });
  }

  private udp(address: string, port: number, name: string): Promise<void> {
    const sock = createSocket(address.includes(':') ? 'udp6' : 'udp4');
    sock.on('message', (msg, rinfo) =>
      sock.send(Buffer.concat([Buffer.from(`${name}: `), msg]), rinfo.port, rinfo.address),
    );
    this.servers.push(sock);
    return new Promise((resolve) => {
      sock.once('error', (err) => {
        this.log.warn('sample UDP backend could not bind', { address, port, error: err.message });
        resolve();
      });
      sock.bind(port, address, () => resolve());
    });
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            if ('closeAllConnections' in s) {
              s.close(() => resolve());
              s.closeAllConnections();
            } else {
              s.close(() => resolve());
            }
          }),
      ),
    );
  }
}
