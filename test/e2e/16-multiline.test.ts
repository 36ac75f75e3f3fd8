/**
 * A multi-line filter (maxlines > 1) in the running daemon: it keeps its buffer on the main
 * thread per source, across batches, so a failure whose two lines arrive in two writes still
 * counts, and lines in the wrong order do not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { startDaemon, writeConfig, type DaemonHandle } from '../helpers/daemon.js';

let d: DaemonHandle;
let cleanup: () => void;
let log: string;

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = tempDir('aegis-e2e-ml-'));
  log = join(dir, 'auth.log');
  writeFileSync(log, '');
  writeConfig(join(dir, 'etc'), {
    filters: { ml: '[Definition]\nfailregex = ^from <HOST>\\nauth denied for <F-USER>\\S+</F-USER>$\nmaxlines = 2\ndatepattern = {NONE}\n' },
    jails: { ml: `[ml]\nenabled = true\nfilter = ml\nlogpath = ${log}\nmaxretry = 3\nfindtime = 5m\nbantime = 10m\n` },
  });
  d = await startDaemon({ configDir: join(dir, 'etc') });
});

afterAll(async () => {
  await d?.stop();
  cleanup?.();
});

async function status(): Promise<{ total_failed: number; total_banned: number }> {
  return JSON.parse((await d.cli(['status', 'ml', '--json'])).stdout) as { total_failed: number; total_banned: number };
}

describe('multi-line filter in the daemon', () => {
  it('counts a failure whose lines come in separate writes, not lines in the wrong order, and bans at maxretry', async () => {
    // wrong order and a non-matching second line: no failure
    appendFileSync(log, 'auth denied for eve\nfrom 198.51.100.20\nauth ok for eve\n');
    appendFileSync(log, 'from 198.51.100.9\nauth denied for bob\n');
    // the two lines of one failure, written (and read) apart
    appendFileSync(log, 'from 198.51.100.9\n');
    await d.waitFor(async () => (await status()).total_failed >= 1, 'first failure');
    await new Promise((r) => setTimeout(r, 300));
    appendFileSync(log, 'auth denied for bob\n');
    await d.waitFor(async () => (await status()).total_failed >= 2, 'second failure, across two reads');
    expect((await d.cli(['banned', '198.51.100.9', '--json'])).stdout.trim()).toBe('[]');
    appendFileSync(log, 'from 198.51.100.9\nauth denied for bob\n');
    await d.waitForBan('198.51.100.9');
    expect(await status()).toMatchObject({ total_failed: 3, total_banned: 1 });
    const ban = d.events().find((l) => l.event === 'ban' && l.ip === '198.51.100.9');
    expect(ban).toMatchObject({ jail: 'ml', failures: 3 });
    expect((await d.cli(['banned', '198.51.100.20', '--json'])).stdout.trim()).toBe('[]');
  });

  it('counts every failure of a batch that holds several', async () => {
    appendFileSync(log, 'from 198.51.100.30\nauth denied for ann\n'.repeat(3));
    await d.waitForBan('198.51.100.30');
    expect(d.events().find((l) => l.event === 'ban' && l.ip === '198.51.100.30')).toMatchObject({ failures: 3 });
  });
});
