/**
 * `aegis-ban regex LOG-or-LINE FILTER-or-REGEX [IGNOREREGEX]`: fail2ban-regex for Aegis. Runs a
 * filter (by name with `[k=v]` options, by path, or a literal failregex) over a log file or one
 * line, offline, with the same code path as the daemon's workers (raw-buffer literal prefilter,
 * then engine/match). Human summary by default; `--json` prints exactly one object per input
 * line (SPEC "Offline tools").
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';

export interface RegexArgs {
  readonly json: boolean;
  readonly log: string;
  readonly filter: string;
  readonly ignoreregex?: string;
  readonly 'config-dir': string;
  readonly now?: number;
  readonly timezone?: string;
  readonly datepattern?: string;
  readonly maxlines?: number;
}

const command: CommandModule<{ json: boolean }, RegexArgs> = {
  command: 'regex <log> <filter> [ignoreregex]',
  describe: 'test a filter or regex against a log file or a line, offline (like fail2ban-regex)',
  builder: (y: Argv<{ json: boolean }>) =>
    y
      .positional('log', { type: 'string', describe: 'log file, or one log line', demandOption: true })
      .positional('filter', { type: 'string', describe: 'filter name[k=v], filter file, or a failregex', demandOption: true })
      .positional('ignoreregex', { type: 'string', describe: 'an ignoreregex, or a filter whose ignoreregex to use' })
      .option('config-dir', { type: 'string', default: '/etc/aegis', requiresArg: true, describe: 'config directory holding filter.d/' })
      .option('now', { type: 'number', requiresArg: true, describe: 'epoch seconds used as "now" (env AEGIS_NOW)' })
      .option('timezone', { type: 'string', requiresArg: true, describe: 'IANA zone for dates without one (default: TZ)' })
      .option('datepattern', { type: 'string', requiresArg: true, describe: 'datepattern for a literal regex' })
      .option('maxlines', { type: 'number', requiresArg: true, describe: 'maxlines for a literal regex' }) as unknown as Argv<RegexArgs>,
  // the implementation is loaded only when the command runs (see regex-run.ts)
  handler: async (argv: ArgumentsCamelCase<RegexArgs>) => (await import('../regex-run.js')).runRegex(argv),
};

export default command;
