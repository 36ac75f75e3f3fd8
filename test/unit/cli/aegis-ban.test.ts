import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { assertBuilt, runCli, startFake, type FakeDaemon, type Run } from './fake-daemon.js';

let fake: Awaited<ReturnType<typeof startFake>>;
let daemon: FakeDaemon;
let sock: string;

beforeAll(async () => {
  assertBuilt();
  fake = await startFake();
  daemon = fake.daemon;
  sock = fake.path;
});
afterAll(async () => {
  await fake.stop();
});
beforeEach(() => {
  daemon.bans = [];
  daemon.requests.length = 0;
});

const cli = (...args: string[]): Promise<Run> => runCli(['--socket', sock, ...args]);

/** Every failure is one line on stderr, never a stack trace. */
function expectOneLine(r: Run, pattern: RegExp): void {
  expect(r.stderr).toMatch(/^aegis-ban: [^\n]+\n$/);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('aegis-ban ping', () => {
  it('exits 0 when the daemon answers', async () => {
    const r = await cli('ping');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Server replied: pong (aegisd 9.9.9-test)\n');
    const j = await cli('ping', '--json');
    expect(JSON.parse(j.stdout)).toEqual({ pong: true, version: '9.9.9-test' });
  });

  it('exits 3 with one line when no daemon listens (no socket file)', async () => {
    const r = await runCli(['ping', '--socket', join(fake.dir, 'nothing.sock')]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expectOneLine(r, /daemon not running: no control socket at .*nothing\.sock/);
  });

  it('exits 3 on a stale socket file nobody listens on', async () => {
    const path = join(fake.dir, 'stale.sock');
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    await new Promise((r) => child.on('exit', r));
    const r = await runCli(['ping', '--socket', path, '--json']);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout)).toEqual({ error: { code: 'AEGIS_ERR_DAEMON_UNREACHABLE', message: expect.stringMatching(/nothing listens on/) } });
    expectOneLine(r, /nothing listens on/);
  });

  it('takes the socket from AEGIS_SOCKET, and --socket wins over it', async () => {
    expect((await runCli(['ping'], { AEGIS_SOCKET: sock })).code).toBe(0);
    expect((await runCli(['ping', '--socket', join(fake.dir, 'nope.sock')], { AEGIS_SOCKET: sock })).code).toBe(3);
    const r = await runCli(['ping'], { AEGIS_SOCKET: join(fake.dir, 'other.sock') });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('other.sock');
  });
});

describe('aegis-ban status', () => {
  it('prints the jail list and totals, and the enforcer', async () => {
    await cli('ban', 'sshd', '203.0.113.7');
    const r = await cli('status');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'Status',
        '|- Number of jail:\t2',
        '|- Jail list:\tsshd, cartae-api-auth',
        '|- Currently banned:\t1',
        '|- Total banned:\t' + String(daemon.jails.get('sshd')!.totalBanned + daemon.jails.get('cartae-api-auth')!.totalBanned),
        '|- Enforcer:\tlog (interfaces=)',
        '|- Version:\t9.9.9-test',
        '`- Uptime:\t1h 2m 3s',
        '',
      ].join('\n'),
    );
    const j = JSON.parse((await cli('status', '--json')).stdout) as { jails: Array<Record<string, unknown>> };
    expect(j.jails.map((x) => x.jail)).toEqual(['sshd', 'cartae-api-auth']);
    expect(j.jails[0]).toMatchObject({ jail: 'sshd', currently_banned: 1 });
  });

  it('prints the fail2ban-client block for one jail', async () => {
    await cli('ban', 'sshd', '203.0.113.7');
    await cli('ban', 'sshd', '2001:db8::7');
    const r = await cli('status', 'sshd');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'Status for the jail: sshd',
        '|- Filter',
        '|  |- Currently failed:\t2',
        '|  |- Total failed:\t17',
        '|  `- File list:\t/var/log/auth.log /var/log/auth.log.1',
        '`- Actions',
        '   |- Currently banned:\t2',
        `   |- Total banned:\t${daemon.jails.get('sshd')!.totalBanned}`,
        '   `- Banned IP list:\t203.0.113.7 2001:db8::7',
        '',
      ].join('\n'),
    );
  });

  it('gives the SPEC JSON shape for one jail', async () => {
    await cli('ban', 'sshd', '203.0.113.7', '--time', '1h');
    const j = JSON.parse((await cli('status', 'sshd', '--json')).stdout) as Record<string, unknown>;
    expect(Object.keys(j)).toEqual(['jail', 'currently_failed', 'total_failed', 'files', 'currently_banned', 'total_banned', 'banned']);
    expect(j.banned).toEqual([{ ip: '203.0.113.7', jail: 'sshd', since: daemon.now, expires: daemon.now + 3600 }]);
  });

  it('exits 1 for an unknown jail, with the daemon error under --json', async () => {
    const r = await cli('status', 'nope');
    expect(r.code).toBe(1);
    expectOneLine(r, /no jail named "nope"/);
    const j = await cli('status', 'nope', '--json');
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toEqual({ error: { code: 'AEGIS_ERR_UNKNOWN_JAIL', message: 'no jail named "nope"' } });
  });
});

