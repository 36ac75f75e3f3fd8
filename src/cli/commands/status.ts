/** `aegis-ban status [JAIL]`: all jails with totals, or one jail's fail2ban-style block. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { ErrorCode } from '../../errors.js';
import { ExitCode } from '../exit-codes.js';
import { fail, printJson } from '../output.js';
import { callDaemon, formatJailStatus, formatSummary, isJailStatus, jailStatusJson, type GlobalArgs } from '../format.js';

interface StatusArgs extends GlobalArgs {
  readonly jail: string | undefined;
}

const command: CommandModule<GlobalArgs, StatusArgs> = {
  command: 'status [jail]',
  describe: 'jails and totals, or one jail: failures, files, bans',
  builder: (y: Argv<GlobalArgs>) => y.positional('jail', { type: 'string', describe: 'jail name' }) as Argv<StatusArgs>,
  handler: async (argv: ArgumentsCamelCase<StatusArgs>) => {
    const jail = argv.jail;
    const data = await callDaemon<'status'>(argv, jail === undefined ? { cmd: 'status' } : { cmd: 'status', jail });
    if (data === null) return;
    if (jail !== undefined) {
      if (!isJailStatus(data)) {
        fail(argv, ExitCode.NOT_APPLIED, ErrorCode.INTERNAL, `the daemon answered "status ${jail}" without a jail status`);
        return;
      }
      if (argv.json) printJson(jailStatusJson(data));
      else process.stdout.write(formatJailStatus(data));
      return;
    }
    if (isJailStatus(data)) {
      fail(argv, ExitCode.NOT_APPLIED, ErrorCode.INTERNAL, 'the daemon answered "status" with a single jail');
      return;
    }
    if (argv.json) printJson(data);
    else process.stdout.write(formatSummary(data));
  },
};
export default command;
