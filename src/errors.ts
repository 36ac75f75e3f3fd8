/**
 * The one catalogue of error codes. Codes are stable: scripts and the README refer to them.
 * Bad input travels as values (Diagnostic, Result); AegisError is for environment failures
 * (no CAP_BPF, port in use) that the daemon catches and degrades on or exits for.
 */
export const ErrorCode = {
  CONFIG_SYNTAX: 'AEGIS_ERR_CONFIG_SYNTAX',
  CONFIG_VALUE: 'AEGIS_ERR_CONFIG_VALUE',
  CONFIG_MISSING: 'AEGIS_ERR_CONFIG_MISSING',
  CONFIG_INCLUDE: 'AEGIS_ERR_CONFIG_INCLUDE',
  CONFIG_INTERPOLATION: 'AEGIS_ERR_CONFIG_INTERPOLATION',
  CONFIG_UNKNOWN_KEY: 'AEGIS_ERR_CONFIG_UNKNOWN_KEY',
  FILTER_NOT_FOUND: 'AEGIS_ERR_FILTER_NOT_FOUND',
  ACTION_NOT_FOUND: 'AEGIS_ERR_ACTION_NOT_FOUND',
  REGEX_INVALID: 'AEGIS_ERR_REGEX_INVALID',
  REGEX_UNTRANSLATABLE: 'AEGIS_ERR_REGEX_UNTRANSLATABLE',
  DATEPATTERN_INVALID: 'AEGIS_ERR_DATEPATTERN_INVALID',
  ADDRESS_INVALID: 'AEGIS_ERR_ADDRESS_INVALID',
  BAN_REFUSED: 'AEGIS_ERR_BAN_REFUSED',
  NOT_BANNED: 'AEGIS_ERR_NOT_BANNED',
  UNKNOWN_JAIL: 'AEGIS_ERR_UNKNOWN_JAIL',
  REQUEST_INVALID: 'AEGIS_ERR_REQUEST_INVALID',
  REQUEST_TOO_LARGE: 'AEGIS_ERR_REQUEST_TOO_LARGE',
  RATE_LIMITED: 'AEGIS_ERR_RATE_LIMITED',
  DAEMON_UNREACHABLE: 'AEGIS_ERR_DAEMON_UNREACHABLE',
  BPF_LOAD: 'AEGIS_ERR_BPF_LOAD',
  BPF_PERMISSION: 'AEGIS_ERR_BPF_PERMISSION',
  BPF_MAP_FULL: 'AEGIS_ERR_BPF_MAP_FULL',
  NATIVE_MISSING: 'AEGIS_ERR_NATIVE_MISSING',
  NFT_FAILED: 'AEGIS_ERR_NFT_FAILED',
  ACTION_FAILED: 'AEGIS_ERR_ACTION_FAILED',
  STATE_IO: 'AEGIS_ERR_STATE_IO',
  LISTEN: 'AEGIS_ERR_LISTEN',
  TLS: 'AEGIS_ERR_TLS',
  INTERNAL: 'AEGIS_ERR_INTERNAL',
  /** aegis-ban: bad command line (unknown command, missing or invalid argument) */
  USAGE: 'AEGIS_ERR_USAGE',
  /** a command that changes state sent to a read-only control socket */
  FORBIDDEN: 'AEGIS_ERR_FORBIDDEN',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An environment failure with a stable code and, where we know it, how to fix it. */
export class AegisError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  constructor(code: ErrorCode, message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AegisError';
    this.code = code;
    this.hint = options?.hint;
  }
}

/** Results at module edges: bad input is a value, not an exception. */
export type Result<T, E = { code: ErrorCode; message: string }> =
  | { ok: true; value: T }
  | { ok: false; error: E };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}
export function err<E>(error: E): { ok: false; error: E } {
  return { ok: false, error };
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
