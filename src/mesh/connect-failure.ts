/**
 * Why a connect to a task failed, as a fixed set: it becomes a metric label and the ejection
 * reason `service ps` shows, so it must never carry arbitrary error text.
 */
export type ConnectFailure = 'refused' | 'reset' | 'unreachable' | 'timeout' | 'tunnel' | 'other';

export class ConnectError extends Error {
  constructor(
    readonly failure: ConnectFailure,
    message: string,
  ) {
    super(message);
  }
}

const byCode: Readonly<Record<string, ConnectFailure>> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EADDRNOTAVAIL: 'unreachable',
  ETIMEDOUT: 'timeout',
};

/** The failure an error stands for; `viaTunnel` names errors of the data-plane tunnel as such. */
export function connectFailure(err: unknown, viaTunnel = false): ConnectFailure {
  if (err instanceof ConnectError) return err.failure;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return (code && byCode[code]) || (viaTunnel ? 'tunnel' : 'other');
}
