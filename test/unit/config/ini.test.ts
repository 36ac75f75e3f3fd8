/**
 * The INI layer against fail2ban's own (Python ConfigParser + SafeConfigParserWithIncludes,
 * extractOptions, splitWithOptions, substituteRecursiveTags) as the oracle, on crafted quirks:
 * inline comments, continuation lines with blanks and comments, key case, `%%`, `%(__name__)s`,
 * interpolation chains through [DEFAULT], `.local` + `%(known/x)s`, `[Init?family=inet6]`,
 * `[INCLUDES] before/after`, `%(section/x)s`, and the errors.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigFault, IniCache, extractOptions, parseIni, splitWithOptions, substituteRecursiveTags } from '../../../src/config/ini.js';

const PY = '/usr/bin/python3';
const ORACLE = path.join(import.meta.dirname, '../../fixtures/config/f2b-ini-oracle.py');
const haveF2b = fs.existsSync(PY) && fs.existsSync('/usr/lib/python3/dist-packages/fail2ban/client/configparserinc.py');

function oracle(reqs: unknown[]): unknown[] {
  const out = execFileSync(PY, [ORACLE], { input: reqs.map((r) => JSON.stringify(r)).join('\n'), encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] });
  return out.trim().split('\n').map((l) => JSON.parse(l) as unknown);
}

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

interface IniCase {
  name: string;
  files: Record<string, string>;
  read: string[];
}

const CASES: IniCase[] = [
  {
    name: 'comments, delimiters, key case, %% and __name__',
    read: ['a.conf'],
    files: {
      'a.conf': `[DEFAULT]
a = 1 ; inline comment after a space
b = x;y
c = v # a hash is not an inline comment
tab = t\t; after a tab
[S]
MixedCase Key = upper
e: colon delimiter
f =
g = %(a)s-%(b)s
h = 100%%
i = %(__name__)s
j = a = b = c
`,
    },
  },
  {
    name: 'continuation lines, blank lines and comments inside values',
    read: ['a.conf'],
    files: {
      'a.conf': `[S]
multi = line1
   line2

   line3
# a comment inside
   ; another
\tline4


next = n
  cont ; inline comment
  last

empty =
   starts-on-next
`,
    },
  },
  {
    name: 'interpolation reads the section first, then [DEFAULT]',
    read: ['a.conf'],
    files: {
      'a.conf': `[DEFAULT]
x = %(y)s
y = default-y
c1 = %(c2)s
c2 = %(c3)s
c3 = end
[A]
y = a-y
[B]
z = %(x)s and %(c1)s
`,
    },
  },
  {
    name: '.local overrides with %(known/x)s and conditional [Init?family=inet6]',
    read: ['a.conf'],
    files: {
      'a.conf': `[S]
foo = base
bar = b1
[Init]
p = 1
[Init?family=inet6]
p = 6
q = only6
`,
      'a.local': `[S]
foo = %(known/foo)s plus
baz = %(known/nothere)s
[DEFAULT]
nothere = from-default
bar = default-bar
`,
    },
  },
  {
    name: '[INCLUDES] before/after relative to the including file',
    read: ['main.conf'],
    files: {
      'main.conf': `[INCLUDES]
before = inc/b.conf
after = c.conf
[S]
v = main %(w)s
`,
      'inc/b.conf': `[INCLUDES]
before = x.conf
[DEFAULT]
w = from-b
[S]
v = b
keep = from-b
`,
      'inc/x.conf': `[S]
x = from-x
`,
      'c.conf': `[S]
u = c
keep = from-c
`,
    },
  },
  {
    name: '%(section/x)s and %(default/x)s',
    read: ['a.conf'],
    files: {
      'a.conf': `[DEFAULT]
d = dd
[lt_file]
p = file-p
[S]
q = %(lt_file/p)s
r = %(default/d)s
d = own-d
`,
    },
  },
  {
    name: 'interpolation errors',
    read: ['a.conf'],
    files: {
      'a.conf': `[S]
missing = %(nope)s
badpct = 50%
badref = %(x
loop1 = %(loop2)s
loop2 = %(loop1)s
fine = ok
`,
    },
  },
  { name: 'duplicate key', read: ['a.conf'], files: { 'a.conf': '[S]\na = 1\nA = 2\n' } },
  { name: 'line without a delimiter', read: ['a.conf'], files: { 'a.conf': '[S]\na = 1\ngarbage\n' } },
  { name: 'no section header', read: ['a.conf'], files: { 'a.conf': 'a = 1\n[S]\nb = 2\n' } },
  { name: 'duplicate section', read: ['a.conf'], files: { 'a.conf': '[S]\na = 1\n[T]\n[S]\nb = 2\n' } },
];

function ours(dir: string, read: string[]): unknown {
  const cache = new IniCache();
  const store = cache.load(read.map((f) => path.join(dir, f)));
  if (store.diagnostics.some((d) => d.severity === 'error')) return { error: 'read' };
  const out: Record<string, Record<string, unknown>> = { DEFAULT: {} };
  const get = (s: string, k: string): unknown => {
    try {
      return store.get(s, k);
    } catch (e) {
      if (e instanceof ConfigFault) return { error: 'interpolation' };
      throw e;
    }
  };
  for (const k of store.defaults.keys()) (out['DEFAULT'] as Record<string, unknown>)[k] = get('DEFAULT', k);
  for (const s of store.sections.keys()) {
    const sec: Record<string, unknown> = {};
    for (const k of store.options(s, true)) sec[k] = get(s, k);
    out[s] = sec;
  }
  return out;
}

/** both sides as comparable values: any error is just "error", key order ignored */
function normalise(v: unknown): unknown {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if ('error' in o && Object.keys(o).length === 1) return 'ERROR';
    return Object.fromEntries(Object.keys(o).sort().map((k) => [k, normalise(o[k])]));
  }
  return v;
}