describe('aegis-ban ban', () => {
  it('bans with the jail bantime, or --time in seconds, units or -1', async () => {
    const cases: Array<[string[], number | null]> = [
      [[], 600],
      [['--time', '90'], 90],
      [['--time', '1h'], 3600],
      [['--time', '2d'], 172800],
      [['--time', '1w'], 604800],
      [['--time', '-1'], null],
      [['--time=-1'], null],
    ];
    let n = 10;
    for (const [extra, dur] of cases) {
      const ip = `198.51.100.${n++}`;
      const r = await cli('ban', 'sshd', ip, ...extra);
      expect(r.code, extra.join(' ')).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Banned ${ip.replace(/\./g, '\\.')} in sshd (permanently|until \\S+Z \\(.+\\))\\n$`));
      const ban = daemon.bans.find((b) => b.ip === ip)!;
      expect(ban.expires === null ? null : ban.expires - ban.since).toBe(dur);
    }
  });

  it('prints the SPEC ban shape under --json', async () => {
    const r = await cli('ban', 'cartae-api-auth', '::ffff:198.51.100.9', '--time', '15m', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ banned: [{ ip: '198.51.100.9', jail: 'cartae-api-auth', since: daemon.now, expires: daemon.now + 900 }] });
  });

  it('accepts CIDR prefixes and sends them canonical', async () => {
    const r = await cli('ban', 'sshd', '2001:DB8:1:2::5/64');
    expect(r.code).toBe(0);
    expect(daemon.requests).toEqual([{ cmd: 'ban', jail: 'sshd', ip: '2001:db8:1:2::/64' }]);
  });

  it('exits 2 on an invalid address or time without contacting the daemon', async () => {
    for (const args of [
      ['ban', 'sshd', '1.2.3.999'],
      ['ban', 'sshd', 'example.com'],
      ['ban', 'sshd', '10.0.0.0/33'],
      ['ban', 'sshd', '1.2.3.4', '--time', 'soon'],
      ['ban', 'sshd', '1.2.3.4', '--time', '0'],
      ['ban', 'sshd', '1.2.3.4', '--time', '-5'],
    ]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expectOneLine(r, /not an IP address or CIDR prefix|invalid --time/);
    }
    // The same with no daemon at all: still 2, not 3.
    expect((await runCli(['ban', 'sshd', 'bogus', '--socket', join(fake.dir, 'x.sock')])).code).toBe(2);
    const j = await cli('ban', 'sshd', 'bogus', '--json');
    expect(JSON.parse(j.stdout)).toEqual({ error: { code: 'AEGIS_ERR_ADDRESS_INVALID', message: '"bogus" is not an IP address or CIDR prefix' } });
    expect(daemon.requests).toEqual([]);
  });

  it('exits 1 with the daemon line when the ban is refused (loopback, ignoreip, prefix covering one)', async () => {
    for (const ip of ['127.0.0.1', '::1', '192.0.2.44', '192.0.0.0/16']) {
      const r = await cli('ban', 'sshd', ip);
      expect(r.code, ip).toBe(1);
      expectOneLine(r, /refusing to ban .* covered by ignore entry/);
    }
    const j = await cli('ban', 'sshd', '127.0.0.2', '--json');
    expect(JSON.parse(j.stdout)).toMatchObject({ error: { code: 'AEGIS_ERR_BAN_REFUSED' } });
    expect(daemon.bans).toEqual([]);
  });

  it('exits 1 for an unknown jail and 2 when arguments are missing', async () => {
    expect((await cli('ban', 'nope', '203.0.113.1')).code).toBe(1);
    const r = await cli('ban', 'sshd');
    expect(r.code).toBe(2);
    expectOneLine(r, /Not enough non-option arguments/);
  });
});

describe('aegis-ban unban and banned', () => {
  it('lists bans as a table and as the SPEC JSON array', async () => {
    await cli('ban', 'sshd', '203.0.113.7', '--time', '1h');
    await cli('ban', 'cartae-api-auth', '203.0.113.7', '--time', '-1');
    const t = await cli('banned');
    expect(t.code).toBe(0);
    const lines = t.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^IP\s+JAIL\s+SINCE\s+EXPIRES$/);
    expect(lines[1]).toMatch(/^203\.0\.113\.7\s+sshd\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(lines[2]).toMatch(/^203\.0\.113\.7\s+cartae-api-auth\s+\S+Z\s+never$/);
    const j = await cli('banned', '--json');
    expect(JSON.parse(j.stdout)).toEqual([
      { ip: '203.0.113.7', jail: 'sshd', since: daemon.now, expires: daemon.now + 3600 },
      { ip: '203.0.113.7', jail: 'cartae-api-auth', since: daemon.now, expires: null },
    ]);
  });

  it('answers `banned IP` with the jails that ban it, 0 either way', async () => {
    await cli('ban', 'sshd', '203.0.113.7');
    const yes = await cli('banned', '203.0.113.7', '--json');
    expect(yes.code).toBe(0);
    expect(JSON.parse(yes.stdout)).toEqual([{ ip: '203.0.113.7', jail: 'sshd', since: daemon.now, expires: daemon.now + 600 }]);
    const no = await cli('banned', '203.0.113.8');
    expect(no.code).toBe(0);
    expect(no.stdout).toBe('203.0.113.8 is not banned\n');
    expect(JSON.parse((await cli('banned', '203.0.113.8', '--json')).stdout)).toEqual([]);
    expect((await cli('banned', '1.2.3')).code).toBe(2);
  });

  it('unbans from every jail, and exits 1 when the address was not banned', async () => {
    await cli('ban', 'sshd', '203.0.113.7');
    await cli('ban', 'cartae-api-auth', '203.0.113.7');
    const r = await cli('unban', '203.0.113.7');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Unbanned 203.0.113.7 from sshd\nUnbanned 203.0.113.7 from cartae-api-auth\n');
    const again = await cli('unban', '203.0.113.7');
    expect(again.code).toBe(1);
    expectOneLine(again, /not banned: 203\.0\.113\.7/);
    const j = await cli('unban', '203.0.113.7', '--json');
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toMatchObject({ error: { code: 'AEGIS_ERR_NOT_BANNED' } });
  });

  it('limits an unban to --jail, and says which address was not banned there', async () => {
    await cli('ban', 'sshd', '203.0.113.7');
    await cli('ban', 'sshd', '203.0.113.8');
    const r = await cli('unban', '203.0.113.7', '203.0.113.9', '--jail', 'sshd', '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({
      error: { code: 'AEGIS_ERR_NOT_BANNED', message: 'not banned in sshd: 203.0.113.9' },
      unbanned: [{ ip: '203.0.113.7', jail: 'sshd', since: daemon.now, expires: daemon.now + 600 }],
    });
    expect(daemon.bans.map((b) => b.ip)).toEqual(['203.0.113.8']);
    expect((await cli('unban', '203.0.113.8', '--jail', 'cartae-api-auth')).code).toBe(1);
    expect((await cli('unban', '::ffff:203.0.113.8', '--json')).code).toBe(0);
  });

  it('unbans everything with --all (0 even when nothing was banned)', async () => {
    await cli('ban', 'sshd', '203.0.113.7');
    await cli('ban', 'cartae-api-auth', '2001:db8::1');
    const r = await cli('unban', '--all', '--json');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { unbanned: unknown[] }).unbanned).toHaveLength(2);
    expect(daemon.bans).toEqual([]);
    const none = await cli('unban', '--all');
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('Nothing was banned\n');
    expect((await cli('banned')).stdout).toBe('No bans\n');
  });

  it('exits 2 for unban without addresses, addresses with --all, or a bad address', async () => {
    for (const args of [['unban'], ['unban', '--all', '1.2.3.4'], ['unban', '1.2.3.4', 'zzz']]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expectOneLine(r, /./);
    }
    expect(daemon.requests).toEqual([]);
  });
});

describe('aegis-ban reload', () => {
  it('prints OK, and warnings on stderr', async () => {
    const r = await cli('reload');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('OK: reloaded sshd, cartae-api-auth\n');
    expect(r.stderr).toBe('aegis-ban: warning: jail.local:4 [sshd] bogus: unknown key\n');
    const j = await cli('reload', 'sshd', '--json');
    expect(JSON.parse(j.stdout)).toEqual({ jails: ['sshd'], warnings: ['jail.local:4 [sshd] bogus: unknown key'] });
  });

  it('exits 2 with every config error, one per line, when the daemon refuses the config', async () => {
    const r = await cli('reload', 'broken');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'aegis-ban: jail.local:12 [sshd] maxretry: expected a positive integer, got "five"\naegis-ban: filter.d/x.conf:3 [Definition] failregex: unbalanced parenthesis\n',
    );
    const j = await cli('reload', 'broken', '--json');
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stdout)).toMatchObject({ error: { code: 'AEGIS_ERR_CONFIG_VALUE' } });
    const one = await cli('reload', 'onebad');
    expect(one.code).toBe(2);
    expectOneLine(one, /bantime: not a time/);
  });
});

// Real permissions: the CLI run as `nobody` against sockets laid out like /run/aegis.
const canSwitchUser = process.getuid?.() === 0 && existsSync(process.execPath) && !process.execPath.startsWith('/root/');
describe.skipIf(!canSwitchUser)('socket permissions (as user nobody)', () => {
  it('a non-root user gets exit 3 and "permission denied" on the default 0600 socket', async () => {
    const f = await startFake({ subdir: 'run' });
    try {
      const r = await runCli(['ping', '--socket', f.path], {}, 'nobody');
      expect(r.code).toBe(3);
      expectOneLine(r, /permission denied on .*aegis\.sock/);
      expect((await runCli(['ping', '--socket', f.path])).code).toBe(0);
    } finally {
      await f.stop();
    }
  });

  it('a member of the socket group may use it', async () => {
    const f = await startFake({ subdir: 'run', group: 'nogroup' });
    try {
      const r = await runCli(['status', '--socket', f.path, '--json'], {}, 'nobody');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toHaveProperty('jails');
    } finally {
      await f.stop();
    }
  });
});

describe('aegis-ban usage', () => {
  it('exits 2 with one line for an unknown command or option, under --json too', async () => {
    for (const args of [['frobnicate'], ['ping', '--bogus'], ['status', 'a', 'b'], []]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expectOneLine(r, /./);
    }
    const j = await cli('frobnicate', '--json');
    expect(JSON.parse(j.stdout)).toMatchObject({ error: { code: 'AEGIS_ERR_USAGE' } });
    expect(daemon.requests).toEqual([]);
  });

  it('prints help listing every command with exit 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['ping', 'status', 'ban', 'unban', 'banned', 'reload', 'check', 'regex']) expect(r.stdout).toContain(`aegis-ban ${c}`);
  });
});
