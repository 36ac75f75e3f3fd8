import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, renameSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { AUTH_FILTER, authLine, startDaemon, writeConfig, type DaemonHandle } from '../helpers/daemon.js';

let d: DaemonHandle;
let cleanup: () => void;
let dir: string;
let log: string;

beforeAll(async () => {
  ({ dir, cleanup } = tempDir('aegis-e2e-rotate-'));
  log = join(dir, 'api.log');
  writeFileSync(log, '');
  const etc = join(dir, 'etc');
  writeConfig(etc, {
    filters: { 'api-json': AUTH_FILTER },
    jails: { api: `[api]\nenabled = true\nfilter = api-json\nlogpath = ${join(dir, '*.log')}\nmaxretry = 5\nfindtime = 10m\nbantime = 1h\n` },
  });
  d = await startDaemon({ configDir: etc });
});
afterAll(async () => {
  await d?.stop();
  cleanup?.();
});

async function failed(): Promise<number> {
  return (JSON.parse((await d.cli(['status', 'api', '--json'])).stdout) as { total_failed: number }).total_failed;
}

describe('rotation through the daemon', () => {
  it('rename + create: no line lost (3 + 2 ban) and none counted twice (4 do not)', async () => {
    for (let i = 0; i < 3; i++) appendFileSync(log, authLine('198.51.100.51'));
    for (let i = 0; i < 4; i++) appendFileSync(log, authLine('198.51.100.52'));
    await d.waitFor(async () => (await failed()) === 7, '7 failures');
    renameSync(log, join(dir, 'api.log.1.gz-pending'));
    writeFileSync(log, '');
    for (let i = 0; i < 2; i++) appendFileSync(log, authLine('198.51.100.51'));
    await d.waitForBan('198.51.100.51');
    await d.waitFor(async () => (await failed()) === 9, '9 failures');
    expect(JSON.parse((await d.cli(['banned', '198.51.100.52', '--json'])).stdout)).toEqual([]);
  });

  it('copytruncate: lines written after the truncation are read', async () => {
    const base = await failed();
    truncateSync(log, 0);
    for (let i = 0; i < 5; i++) appendFileSync(log, authLine('198.51.100.53'));
    await d.waitForBan('198.51.100.53');
    expect(await failed()).toBe(base + 5);
  });

  it('delete + recreate: the new file is followed from its start', async () => {
    const base = await failed();
    unlinkSync(log);
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(log, authLine('198.51.100.54').repeat(5));
    await d.waitForBan('198.51.100.54');
    expect(await failed()).toBe(base + 5);
  });

  it('a file that appears later and matches the glob is followed', async () => {
    writeFileSync(join(dir, 'late.log'), authLine('198.51.100.55').repeat(5));
    await d.waitForBan('198.51.100.55');
    const st = JSON.parse((await d.cli(['status', 'api', '--json'])).stdout) as { files: string[] };
    expect(st.files).toContain(join(dir, 'late.log'));
  });
});
