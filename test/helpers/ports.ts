import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Ports for servers that need a number before they start (meshd's published ports, etcd, peers).
 *
 * A port the kernel handed out for `listen(0)` comes from the ephemeral range, where every
 * outgoing connection of every test also takes its source port: between our check and the
 * server's bind, a connection from another file could take it. So ports come from below the
 * ephemeral range instead, where the kernel never assigns on its own, and each vitest worker has
 * a block of its own (files in one worker run one after another), so two files never pick the
 * same port. A port is still checked free (TCP and UDP) before it is handed out.
 */
const blockSize = 1000;
const firstPort = 20_000;

function ephemeralStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return 32_768;
  }
}

const worker = Math.max(1, Number(process.env.VITEST_POOL_ID ?? 1));
const blockStart =
  firstPort + (((worker - 1) * blockSize) % Math.max(blockSize, ephemeralStart() - firstPort));
/** Start anywhere in the block: the file before in this worker may have left a port in use. */
let next = Math.floor(Math.random() * blockSize);

async function free(port: number, address: string): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, address, () => srv.close(() => resolve(true)));
  });
  if (!tcp) return false;
  return new Promise<boolean>((resolve) => {
    const s = createSocket(address.includes(':') ? 'udp6' : 'udp4');
    s.once('error', () => resolve(false));
    s.bind(port, address, () => s.close(() => resolve(true)));
  });
}

/** A port free for both UDP and TCP on `address`, from this worker's own block. */
export async function freePort(address = '127.0.0.1'): Promise<number> {
  for (let tries = 0; tries < blockSize; tries++) {
    const port = blockStart + (next++ % blockSize);
    if (await free(port, address)) return port;
  }
  throw new Error(`no free port in ${blockStart}-${blockStart + blockSize - 1} on ${address}`);
}
