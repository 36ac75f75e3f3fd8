/**
 * `aegis-ban reload [JAIL]`: the daemon re-reads its config; bans and counters of unchanged jails
 * stay. A config the daemon refuses is exit 2 with every config error, one per line; the old
 * config stays live.
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { request } from '../../control/client.js';
import { ExitCode, exitCodeForError } from '../exit-codes.js';
import { fail, printJson } from '../output.js';
import type { GlobalArgs } from '../format.js';

interface ReloadArgs extends GlobalArgs {
  readonly jail: string | undefined;
}

// Reload resolves the whole config and compiles every filter: allow it far more than a ping.
const RELOAD_TIMEOUT_MS = 120_000;

const command: CommandModule<GlobalArgs, ReloadArgs> = {
  command: 'reload [jail]',
  describe: 're-read the config (bans and counters of unchanged jails are kept)',
  builder: (y: Argv<GlobalArgs>) => y.positional('jail', { type: 'string', describe: 'reload only this jail' }) as Argv<ReloadArgs>,
  handler: async (argv: ArgumentsCamelCase<ReloadArgs>) => {
    const jail = argv.jail === undefined ? undefined : String(argv.jail);
    const r = await request<'reload'>(argv.socket, jail === undefined ? { cmd: 'reload' } : { cmd: 'reload', jail }, { timeoutMs: RELOAD_TIMEOUT_MS });
    if (!r.ok) {
      const exit = r.unreachable ? ExitCode.UNREACHABLE : exitCodeForError(r.error.code);
      // The daemon lists config errors one per line: print each as its own line.
      const lines = r.error.message.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
      if (lines.length <= 1) {
        fail(argv, exit, r.error.code, r.error.message);
        return;
      }
      if (argv.json) printJson({ error: { code: r.error.code, message: lines.join('; '), details: lines } });
      for (const l of lines) process.stderr.write(`aegis-ban: ${l}\n`);
      process.exitCode = exit;
      return;
    }
    for (const w of r.data.warnings) process.stderr.write(`aegis-ban: warning: ${w.replace(/\s*\n\s*/g, ' ')}\n`);
    if (argv.json) printJson(r.data);
    else process.stdout.write(`OK: reloaded ${r.data.jails.length === 0 ? 'no jails' : r.data.jails.join(', ')}\n`);
  },
};
export default command;
