import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { FrameReader, writeFrame } from '../wire/frames.js';
import { responseHeader } from './wire.js';

/** An upstream that did not answer in time: told apart from other failures by type, not text. */
export class UpstreamTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

/** One upstream resolver. */
export interface Upstream {
  readonly host: string;
  readonly port: number;
  /** `host:port`, the metrics label. */
  readonly label: string;
}

/**
 * Sends one query to an upstream and returns its response with the original id restored. UDP
 * first from a fresh socket (a random source port per query, against spoofed answers), with a
 * random id; a truncated UDP answer is fetched again over TCP.
 */
export async function exchange(u: Upstream, query: Buffer, timeoutMs: number, tcp: boolean): Promise<Buffer> {
  const originalId = query.readUInt16BE(0);
  const id = randomInt(0, 65536);
  const q = Buffer.from(query);
  q.writeUInt16BE(id, 0);
  let res = tcp ? await overTcp(u, q, id, timeoutMs) : await overUdp(u, q, id, timeoutMs);
  if (!tcp && responseHeader(res)?.truncated) res = await overTcp(u, q, id, timeoutMs);
  res.writeUInt16BE(originalId, 0);
  return res;
}

function overUdp(u: Upstream, q: Buffer, id: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(u.host.includes(':') ? 'udp6' : 'udp4');
    const done = (err: Error | undefined, res?: Buffer) => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(res as Buffer);
    };
    const timer = setTimeout(() => done(new UpstreamTimeout(timeoutMs)), timeoutMs);
    sock.on('error', (err) => done(err));
    sock.on('message', (msg, rinfo) => {
      // Only the upstream we asked, with our id, may answer; anything else is ignored.
      if (rinfo.port !== u.port || responseHeader(msg)?.id !== id) return;
      done(undefined, msg);
    });
    sock.connect(u.port, u.host, () => sock.send(q));
  });
}

function overTcp(u: Upstream, q: Buffer, id: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: u.host, port: u.port });
    const frames = new FrameReader();
    const timer = setTimeout(() => fail(new UpstreamTimeout(timeoutMs)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    sock.on('error', fail);
    sock.on('connect', () => writeFrame(sock, [q]));
    sock.on('data', (chunk: Buffer) => {
      const [msg] = frames.push(chunk);
      if (!msg) return;
      if (responseHeader(msg)?.id !== id) return fail(new Error('mismatched id'));
      clearTimeout(timer);
      sock.destroy();
      resolve(Buffer.from(msg));
    });
    sock.on('end', () => fail(new Error('connection closed')));
  });
}
