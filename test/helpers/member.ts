import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { dialSecure } from '../../src/mesh/data-plane-client.js';
import { tlsOptions } from '../../src/security/tls.js';

/** Mux frame types, as src/mesh/mux.ts writes them. */
export const frameType = { OPEN: 1, DATA: 2, END: 3, RESET: 4, CREDIT: 5 } as const;

/** One mux frame: `type(1) stream(4) length(4) payload`. */
export function frame(type: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.allocUnsafe(9);
  h[0] = type;
  h.writeUInt32BE(id, 1);
  h.writeUInt32BE(payload.length, 5);
  return Buffer.concat([h, payload]);
}

/** A datagram as the data plane frames it inside a UDP stream: `length(2) payload`. */
export function datagram(text: string): Buffer {
  const body = Buffer.from(text);
  const h = Buffer.allocUnsafe(2);
  h.writeUInt16BE(body.length);
  return Buffer.concat([h, body]);
}

/**
 * A raw tunnel to a node's data plane with a member's certificate (the node's own, read from its
 * state directory): the test writes frames by hand, breaking the rules where it wants to, and
 * reads back the frames the node sends.
 */
export interface MemberTunnel {
  readonly sock: TLSSocket;
  readonly frames: { type: number; id: number; payload: Buffer }[];
  close(): void;
}

export async function memberTunnel(
  stateDir: string,
  nodeId: string,
  host: string,
  port: number,
): Promise<MemberTunnel> {
  const ctx = createSecureContext({
    cert: readFileSync(join(stateDir, 'node.crt')),
    key: readFileSync(join(stateDir, 'node.key')),
    ca: readFileSync(join(stateDir, 'ca.crt')),
    ...tlsOptions,
  });
  const sock = await dialSecure(host, port, nodeId, ctx, undefined, 'test');
  const frames: MemberTunnel['frames'] = [];
  let buf = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9) {
      const len = buf.readUInt32BE(5);
      if (buf.length < 9 + len) break;
      frames.push({
        type: buf[0] as number,
        id: buf.readUInt32BE(1),
        payload: Buffer.from(buf.subarray(9, 9 + len)),
      });
      buf = buf.subarray(9 + len);
    }
  });
  sock.on('error', () => undefined);
  return { sock, frames, close: () => sock.destroy() };
}

/** The cluster CA key, opened the way a member opens it: its cluster key and the sealed copy. */
export async function clusterCaKey(stateDir: string, api: string): Promise<string> {
  const { unseal } = await import('../../src/security/seal.js');
  const key = Buffer.from(readFileSync(join(stateDir, 'cluster.key'), 'utf8').trim(), 'hex');
  const info = (await (await fetch(`${api}/info`)).json()) as { cluster: { caKeySealed: string } };
  return unseal(key, info.cluster.caKeySealed).toString('utf8');
}
