import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { tempDir } from '../helpers/tmp.js';
import { AUTH_FILTER, authLine, startDaemon, writeConfig, type DaemonHandle } from '../helpers/daemon.js';

// One daemon for the whole file: each test uses its own addresses.
let d: DaemonHandle;
let dir: string;
let cleanup: () => void;
let apiLog: string;
let rawLog: string;
let cmdLog: string;

beforeAll(async () => {
  ({ dir, cleanup } = tempDir('aegis-e2e-ban-'));
  apiLog = join(dir, 'api.log');
  rawLog = join(dir, 'raw.log');
  cmdLog = join(dir, 'cmd.log');
  writeFileSync(apiLog, '');
  writeFileSync(rawLog, '');
  writeFileSync(cmdLog, '');
  writeConfig(join(dir, 'etc'), {
    filters: {
      'api-json': AUTH_FILTER,
      'api-raw': '[Definition]\nfailregex = ^.*"event":"auth\\.login\\.failed".*"ip":"<HOST>".*$\n',
    },
    jails: {
      api: `[api]\nenabled = true\nfilter = api-json\nlogpath = ${apiLog}\nmaxretry = 5\nfindtime = 5m\nbantime = 15m\nignoreip = 203.0.113.99 198.18.99.0/24\n`,
      raw: `[raw]\nenabled = true\nfilter = api-raw\nlogpath = ${rawLog}\nmaxretry = 3\nfindtime = 5m\nbantime = 10m\n`,
      // fail2ban's ignorecommand: exit 0 = do not ban this address
      cmd: `[cmd]\nenabled = true\nfilter = api-json\nlogpath = ${cmdLog}\nmaxretry = 3\nfindtime = 5m\nbantime = 10m\nignorecommand = test <ip> = 198.18.7.1\n`,
    },
  });
  d = await startDaemon({ configDir: join(dir, 'etc') });
});

afterAll(async () => {
  await d?.stop();
  cleanup?.();
});

async function totalFailed(jail: string): Promise<number> {
  const r = await d.cli(['status', jail, '--json']);
  return (JSON.parse(r.stdout) as { total_failed: number }).total_failed;
}

