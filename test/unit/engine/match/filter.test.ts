import { describe, expect, it } from 'vitest';
import type { FilterSpec } from '../../../../src/config/types.js';
import { ErrorCode } from '../../../../src/errors.js';
import { compileFilter, type DetailedMatcher } from '../../../../src/engine/match/filter.js';
import type { LineOutcome } from '../../../../src/engine/types.js';

const NOW = 1124013600; // 2005-08-14 12:00 CEST

function spec(p: Partial<FilterSpec>): FilterSpec {
  return {
    name: 'test',
    file: '/etc/aegis/filter.d/test.conf',
    options: {},
    failregex: [],
    ignoreregex: [],
    prefregex: null,
    datepattern: null,
    maxlines: 1,
    journalmatch: [],
    json: null,
    origin: { file: '/etc/aegis/filter.d/test.conf', section: 'Definition' },
    ...p,
  };
}

function compile(p: Partial<FilterSpec>): { m: DetailedMatcher; literals: readonly string[] | null } {
  const { filter, diagnostics } = compileFilter(spec(p));
  if (filter === null) throw new Error(diagnostics.map((d) => d.message).join('; '));
  return { m: filter.createMatcher({ now: () => NOW, timezone: 'Europe/Zurich' }) as DetailedMatcher, literals: filter.literals };
}

function failed(o: LineOutcome): Extract<LineOutcome, { kind: 'fail' }> {
  if (o.kind !== 'fail') throw new Error(`expected a failure, got ${o.kind}`);
  return o;
}

