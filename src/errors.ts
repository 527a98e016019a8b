/**
 * One error class for everything apiary reports to a person. The code is a
 * stable string a caller can branch on; the message says what to do next.
 * Messages never contain secret values (they are built from names only).
 */
export type ErrorCode =
  | 'ManifestInvalid'
  | 'NotFound'
  | 'NameInvalid'
  | 'Usage'
  | 'KeyUnavailable'
  | 'KeyFileInsecure'
  | 'KeyMismatch'
  | 'SecretNotFound'
  | 'SecretKeyNotFound'
  | 'SecretDecryptFailed'
  | 'SecretValueInvalid'
  | 'ControllerRunning'
  | 'StateInvalid'
  | 'Timeout'
  | 'StartFailed'
  | 'ClusterRefused'
  | 'ClusterUnreachable'
  | 'GitOperationFailed'
  | 'GitSourced'
  | 'NotOurs'
  | 'Unsupported'
  | 'AuditInvalid'
  | 'AuthorizationRequired'
  | 'AuthorizationFailed'
  | 'Io';

export class ApiaryError extends Error {
  readonly code: ErrorCode;
  /** Extra lines printed under the message (hints, ways out). */
  readonly hints: readonly string[];
  /** Overrides the CLI's exit code for this error (diff: 1 means "differs", so errors are 2). */
  readonly exitCode: number | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; hints?: readonly string[]; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ApiaryError';
    this.code = code;
    this.hints = options.hints ?? [];
    this.exitCode = options.exitCode;
  }
}

export function isApiaryError(err: unknown, code?: ErrorCode): err is ApiaryError {
  return err instanceof ApiaryError && (code === undefined || err.code === code);
}

/** The message of any thrown value, for wrapping. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