describe('aegisd bans from log lines', () => {
  it('the 4th failure does not ban; the 5th does, and status shows it fail2ban-style', async () => {
    for (let i = 0; i < 4; i++) appendFileSync(apiLog, authLine('198.51.100.7'));
    await d.waitFor(async () => (await totalFailed('api')) >= 4, '4 failures counted');
    expect((await d.cli(['banned', '198.51.100.7', '--json'])).stdout.trim()).toBe('[]');

    appendFileSync(apiLog, authLine('198.51.100.7'));
    await d.waitForBan('198.51.100.7');

    const human = await d.cli(['status', 'api']);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('Status for the jail: api');
    expect(human.stdout).toMatch(/Banned IP list:\s+198\.51\.100\.7/);
    expect(human.stdout).toContain(apiLog);

    const json = JSON.parse((await d.cli(['status', 'api', '--json'])).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ jail: 'api', currently_banned: 1, total_banned: 1, files: [apiLog] });
    const ban = (json.banned as Array<Record<string, unknown>>)[0];
    expect(ban).toMatchObject({ ip: '198.51.100.7', jail: 'api' });
    expect((ban?.expires as number) - (ban?.since as number)).toBe(900);

    const logged = d.events().find((e) => e.event === 'ban' && e.ip === '198.51.100.7');
    expect(logged).toMatchObject({ jail: 'api', failures: 5, count: 1 });
    expect(typeof logged?.expires).toBe('string');
    expect(await d.metric('aegis_bans_total', { jail: 'api', source: 'auto' })).toBeGreaterThanOrEqual(1);
  });

  it('ignorecommand decides per address: exit 0 spares it, anything else lets the ban through', async () => {
    for (let i = 0; i < 3; i++) appendFileSync(cmdLog, authLine('198.18.7.1') + authLine('198.18.7.2'));
    await d.waitForBan('198.18.7.2');
    await d.waitFor(async () => d.events().some((e) => e.event === 'ignore' && e.ip === '198.18.7.1'), 'ignore logged');
    expect(d.events().find((e) => e.event === 'ignore' && e.ip === '198.18.7.1')).toMatchObject({ jail: 'cmd', why: 'ignorecommand' });
    expect((await d.cli(['banned', '198.18.7.1', '--json'])).stdout.trim()).toBe('[]');
  });

  it('failures older than findtime do not count', async () => {
    const old = Date.now() - 10 * 60_000;
    const before = await totalFailed('api');
    for (let i = 0; i < 6; i++) appendFileSync(apiLog, authLine('198.51.100.8', {}, old + i));
    await d.waitFor(async () => (await totalFailed('api')) >= before + 6, 'old failures read');
    expect((await d.cli(['banned', '198.51.100.8', '--json'])).stdout.trim()).toBe('[]');
  });

  it('ignoreip addresses and prefixes are never banned, by log lines or by hand', async () => {
    const before = await totalFailed('api');
    for (let i = 0; i < 8; i++) appendFileSync(apiLog, authLine('203.0.113.99') + authLine('198.18.99.5'));
    await d.waitFor(async () => (await totalFailed('api')) >= before + 16, 'ignored failures read');
    expect((await d.cli(['banned', '--json'])).stdout).not.toMatch(/203\.0\.113\.99|198\.18\.99\.5/);

    const manual = await d.cli(['ban', 'api', '203.0.113.99']);
    expect(manual.code).toBe(1);
    expect(manual.stderr).toMatch(/ignoreip/);
    expect((await d.cli(['ban', 'api', '198.18.0.0/16'])).code).toBe(1);
    const lo = await d.cli(['ban', 'api', '127.0.0.1']);
    expect(lo.code).toBe(1);
    expect(lo.stderr).toMatch(/loopback/);
  });

  it('IPv4-mapped IPv6 is the IPv4 address: one window, one ban', async () => {
    for (let i = 0; i < 3; i++) appendFileSync(apiLog, authLine('::ffff:198.51.100.50'));
    for (let i = 0; i < 2; i++) appendFileSync(apiLog, authLine('198.51.100.50'));
    await d.waitForBan('198.51.100.50');
    const bans = JSON.parse((await d.cli(['banned', '--json'])).stdout) as Array<{ ip: string }>;
    expect(bans.filter((b) => b.ip.includes('198.51.100.50')).map((b) => b.ip)).toEqual(['198.51.100.50']);
  });

  it('IPv6 offenders are banned and shown in RFC 5952 form', async () => {
    for (let i = 0; i < 5; i++) appendFileSync(apiLog, authLine('2001:DB8:0:0:0:0:0:7'));
    await d.waitForBan('2001:db8::7');
  });

  it('a JSON filter cannot be fooled by an address inside another field (log injection)', async () => {
    const before = await totalFailed('api');
    for (let i = 0; i < 6; i++) {
      appendFileSync(apiLog, authLine('198.51.100.60', { user: '","ip":"198.51.100.77' }));
    }
    await d.waitFor(async () => (await totalFailed('api')) >= before + 6, 'injected lines read');
    await d.waitForBan('198.51.100.60');
    expect((await d.cli(['banned', '198.51.100.77', '--json'])).stdout.trim()).toBe('[]');
  });

  it('a classic failregex over the raw line bans too, with the time from the JSON field', async () => {
    for (let i = 0; i < 3; i++) {
      appendFileSync(rawLog, `${JSON.stringify({ time: new Date().toISOString(), event: 'auth.login.failed', ip: '198.51.100.90' })}\n`);
    }
    await d.waitForBan('198.51.100.90');
    const bans = JSON.parse((await d.cli(['banned', '198.51.100.90', '--json'])).stdout) as Array<{ jail: string }>;
    expect(bans.map((b) => b.jail)).toEqual(['raw']);
  });

  it('unban lifts the ban (exit 0); unbanning an address not banned is exit 1; bad input exit 2', async () => {
    for (let i = 0; i < 5; i++) appendFileSync(apiLog, authLine('198.51.100.30'));
    await d.waitForBan('198.51.100.30');
    const r = await d.cli(['unban', '198.51.100.30']);
    expect(r.code).toBe(0);
    expect((await d.cli(['banned', '198.51.100.30', '--json'])).stdout.trim()).toBe('[]');
    expect(d.events().some((e) => e.event === 'unban' && e.ip === '198.51.100.30' && e.reason === 'manual')).toBe(true);
    expect((await d.cli(['unban', '198.51.100.30'])).code).toBe(1);
    expect((await d.cli(['unban', 'not-an-ip'])).code).toBe(2);
    expect((await d.cli(['ban', 'api', '300.1.2.3'])).code).toBe(2);
    expect((await d.cli(['ban', 'nope', '198.51.100.1'])).code).toBe(1);
  });

  it('a manual CIDR ban holds the prefix until unbanned; unban --all clears everything', async () => {
    const r = await d.cli(['ban', 'api', '198.51.100.128/25', '--time', '1h']);
    expect(r.code).toBe(0);
    const bans = JSON.parse((await d.cli(['banned', '198.51.100.200', '--json'])).stdout) as Array<{ ip: string; expires: number; since: number }>;
    expect(bans.map((b) => b.ip)).toEqual(['198.51.100.128/25']);
    expect((bans[0]?.expires ?? 0) - (bans[0]?.since ?? 0)).toBe(3600);
    expect(await d.metric('aegis_bans_total', { jail: 'api', source: 'manual' })).toBe(1);
    expect((await d.cli(['unban', '--all'])).code).toBe(0);
    expect(JSON.parse((await d.cli(['banned', '--json'])).stdout)).toEqual([]);
  });

  it('/metrics passes promtool and carries no address in any label', async () => {
    const text = await d.metrics();
    expect(text).toContain('aegis_log_lines_total{jail="api"}');
    expect(text).toContain('aegis_failures_total{jail="api"}');
    expect(text).toContain('aegis_ban_latency_seconds_bucket');
    expect(text).not.toMatch(/\{[^}]*(198\.51\.100|2001:db8|203\.0\.113)[^}]*\}/);
    const out = execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(out).toBe('');
  });
});
