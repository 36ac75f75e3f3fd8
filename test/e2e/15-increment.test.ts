import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { AUTH_FILTER, authLine, startDaemon, writeConfig, type DaemonHandle } from '../helpers/daemon.js';

let daemons: DaemonHandle[] = [];
let cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const d of daemons) await d.stop();
  for (const c of cleanups) c();
  daemons = [];
  cleanups = [];
});

type BanJson = Array<{ ip: string; since: number; expires: number | null }>;

describe('bantime.increment', () => {
  it('a repeat offender is banned twice as long each time, and the history survives kill -9', async () => {
    const { dir, cleanup } = tempDir('aegis-e2e-incr-');
    cleanups.push(cleanup);
    const log = join(dir, 'api.log');
    writeFileSync(log, '');
    const etc = join(dir, 'etc');
    writeConfig(etc, {
      filters: { 'api-json': AUTH_FILTER },
      jails: {
        api: `[api]\nenabled = true\nfilter = api-json\nlogpath = ${log}\nmaxretry = 1\nfindtime = 10m\nbantime = 2\nbantime.increment = true\nbantime.factor = 1\n`,
      },
    });
    const d1 = await startDaemon({ configDir: etc });
    daemons.push(d1);
    const durationOfBan = async (d: DaemonHandle) => {
      await d.waitForBan('198.51.100.70');
      const [b] = JSON.parse((await d.cli(['banned', '198.51.100.70', '--json'])).stdout) as BanJson;
      return (b?.expires ?? 0) - (b?.since ?? 0);
    };
    const unbannedBy = async (d: DaemonHandle) =>
      d.waitFor(async () => (JSON.parse((await d.cli(['banned', '198.51.100.70', '--json'])).stdout) as BanJson).length === 0, 'expiry', 20_000);

    appendFileSync(log, authLine('198.51.100.70'));
    expect(await durationOfBan(d1)).toBe(2);
    await unbannedBy(d1);
    appendFileSync(log, authLine('198.51.100.70'));
    expect(await durationOfBan(d1)).toBe(4);
    await unbannedBy(d1);
    await d1.kill9();

    const d2 = await startDaemon({ configDir: etc });
    daemons.push(d2);
    appendFileSync(log, authLine('198.51.100.70'));
    expect(await durationOfBan(d2)).toBe(8);
  });
});
