/** Stable error codes a user or peer can cause; each maps to one HTTP status. */
export const errorStatus = {
  invalid_argument: 400,
  unauthorized: 401,
  permission_denied: 403,
  not_found: 404,
  already_exists: 409,
  conflict: 409,
  failed_precondition: 412,
  exhausted: 507,
  unavailable: 503,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof errorStatus;

/** An error with a stable code, for anything a user, a peer or the environment can cause. */
export class MeshError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'MeshError';
    this.code = code;
  }

  get status(): number {
    return errorStatus[this.code];
  }
}

/** Shorthand for a user-caused validation failure. */
export function invalid(message: string): MeshError {
  return new MeshError('invalid_argument', message);
}

/** Returns the message of anything thrown. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
