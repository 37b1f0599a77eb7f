import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { Duplex } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { literalLookup } from '../model/address.js';
import { chooseEndpoint, type MeshContext } from './context.js';
import { readDatagrams, writeDatagram } from './datagrams.js';
import { proxyV2 } from './proxy-protocol.js';
import type { ServiceRoute } from './routes.js';

/** A client's flow: to the task directly (a connected socket), or through a tunnel stream. */
interface Flow {
  readonly task: string;
  /** Bytes from the client, counted without a label lookup per datagram. */
  readonly bytesIn: { value: number };
  send(parts: Buffer[]): void;
  close(): void;
}

/** Datagrams held while a flow's tunnel stream opens; more than this are dropped, as UDP may. */
const maxQueuedDatagrams = 64;

/**
 * A published UDP port (or VIP:port): a flow per client address and port, each with its own
 * connected socket to a task, so replies come back to the client from the published port. The
 * flow table is bounded (lru-cache) and flows expire when idle; a flow whose task left the
 * service moves to another task on its next datagram instead of being black-holed (moby#36878).
 */
export class UdpListener {
  route: ServiceRoute;
  private readonly flows: LRUCache<string, Flow>;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly ctx: MeshContext,
    readonly sock: Socket,
    route: ServiceRoute,
  ) {
    this.route = route;
    this.flows = new LRUCache<string, Flow>({
      max: ctx.settings.udpFlows,
      ttl: ctx.settings.udpIdleTimeoutMs,
      updateAgeOnGet: true,
      dispose: (flow) => flow.close(),
    });
    this.sweeper = setInterval(
      () => this.flows.purgeStale(),
      Math.min(1000, ctx.settings.udpIdleTimeoutMs),
    ).unref();
    sock.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
  }

  get size(): number {
    return this.flows.size;
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    const key = `${rinfo.address}|${rinfo.port}`;
    let flow = this.flows.get(key);
    const route = this.route;
    if (flow && !route.isLive(flow.task)) {
      this.flows.delete(key);
      flow = undefined;
    }
    if (!flow) {
      flow = this.open(key, rinfo, route);
      if (!flow) return;
    }
    const svc = route.service;
    flow.bytesIn.value += msg.length;
    if (svc.proxyProtocol === 'v2') {
      const local = this.sock.address();
      flow.send([proxyV2(rinfo.address, rinfo.port, local.address, local.port, 'udp'), msg]);
    } else {
      flow.send([msg]);
    }
  }

  private open(key: string, rinfo: RemoteInfo, route: ServiceRoute): Flow | undefined {
    const svc = route.service;
    const e = chooseEndpoint(this.ctx, route, rinfo.address, new Set());
    if (!e) {
      this.ctx.metrics.connectErrors.child(svc.name, 'no_healthy_task').value++;
      return undefined;
    }
    this.ctx.metrics.connections.child(svc.name, route.port, 'udp').value++;
    const bytesOut = this.ctx.metrics.bytes.child(svc.name, 'out');
    const reply = (d: Buffer) => {
      bytesOut.value += d.length;
      this.flows.get(key); // a reply keeps the flow alive too
      this.sock.send(d, rinfo.port, rinfo.address);
    };
    if (e.via) {
      const flow = this.tunnelFlow(key, e.task, e.node, e.via, e.port, reply);
      this.flows.set(key, flow);
      return flow;
    }
    const upstream = createSocket({ type: e.host.includes(':') ? 'udp6' : 'udp4', lookup: literalLookup });
    const flow: Flow = {
      task: e.task,
      bytesIn: this.ctx.metrics.bytes.child(svc.name, 'in'),
      send: (parts) => upstream.send(parts),
      close: () => upstream.close(),
    };
    upstream.on('message', reply);
    upstream.on('error', () => {
      // ICMP unreachable on a connected socket: the task is gone; eject it and let the next
      // datagram open a flow to another task.
      this.ctx.load.eject(e.task, Date.now(), 'udp_unreachable');
      this.ctx.metrics.ejections.child(svc.name).value++;
      this.ctx.metrics.connectErrors.child(svc.name, 'udp_unreachable').value++;
      if (this.flows.get(key) === flow) this.flows.delete(key);
    });
    upstream.connect(e.port, e.host);
    this.flows.set(key, flow);
    return flow;
  }

  /**
   * A flow to a task reached through its node's data plane: one stream through the tunnel, the
   * datagrams length-prefixed in it; the far node sends them to the task from its own socket.
   */
  private tunnelFlow(
    key: string,
    task: string,
    node: string,
    via: { host: string; port: number; nodeName: string },
    port: number,
    reply: (d: Buffer) => void,
  ): Flow {
    let stream: Duplex | undefined;
    let queue: Buffer[][] | undefined = [];
    let closed = false;
    const flow: Flow = {
      task,
      bytesIn: this.ctx.metrics.bytes.child(this.route.service.name, 'in'),
      send: (parts) => {
        if (stream) writeDatagram(stream, parts);
        else if (queue && queue.length < maxQueuedDatagrams) queue.push(parts);
      },
      close: () => {
        closed = true;
        stream?.destroy();
      },
    };
    this.ctx.dataPlane.tunnels
      .open({ node, nodeName: via.nodeName, host: via.host, port: via.port }, task, port, 'udp')
      .then(
        (s) => {
          if (closed) {
            s.destroy();
            return;
          }
          stream = s;
          readDatagrams(s, reply);
          s.on('error', () => undefined);
          s.on('close', () => {
            if (this.flows.get(key) === flow) this.flows.delete(key);
          });
          for (const parts of queue ?? []) writeDatagram(s, parts);
          queue = undefined;
        },
        () => {
          this.ctx.load.eject(task, Date.now(), 'tunnel_failed');
          if (this.flows.get(key) === flow) this.flows.delete(key);
        },
      );
    return flow;
  }

  close(): void {
    clearInterval(this.sweeper);
    this.flows.clear();
    this.sock.close();
  }
}
