import type { ClusterState } from '../model/cluster-state.js';
import { MeshError, messageOf } from '../model/errors.js';
import type { Node } from '../model/types.js';
import { joinTarget } from './join-target.js';
import { certNodeId } from './pki.js';

/** What an issuer hands a joining node: its certificate, the CA, and the sealed cluster key. */
export interface JoinAnswer {
  readonly cert: string;
  readonly ca: string;
  readonly key: string;
}

/**
 * How a node without the cluster key reaches the nodes that can issue: each in turn, ready ones
 * first, at the address their API (or join listener) answers on. A refusal (403) is final; an
 * unreachable issuer is skipped, and when none answers the error names each and why.
 */
export class IssuerClient {
  constructor(
    private readonly nodeId: string,
    private readonly state: () => ClusterState,
  ) {}

  /** Issuers that can be asked, and why the others cannot (the error must name the real cause). */
  private issuers(): { usable: { node: Node; target: string }[]; unusable: string[] } {
    const st = this.state();
    const usable: { node: Node; target: string; ready: boolean }[] = [];
    const unusable: string[] = [];
    for (const n of st.nodes.values()) {
      if (n.id === this.nodeId || !(n.canIssue || st.cluster?.caHolder === n.id)) continue;
      const t = joinTarget(n);
      if ('reason' in t) unusable.push(t.reason);
      else usable.push({ node: n, target: t.target, ready: st.heartbeats.has(n.id) });
    }
    usable.sort((a, b) => Number(b.ready) - Number(a.ready) || Math.random() - 0.5);
    return { usable, unusable };
  }

  async ask(path: string, payload: Record<string, string>): Promise<JoinAnswer> {
    const { usable, unusable } = this.issuers();
    const errors: string[] = [...unusable];
    if (usable.length === 0)
      throw new MeshError(
        'unavailable',
        `no node that can issue certificates is reachable${errors.length > 0 ? `: ${errors.join('; ')}` : ' yet'}`,
      );
    for (const { node, target } of usable) {
      try {
        return await this.askOne(node, target, path, payload);
      } catch (err) {
        if (err instanceof MeshError && err.code === 'permission_denied') throw err;
        errors.push(`${node.name} (${target}): ${messageOf(err)}`);
      }
    }
    throw new MeshError('unavailable', `no issuer answered: ${errors.join('; ')}`);
  }

  private async askOne(
    node: Node,
    target: string,
    path: string,
    payload: Record<string, string>,
  ): Promise<JoinAnswer> {
    const caCert = this.state().cluster?.caCert;
    // undici is loaded when a node first asks an issuer, not at every start.
    const { Agent, request } = await import('undici');
    const res = await request(`${node.apiTls ? 'https' : 'http'}://${target}${path}`, {
      method: 'POST',
      // An HTTPS issuer's certificate chains to the cluster CA the token pinned.
      ...(node.apiTls && caCert
        ? {
            dispatcher: new Agent({
              connect: { ca: caCert, rejectUnauthorized: true, checkServerIdentity: () => undefined },
            }),
          }
        : {}),
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(payload),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const body = (await res.body.json()) as Partial<JoinAnswer> & { message?: string };
    if (res.statusCode === 403)
      throw new MeshError(
        'permission_denied',
        `join refused by ${node.name}: ${body.message ?? 'invalid join token'}`,
      );
    if (res.statusCode >= 400 || !body.cert)
      throw new MeshError(
        'unavailable',
        `HTTP ${res.statusCode}: ${body.message ?? 'no certificate in the answer'}`,
      );
    if (certNodeId(body.cert) !== this.nodeId)
      throw new MeshError('internal', 'the issuer returned a certificate for another node');
    return { cert: body.cert, ca: body.ca ?? '', key: body.key ?? '' };
  }
}
