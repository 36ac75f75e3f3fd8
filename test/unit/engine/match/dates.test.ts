import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DateDetector, ZoneConverter, zoneToOffset } from '../../../../src/engine/match/dates.js';

const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
function hasFail2ban(): boolean {
  try {
    execFileSync(PY, ['-c', 'import fail2ban.server.datedetector'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const f2b = hasFail2ban();
if (!f2b) console.log('skipping differential date tests: Debian package fail2ban not installed');

interface DateCase {
  pattern: string | null;
  line: string;
  now: number;
  tz: string;
}
interface DateOut {
  text: string | null;
  time: number | null;
}

function ours(c: DateCase): DateOut {
  const d = DateDetector.create(c.pattern);
  if (!d.ok) throw new Error(d.message);
  const zone = new ZoneConverter(c.tz);
  const ascii = !/[^\x00-\x7f]/.test(c.line);
  const tm = d.value.matchTime(c.line, ascii);
  if (tm === null) return { text: null, time: null };
  return { text: c.line.slice(tm.dm.start, tm.dm.end), time: tm.template.getDate(tm.dm, { now: c.now, zone, defaultOffset: null }) };
}

/** fail2ban's own DateDetector on the same cases (fixed "now", TZ per case) */
function fail2ban(cases: DateCase[]): DateOut[] {
  const script = `
import json, os, sys, time
from fail2ban.server.mytime import MyTime
from fail2ban.server.datedetector import DateDetector
out = []
for c in json.load(sys.stdin):
    os.environ['TZ'] = c['tz']; time.tzset()
    MyTime.setTime(c['now'])
    dd = DateDetector()
    if c['pattern'] is None: dd.addDefaultTemplate()
    else:
        for p in c['pattern'].split('\\n'): dd.appendTemplate(p)
    m = dd.matchTime(c['line'])
    if not m[0]:
        out.append({"text": None, "time": None}); continue
    t = dd.getTime(c['line'], m)
    out.append({"text": c['line'][m[0].start(1):m[0].end(1)], "time": None if t is None else t[0]})
print(json.dumps(out))
`;
  return JSON.parse(execFileSync(PY, ['-c', script], { input: JSON.stringify(cases), encoding: 'utf8' })) as DateOut[];
}

const NOW = 1124013600; // 2005-08-14 12:00 CEST, fail2ban's test "now"
const JAN2 = 1136203200; // 2006-01-02 12:00 UTC
const Z = 'Europe/Zurich';
const CASES: DateCase[] = [
  // defaults: syslog, ISO 8601, Apache, epoch, TAI64N, …
  { pattern: null, line: 'Aug 14 11:59:58 host sshd[1]: x', now: NOW, tz: Z },
  { pattern: null, line: 'Aug 14 11:59:58.123 host sshd[1]: x', now: NOW, tz: Z },
  { pattern: null, line: '2005-08-14 11:59:58 host x', now: NOW, tz: Z },
  { pattern: null, line: '2005-08-14T11:59:58.123456+02:00 host x', now: NOW, tz: 'UTC' },
  { pattern: null, line: '2005-08-14T09:59:58Z host x', now: NOW, tz: Z },
  { pattern: null, line: '[14/Aug/2005:11:59:58 +0200] "GET / HTTP/1.1"', now: NOW, tz: 'UTC' },
  { pattern: null, line: '192.0.2.1 - - [14/Aug/2005:11:59:58 -0400] "GET /"', now: NOW, tz: Z },
  { pattern: null, line: '1124013598 host x', now: NOW, tz: Z },
  { pattern: null, line: '[1124013598.123] x', now: NOW, tz: Z },
  { pattern: null, line: 'type=USER_AUTH msg=audit(1124013598.123:1234): x', now: NOW, tz: Z },
  { pattern: null, line: '@4000000042ff0a3e0b8f6d2c imap-login: x', now: NOW, tz: Z },
  { pattern: null, line: '14-08-2005 11:59:58 x', now: NOW, tz: Z },
  { pattern: null, line: '08/14/2005:11:59:58 x', now: NOW, tz: Z },
  { pattern: null, line: 'Sun Aug 14 11:59:58 2005 x', now: NOW, tz: Z },
  { pattern: null, line: 'Aug 14, 2005 11:59:58 AM x', now: NOW, tz: Z },
  { pattern: null, line: 'Aug 14, 2005 11:59:58 PM x', now: NOW, tz: Z },
  { pattern: null, line: '050814 11:59:58 mysqld x', now: NOW, tz: Z },
  { pattern: null, line: '20050814T115958 x', now: NOW, tz: Z },
  { pattern: null, line: '11:59:58 only a time', now: NOW, tz: Z },
  { pattern: null, line: 'CEST Aug 14 11:59:58 x', now: NOW, tz: 'UTC' },
  { pattern: null, line: 'no date in this line', now: NOW, tz: Z },
  // year inference: a December date seen in January is last year's
  { pattern: null, line: 'Dec 31 23:59:58 host x', now: JAN2, tz: 'UTC' },
  { pattern: null, line: 'Jan  2 11:00:00 host x', now: JAN2, tz: 'UTC' },
  { pattern: null, line: 'Jan  3 11:00:00 host x', now: JAN2, tz: 'UTC' }, // within a day ahead: this year
  { pattern: null, line: 'Jan  4 11:00:00 host x', now: JAN2, tz: 'UTC' }, // further ahead: last year
  // zones: the wall clock in a DST zone, in summer and winter
  { pattern: null, line: 'Mar 27 01:30:00 x', now: NOW, tz: Z },
  { pattern: null, line: 'Oct 30 02:30:00 x', now: NOW, tz: Z },
  { pattern: null, line: 'Aug 14 11:59:58 x', now: NOW, tz: 'America/New_York' },
  // datepattern directives
  { pattern: '%Y-%m-%d %H:%M:%S', line: 'at 2005-08-14 11:59:58 x', now: NOW, tz: Z },
  { pattern: '%y%m%d %H%M%S', line: '050814 115958 x', now: NOW, tz: Z },
  { pattern: '%d/%b/%Y:%H:%M:%S %z', line: '14/Aug/2005:11:59:58 +0100 x', now: NOW, tz: Z },
  { pattern: '%A, %d %B %Y %I:%M:%S %p', line: 'Sunday, 14 August 2005 11:59:58 PM x', now: NOW, tz: Z },
  { pattern: '%a %b %d %H:%M:%S %Z %Y', line: 'Sun Aug 14 11:59:58 CEST 2005 x', now: NOW, tz: 'UTC' },
  { pattern: '%Y %j %H:%M:%S', line: '2005 226 11:59:58 x', now: NOW, tz: Z },
  { pattern: '%ExY-%Exm-%Exd %ExH:%ExM:%ExS', line: '2005-08-14 11:59:58 x', now: NOW, tz: Z },
  { pattern: '%Exy%Exm%Exd', line: 'day 050814 x', now: NOW, tz: Z },
  { pattern: '%H:%M:%S.%f', line: 'x 11:59:58.654321 y', now: NOW, tz: Z },
  { pattern: '{^LN-BEG}%b %d %H:%M:%S', line: 'Aug 14 11:59:58 x', now: NOW, tz: Z },
  { pattern: '{^LN-BEG}%b %d %H:%M:%S', line: 'x Aug 14 11:59:58', now: NOW, tz: Z },
  { pattern: '^%m/%d/%Y %H:%M:%S', line: '08/14/2005 11:59:58 x', now: NOW, tz: Z },
  { pattern: 'EPOCH', line: '1124013598 x', now: NOW, tz: Z },
  { pattern: '{^LN-BEG}EPOCH', line: '[1124013598] x', now: NOW, tz: Z },
  { pattern: 'LEPOCH', line: '1124013598123 x', now: NOW, tz: Z },
  { pattern: '{^LN-BEG}LEPOCH', line: '1124013598123456 x', now: NOW, tz: Z },
  { pattern: '"time":{LEPOCH}', line: '{"level":40,"time":1124013598123,"msg":"x"}', now: NOW, tz: Z },
  { pattern: 'ts={EPOCH}', line: 'a=1 ts=1124013598.5 b', now: NOW, tz: Z },
  { pattern: '{^LN-BEG}TAI64N', line: '@4000000042ff0a3e0b8f6d2c x', now: NOW, tz: Z },
  { pattern: '%Y-%m-%d\n%d.%m.%Y', line: 'on 14.08.2005 x', now: NOW, tz: Z },
];

describe('fail2ban date detection', () => {
  it.skipIf(!f2b)('finds the same date text and time as fail2ban\'s DateDetector', () => {
    const want = fail2ban(CASES);
    CASES.forEach((c, i) => {
      expect({ ...c, ...ours(c) }).toEqual({ ...c, ...want[i]! });
    });
  });

  it('infers the year of a year-less date relative to now', () => {
    const r = ours({ pattern: null, line: 'Dec 31 23:59:58 host x', now: JAN2, tz: 'UTC' });
    expect(r.time).toBe(Date.UTC(2005, 11, 31, 23, 59, 58) / 1000);
  });

  it('reads a zone-less date in the given IANA zone and honours an explicit offset', () => {
    expect(ours({ pattern: null, line: 'Aug 14 11:59:58 x', now: NOW, tz: 'Europe/Zurich' }).time).toBe(Date.UTC(2005, 7, 14, 9, 59, 58) / 1000);
    expect(ours({ pattern: null, line: 'Aug 14 11:59:58 x', now: NOW, tz: 'UTC' }).time).toBe(Date.UTC(2005, 7, 14, 11, 59, 58) / 1000);
    expect(ours({ pattern: null, line: '2005-08-14 11:59:58 +0100 x', now: NOW, tz: 'Europe/Zurich' }).time).toBe(Date.UTC(2005, 7, 14, 10, 59, 58) / 1000);
  });

  it('reads epoch seconds, milliseconds and microseconds', () => {
    expect(ours({ pattern: 'EPOCH', line: '1124013598 x', now: NOW, tz: 'UTC' }).time).toBe(1124013598);
    expect(ours({ pattern: 'LEPOCH', line: '1124013598123 x', now: NOW, tz: 'UTC' }).time).toBeCloseTo(1124013598.123, 6);
    expect(ours({ pattern: 'LEPOCH', line: '1124013598123456 x', now: NOW, tz: 'UTC' }).time).toBeCloseTo(1124013598.123456, 6);
  });

  it('refuses a datepattern with an unknown directive', () => {
    const d = DateDetector.create('%Y-%q');
    expect(d.ok).toBe(false);
  });

  it('knows fail2ban\'s zone abbreviations and offsets', () => {
    expect(zoneToOffset('CEST')).toBe(120);
    expect(zoneToOffset('-0430')).toBe(-270);
    expect(zoneToOffset('UTC+02:00')).toBe(120);
    expect(zoneToOffset('XYZ')).toBeNull();
  });

  it('tries the last matching template first (one regex per line on a steady log)', () => {
    const d = DateDetector.create(null);
    if (!d.ok) throw new Error(d.message);
    for (let i = 0; i < 5; i++) d.value.matchTime(`Aug 14 11:59:5${i} host x`, true);
    expect(d.value.lastTemplateName).toContain('MON Day');
  });
});
