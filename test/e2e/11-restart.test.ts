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

function setup(bantime: string) {
  const { dir, cleanup } = tempDir('aegis-e2e-restart-');
  cleanups.push(cleanup);
  const log = join(dir, 'api.log');
  writeFileSync(log, '');
  const etc = join(dir, 'etc');
  writeConfig(etc, {
    filters: { 'api-json': AUTH_FILTER },
    jails: { api: `[api]\nenabled = true\nfilter = api-json\nlogpath = ${log}\nmaxretry = 3\nfindtime = 10m\nbantime = ${bantime}\n` },
  });
  return { dir, log, etc };
}

async function start(etc: string): Promise<DaemonHandle> {
  const d = await startDaemon({ configDir: etc });
  daemons.push(d);
  return d;
}

type BanJson = Array<{ ip: string; since: number; expires: number | null }>;

describe('state across restarts', () => {
  it('kill -9 then restart: the ban is back with its remaining time, nothing resurrected early or late', async () => {
    const { log, etc } = setup('1h');
    const d1 = await start(etc);
    for (let i = 0; i < 3; i++) appendFileSync(log, authLine('198.51.100.11'));
    await d1.waitForBan('198.51.100.11');
    const before = JSON.parse((await d1.cli(['banned', '--json'])).stdout) as BanJson;
    await d1.kill9();

    const d2 = await start(etc);
    const after = JSON.parse((await d2.cli(['banned', '--json'])).stdout) as BanJson;
    expect(after).toEqual(before);
    expect(d2.events().some((e) => e.event === 'restore')).toBe(true);
  });

  it('a ban that expired while the daemon was down is not restored', async () => {
    const { log, etc } = setup('2s');
    const d1 = await start(etc);
    for (let i = 0; i < 3; i++) appendFileSync(log, authLine('198.51.100.12'));
    await d1.waitForBan('198.51.100.12');
    await d1.kill9();
    await new Promise((r) => setTimeout(r, 2500));
    const d2 = await start(etc);
    expect(JSON.parse((await d2.cli(['banned', '--json'])).stdout)).toEqual([]);
  });

  it('log positions persist: after a restart old lines are not read again, so an unbanned address stays unbanned', async () => {
    const { log, etc } = setup('1h');
    const d1 = await start(etc);
    for (let i = 0; i < 3; i++) appendFileSync(log, authLine('198.51.100.13'));
    await d1.waitForBan('198.51.100.13');
    expect((await d1.cli(['unban', '198.51.100.13'])).code).toBe(0);
    await d1.stop();

    const d2 = await start(etc);
    // one new failure of another address proves the file was read up to its end
    for (let i = 0; i < 3; i++) appendFileSync(log, authLine('198.51.100.14'));
    await d2.waitForBan('198.51.100.14');
    expect(JSON.parse((await d2.cli(['banned', '198.51.100.13', '--json'])).stdout)).toEqual([]);
    const st = JSON.parse((await d2.cli(['status', 'api', '--json'])).stdout) as { total_failed: number };
    expect(st.total_failed).toBe(3);
  });

  it('a clean stop exits 0 and the restart restores the ban', async () => {
    const { log, etc } = setup('1h');
    const d1 = await start(etc);
    for (let i = 0; i < 3; i++) appendFileSync(log, authLine('2001:db8::15'));
    await d1.waitForBan('2001:db8::15');
    expect(await d1.stop()).toBe(0);
    const d2 = await start(etc);
    await d2.waitForBan('2001:db8::15');
  });
});
