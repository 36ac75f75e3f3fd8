/**
 * `aegis-ban ban JAIL IP [--time T]`: manual ban of an address or prefix. An invalid address or
 * time is exit 2 before the daemon is contacted; a refusal (loopback, own address, ignoreip) is
 * exit 1 with the daemon's one line.
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { printJson } from '../output.js';
import { addressArg, banJson, callDaemon, formatDuration, formatTime, parseBanTime, usage, type GlobalArgs } from '../format.js';

interface BanArgs extends GlobalArgs {
  readonly jail: string;
  readonly ip: string;
  readonly time: string | undefined;
}

const command: CommandModule<GlobalArgs, BanArgs> = {
  command: 'ban <jail> <ip>',
  describe: 'ban an IP address or CIDR prefix in a jail',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('jail', { type: 'string', demandOption: true, describe: 'jail name' })
      .positional('ip', { type: 'string', demandOption: true, describe: 'IP address or CIDR prefix' })
      .option('time', {
        type: 'string',
        requiresArg: true,
        describe: "ban time: seconds, or with s/m/h/d/w (e.g. 1h), -1 permanent; default the jail's bantime",
      }) as Argv<BanArgs>,
  handler: async (argv: ArgumentsCamelCase<BanArgs>) => {
    const ip = addressArg(argv, String(argv.ip));
    if (ip === null) return;
    let time: number | undefined;
    if (argv.time !== undefined) {
      const t = parseBanTime(String(argv.time));
      if (t === null) {
        usage(argv, `invalid --time ${JSON.stringify(argv.time)}: expected seconds, a number with s/m/h/d/w, or -1`);
        return;
      }
      time = t;
    }
    const jail = String(argv.jail);
    const data = await callDaemon<'ban'>(argv, time === undefined ? { cmd: 'ban', jail, ip } : { cmd: 'ban', jail, ip, time });
    if (data === null) return;
    if (argv.json) {
      printJson({ banned: data.banned.map(banJson) });
      return;
    }
    if (data.banned.length === 0) process.stdout.write(`${ip}: no new ban in ${jail} (already banned)\n`);
    for (const b of data.banned) {
      const until = b.expires === null ? 'permanently' : `until ${formatTime(b.expires)} (${formatDuration(b.expires - b.since)})`;
      process.stdout.write(`Banned ${b.ip} in ${b.jail} ${until}\n`);
    }
  },
};
export default command;
