import { connect } from 'node:net';
import { type SecureContext, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { tlsOptions } from '../security/tls.js';
import type { DataPlaneMetrics } from './data-plane-metrics.js';

/** The client side of the data plane: the header, plain connections, and the TLS upgrade. */
export const dataPlaneMagic = 'MESHD/1';

export function dataPlaneHeader(task: string, port: number): Buffer {
  return Buffer.from(`${dataPlaneMagic} ${task} ${port}\n`, 'latin1');
}

/**
 * The header of a tunnel stream that carries an encrypted overlay network's Ethernet frames
 * (framed as datagrams) rather than one connection to a task.
 */
export function framesHeader(network: string): string {
  return `${dataPlaneMagic} frames ${network}`;
}

/** The byte a client sends to ask for TLS on the raw socket, and the server's go-ahead. */
export const startTls = 0x54; // 'T'
export const startTlsOk = 0x4b; // 'K'

/** Opens a tunnel connection: a one-byte STARTTLS exchange, then TLS 1.3 directly on the socket. */
export function dialSecure(
  host: string,
  port: number,
  peerNode: string,
  secure: SecureContext,
  metrics: DataPlaneMetrics | undefined,
  peerName: string,
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = connect({ host, port, noDelay: true });
    raw.once('error', (err) => {
      metrics?.handshake(peerName, 'error');
      reject(err);
    });
    raw.once('connect', () => raw.write(Buffer.from([startTls])));
    raw.once('data', (d: Buffer) => {
      if (d.length !== 1 || d[0] !== startTlsOk) {
        raw.destroy();
        reject(Object.assign(new Error('data plane peer did not accept TLS'), { code: 'EPROTO' }));
        return;
      }
      raw.pause();
      const sock = tlsConnect({
        socket: raw,
        secureContext: secure,
        ...tlsOptions,
        servername: undefined,
        checkServerIdentity: (_h, cert) =>
          cert.subject?.CN === peerNode
            ? undefined
            : new Error(`data plane peer is ${cert.subject?.CN}, not node ${peerNode}`),
      });
      sock.once('secureConnect', () => {
        metrics?.handshake(peerName, 'ok');
        resolve(sock);
      });
      sock.once('error', (err) => {
        metrics?.handshake(peerName, 'error');
        reject(err);
      });
    });
  });
}
