/**
 * `aegis-ban unban IP... [--jail J]` and `aegis-ban unban --all [--jail J]`.
 * Exit 1 when an address given was not banned (in J, or anywhere): scripts can tell "done" from
 * "nothing to do". `--all` is 0 even when nothing was banned.
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { ErrorCode } from '../../errors.js';
import { cidrOverlaps, parseCidr } from '../../net/address.js';
import { ExitCode } from '../exit-codes.js';
import { printJson } from '../output.js';
import { addressArg, banJson, callDaemon, usage, type GlobalArgs } from '../format.js';

interface UnbanArgs extends GlobalArgs {
  readonly ips: readonly string[] | undefined;
  readonly jail: string | undefined;
  readonly all: boolean;
}

const command: CommandModule<GlobalArgs, UnbanArgs> = {
  command: 'unban [ips..]',
  describe: 'unban addresses or prefixes from every jail (--jail to limit), or --all',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('ips', { type: 'string', array: true, describe: 'IP addresses or CIDR prefixes' })
      .option('jail', { type: 'string', requiresArg: true, describe: 'only this jail' })
      .option('all', { type: 'boolean', default: false, describe: 'unban everything (in --jail if given)' }) as Argv<UnbanArgs>,
  handler: async (argv: ArgumentsCamelCase<UnbanArgs>) => {
    const given = (argv.ips ?? []).map(String);
    if (argv.all && given.length > 0) return usage(argv, 'give addresses or --all, not both');
    if (!argv.all && given.length === 0) return usage(argv, 'unban needs at least one address, or --all');
    const ips: string[] = [];
    for (const g of given) {
      const ip = addressArg(argv, g);
      if (ip === null) return;
      ips.push(ip);
    }
    const jail = argv.jail === undefined ? undefined : String(argv.jail);
    const base = argv.all ? { cmd: 'unban' as const, ips: [], all: true } : { cmd: 'unban' as const, ips };
    const data = await callDaemon<'unban'>(argv, jail === undefined ? base : { ...base, jail });
    if (data === null) return;

    // An address counts as unbanned when some removed ban overlaps it (a prefix unban removes
    // the bans inside it; an address inside a banned prefix lifts that prefix ban).
    const removed = data.unbanned.map((b) => parseCidr(b.ip)).filter((c) => c !== null);
    const missing = ips.filter((ip) => {
      const c = parseCidr(ip);
      return c === null || !removed.some((r) => cidrOverlaps(r, c));
    });
    const where = jail === undefined ? '' : ` in ${jail}`;
    const message = `not banned${where}: ${missing.join(', ')}`;
    if (argv.json) {
      if (missing.length === 0) printJson({ unbanned: data.unbanned.map(banJson) });
      else printJson({ error: { code: ErrorCode.NOT_BANNED, message }, unbanned: data.unbanned.map(banJson) });
    } else {
      for (const b of data.unbanned) process.stdout.write(`Unbanned ${b.ip} from ${b.jail}\n`);
      if (argv.all && data.unbanned.length === 0) process.stdout.write(`Nothing was banned${where}\n`);
    }
    if (missing.length > 0) {
      process.stderr.write(`aegis-ban: ${message}\n`);
      process.exitCode = ExitCode.NOT_APPLIED;
    }
  },
};
export default command;
