import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { AUTH_FILTER, authLine, startDaemon, writeConfig, type DaemonHandle } from '../helpers/daemon.js';

let d: DaemonHandle;
let cleanup: () => void;
let etc: string;
let log: string;
let log2: string;

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = tempDir('aegis-e2e-reload-'));
  log = join(dir, 'api.log');
  log2 = join(dir, 'other.log');
  writeFileSync(log, '');
  writeFileSync(log2, '');
  etc = join(dir, 'etc');
  writeConfig(etc, {
    filters: { 'api-json': AUTH_FILTER },
    jails: { api: `[api]\nenabled = true\nfilter = api-json\nlogpath = ${log}\nmaxretry = 3\nfindtime = 10m\nbantime = 1h\n` },
  });
  d = await startDaemon({ configDir: etc });
});
afterAll(async () => {
  await d?.stop();
  cleanup?.();
});

describe('reload', () => {
  it('a broken filter is refused with exit 2; the old config stays live, bans and counters kept', async () => {
    for (let i = 0; i < 3; i++) appendFileSync(log, authLine('198.51.100.21'));
    await d.waitForBan('198.51.100.21');
    appendFileSync(log, authLine('198.51.100.22'));
    await d.waitFor(async () => JSON.parse((await d.cli(['status', 'api', '--json'])).stdout).total_failed === 4, 'a 4th failure');

    writeConfig(etc, { filters: { 'api-json': '[Definition]\nfailregex = ^(unclosed <HOST>\n' } });
    const r = await d.cli(['reload']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/api-json\.conf/);

    // still banning with the old filter; counters intact
    for (let i = 0; i < 2; i++) appendFileSync(log, authLine('198.51.100.22'));
    await d.waitForBan('198.51.100.22');
    const st = JSON.parse((await d.cli(['status', 'api', '--json'])).stdout) as { total_failed: number; currently_banned: number };
    expect(st.total_failed).toBe(6);
    expect(st.currently_banned).toBe(2);
  });

  it('a good reload adds a jail without losing bans or windows of the unchanged one', async () => {
    writeConfig(etc, {
      filters: { 'api-json': AUTH_FILTER },
      jails: { other: `[other]\nenabled = true\nfilter = api-json\nlogpath = ${log2}\nmaxretry = 2\nfindtime = 10m\nbantime = 1h\n` },
    });
    appendFileSync(log, authLine('198.51.100.23')); // 1 of 3 in api's window
    await d.waitFor(async () => JSON.parse((await d.cli(['status', 'api', '--json'])).stdout).total_failed === 7, 'a 7th failure');
    const r = await d.cli(['reload']);
    expect(r.code).toBe(0);
    const status = JSON.parse((await d.cli(['status', '--json'])).stdout) as { jails: Array<{ jail: string }> };
    expect(status.jails.map((j) => j.jail).sort()).toEqual(['api', 'other']);
    expect(JSON.parse((await d.cli(['banned', '--json'])).stdout)).toHaveLength(2);
    // the window survived: two more failures complete 3
    for (let i = 0; i < 2; i++) appendFileSync(log, authLine('198.51.100.23'));
    await d.waitForBan('198.51.100.23');
    for (let i = 0; i < 2; i++) appendFileSync(log2, authLine('198.51.100.24'));
    await d.waitForBan('198.51.100.24');
  });

  it('reload of an unknown jail is exit 1', async () => {
    expect((await d.cli(['reload', 'nope'])).code).toBe(1);
  });
});
