#!/usr/bin/env node
/**
 * aegis-ban: the client of aegisd's control socket, plus the offline tools (check, regex).
 * Exit codes (SPEC): 0 ok, 1 the operation did not apply, 2 usage or configuration error,
 * 3 daemon unreachable. Errors are one line on stderr — never a stack trace — and under --json
 * also `{"error":{"code","message"}}` on stdout.
 */
import { readFileSync } from 'node:fs';
import yargs, { type Argv, type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ErrorCode, errorMessage } from '../errors.js';
import { ExitCode } from './exit-codes.js';
import { DEFAULT_SOCKET, type GlobalArgs } from './format.js';
import { fail } from './output.js';
import ban from './commands/ban.js';
import banned from './commands/banned.js';
import check from './commands/check.js';
import ping from './commands/ping.js';
import regex from './commands/regex.js';
import reload from './commands/reload.js';
import status from './commands/status.js';
import unban from './commands/unban.js';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

// Decided before yargs parses anything: errors found while parsing must honour --json too.
const argvRaw = hideBin(process.argv);
const wantsJson = argvRaw.includes('--json');

function internalError(e: unknown): void {
  fail({ json: wantsJson }, ExitCode.NOT_APPLIED, ErrorCode.INTERNAL, `internal error: ${errorMessage(e)}`);
}

// `aegis-ban banned | head`: a closed pipe is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
});
process.on('uncaughtException', (e) => {
  internalError(e);
  process.exit(ExitCode.NOT_APPLIED);
});

// The command modules differ in their own argument types; yargs only needs them as modules.
const commands = [ping, status, ban, unban, banned, reload, check, regex] as unknown as Array<CommandModule<GlobalArgs, object>>;

let usageReported = false;
/** thrown from the fail handler after the usage line is printed; not an error to report again */
class UsageReported extends Error {}

async function main(): Promise<void> {
  const cli: Argv<GlobalArgs> = yargs(argvRaw)
    .scriptName('aegis-ban')
    .usage('$0 <command> [options]')
    .option('socket', {
      type: 'string',
      requiresArg: true,
      default: process.env.AEGIS_SOCKET !== undefined && process.env.AEGIS_SOCKET !== '' ? process.env.AEGIS_SOCKET : DEFAULT_SOCKET,
      describe: 'control socket of aegisd (env AEGIS_SOCKET)',
      global: true,
    })
    .option('json', { type: 'boolean', default: false, describe: 'machine-readable output', global: true });
  for (const c of commands) cli.command(c);
  await cli
    .demandCommand(1, 'no command given (see aegis-ban --help)')
    .strict()
    .version(version())
    .help()
    .alias('h', 'help')
    .wrap(null)
    .epilog('Exit codes: 0 ok, 1 did not apply, 2 usage or configuration error, 3 daemon unreachable.')
    .fail((msg: string | null | undefined, e: Error | null | undefined) => {
      // yargs reports its own parse errors as `msg`; an exception from a handler arrives as `e`.
      if (e !== null && e !== undefined && e.name !== 'YError') throw e;
      if (usageReported) throw new UsageReported(); // one line, even if yargs finds several problems
      usageReported = true;
      const line = msg ?? (e ? e.message : 'invalid command line');
      fail({ json: wantsJson }, ExitCode.USAGE, ErrorCode.USAGE, `${line.replace(/\s*\n\s*/g, ' ')}${line.includes('--help') ? '' : ' (see aegis-ban --help)'}`);
      // Returning would let yargs run the command handler anyway: stop the parse here.
      throw new UsageReported();
    })
    .parseAsync();
}

main().catch((e: unknown) => {
  if (!(e instanceof UsageReported)) internalError(e);
});
