/**
 * `aegis-ban check [--config-dir DIR] [--dump] [--json]`: validate a config offline.
 * Exit 0 when it loads (warnings are printed, one line each), 2 when any error is found.
 * `--dump` prints the resolved jails as JSON (SPEC "Offline tools").
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';

export interface CheckArgs {
  readonly json: boolean;
  readonly 'config-dir': string;
  readonly dump: boolean;
}

const command: CommandModule<{ json: boolean }, CheckArgs> = {
  command: 'check',
  describe: 'validate a config directory offline (--dump: print the resolved jails as JSON)',
  builder: (y: Argv<{ json: boolean }>) =>
    y
      .option('config-dir', { type: 'string', default: '/etc/aegis', requiresArg: true, describe: 'config directory to check' })
      .option('dump', { type: 'boolean', default: false, describe: 'print the resolved jails as JSON' }) as unknown as Argv<CheckArgs>,
  // the implementation is loaded only when the command runs (see check-run.ts)
  handler: async (argv: ArgumentsCamelCase<CheckArgs>) => (await import('../check-run.js')).runCheck(argv),
};
export default command;