describe('compileFilter', () => {
  it('refuses an untranslatable regex with a diagnostic naming file and line', () => {
    const { filter, diagnostics } = compileFilter(
      spec({
        failregex: ['^ok from <HOST>$', '(?L)^bad from <HOST>$'],
        regexLines: { failregex: [12, 13] },
      }),
    );
    expect(filter).toBeNull();
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({ severity: 'error', file: '/etc/aegis/filter.d/test.conf', line: 13, key: 'failregex' });
    expect(diagnostics[0]!.message).toMatch(/failregex #2 .*locale/);
  });

  it('refuses a failregex without a failure id, and an invalid one', () => {
    const a = compileFilter(spec({ failregex: ['^login failed$'] }));
    expect(a.filter).toBeNull();
    expect(a.diagnostics[0]!.message).toMatch(/no failure-id group/);
    const b = compileFilter(spec({ failregex: ['^(unclosed <HOST>'] }));
    expect(b.diagnostics[0]!.code).toBe(ErrorCode.REGEX_INVALID);
  });

  it('finds host, user and time in a syslog line, with the date cut out as fail2ban does', () => {
    // like fail2ban's %(__prefix_line)s, the regex starts with \s*: the date is cut out first
    const { m } = compile({ failregex: [String.raw`^\s*\S+ sshd\[\d+\]: Failed password for <F-USER>\S+</F-USER> from <HOST> port \d+`] });
    const o = failed(m.match('Aug 14 11:59:58 web sshd[123]: Failed password for root from 192.0.2.1 port 22 ssh2'));
    expect(o).toMatchObject({ host: '192.0.2.1', fields: { user: 'root' }, regexIndex: 0, attempts: 1 });
    expect(o.time).toBe(Date.UTC(2005, 7, 14, 9, 59, 58) / 1000);
    expect(m.dateTemplate).toContain('MON Day');
  });

  it('hides a failure behind ignoreregex and reports it as ignored', () => {
    const { m } = compile({ failregex: ['^fail from <HOST>$'], ignoreregex: ['^fail from 192\\.0\\.2\\.9$'] });
    expect(m.match('fail from 192.0.2.1').kind).toBe('fail');
    expect(m.match('fail from 192.0.2.9').kind).toBe('ignored');
    expect(m.match('something else').kind).toBe('miss');
  });

  it('narrows with prefregex and <F-CONTENT>, keeping prefregex captures as fields', () => {
    const { m } = compile({
      prefregex: String.raw`^\s*<F-MLFID>\S+ app\[(?P<pid>\d+)\]:</F-MLFID> <F-CONTENT>.+</F-CONTENT>$`,
      failregex: ['^bad login from <HOST>$', '^denied <F-USER>\\S+</F-USER> from <HOST>$'],
    });
    const o = failed(m.match('Aug 14 11:59:58 web app[7]: denied bob from 192.0.2.3'));
    expect(o.host).toBe('192.0.2.3');
    expect(o.regexIndex).toBe(1);
    expect(o.fields).toMatchObject({ user: 'bob', pid: '7' });
    expect(m.match('Aug 14 11:59:58 web other[7]: bad login from 192.0.2.3').kind).toBe('miss');
  });

  it('joins lines of a connection by <F-MLFID>: the id line waits, the failure line reports the host', () => {
    const { m } = compile({
      prefregex: String.raw`^\s*conn <F-MLFID>\d+</F-MLFID>: <F-CONTENT>.+</F-CONTENT>$`,
      failregex: [
        '^<F-NOFAIL>from</F-NOFAIL> <HOST>$',
        '^<F-NOFAIL>user <F-USER>\\S+</F-USER></F-NOFAIL>$',
        '^auth failed$',
        '^<F-NOFAIL><F-MLFFORGET>closed</F-MLFFORGET></F-NOFAIL>$',
      ],
      datepattern: '{NONE}',
    });
    expect(m.match('conn 5: from 192.0.2.5').kind).toBe('pending');
    expect(m.match('conn 5: user alice').kind).toBe('pending');
    const o = failed(m.match('conn 5: auth failed'));
    expect(o.host).toBe('192.0.2.5');
    expect(o.fields['user']).toBe('alice');
    expect(o.time).toBe(NOW); // {NONE}: the line's time is now
    expect(m.match('conn 5: closed').kind).not.toBe('fail');
    // a forgotten connection starts over: no host known for conn 5 any more
    expect(m.match('conn 5: auth failed').kind).toBe('pending');
  });

  it('matches across lines with maxlines and <SKIPLINES>, and then needs every line (no literals)', () => {
    const { m, literals } = compile({
      maxlines: 3,
      datepattern: '{NONE}',
      failregex: [String.raw`^session (?P<sid>\d+) from <HOST><SKIPLINES>^session (?P=sid) failed$`],
    });
    expect(literals).toBeNull();
    expect(m.match('session 1 from 192.0.2.7').kind).toBe('miss');
    expect(m.match('unrelated').kind).toBe('miss');
    expect(failed(m.match('session 1 failed')).host).toBe('192.0.2.7');
  });

  it('takes a known time for journal entries instead of searching for a date', () => {
    const { m } = compile({ failregex: ['^Aug 01 fail from <HOST>$'] });
    const r = m.matchDetailed('Aug 01 fail from 192.0.2.8', 1000);
    expect(r.outcome).toMatchObject({ kind: 'fail', host: '192.0.2.8', time: 1000 });
  });

  it('matches non-ASCII lines with Python\'s Unicode classes', () => {
    const { m } = compile({ datepattern: '{NONE}', failregex: [String.raw`^user <F-USER>\w+</F-USER> from <HOST>$`] });
    expect(failed(m.match('user Jürgen from 192.0.2.9')).fields['user']).toBe('Jürgen');
  });

  it('returns the failure id of <F-ID> as host when given, as written', () => {
    const { m } = compile({ datepattern: '{NONE}', failregex: ['^token <F-ID>\\S+</F-ID> rejected$'] });
    expect(failed(m.match('token abc123 rejected')).host).toBe('abc123');
  });
});

describe('literal prefilter of a filter', () => {
  it('keeps a literal that fail2ban\'s date cut could split sound (one half stays whole)', () => {
    // fail2ban removes the date: "[Aug 14 11:59:58] error from …" is matched as "[] error from …"
    const { m, literals } = compile({ failregex: [String.raw`^\[\] error from <HOST>$`] });
    const line = '[Aug 14 11:59:58] error from 192.0.2.1';
    expect(failed(m.match(line)).host).toBe('192.0.2.1');
    expect(literals).not.toBeNull();
    expect(literals!.some((l) => line.includes(l))).toBe(true);
    expect(line.includes('[] error from ')).toBe(false);
  });

  it('uses whole literals when dates can only be at the line start ({^LN-BEG})', () => {
    const { literals } = compile({ datepattern: '{^LN-BEG}', failregex: ['^Failed password for \\S+ from <HOST>'] });
    expect(literals).toEqual(['Failed password for ']);
  });

  it('gives null when some failregex has no required literal', () => {
    const { literals } = compile({ failregex: ['^Failed from <HOST>', '^<HOST>\\s+\\d+$'] });
    expect(literals).toBeNull();
  });

  it('every line a filter fails contains one of its literals (sample lines)', () => {
    const { m, literals } = compile({
      failregex: [
        String.raw`^\s*\S+ sshd\[\d+\]: (?:Invalid|Illegal) user \S+ from <HOST>`,
        String.raw`^\s*\S+ sshd\[\d+\]: Failed (?:password|publickey) for (?:invalid user )?\S+ from <HOST>`,
      ],
    });
    const lines = [
      'Aug 14 11:59:58 h sshd[1]: Invalid user a from 192.0.2.1',
      'Aug 14 11:59:58 h sshd[1]: Illegal user a from 192.0.2.1',
      '2005-08-14 11:59:58 h sshd[1]: Failed publickey for invalid user b from 192.0.2.2',
      '[14/Aug/2005:11:59:58 +0200] sshd[1]: Failed password for c from 192.0.2.3',
    ];
    for (const l of lines) {
      expect(m.match(l).kind, l).toBe('fail');
      expect(literals!.some((x) => l.includes(x)), l).toBe(true);
    }
  });
});

describe('two-stage matching (aegis-ban regex on two threads)', () => {
  it('gives the one-matcher outcome and counts when the date and pre stages run on another matcher', () => {
    const p: Partial<FilterSpec> = {
      prefregex: String.raw`^\s*<F-MLFID>\S+ sshd\[\d+\]:</F-MLFID> <F-CONTENT>.+</F-CONTENT>$`,
      failregex: [
        String.raw`^Failed password for <F-USER>\S+</F-USER> from <HOST>`,
        String.raw`^Invalid user <F-USER>\S+</F-USER> from <HOST>`,
        String.raw`^<F-NOFAIL>Accepted \w+</F-NOFAIL> for <F-USER>\S+</F-USER> from <HOST>`,
        String.raw`^Connection closed by <HOST>`,
      ],
      // fewer ignoreregexes than failregexes less two: fail2ban checks them before the prefregex
      ignoreregex: [String.raw`for root from`],
    };
    const lines = [
      'Aug 14 11:50:00 host sshd[1]: Failed password for bob from 192.0.2.1 port 22',
      'Aug 14 11:50:01 host sshd[1]: Failed password for root from 192.0.2.1 port 22',
      'Aug 14 11:50:02 host sshd[2]: Accepted publickey for alice from 192.0.2.2 port 22',
      'Aug 14 11:50:02 host sshd[2]: Connection closed by 192.0.2.2',
      'Aug 14 11:50:03 host sshd[3]: Invalid user jürgen from 2001:db8::3',
      'Aug 14 11:50:04 host cron[4]: Invalid user x from 192.0.2.4',
      'no date host sshd[5]: Invalid user y from 192.0.2.5',
    ];
    const whole = compile(p).m;
    const first = compile(p).m;
    const second = compile(p).m;
    expect(first.preMatchable).toBe(true);
    const kinds: string[] = [];
    for (const line of lines) {
      const a = whole.matchDetailed(line);
      const pr = first.prepare(line);
      const b = second.matchPreMatched(pr, first.preMatch(line, pr));
      expect(b).toEqual(a);
      expect(second.lineTemplate).toBe(whole.lineTemplate);
      kinds.push(a.outcome.kind);
    }
    expect(kinds).toEqual(['fail', 'ignored', 'pending', 'fail', 'fail', 'miss', 'miss']);
    expect(second.hits).toEqual(whole.hits);
    expect(second.ignoreHits).toEqual([1]);
    expect(second.ignoreHits).toEqual(whole.ignoreHits);
  });

  it('is not offered for multi-line filters, whose buffer is state', () => {
    const { m } = compile({ failregex: [String.raw`^a <HOST>`], maxlines: 2 });
    expect(m.preMatchable).toBe(false);
  });
});