describe('INI reading matches fail2ban', () => {
  it.skipIf(!haveF2b)('every crafted case reads the same values (or fails the same way)', () => {
    const dirs = CASES.map((c) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `aegis-ini-${process.pid}-`));
      tmpDirs.push(dir);
      for (const [f, text] of Object.entries(c.files)) {
        fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
        fs.writeFileSync(path.join(dir, f), text);
      }
      return dir;
    });
    const expected = oracle(CASES.map((c, i) => ({ kind: 'ini', dir: dirs[i], read: c.read })));
    CASES.forEach((c, i) => {
      expect(normalise(ours(dirs[i] ?? '', c.read)), c.name).toEqual(normalise(expected[i]));
    });
  });

  it.skipIf(!haveF2b)('extractOptions and splitWithOptions split like fail2ban', () => {
    const extract = [
      'sshd',
      'sshd[mode=aggressive]',
      `a[x="1,2", y='q r', z=3]`,
      'a[x=1][y=2]',
      'a[x=1',
      'a[=1]',
      'iptables[name=SSH, port="ssh", protocol=tcp]',
      'x[ k = v , k2=" spaced " ]',
      'm[a="line1\nline2", b=2]',
      'n[a=1,]',
      'o[a=1 junk="x"]',
    ];
    const split = [
      'iptables-multiport[name=SSH, port="ssh"]\n  sendmail-whois[name=SSH, dest=root]',
      'a\nb c',
      'a[x="1\n2"]\n b[y=2] c[z="3"]',
      '%(action_)s',
      '',
    ];
    const reqs = [...extract.map((s) => ({ kind: 'extract', s })), ...split.map((s) => ({ kind: 'split', s }))];
    const exp = oracle(reqs);
    extract.forEach((s, i) => {
      const r = extractOptions(s);
      const got = r.ok ? [r.name, Object.fromEntries(r.options)] : { error: 'x' };
      expect(normalise(got), s).toEqual(normalise(exp[i]));
    });
    split.forEach((s, i) => {
      expect(splitWithOptions(s), s).toEqual(exp[extract.length + i]);
    });
  });

  it.skipIf(!haveF2b)('substituteRecursiveTags resolves, keeps unknown tags and refuses loops like fail2ban', () => {
    const cases: Array<{ tags: Record<string, string>; conditional?: string }> = [
      { tags: { a: '3', b: '<a>_3', c: '<b>-<a>-<HOST>' } },
      { tags: { mode: 'aggr', 're-aggr': 'R<x>', x: 'X', failregex: '^<re-<mode>> from <HOST>$' } },
      { tags: { a: '<b>', b: '<a>' } },
      { tags: { a: '<a>' } },
      { tags: { ip: 'IP', cmd: 'ban <ip> <STDIN> <F-USER>', 'blocktype?family=inet6': 'v6', blocktype: 'v4', rule: '<blocktype>' }, conditional: 'family=inet6' },
      { tags: { n: '<<x>>', x: 'y', y: 'deep' } },
    ];
    const exp = oracle(cases.map((c) => ({ kind: 'tags', tags: c.tags, conditional: c.conditional ?? '' })));
    cases.forEach((c, i) => {
      let got: unknown;
      try {
        const opts = c.conditional ? { conditional: c.conditional } : {};
        got = Object.fromEntries(substituteRecursiveTags(new Map(Object.entries(c.tags)), opts));
      } catch {
        got = { error: 'x' };
      }
      expect(normalise(got), JSON.stringify(c.tags)).toEqual(normalise(exp[i]));
    });
  });
});

describe('INI diagnostics carry file and line', () => {
  it('points at the line of a bad line and of a duplicate key', () => {
    const p = parseIni('[S]\na = 1\n\ngarbage here\na = 2\n', '/x/jail.local');
    expect(p.diagnostics.map((d) => `${d.file}:${d.line ?? ''} [${d.section ?? ''}] ${d.key ?? ''}: ${d.message}`)).toEqual([
      '/x/jail.local:4 [S] : not a "key = value" line: "garbage here"',
      '/x/jail.local:5 [S] a: key appears twice in this section',
    ]);
  });

  it('records the line of every line of a multi-line value', () => {
    const p = parseIni('[S]\nfailregex = one\n  two\n# c\n\n  three\nnext = x\n', 'f');
    expect(p.sections.get('S')?.get('failregex')).toMatchObject({ value: 'one\ntwo\n\nthree', line: 2, lines: [2, 3, 5, 6] });
  });
});
