/** `aegis-ban banned [IP]`: every ban with its expiry, or the jails that ban IP. Always 0. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { printJson } from '../output.js';
import { addressArg, banJson, callDaemon, formatBans, type GlobalArgs } from '../format.js';

interface BannedArgs extends GlobalArgs {
  readonly ip: string | undefined;
}

// Listing a million bans is a large answer; give the daemon time to serialise it.
const BANNED_TIMEOUT_MS = 60_000;

const command: CommandModule<GlobalArgs, BannedArgs> = {
  command: 'banned [ip]',
  describe: 'list bans with expiry, or which jails ban an address',
  builder: (y: Argv<GlobalArgs>) => y.positional('ip', { type: 'string', describe: 'IP address or CIDR prefix' }) as Argv<BannedArgs>,
  handler: async (argv: ArgumentsCamelCase<BannedArgs>) => {
    let ip: string | undefined;
    if (argv.ip !== undefined) {
      const c = addressArg(argv, String(argv.ip));
      if (c === null) return;
      ip = c;
    }
    const data = await callDaemon<'banned'>(argv, ip === undefined ? { cmd: 'banned' } : { cmd: 'banned', ip }, BANNED_TIMEOUT_MS);
    if (data === null) return;
    if (argv.json) {
      printJson(data.map(banJson));
      return;
    }
    if (data.length === 0) process.stdout.write(ip === undefined ? 'No bans\n' : `${ip} is not banned\n`);
    else process.stdout.write(formatBans(data));
  },
};
export default command;
