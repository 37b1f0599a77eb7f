import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { Logger } from '../log.js';
import { literalLookup } from '../model/address.js';

/** A UDP message and the way to answer it from the socket (and so the address) it came in on. */
export type UdpHandler = (msg: Buffer, address: string, port: number, sock: Socket) => void;

/** How often a wildcard listener looks for addresses that came or went. */
const rescanMs = 2000;

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/** This host's interface addresses a wildcard listen covers (link-local IPv6 needs a scope: left out). */
function localAddresses(host: string): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) {
      if (i.family === 'IPv6' && (host === '0.0.0.0' || i.address.startsWith('fe80:'))) continue;
      out.push(i.address);
    }
  }
  return out;
}

/**
 * The UDP side of a DNS listener. On a specific address, one socket. On a wildcard, one wildcard
 * socket plus one per local address, rescanned as addresses come and go (a VIP added to `lo`, a
 * second address on an interface): a reply must leave from the address the query was sent to,
 * or the client drops it, and a wildcard socket replies from the route's preferred source. This
 * is what dnsmasq's bind-dynamic and CoreDNS's per-address binds do; Node has no IP_PKTINFO.
 */
export class UdpListeners {
  private readonly sockets = new Map<string, Socket>();
  private timer: NodeJS.Timeout | undefined;
  private port = 0;
  private readonly failed = new Set<string>();

  constructor(
    private readonly onMessage: UdpHandler,
    private readonly log: Logger,
  ) {}

  private wildcard: string | undefined;

  /** Binds `host:port` (port 0 picks one); resolves with the port bound. */
  async bind(host: string, port: number): Promise<number> {
    const first = await this.open(host, port, isWildcard(host));
    this.port = first.address().port;
    if (isWildcard(host)) {
      this.wildcard = host;
      await this.rescan(host);
      this.timer = setInterval(() => void this.rescan(host), rescanMs);
      this.timer.unref();
    }
    return this.port;
  }

  get size(): number {
    return this.sockets.size;
  }

  private async open(host: string, port: number, shared: boolean): Promise<Socket> {
    const sock = createSocket({
      type: host.includes(':') ? 'udp6' : 'udp4',
      // The wildcard and per-address sockets share the port.
      reuseAddr: shared,
      recvBufferSize: 4 << 20,
      sendBufferSize: 4 << 20,
      lookup: literalLookup,
    });
    sock.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address, rinfo.port, sock));
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(port, host, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    sock.on('error', (err) => this.log.warn('DNS UDP socket error', { address: host, error: err.message }));
    this.sockets.set(host, sock);
    return sock;
  }

  /**
   * Looks at the addresses now rather than at the next scan: meshd itself just added some (an
   * overlay bridge's gateway), and a query to one before its socket exists would be answered
   * from another address and dropped by the client.
   */
  addressesChanged(): Promise<void> {
    return this.wildcard ? this.rescan(this.wildcard) : Promise.resolve();
  }

  /** Opens a socket for each new local address and closes those of addresses that went away. */
  private async rescan(wildcard: string): Promise<void> {
    const now = new Set(localAddresses(wildcard));
    for (const [addr, sock] of this.sockets) {
      if (addr === wildcard || now.has(addr)) continue;
      sock.close();
      this.sockets.delete(addr);
    }
    for (const addr of now) {
      if (this.sockets.has(addr)) continue;
      try {
        await this.open(addr, this.port, true);
        this.failed.delete(addr);
      } catch (err) {
        // Another process may hold this address's port (aardvark-dns on a bridge gateway):
        // the wildcard still answers there, from the preferred source.
        if (!this.failed.has(addr)) {
          this.failed.add(addr);
          this.log.warn('DNS cannot bind one local address; the wildcard socket answers it', {
            address: addr,
            error: (err as Error).message,
          });
        }
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
  }
}
