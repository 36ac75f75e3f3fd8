import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatBans, formatDuration, formatEnforcer, formatJailStatus, formatSummary, parseBanTime } from '../../../src/cli/format.js';
import type { JailStatus } from '../../../src/control/protocol.js';

const F2B = '/usr/lib/python3/dist-packages/fail2ban/client/beautifier.py';
// fail2ban's own interpreter: a pyenv python first on PATH does not see Debian's dist-packages.
const PYTHON = '/usr/bin/python3';
const hasFail2ban = existsSync(F2B) && existsSync(PYTHON);
if (!hasFail2ban) console.log(`skipping fail2ban comparison: ${F2B} not found (apt-get install fail2ban)`);

/** What fail2ban-client itself prints for `status JAIL` given the same numbers. */
function fail2banStatus(s: JailStatus): string {
  const response = [
    ['Filter', [['Currently failed', s.currently_failed], ['Total failed', s.total_failed], ['File list', s.files]]],
    ['Actions', [['Currently banned', s.currently_banned], ['Total banned', s.total_banned], ['Banned IP list', s.banned.map((b) => b.ip)]]],
  ];
  const py = [
    'import json, sys',
    'from fail2ban.client.beautifier import Beautifier',
    'd = json.loads(sys.argv[1])',
    "print(Beautifier(['status', d['jail']]).beautify(d['response']))",
  ].join('\n');
  return execFileSync(PYTHON, ['-c', py, JSON.stringify({ jail: s.jail, response })], { encoding: 'utf8' });
}

const sample = (over: Partial<JailStatus> = {}): JailStatus => ({
  jail: 'sshd',
  currently_failed: 3,
  total_failed: 41,
  files: ['/var/log/auth.log', '/var/log/secure'],
  currently_banned: 2,
  total_banned: 9,
  banned: [
    { ip: '203.0.113.7', jail: 'sshd', since: 1, expires: 2 },
    { ip: '2001:db8::/64', jail: 'sshd', since: 1, expires: null },
  ],
  ...over,
});

describe('status JAIL output', () => {
  it.skipIf(!hasFail2ban)('is byte for byte what fail2ban-client prints', () => {
    for (const s of [sample(), sample({ files: [], banned: [], currently_banned: 0 }), sample({ jail: 'cartae-api-auth', files: ['/srv/a.log'] })]) {
      expect(formatJailStatus(s)).toBe(fail2banStatus(s));
    }
  });

  it('has the fail2ban tree shape', () => {
    expect(formatJailStatus(sample())).toBe(
      'Status for the jail: sshd\n|- Filter\n|  |- Currently failed:\t3\n|  |- Total failed:\t41\n|  `- File list:\t/var/log/auth.log /var/log/secure\n' +
        '`- Actions\n   |- Currently banned:\t2\n   |- Total banned:\t9\n   `- Banned IP list:\t203.0.113.7 2001:db8::/64\n',
    );
  });
});

describe('other human output', () => {
  it('summarises jails, totals and the enforcer', () => {
    const out = formatSummary({
      jails: [{ jail: 'sshd', currently_banned: 1, total_banned: 4, currently_failed: 0, total_failed: 9 }],
      total_banned: 4,
      currently_banned: 1,
      enforcer: { kind: 'xdp', interfaces: ['eth0', 'eth1'], mode: 'native' },
      version: '0.1.0',
      uptime: 90061,
      dry_run: true,
    });
    expect(out).toContain('|- Jail list:\tsshd\n');
    expect(out).toContain('|- Enforcer:\txdp (interfaces=eth0,eth1, mode=native) [dry run: nothing enforced]\n');
    expect(out.endsWith('`- Uptime:\t1d 1h 1m 1s\n')).toBe(true);
  });

  it('describes an enforcer without a kind', () => {
    expect(formatEnforcer({})).toBe('-');
    expect(formatEnforcer({ set: 'inet aegis banned' })).toBe('set=inet aegis banned');
  });

  it('aligns the ban table and shows permanent bans as never', () => {
    const t = formatBans([
      { ip: '203.0.113.7', jail: 'sshd', since: 1_795_000_000, expires: 1_795_000_600 },
      { ip: '2001:db8::1', jail: 'cartae-admin', since: 1_795_000_000, expires: null },
    ]);
    expect(t).toBe(
      'IP           JAIL          SINCE                 EXPIRES\n' +
        '203.0.113.7  sshd          2026-11-18T11:06:40Z  2026-11-18T11:16:40Z\n' +
        '2001:db8::1  cartae-admin  2026-11-18T11:06:40Z  never\n',
    );
  });

  it('formats durations', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(3600)).toBe('1h');
    expect(formatDuration(-1)).toBe('permanent');
  });
});

describe('--time', () => {
  it('takes seconds, units, sums and -1, and refuses the rest', () => {
    expect(parseBanTime('600')).toBe(600);
    expect(parseBanTime('10m')).toBe(600);
    expect(parseBanTime('1h30m')).toBe(5400);
    expect(parseBanTime('1w')).toBe(604800);
    expect(parseBanTime('-1')).toBe(-1);
    for (const bad of ['', '0', '-5', 'abc', '5x', '1h-']) expect(parseBanTime(bad), bad).toBeNull();
  });
});
