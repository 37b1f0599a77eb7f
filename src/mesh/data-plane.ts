import { connect, createServer, type Server, type Socket } from 'node:net';
import type { HostPort } from '../config/listen.js';
import type { Logger } from '../log.js';
import type { Snapshot } from '../state/snapshot.js';

/**
 * Node-to-node forwarding: node A opens a connection to node B's data-plane port and names the
 * task and port in a one-line header (`MESHD/1 <task-id> <port>\n`); B checks that the task runs
 * on B and that the port is one its service declares, connects to it, and splices. This is the
 * path for tasks A cannot reach directly (and, later, for encrypted networks).
 */
export const dataPlaneMagic = 'MESHD/1';

/** A header longer than this is not ours. */
const maxHeader = 128;

export function dataPlaneHeader(task: string, port: number): Buffer {
  return Buffer.from(`${dataPlaneMagic} ${task} ${port}\n`, 'latin1');
}

export class DataPlaneServer {
  private server: Server | undefined;
  private readonly conns = new Set<Socket>();

  constructor(
    private readonly listen: HostPort,
    private readonly nodeId: string,
    private readonly current: () => Snapshot | undefined,
    private readonly datapathAddr: string,
    private readonly log: Logger,
  ) {}

  async start(): Promise<{ address: string; port: number }> {
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.accept(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listen.port, this.listen.host, () => resolve());
    });
    return server.address() as { address: string; port: number };
  }

  private accept(sock: Socket): void {
    this.conns.add(sock);
    sock.on('close', () => this.conns.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.setTimeout(10_000, () => sock.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(10);
      if (nl < 0) {
        if (head.length > maxHeader) sock.destroy();
        return;
      }
      sock.off('data', onData);
      sock.pause();
      const rest = head.subarray(nl + 1);
      const target = this.resolve(head.subarray(0, nl).toString('latin1'));
      if (!target) {
        this.log.debug('data plane: refused a connection for an unknown or non-local task', {
          peer: sock.remoteAddress,
        });
        sock.destroy();
        return;
      }
      const up = connect({
        host: target.host,
        port: target.port,
        noDelay: true,
        allowHalfOpen: true,
        localAddress: this.localFor(target.host),
      });
      up.once('connect', () => {
        if (rest.length > 0) up.write(rest);
        sock.setTimeout(0);
        sock.pipe(up);
        up.pipe(sock);
      });
      up.on('error', () => sock.destroy());
      sock.on('close', () => up.destroy());
      up.on('close', () => {
        if (!sock.writableEnded) sock.destroy();
      });
    };
    sock.on('data', onData);
  }

  /** Binds outgoing connections to the datapath address when it is a local loopback-style address of ours. */
  private localFor(host: string): string | undefined {
    return host.startsWith('127.') && this.datapathAddr.startsWith('127.') ? this.datapathAddr : undefined;
  }

  private resolve(line: string): { host: string; port: number } | undefined {
    const [magic, taskId, portText] = line.split(' ');
    const port = Number(portText);
    const snap = this.current();
    if (magic !== dataPlaneMagic || !taskId || !Number.isInteger(port) || !snap) return undefined;
    const task = snap.state.tasks.get(taskId);
    if (!task || task.node !== this.nodeId) return undefined;
    const svc = snap.state.services.get(task.service);
    if (!svc) return undefined;
    const allowed =
      svc.ports.some((p) => p.target === port && p.protocol === 'tcp') || svc.expose.includes(port);
    const host = task.addresses[0]?.address;
    return allowed && host ? { host, port } : undefined;
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
