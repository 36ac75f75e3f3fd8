/** `aegis-ban ping`: is the daemon alive? 0 when it answers, 3 when it does not. */
import type { ArgumentsCamelCase, CommandModule } from 'yargs';
import { printJson } from '../output.js';
import { callDaemon, type GlobalArgs } from '../format.js';

// Short: a daemon that takes longer than this to answer a ping is not one to rely on.
const PING_TIMEOUT_MS = 5_000;

const command: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'ping',
  describe: 'check that the daemon answers (exit 0) or not (exit 3)',
  handler: async (argv: ArgumentsCamelCase<GlobalArgs>) => {
    const data = await callDaemon<'ping'>(argv, { cmd: 'ping' }, PING_TIMEOUT_MS);
    if (data === null) return;
    if (argv.json) printJson(data);
    else process.stdout.write(`Server replied: pong (aegisd ${data.version})\n`);
  },
};
export default command;
