import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import type { Logger } from '../log.js';
import type { ClusterState } from '../model/cluster-state.js';
import { MeshError, messageOf } from '../model/errors.js';
import { parseToken, tokenMatches } from './join-token.js';
import {
  certDigest,
  certExpiry,
  certNodeId,
  createRequest,
  type KeyPair,
  signRequest,
  signWithKey,
  verifyRenewal,
} from './pki.js';

/** This node's certificate, its key and the CA it chains to. */
export interface NodeIdentity extends KeyPair {
  readonly ca: string;
  readonly expires: Date;
}

/** Private keys are files only their owner can read; they are never logged. */
function writeSecret(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
}

function read(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

/**
 * The node's place in the cluster PKI. The node holding the CA signs its own certificate and
 * the other nodes' (who prove themselves with the join token); every node renews its
 * certificate at half its lifetime, so with the default 12 h rotation a certificate lives 24 h
 * and the old and new are both valid during the overlap.
 */
export class Identity {
  private current: NodeIdentity | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: ((id: NodeIdentity) => void)[] = [];

  constructor(
    private readonly stateDir: string,
    private readonly nodeId: string,
    private readonly rotationMs: number,
    private readonly joinToken: string | undefined,
    private readonly state: () => ClusterState,
    private readonly log: Logger,
  ) {}

  get identity(): NodeIdentity | undefined {
    return this.current;
  }

  onChange(cb: (id: NodeIdentity) => void): void {
    this.listeners.push(cb);
  }

  private path(name: string): string {
    return join(this.stateDir, name);
  }

  /** The CA key pair, on the node that holds it. */
  private caPair(): KeyPair | undefined {
    const key = read(this.path('ca.key'));
    const cert = this.state().cluster?.caCert;
    return key && cert ? { key, cert } : undefined;
  }

  isCaHolder(): boolean {
    return this.state().cluster?.caHolder === this.nodeId;
  }

  /**
   * `start()`, retried every 2 s while the CA holder is unreachable. A refused or malformed token
   * is final: it rejects, and meshd stops with the message.
   */
  async startWithRetry(): Promise<void> {
    try {
      await this.start();
    } catch (err) {
      if (err instanceof MeshError && (err.code === 'permission_denied' || err.code === 'invalid_argument'))
        throw err;
      this.log.warn('could not get a cluster certificate yet; retrying', { error: messageOf(err) });
      const t = setTimeout(
        () =>
          void this.startWithRetry().catch((e: unknown) =>
            this.log.error('join refused', { error: messageOf(e) }),
          ),
        2000,
      );
      t.unref();
    }
  }

  /** Gets (or renews) a certificate; a wrong join token is an error the caller turns into an exit. */
  async start(): Promise<void> {
    const cluster = this.state().cluster;
    if (!cluster?.caCert) return;
    const cert = read(this.path('node.crt'));
    const key = read(this.path('node.key'));
    if (
      cert &&
      key &&
      read(this.path('ca.crt')) === cluster.caCert &&
      certExpiry(cert).getTime() - Date.now() > this.rotationMs / 2
    ) {
      this.use({ cert, key, ca: cluster.caCert, expires: certExpiry(cert) });
    } else {
      await this.renew();
    }
  }

  private token(): string | undefined {
    return this.joinToken ?? read(this.path('join-token'))?.trim();
  }

  private async renew(): Promise<void> {
    const cluster = this.state().cluster;
    if (!cluster?.caCert) return;
    const { key, csr } = await createRequest(this.nodeId);
    let cert: string;
    if (this.isCaHolder()) {
      const ca = this.caPair();
      if (!ca)
        throw new MeshError(
          'failed_precondition',
          `this node holds the cluster CA but ${this.path('ca.key')} is missing`,
        );
      cert = await signRequest(ca, csr, this.nodeId, this.rotationMs * 2);
    } else if (this.current) {
      // Renewal proves itself with the current certificate, not the join token (which may have
      // been rotated since this node joined).
      cert = await this.askCa('/swarm/renew', {
        node: this.nodeId,
        csr,
        cert: this.current.cert,
        signature: await signWithKey(this.current.key, csr),
      });
    } else {
      const token = this.token();
      if (!token) {
        this.log.warn(
          'no join token: this node has no cluster certificate, so it cannot carry encrypted networks (start with --join-token)',
        );
        return;
      }
      const parsed = parseToken(token);
      if (!parsed)
        throw new MeshError(
          'invalid_argument',
          'join token is malformed (expected SWMTKN-1-<digest>-<secret>)',
        );
      if (parsed.caDigest !== certDigest(cluster.caCert)) {
        throw new MeshError(
          'permission_denied',
          "join token is for another cluster: its CA digest does not match this cluster's CA",
        );
      }
      cert = await this.askCa('/swarm/join', { token, node: this.nodeId, csr });
      if (!this.joinToken || read(this.path('join-token'))?.trim() !== token)
        writeSecret(this.path('join-token'), `${token}\n`);
    }
    writeSecret(this.path('node.key'), key);
    writeFileSync(this.path('node.crt'), cert);
    writeFileSync(this.path('ca.crt'), cluster.caCert);
    this.use({ cert, key, ca: cluster.caCert, expires: certExpiry(cert) });
    this.log.info('cluster certificate issued', { expires: certExpiry(cert).toISOString() });
  }

  /** Sends the request to the CA holder's API, authenticated by the join token. */
  private async askCa(path: string, payload: Record<string, string>): Promise<string> {
    const st = this.state();
    const holder = st.cluster?.caHolder ? st.nodes.get(st.cluster.caHolder) : undefined;
    if (!holder) throw new MeshError('unavailable', 'the node holding the cluster CA is not known yet');
    const res = await request(`${holder.apiTls ? 'https' : 'http'}://${holder.apiListen}${path}`, {
      method: 'POST',
      // The CA holder's HTTPS certificate chains to the cluster CA the token pinned.
      ...(holder.apiTls && st.cluster?.caCert
        ? {
            dispatcher: new Agent({
              connect: {
                ca: st.cluster.caCert,
                rejectUnauthorized: true,
                checkServerIdentity: () => undefined,
              },
            }),
          }
        : {}),
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(payload),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const body = (await res.body.json()) as { cert?: string; message?: string };
    if (res.statusCode === 403)
      throw new MeshError(
        'permission_denied',
        `join refused by ${holder.name}: ${body.message ?? 'invalid join token'}`,
      );
    if (res.statusCode >= 400 || !body.cert)
      throw new MeshError('unavailable', `join failed at ${holder.name}: ${body.message ?? res.statusCode}`);
    if (certNodeId(body.cert) !== this.nodeId)
      throw new MeshError('internal', 'the CA returned a certificate for another node');
    return body.cert;
  }

  private use(id: NodeIdentity): void {
    this.current = id;
    for (const cb of this.listeners) cb(id);
    clearTimeout(this.timer);
    // Renew at half the lifetime (the rotation interval): the overlap keeps old and new valid.
    const at = Math.max(1000, id.expires.getTime() - Date.now() - this.rotationMs);
    this.timer = setTimeout(() => {
      this.renew().catch((err: unknown) => {
        this.log.warn('certificate renewal failed; will retry', { error: messageOf(err) });
        this.timer = setTimeout(() => void this.renew().catch(() => undefined), 5000);
        this.timer.unref();
      });
    }, at);
    this.timer.unref();
  }

  /** On the CA holder: signs a joining node's request if its token is the current one. */
  async signJoin(token: string, node: string, csr: string): Promise<string> {
    const cluster = this.state().cluster;
    const ca = this.caPair();
    if (!cluster?.tokenHash || !ca || !this.isCaHolder()) {
      throw new MeshError('failed_precondition', 'this node does not hold the cluster CA');
    }
    if (!tokenMatches(token, cluster.tokenHash))
      throw new MeshError('permission_denied', 'join token is invalid or has been rotated');
    if (!this.state().nodes.has(node))
      throw new MeshError('permission_denied', `node ${node} is not a member of this cluster`);
    return signRequest(ca, csr, node, this.rotationMs * 2);
  }

  /** On the CA holder: renews a member's certificate against proof that it holds the current one. */
  async signRenewal(node: string, csr: string, cert: string, signature: string): Promise<string> {
    const cluster = this.state().cluster;
    const ca = this.caPair();
    if (!cluster?.caCert || !ca || !this.isCaHolder())
      throw new MeshError('failed_precondition', 'this node does not hold the cluster CA');
    if (!this.state().nodes.has(node))
      throw new MeshError('permission_denied', `node ${node} is not a member of this cluster`);
    if (!(await verifyRenewal(cluster.caCert, cert, node, csr, signature))) {
      throw new MeshError(
        'permission_denied',
        'renewal refused: the certificate or its proof does not verify',
      );
    }
    return signRequest(ca, csr, node, this.rotationMs * 2);
  }

  /** On the CA holder: the current join token, kept in its state directory. */
  joinTokenText(): string {
    const t = read(this.path('join-token'))?.trim();
    if (!this.isCaHolder() || !t)
      throw new MeshError('failed_precondition', 'ask the node that holds the cluster CA');
    return t;
  }

  saveJoinToken(token: string): void {
    writeSecret(this.path('join-token'), `${token}\n`);
  }

  saveCaKey(key: string): void {
    writeSecret(this.path('ca.key'), key);
  }

  close(): void {
    clearTimeout(this.timer);
  }
}
