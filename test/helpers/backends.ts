import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import { connect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';

/** A real HTTP backend on `address:port` answering with its own name; counts requests. */
export interface Backend {
  readonly name: string;
  readonly server: Server;
  hits: number;
  status: number;
  /** Closes the listener and every open connection (a task that died). */
  kill(): Promise<void>;
}

export async function httpBackend(name: string, address: string, port: number): Promise<Backend> {
  const b: Backend = {
    name,
    hits: 0,
    status: 200,
    server: createServer((req, res) => {
      b.hits++;
      if (req.url?.startsWith('/slow')) {
        // Streams 10 chunks over about a second (`?every=MS` between chunks, 100 by default): an
        // in-flight transfer for drain tests.
        const every = Number(new URL(req.url, 'http://x').searchParams.get('every') ?? 100);
        res.writeHead(200, { 'content-type': 'text/plain' });
        let n = 0;
        const t = setInterval(() => {
          res.write(`${name} chunk ${n}\n`);
          if (++n === 10) {
            clearInterval(t);
            res.end();
          }
        }, every);
        return;
      }
      res.writeHead(b.status, { 'content-type': 'text/plain' });
      res.end(name);
    }),
    async kill() {
      await new Promise<void>((resolve) => {
        b.server.close(() => resolve());
        b.server.closeAllConnections();
      });
    },
  };
  await new Promise<void>((resolve) => b.server.listen(port, address, () => resolve()));
  return b;
}

/** GET on a fresh connection (no keep-alive): each request is a new connection through the mesh. */
export function fetchOnce(url: string, localAddress?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(
      url,
      { agent: false, localAddress, headers: { connection: 'close' } },
      (res: IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
  });
}

/** A raw TCP backend: `onConnection` gets every socket (PROXY headers, half-close tests). */
export async function tcpBackend(
  address: string,
  port: number,
  onConnection: (s: Socket) => void,
): Promise<NetServer> {
  const server = createNetServer({ allowHalfOpen: true }, onConnection);
  await new Promise<void>((resolve) => server.listen(port, address, () => resolve()));
  return server;
}

/** A UDP echo backend prefixing replies with its name. */
export async function udpEcho(
  name: string,
  address: string,
  port: number,
): Promise<UdpSocket & { seen: Buffer[] }> {
  const sock = createSocket('udp4') as UdpSocket & { seen: Buffer[] };
  sock.seen = [];
  sock.on('message', (msg, r) => {
    sock.seen.push(msg);
    sock.send(Buffer.concat([Buffer.from(`${name}:`), msg]), r.port, r.address);
  });
  await new Promise<void>((resolve) => sock.bind(port, address, () => resolve()));
  return sock;
}

/** Sends `text`, half-closes, and resolves with everything the far side sends before its own FIN. */
export function halfCloseExchange(host: string, port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect({ port, host, allowHalfOpen: true });
    let out = '';
    c.on('data', (d) => {
      out += d;
    });
    c.on('end', () => resolve(out));
    c.on('error', reject);
    c.end(text);
  });
}

/** A TCP backend that answers `got <what it read>` only after the client's FIN. */
export function echoAfterFin(host: string, port: number): Promise<NetServer> {
  return tcpBackend(host, port, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => setTimeout(() => s.end(`got ${Buffer.concat(chunks).toString()}`), 100));
  });
}
