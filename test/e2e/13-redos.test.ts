import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { AUTH_FILTER, authLine, startDaemon, writeConfig, type DaemonHandle } from '../helpers/daemon.js';

let d: DaemonHandle;
let cleanup: () => void;
let good: string;
let evil: string;

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = tempDir('aegis-e2e-redos-'));
  good = join(dir, 'api.log');
  evil = join(dir, 'evil.log');
  writeFileSync(good, '');
  writeFileSync(evil, '');
  const etc = join(dir, 'etc');
  writeConfig(etc, {
    filters: {
      'api-json': AUTH_FILTER,
      // nested quantifier: exponential backtracking when the line does not end as expected
      redos: '[Definition]\nfailregex = ^(a+)+b <HOST>$\ndatepattern = {NONE}\n',
    },
    jails: {
      api: `[api]\nenabled = true\nfilter = api-json\nlogpath = ${good}\nmaxretry = 3\nfindtime = 10m\nbantime = 1h\n`,
      redos: `[redos]\nenabled = true\nfilter = redos\nlogpath = ${evil}\nmaxretry = 1\nfindtime = 10m\nbantime = 1h\n`,
    },
  });
  d = await startDaemon({ configDir: etc });
});
afterAll(async () => {
  await d?.stop();
  cleanup?.();
});

describe('a catastrophic regex', () => {
  it('stalls only its own jail: the line is skipped and counted, other jails keep banning', async () => {
    appendFileSync(evil, `${'a'.repeat(40)}! b 198.51.100.41\n`);
    await d.waitFor(async () => (await d.metric('aegis_regex_timeouts_total', { jail: 'redos' })) >= 1, 'a regex timeout', 20_000);

    for (let i = 0; i < 3; i++) appendFileSync(good, authLine('198.51.100.42'));
    await d.waitForBan('198.51.100.42', 10_000);

    // the jail still works for well-formed lines after its worker was replaced
    appendFileSync(evil, 'aaab 198.51.100.43\n');
    await d.waitForBan('198.51.100.43', 10_000);
    expect(JSON.parse((await d.cli(['banned', '198.51.100.41', '--json'])).stdout)).toEqual([]);
    expect(d.events().some((e) => e.event === 'regex_timeout' && e.jail === 'redos')).toBe(true);
  });
});
