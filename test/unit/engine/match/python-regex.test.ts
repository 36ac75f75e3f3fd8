import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { groupValue, translatePythonRegex, type TranslatedRegex } from '../../../../src/engine/match/python-regex.js';

const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
function hasPython(): boolean {
  try {
    execFileSync(PY, ['-c', 'import re'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const python = hasPython();
if (!python) console.log('skipping differential regex tests: python3 not installed');

function tr(p: string, multiline = false): TranslatedRegex {
  const r = translatePythonRegex(p, { multiline });
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

interface Outcome {
  match: boolean;
  span?: [number, number];
  groups?: Record<string, string | null>;
}

/** Python-like search with our translation: span (in code points) and named groups */
function ours(p: string, s: string, multiline = false): Outcome {
  const t = tr(p, multiline);
  const ascii = !/[^\x00-\x7f]/.test(s);
  const re = ascii || t.unicode === null ? t.ascii : t.unicode;
  const m = re.exec(s);
  if (!m) return { match: false };
  const groups: Record<string, string | null> = {};
  for (const name of t.nameIndex.keys()) groups[name] = groupValue(t, m, name) ?? null;
  const cp = (i: number): number => Array.from(s.slice(0, i)).length;
  return { match: true, span: [cp(m.index), cp(m.index + m[0].length)], groups };
}

function pythonOutcomes(cases: readonly (readonly [string, string, boolean?])[]): Outcome[] {
  const script = `
import json, re, sys
out = []
for p, s, ml in json.load(sys.stdin):
    m = re.compile(p, re.M if ml else 0).search(s)
    if not m:
        out.append({"match": False})
    else:
        out.append({"match": True, "span": list(m.span()), "groups": m.groupdict()})
print(json.dumps(out))
`;
  const input = JSON.stringify(cases.map(([p, s, ml]) => [p, s, ml ?? false]));
  return JSON.parse(execFileSync(PY, ['-c', script], { input, encoding: 'utf8' })) as Outcome[];
}

// pattern, subject[, multiline]
const CASES: (readonly [string, string, boolean?])[] = [
  [String.raw`(?P<user>\w+)@(?P<host>[\w.]+)`, 'mail from bob@example.org now'],
  [String.raw`^(?P<a>x)(?P=a)$`, 'xx'],
  [String.raw`^(?P<a>x)(?P=a)$`, 'xy'],
  [String.raw`^(?:(?P<a>x)|y)(?P=a)?z`, 'yz'],
  [String.raw`^(?:(?P<a>x)|y)(?P=a)z`, 'yz'], // a back-reference to a group that did not take part fails in Python
  [String.raw`\Afoo\Z`, 'foo'],
  [String.raw`\Afoo\Z`, 'foo\n'],
  [String.raw`foo$`, 'foo\n'],
  [String.raw`foo$`, 'foo\nbar'],
  [String.raw`^bar`, 'foo\nbar', true],
  [String.raw`foo$`, 'foo\nbar', true],
  [String.raw`^bar`, 'foo\nbar'],
  [String.raw`a.c`, 'a\nc'],
  [String.raw`(?s)a.c`, 'a\nc'],
  [String.raw`a.c`, 'a\rc'],
  [String.raw`(?i)failed PASSWORD`, 'Failed password'],
  [String.raw`(?i:failed) PASSWORD`, 'Failed PASSWORD'],
  [String.raw`(?i:failed) PASSWORD`, 'Failed password'],
  [String.raw`x(?i:[a-c]+)y`, 'xAbCy'],
  [String.raw`(?x) a b  # comment
      c`, 'abc'],
  [String.raw`^a{,2}b`, 'aab'],
  [String.raw`^a{,2}b`, 'aaab'],
  [String.raw`^a{2,}b`, 'aaab'],
  [String.raw`a{b`, 'a{b'],
  [String.raw`^\d+$`, '١٢٣'], // Arabic-Indic digits are \d in Python str patterns
  [String.raw`^\w+$`, 'Grüße'],
  [String.raw`\bé`, 'café é'],
  [String.raw`^\s+$`, '\x1c\x1f'],
  [String.raw`^[\w.-]+$`, 'naïve.host-1'],
  [String.raw`^(?P<p>(?:ab)+?)c`, 'ababc'],
  [String.raw`\x41\u0042\101`, 'ABA'],
  [String.raw`[\]]`, 'a]'],
  [String.raw`(?P<cond_inv>invalid user )?(?P<user>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)) from (?P<ip>\S+)(?(cond_user): |(?:(?:(?! from ).)*)$)`, 'Failed password for invalid user a b from 192.0.2.1 port 22 ssh2'],
  [String.raw`for (?P<cond_inv>invalid user )?(?P<user>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)) from (?P<ip>\S+)(?(cond_user): |(?:(?:(?! from ).)*)$)`, 'for root from 192.0.2.1: x'],
  [String.raw`for (?P<cond_inv>invalid user )?(?P<user>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)) from (?P<ip>\S+)(?(cond_user): |(?:(?:(?! from ).)*)$)`, 'for root x from 192.0.2.1 port 1'],
  [String.raw`^(?P<q>")?\w+(?(q)")$`, '"word"'],
  [String.raw`^(?P<q>")?\w+(?(q)")$`, 'word'],
  [String.raw`^(?P<q>")?\w+(?(q)")$`, '"word'],
  [String.raw`^(<)?\w+(?(1)>|!)$`, '<a>'],
  [String.raw`^(<)?\w+(?(1)>|!)$`, 'a!'],
  [String.raw`^(?:(?P<a>a)|(?P<b>b))(?(a)1|2)`, 'b2'],
  [String.raw`^(?:(?P<a>a)|(?P<b>b))(?(a)1|2)`, 'a1'],
  [String.raw`^(?:(?P<a>a)|(?P<b>b))(?(a)1|2)`, 'a2'],
  [String.raw`^x(?>a+)b`, 'xaab'],
  [String.raw`^(?>a*)a`, 'aaa'],
  [String.raw`^a*+a`, 'aaa'],
  [String.raw`(?<=\[)\d+(?=\])`, 'pid [123]'],
  [String.raw`(?<!x)y`, 'xyay'],
  [String.raw`^(?#comment)abc`, 'abc'],
];

describe('Python regex → JavaScript', () => {
  it.skipIf(!python)('agrees with Python re on match, span and named groups', () => {
    const expected = pythonOutcomes(CASES);
    CASES.forEach(([p, s, ml], i) => {
      const got = ours(p, s, ml ?? false);
      const want = expected[i]!;
      expect({ pattern: p, subject: s, ...got }).toEqual({ pattern: p, subject: s, ...want });
    });
  });

  it('rewrites a conditional into alternations split on the group\'s participation', () => {
    const t = tr(String.raw`^(?P<q>")?(?P<w>\w+)(?(q)")$`);
    expect(t.ascii.source).not.toContain('(?(');
    expect(groupValue(t, t.ascii.exec('"hi"')!, 'w')).toBe('hi');
    expect(groupValue(t, t.ascii.exec('hi')!, 'q')).toBeUndefined();
    expect(t.ascii.exec('"hi')).toBeNull();
    expect(t.ascii.exec('hi"')).toBeNull();
  });

  it('translates the stock sshd conditionals (invalid user / user with spaces)', () => {
    const re = String.raw`^Failed \S+ for (?P<cond_inv>invalid user )?(?P<user>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)) from (?P<ip4>[\d.]+)(?: port \d+)?(?: ssh\d*)?(?(cond_user): |(?:(?:(?! from ).)*)$)`;
    const t = tr(re);
    const run = (s: string): Record<string, string | undefined> | null => {
      const m = t.ascii.exec(s);
      return m ? { user: groupValue(t, m, 'user'), ip: groupValue(t, m, 'ip4') } : null;
    };
    expect(run('Failed password for invalid user john doe from 192.0.2.4 port 22 ssh2')).toEqual({ user: 'john doe', ip: '192.0.2.4' });
    expect(run('Failed password for root from 192.0.2.5 port 22 ssh2')).toEqual({ user: 'root', ip: '192.0.2.5' });
    // a user name with a space but without "invalid user": [^:]+ branch
    expect(run('Failed password for a b from 192.0.2.6 port 22 ssh2')).toEqual({ user: 'a b', ip: '192.0.2.6' });
  });

  it('keeps Python named groups, numbered groups and back-references apart after rewriting', () => {
    const t = tr(String.raw`(?P<a>x)?(?(a)(?P<b>y)|(?P<c>z))(?P=a)?`);
    const m = t.ascii.exec('xyx')!;
    expect(groupValue(t, m, 'a')).toBe('x');
    expect(groupValue(t, m, 'b')).toBe('y');
    expect(groupValue(t, m, 'c')).toBeUndefined();
    expect(t.pyIndex.get(1)?.length).toBeGreaterThan(0);
  });

  it('uses global flags at the start and refuses them elsewhere, as Python 3.11 does', () => {
    expect(tr('(?i)abc').ascii.flags).toContain('i');
    const r = translatePythonRegex('abc(?i)');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/global flags not at the start/);
  });

  it('refuses what it cannot translate, with a reason, instead of changing the meaning', () => {
    for (const [p, why] of [
      ['(?L)abc', /locale/],
      [String.raw`\N{DIGIT ONE}`, /\\N/],
      [String.raw`(?:(?P<a>a)?(?(a)b|c))+`, /repeated/],
      [String.raw`(?i)a(?-i:b)`, /case-sensitive/],
      [String.raw`abc\q`, /bad escape/],
      [String.raw`(abc`, /missing \)/],
      [String.raw`(?P<n>a)(?P<n>b)`, /redefinition/],
      [String.raw`(?P=nope)`, /unknown group/],
      // a negated class of negated Unicode sets has no exact non-`v` JavaScript form
      [String.raw`[^\W\d]+`, /negated class/],
    ] as const) {
      const r = translatePythonRegex(p);
      expect(r.ok, p).toBe(false);
      if (!r.ok) expect(r.message, p).toMatch(why);
    }
  });

  it('gives the ASCII fast form and a Unicode form that matches like Python str patterns', () => {
    const t = tr(String.raw`^\w+ \d+$`);
    expect(t.ascii.flags).not.toContain('u');
    expect(t.unicode?.flags).toContain('u');
    expect(t.unicode!.test('Grüße ٣')).toBe(true);
    expect(t.ascii.test('Gruesse 3')).toBe(true);
  });
});

describe('required literals of a regex', () => {
  it('takes the best literal run of a sequence and the union over alternatives', () => {
    expect(tr(String.raw`^Failed password for \S+ from (?P<ip4>\S+)`).literals).toEqual(['Failed password for ']);
    // two 7-character alternatives beat one 6-character run
    expect(new Set(tr(String.raw`^(?:Invalid|Illegal) user \S+`).literals)).toEqual(new Set(['Invalid', 'Illegal']));
    expect(new Set(tr(String.raw`(?:alpha|beta)\d+`).literals)).toEqual(new Set(['alpha', 'beta']));
  });

  it('gives no literal for an optional part only or case-insensitive text', () => {
    expect(tr(String.raw`(?:abc)?\d+`).literals).toBeNull();
    expect(tr(String.raw`(?i)abcdef`).literals).toBeNull();
    expect(tr(String.raw`\d+|abc`).literals).toBeNull();
  });

  it('is sound: every text a random regex matches contains one of its literals', () => {
    // seeded random regexes over a small alphabet and random subjects: whenever the regex
    // matches, the literal set (if any) must occur in the matched text
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const atom = (d: number): string => {
      const k = d > 2 ? 3 + rnd(4) : rnd(7);
      switch (k) {
        case 0:
          return `(?:${seq(d + 1)}|${seq(d + 1)})`;
        case 1:
          return `(?:${seq(d + 1)})${['?', '*', '+', '{1,2}', '{0,2}'][rnd(5)]}`;
        case 2:
          return `(?P<g${d}_${rnd(1000)}>${seq(d + 1)})`;
        case 3:
          return '[ab]';
        default:
          return 'abc'[rnd(3)]!;
      }
    };
    const seq = (d: number): string => {
      let s = '';
      const n = 1 + rnd(4);
      for (let i = 0; i < n; i++) s += atom(d);
      return s;
    };
    let checked = 0;
    for (let i = 0; i < 400; i++) {
      const p = seq(0);
      const r = translatePythonRegex(p);
      if (!r.ok) continue;
      const lits = r.value.literals;
      for (let j = 0; j < 30; j++) {
        let s = '';
        const n = rnd(12);
        for (let k = 0; k < n; k++) s += 'abcx'[rnd(4)];
        const m = r.value.ascii.exec(s);
        if (!m) continue;
        checked++;
        if (lits !== null) expect(lits.some((l) => m[0].includes(l)), `${p} on ${s} (literals ${JSON.stringify(lits)})`).toBe(true);
      }
    }
    expect(checked).toBeGreaterThan(100);
  });
});
