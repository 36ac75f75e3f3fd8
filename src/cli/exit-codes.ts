/** Exit codes are contract (SPEC "Details that scripts and tests rely on"). Only cli/ sets them. */
export const ExitCode = {
  OK: 0,
  /** the operation did not apply (not banned, unknown jail, refused ban), or aegisd failed to run */
  NOT_APPLIED: 1,
  /** usage or configuration error */
  USAGE: 2,
  /** daemon unreachable */
  UNREACHABLE: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

import { ErrorCode as E } from '../errors.js';

/**
 * The one mapping from an error code (in a daemon answer or found by the CLI itself) to the exit
 * code aegis-ban returns. Anything not listed "did not apply" (1).
 */
export function exitCodeForError(code: string): ExitCode {
  switch (code) {
    case E.DAEMON_UNREACHABLE:
      return ExitCode.UNREACHABLE;
    case E.USAGE:
    case E.ADDRESS_INVALID:
    case E.REQUEST_INVALID:
    case E.REQUEST_TOO_LARGE:
    case E.CONFIG_SYNTAX:
    case E.CONFIG_VALUE:
    case E.CONFIG_MISSING:
    case E.CONFIG_INCLUDE:
    case E.CONFIG_INTERPOLATION:
    case E.CONFIG_UNKNOWN_KEY:
    case E.FILTER_NOT_FOUND:
    case E.ACTION_NOT_FOUND:
    case E.REGEX_INVALID:
    case E.REGEX_UNTRANSLATABLE:
    case E.DATEPATTERN_INVALID:
      return ExitCode.USAGE;
    default:
      // UNKNOWN_JAIL, BAN_REFUSED, NOT_BANNED, RATE_LIMITED, INTERNAL, enforcer failures…
      return ExitCode.NOT_APPLIED;
  }
}
