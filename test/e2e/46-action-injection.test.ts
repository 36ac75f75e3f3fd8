/**
 * Through the whole daemon: a user name captured from a log line (<F-USER>) reaches an
 * action.d command as data. The log lines carry shell syntax; the action writes what it got.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { startDaemon, type DaemonHandle } from '../helpers/daemon.js';

const PWNED = `/tmp/aegis-pwned-${process.pid}`;
let d: DaemonHandle | undefined;
let dir: string;
let cleanup: () => void;
let log: string;
let out: string;

beforeAll(async () => {
  ({ dir, cleanup } = tempDir('aegis-e2e-inject-'));
  const etc = join(dir, 'etc');
  mkdirSync(join(etc, 'filter.d'), { recursive: true });
  mkdirSync(join(etc, 'action.d'), { recursive: true });
  mkdirSync(join(etc, 'jails.d'), { recursive: true });
  log = join(dir, 'auth.log');
  out = join(dir, 'action.out');
  writeFileSync(log, '');
  writeFileSync(join(etc, 'filter.d', 'inj.conf'), '[Definition]\nfailregex = ^auth failure user=<F-USER>.+</F-USER> rhost=<HOST>$\ndatepattern = {NONE}\n');
  writeFileSync(
    join(etc, 'action.d', 'record.conf'),
    `[Definition]\nactionstart = echo started >> ${out}\nactionban = printf '%%s\\n' "ban <ip> user=<F-USER>" >> ${out}\n` +
      `actionunban = echo 'unban <ip> <F-USER>' >> ${out}\nactionstop = echo stopped >> ${out}\n`,
  );
  writeFileSync(join(etc, 'jails.d', 'inj.conf'), `[inj]\nenabled = true\nfilter = inj\nlogpath = ${log}\nbackend = polling\nmaxretry = 1\nbantime = 10m\naction = record\n`);
  d = await startDaemon({ configDir: etc, enforcer: 'action' });
});
afterAll(async () => {
  await d?.stop();
  cleanup?.();
  rmSync(PWNED, { force: true });
});

describe('aegisd --enforcer action with hostile log content', () => {
  it('passes ; $() and backticks from <F-USER> to the command as data', async () => {
    const users = [`x; touch ${PWNED}`, `$(touch ${PWNED})`, `\`touch ${PWNED}\``, `a" ; touch ${PWNED}; echo "`, `a' ; touch ${PWNED}; echo '`];
    users.forEach((u, i) => appendFileSync(log, `auth failure user=${u} rhost=198.18.46.${i + 1}\n`));
    await d!.waitFor(() => existsSync(out) && readFileSync(out, 'utf8').split('\n').filter((l) => l.startsWith('ban ')).length === users.length, 'five action bans', 20_000);
    const bans = readFileSync(out, 'utf8').split('\n').filter((l) => l.startsWith('ban '));
    users.forEach((u, i) => expect(bans).toContain(`ban 198.18.46.${i + 1} user=${u}`));
    expect(existsSync(PWNED)).toBe(false);

    // and in single quotes on unban
    const r = await d!.cli(['unban', '198.18.46.2']);
    expect(r.code, r.stderr).toBe(0);
    await d!.waitFor(() => readFileSync(out, 'utf8').includes('unban 198.18.46.2'), 'the unban command', 10_000);
    expect(readFileSync(out, 'utf8')).toContain(`unban 198.18.46.2 $(touch ${PWNED})`);
    expect(existsSync(PWNED)).toBe(false);
  });
});
