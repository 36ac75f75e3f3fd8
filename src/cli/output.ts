/**
 * How aegis-ban prints. Errors are one line on stderr, never a stack trace; under --json the
 * same error is also one object `{"error":{"code","message"}}` on stdout (SPEC "--json shapes").
 */
import type { ErrorCode } from '../errors.js';
import type { ExitCode } from './exit-codes.js';

export interface OutputOptions {
  readonly json: boolean;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Print one error the SPEC way and set the exit code (never exits: output must flush). */
export function fail(opts: OutputOptions, exit: ExitCode, code: ErrorCode, message: string): void {
  const line = message.replace(/\s*\n\s*/g, ' ');
  if (opts.json) printJson({ error: { code, message: line } });
  process.stderr.write(`aegis-ban: ${line}\n`);
  process.exitCode = exit;
}
