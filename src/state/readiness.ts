/** What `/ready` says, and why when it is not plainly ready. */
export interface Readiness {
  readonly status: 'ready' | 'starting' | 'degraded' | 'stopping';
  readonly reason: string;
}

/** The facts `/ready` is judged from. */
export interface ReadinessFacts {
  readonly phase: 'starting' | 'ready' | 'stopping';
  readonly store: { readonly connected: boolean; readonly reason: string };
  /** Present when a container engine is configured. */
  readonly engine?: { readonly listed: boolean; readonly socket: string; readonly error: string };
  /** Whether the cluster has a CA, this node a certificate, and why not. */
  readonly certificate: {
    readonly needed: boolean;
    readonly held: boolean;
    readonly error: string | undefined;
  };
}

/**
 * `/ready`: `degraded` (still serving, 200) names the first thing wrong, in the order an operator
 * should look: the store, the container engine (a wrong `--docker-host` must not look healthy),
 * the node's certificate (without one it carries no data-plane traffic).
 */
export function readiness(f: ReadinessFacts): Readiness {
  if (f.phase !== 'ready') return { status: f.phase, reason: f.phase };
  if (!f.store.connected)
    return { status: 'degraded', reason: `store unreachable: ${f.store.reason}; serving the last state` };
  if (f.engine && !f.engine.listed)
    return {
      status: 'degraded',
      reason: `container engine not listed yet (${f.engine.socket}): ${f.engine.error || 'connecting'}`,
    };
  if (f.certificate.needed && !f.certificate.held)
    return {
      status: 'degraded',
      reason: `no cluster certificate: ${f.certificate.error ?? 'not issued yet'}`,
    };
  return { status: 'ready', reason: '' };
}
