import type { Server } from 'node:net';
import { canonicalAddress } from '../model/address.js';
import { invalid } from '../model/errors.js';

/** A host and port to listen on or dial. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parses `HOST:PORT`, `[v6]:PORT` or `:PORT`; `what` names the key in errors. */
export function parseHostPort(text: string, what: string, defaultPort?: number): HostPort {
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (v6) {
    host = v6[1] as string;
    portText = v6[2];
  } else if ((text.match(/:/g) ?? []).length > 1) {
    host = text;
  } else {
    const i = text.lastIndexOf(':');
    host = i >= 0 ? text.slice(0, i) : text;
    portText = i >= 0 ? text.slice(i + 1) : undefined;
  }
  if (host === '') host = '0.0.0.0';
  const port = portText === undefined ? defaultPort : Number(portText);
  if (port === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw invalid(`${what}: "${text}" is not HOST:PORT`);
  }
  if (!canonicalAddress(host) && !/^[a-zA-Z0-9.-]+$/.test(host))
    throw invalid(`${what}: bad host in "${text}"`);
  return { host, port };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** Listens and resolves once bound, or rejects with the bind error (the error handler removed). */
export function listenOn(
  server: Server,
  at: { host: string; port: number; backlog?: number },
): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: at.host, port: at.port, ...(at.backlog ? { backlog: at.backlog } : {}) }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
