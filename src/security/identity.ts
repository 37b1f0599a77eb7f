import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { Backoff } from '../model/backoff.js';
import type { ClusterState } from '../model/cluster-state.js';
import { MeshError, messageOf } from '../model/errors.js';
import { writeFileDurably } from '../store/durable-file.js';
import { IssuerClient, type JoinAnswer } from './issuer-client.js';
import { parseToken } from './join-token.js';
import {
  certDigest,
  certExpiry,
  createRequest,
  type KeyPair,
  signRequest,
  signWithKey,
  verifyPeer,
  verifyRenewal,
} from './pki.js';
import { joinAnswerKey, joinProof, proofMatches, seal, unseal } from './seal.js';

/** This node's certificate, its key and the CA it chains to. */
export interface NodeIdentity extends KeyPair {
  readonly ca: string;
  readonly expires: Date;
}

/** A failed renewal is retried after this long at first, doubling up to the cap. */
const retryFirstMs = 1000;
const retryMaxMs = 60_000;

function read(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

/**
 * The node's place in the cluster PKI. Every member holds the cluster key (a 256-bit secret,
 * in its state directory, never in the store): with it the node opens the CA key that the store
 * keeps sealed, so any member can sign joins and renewals, as every swarm manager can. The store
 * alone yields neither the CA key nor the join token. A joining node proves the token with an
 * HMAC (the secret never travels), gets a certificate for a node id that never had one, and
 * receives the cluster key sealed under the token's secret. Certificates are renewed at half
 * their lifetime (the rotation interval), retried with capped backoff until they succeed.
 */
export class Identity {
  private current: NodeIdentity | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly retry = new Backoff(retryFirstMs, retryMaxMs);
  private closed = false;
  private readonly listeners: ((id: NodeIdentity) => void)[] = [];
  private refused: (err: Error) => void = () => {};
  /** Why this node has no certificate (or could not renew it), for `/ready` and the log. */
  lastError: string | undefined;
  private readonly issuers: IssuerClient;

  constructor(
    private readonly stateDir: string,
    private readonly nodeId: string,
    private readonly rotationMs: number,
    private readonly joinToken: string | undefined,
    private readonly state: () => ClusterState,
    /** Records a join's node id in the cluster record (refused if it already had a certificate). */
    private readonly recordJoin: (node: string) => Promise<void>,
    private readonly log: Logger,
  ) {
    this.issuers = new IssuerClient(nodeId, state);
  }

  get identity(): NodeIdentity | undefined {
    return this.current;
  }

  onChange(cb: (id: NodeIdentity) => void): void {
    this.listeners.push(cb);
  }

  /** Hears a join refused for good (a wrong or rotated token), even on a retry. */
  onRefused(cb: (err: Error) => void): void {
    this.refused = cb;
  }

  private path(name: string): string {
    return join(this.stateDir, name);
  }

  /** The cluster key, on a node that is a member. */
  clusterKey(): Buffer | undefined {
    const hex = read(this.path('cluster.key'))?.trim();
    return hex && /^[0-9a-f]{64}$/.test(hex) ? Buffer.from(hex, 'hex') : undefined;
  }

  saveClusterKey(key: Buffer): void {
    writeFileDurably(this.path('cluster.key'), `${key.toString('hex')}\n`);
  }

  /** The CA key pair, opened with the cluster key (or, in a cluster made before, from ca.key). */
  private caPair(): KeyPair | undefined {
    const cluster = this.state().cluster;
    if (!cluster?.caCert) return undefined;
    const k = this.clusterKey();
    if (k && cluster.caKeySealed) {
      try {
        return { cert: cluster.caCert, key: unseal(k, cluster.caKeySealed).toString('utf8') };
      } catch {
        return undefined;
      }
    }
    const legacy = read(this.path('ca.key'));
    return legacy ? { cert: cluster.caCert, key: legacy } : undefined;
  }

  /** The CA key file of a cluster made before the key was sealed in the store. */
  legacyCaKey(): string | undefined {
    return read(this.path('ca.key'));
  }

  /** Whether this node can sign certificates for others. */
  canIssue(): boolean {
    return this.caPair() !== undefined;
  }

  /** The current join token, opened with the cluster key. */
  joinTokenText(): string {
    const cluster = this.state().cluster;
    const k = this.clusterKey();
    if (k && cluster?.tokenSealed) {
      try {
        return unseal(k, cluster.tokenSealed).toString('utf8');
      } catch {
        // Sealed with another key: fall through to the error below.
      }
    }
    const legacy = read(this.path('join-token'))?.trim();
    if (legacy && !cluster?.tokenSealed) return legacy;
    throw new MeshError('failed_precondition', 'this node does not hold the cluster key; ask another node');
  }

  /** Seals a new token with the cluster key, for the cluster record (rotation). */
  sealToken(token: string): string {
    const k = this.clusterKey();
    if (!k)
      throw new MeshError('failed_precondition', 'this node does not hold the cluster key; ask another node');
    return seal(k, token);
  }

  /**
   * `start()`, retried while no issuer answers. A refused or malformed token is final: it
   * rejects, and meshd stops with the message.
   */
  async startWithRetry(): Promise<void> {
    try {
      await this.start();
    } catch (err) {
      this.lastError = messageOf(err);
      if (err instanceof MeshError && (err.code === 'permission_denied' || err.code === 'invalid_argument'))
        throw err;
      this.log.warn('could not get a cluster certificate yet; retrying', { error: messageOf(err) });
      this.schedule(2000, () => this.startWithRetry().catch((e: unknown) => this.refused(e as Error)));
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
    const ca = this.caPair();
    let cert: string;
    if (ca) {
      // A member signs its own renewal: no other node needs to be up for it.
      cert = await signRequest(ca, csr, this.nodeId, this.rotationMs * 2);
    } else if (this.current) {
      // Renewal proves itself with the current certificate, not the join token (which may have
      // been rotated since this node joined).
      cert = (
        await this.issuers.ask('/swarm/renew', {
          node: this.nodeId,
          csr,
          cert: this.current.cert,
          signature: await signWithKey(this.current.key, csr),
        })
      ).cert;
    } else if (!this.token()) {
      this.lastError =
        'no join token: this node has no cluster certificate, so it carries no data-plane traffic (start with --join-token; meshctl swarm join-token worker on a member prints it)';
      this.log.warn(this.lastError);
      return;
    } else {
      cert = await this.join(csr);
    }
    writeFileDurably(this.path('node.key'), key);
    writeFileDurably(this.path('node.crt'), cert, 0o644);
    writeFileDurably(this.path('ca.crt'), cluster.caCert, 0o644);
    this.use({ cert, key, ca: cluster.caCert, expires: certExpiry(cert) });
    this.log.info('cluster certificate issued', { expires: certExpiry(cert).toISOString() });
  }

  /** Joins with the token: proves it without sending it, pins the CA, takes the cluster key. */
  private async join(csr: string): Promise<string> {
    const cluster = this.state().cluster;
    const token = this.token() as string;
    const parsed = parseToken(token);
    if (!parsed)
      throw new MeshError(
        'invalid_argument',
        'join token is malformed (expected SWMTKN-1-<digest>-<secret>)',
      );
    if (!cluster?.caCert || parsed.caDigest !== certDigest(cluster.caCert)) {
      throw new MeshError(
        'permission_denied',
        "join token is for another cluster: its CA digest does not match this cluster's CA",
      );
    }
    const nonce = randomBytes(16).toString('hex');
    const proof = joinProof(parsed.secret, this.nodeId, nonce, csr);
    const answer = await this.issuers.ask('/swarm/join', { node: this.nodeId, csr, nonce, proof });
    // The CA the token pins, and a certificate that chains to it.
    if (answer.ca !== cluster.caCert || certDigest(answer.ca) !== parsed.caDigest)
      throw new MeshError(
        'permission_denied',
        'the issuer answered with a CA other than the one the token pins',
      );
    if (!(await verifyPeer(Buffer.from(certDer(answer.cert)), cluster.caCert)))
      throw new MeshError('permission_denied', "the issuer's certificate does not chain to the cluster CA");
    let key: Buffer;
    try {
      key = unseal(joinAnswerKey(parsed.secret, nonce), answer.key ?? '');
    } catch {
      throw new MeshError(
        'permission_denied',
        'the cluster key in the join answer does not open with this token',
      );
    }
    this.saveClusterKey(key);
    if (!this.joinToken || read(this.path('join-token'))?.trim() !== token)
      writeFileDurably(this.path('join-token'), `${token}\n`);
    return answer.cert;
  }

  private schedule(ms: number, f: () => Promise<void>): void {
    clearTimeout(this.timer);
    if (this.closed) return;
    this.timer = setTimeout(() => void f(), ms);
    this.timer.unref();
  }

  private use(id: NodeIdentity): void {
    this.current = id;
    this.lastError = undefined;
    this.retry.reset();
    for (const cb of this.listeners) cb(id);
    // Renew at half the lifetime (the rotation interval): the overlap keeps old and new valid.
    this.schedule(Math.max(1000, id.expires.getTime() - Date.now() - this.rotationMs), () =>
      this.renewOrRetry(),
    );
  }

  /** Renews; on failure retries with capped backoff for as long as it takes, saying so each time. */
  private async renewOrRetry(): Promise<void> {
    try {
      await this.renew();
    } catch (err) {
      this.lastError = `renewal failing: ${messageOf(err)}`;
      const wait = Math.min(this.retry.next(), Math.max(1000, this.rotationMs / 4));
      this.log.warn('certificate renewal failed; retrying', {
        error: messageOf(err),
        retryInMs: wait,
        expires: this.current?.expires.toISOString(),
      });
      this.schedule(wait, () => this.renewOrRetry());
    }
  }

  /** Signs a joining node's request: the proof must match the current token, the id must be new. */
  async signJoin(node: string, csr: string, nonce: string, proof: string): Promise<JoinAnswer> {
    const ca = this.caPair();
    const k = this.clusterKey();
    if (!ca || !k) throw new MeshError('failed_precondition', 'this node cannot issue certificates');
    const token = parseToken(this.joinTokenText());
    if (
      !token ||
      !/^[0-9a-f]{32}$/.test(nonce) ||
      !proofMatches(proof, joinProof(token.secret, node, nonce, csr))
    )
      throw new MeshError('permission_denied', 'join token is invalid or has been rotated');
    let cert: string;
    try {
      cert = await signRequest(ca, csr, node, this.rotationMs * 2);
    } catch (err) {
      throw new MeshError('invalid_argument', `certificate request refused: ${messageOf(err)}`);
    }
    // Refused when the id already had a certificate: a token buys a new node, not an old one.
    await this.recordJoin(node);
    return { cert, ca: ca.cert, key: seal(joinAnswerKey(token.secret, nonce), k) };
  }

  /** Renews a member's certificate against proof that it holds the current one. */
  async signRenewal(node: string, csr: string, cert: string, signature: string): Promise<string> {
    const cluster = this.state().cluster;
    const ca = this.caPair();
    if (!cluster?.caCert || !ca)
      throw new MeshError('failed_precondition', 'this node cannot issue certificates');
    if (!this.state().nodes.has(node))
      throw new MeshError('permission_denied', `node ${node} is not a member of this cluster`);
    let ok = false;
    try {
      ok = await verifyRenewal(cluster.caCert, cert, node, csr, signature);
    } catch {
      ok = false;
    }
    if (!ok)
      throw new MeshError(
        'permission_denied',
        'renewal refused: the certificate or its proof does not verify',
      );
    try {
      return await signRequest(ca, csr, node, this.rotationMs * 2);
    } catch (err) {
      throw new MeshError('invalid_argument', `certificate request refused: ${messageOf(err)}`);
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}

/** A PEM certificate's DER bytes. */
function certDer(pem: string): Uint8Array {
  return Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
}
