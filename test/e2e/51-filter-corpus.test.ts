/**
 * Every stock fail2ban filter over fail2ban's own test logs (Debian package `fail2ban`,
 * …/fail2ban/tests/files/logs/*), with each `# filterOptions:` set, compared line by line with
 * the `# failJSON:` annotations — the rules of fail2ban's tests/samplestestcase.py: now is
 * 1124013600, local time is CET/CEST (Europe/Zurich), journal lines get the time of "now".
 *
 * Filters are resolved by fail2ban's own reader (test/fixtures/logs/f2b-corpus.py prints them),
 * so this test measures the matching engine (engine/match) and nothing of our config loader.
 * Prints `N passed, M failed` and lists failures; failures listed (with a reason) in
 * test/fixtures/logs/KNOWN-DIFFERENCES.md are reported but do not fail the test.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compileFilter, PRE_TEXT, type DetailedMatcher, type FailData } from '../../src/engine/match/filter.js';
import { ZoneConverter } from '../../src/engine/match/dates.js';
import { parseAddress } from '../../src/net/address.js';
import type { FilterSpec } from '../../src/config/types.js';

const here = dirname(fileURLToPath(import.meta.url));
const SCRIPT = join(here, '../fixtures/logs/f2b-corpus.py');
const KNOWN = join(here, '../fixtures/logs/KNOWN-DIFFERENCES.md');
const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const TEST_NOW = 1124013600;
const ZONE = 'Europe/Zurich';

function hasFail2ban(): boolean {
  try {
    execFileSync(PY, ['-c', 'import fail2ban.client.filterreader'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const available = hasFail2ban();
if (!available) console.log('skipping filter corpus: Debian package fail2ban (python3 module) is not installed');

interface Run {
  filter: string;
  journal: boolean;
  prefix?: string;
}
interface Check {
  file: string;
  line: number;
  text: string;
  faildata: Record<string, unknown>;
  annotated: boolean;
  runs: Run[];
}
interface CorpusFilter {
  name: string;
  filters: Record<string, { opts: Record<string, string>; spec: { prefregex: string | null; failregex: string[]; ignoreregex: string[]; maxlines: number; datepattern: string | null } }>;
  checks: Check[];
  noSamples?: boolean;
  unresolvable?: string;
}

function knownDifferences(): Set<string> {
  if (!existsSync(KNOWN)) return new Set();
  const out = new Set<string>();
  for (const m of readFileSync(KNOWN, 'utf8').matchAll(/^- `([^`]+)`/gm)) out.add(m[1]!);
  return out;
}

function sameHost(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const pa = parseAddress(a);
  const pb = parseAddress(b);
  return pa !== null && pb !== null && pa.text === pb.text;
}

function sortedEq(a: unknown, b: unknown): boolean {
  const arr = (v: unknown): string[] | null =>
    v instanceof Set ? [...v].map(String).sort() : Array.isArray(v) ? v.map(String).sort() : null;
  const x = arr(a);
  const y = arr(b);
  return x !== null && y !== null && JSON.stringify(x) === JSON.stringify(y);
}

let corpusCache: CorpusFilter[] | null = null;
function loadCorpus(): CorpusFilter[] {
  corpusCache ??= JSON.parse(execFileSync(PY, [SCRIPT], { maxBuffer: 64 << 20, encoding: 'utf8' })) as CorpusFilter[];
  return corpusCache;
}

function specOf(cf: CorpusFilter, f: CorpusFilter['filters'][string]): FilterSpec {
  return {
    name: cf.name,
    file: `filter.d/${cf.name}.conf`,
    options: f.opts,
    failregex: f.spec.failregex,
    ignoreregex: f.spec.ignoreregex,
    prefregex: f.spec.prefregex,
    datepattern: f.spec.datepattern,
    maxlines: f.spec.maxlines,
    journalmatch: [],
    json: null,
    origin: { file: `filter.d/${cf.name}.conf`, section: 'Definition' },
  };
}

describe('stock filters over fail2ban\'s own sample logs', () => {
  it.skipIf(!available)('match, host and time agree with every failJSON annotation', () => {
    const corpus = loadCorpus();
    const zone = new ZoneConverter(ZONE);
    const known = knownDifferences();
    let passed = 0;
    const failures: string[] = [];
    const knownHit: string[] = [];
    const skipped: string[] = [];
    let filtersRun = 0;
    let literalChecked = 0;
    let literalMisses = 0;
    for (const cf of corpus) {
      if (cf.unresolvable || cf.noSamples) {
        skipped.push(`${cf.name}: ${cf.unresolvable ?? 'no sample log'}`);
        continue;
      }
      filtersRun++;
      const matchers = new Map<string, DetailedMatcher | string>();
      const literalsOf = new Map<string, readonly string[] | null>();
      for (const [fname, f] of Object.entries(cf.filters)) {
        const { filter, diagnostics } = compileFilter(specOf(cf, f));
        literalsOf.set(fname, filter?.literals ?? null);
        matchers.set(
          fname,
          filter === null
            ? diagnostics.map((d) => d.message).join('; ')
            : (filter.createMatcher({ now: () => TEST_NOW, timezone: ZONE }) as DetailedMatcher),
        );
      }
      for (const c of cf.checks) {
        for (const run of c.runs) {
          const id = `${c.file}:${c.line} ${run.filter}`;
          const m = matchers.get(run.filter);
          const problem = ((): string | null => {
            if (m === undefined) return 'filter not resolved';
            if (typeof m === 'string') return `filter refused: ${m}`;
            const text = run.journal ? (run.prefix ?? '') + c.text : c.text;
            const r = run.journal ? m.matchDetailed(text, TEST_NOW) : m.matchDetailed(text);
            const fd = c.faildata;
            const want = fd['match'] === true;
            const got = r.outcome.kind === 'fail';
            if (!got) return want ? `not matched (${r.outcome.kind})` : null;
            // the engine's raw-buffer prefilter must never drop a failing line
            const lits = literalsOf.get(run.filter) ?? null;
            if (lits !== null && !lits.some((l) => text.includes(l))) {
              literalMisses++;
              return `literal prefilter would drop this failing line (literals ${JSON.stringify(lits)})`;
            }
            literalChecked++;
            if (!want) return `matched but should not (host ${r.outcome.kind === 'fail' ? r.outcome.host : ''}, regex ${r.outcome.kind === 'fail' ? r.outcome.regexIndex : ''})`;
            if (r.outcome.kind !== 'fail') return null;
            const fail: FailData = r.fail ?? new Map();
            for (const [k, v] of Object.entries(fd)) {
              if (k === 'time' || k === 'match' || k === 'desc' || k === 'constraint') continue;
              let fv: unknown = fail.get(k);
              if (v === null && fv === undefined) continue; // Python: fail.get(k) is None
              if (fv === undefined) {
                if (k === 'host') fv = r.outcome.host;
                if (k === 'attempts') fv = r.matchCount;
              }
              if (fv instanceof Set || Array.isArray(v)) {
                if (!sortedEq(fv, v)) return `${k}: got ${JSON.stringify(fv instanceof Set ? [...fv] : fv)}, want ${JSON.stringify(v)}`;
                continue;
              }
              if (k === 'host' ? !sameHost(fv, v) : fv !== v) return `${k}: got ${JSON.stringify(fv)}, want ${JSON.stringify(v)}`;
            }
            const t = fd['time'];
            if (typeof t === 'string') {
              const mm = /^(\d{4})-(\d{1,2})-(\d{1,2})T(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?$/.exec(t);
              if (!mm) return `bad failJSON time ${t}`;
              const wall = Date.UTC(+mm[1]!, +mm[2]! - 1, +mm[3]!, +mm[4]!, +mm[5]!, +mm[6]!) / 1000;
              const want = zone.wallToUtc(wall) + (mm[7] ? Number(`0.${mm[7]}`) : 0);
              const got = r.outcome.time;
              if (got === null || Math.abs(got - want) > 1e-6) return `time: got ${got}, want ${want} (${t})`;
            }
            return null;
          })();
          if (problem === null) passed++;
          else if (known.has(id)) knownHit.push(`${id}: ${problem}`);
          else failures.push(`${id}: ${problem}\n    ${c.text}`);
        }
      }
    }
    const total = passed + failures.length + knownHit.length;
    console.log(`filter corpus: ${filtersRun} filters, ${total} line×option checks`);
    if (skipped.length) console.log(`not run (fail2ban itself cannot read them here):\n  ${skipped.join('\n  ')}`);
    if (knownHit.length) console.log(`known differences (${knownHit.length}):\n  ${knownHit.join('\n  ')}`);
    if (failures.length) console.log(`failures:\n  ${failures.join('\n  ')}`);
    const withLits = [...corpus].reduce((n, cf) => n + Object.keys(cf.filters).length, 0);
    console.log(`literal prefilter: ${literalChecked} failing lines checked against their filter's literals, ${literalMisses} would be dropped (${withLits} filter variants)`);
    console.log(`${passed} passed, ${failures.length + knownHit.length} failed`);
    expect(failures).toEqual([]);
  });

  // `aegis-ban regex` on two threads splits each line's work: the date stage and the pre stage
  // (early ignoreregex, prefregex) on one matcher, the failregexes and merging on another
  it.skipIf(!available)('give the same outcome for every line when matched in two stages on two matchers', () => {
    let lines = 0;
    let variants = 0;
    let preTexts = 0;
    const differences: string[] = [];
    for (const cf of loadCorpus()) {
      if (cf.unresolvable || cf.noSamples) continue;
      for (const [fname, f] of Object.entries(cf.filters)) {
        const { filter } = compileFilter(specOf(cf, f));
        if (filter === null) continue;
        const opts = { now: () => TEST_NOW, timezone: ZONE };
        const whole = filter.createMatcher(opts) as DetailedMatcher;
        const first = filter.createMatcher(opts) as DetailedMatcher;
        const second = filter.createMatcher(opts) as DetailedMatcher;
        if (!first.preMatchable) continue;
        variants++;
        for (const c of cf.checks) {
          for (const run of c.runs) {
            if (run.filter !== fname || run.journal) continue;
            lines++;
            const a = whole.matchDetailed(c.text);
            const p = first.prepare(c.text);
            const pre = first.preMatch(c.text, p);
            if (pre.kind === PRE_TEXT) preTexts++;
            const b = second.matchPreMatched(p, pre);
            const show = (r: typeof a): string => JSON.stringify({ o: r.outcome, n: r.matchCount, i: r.ignoreIndex, t: whole.lineTemplate });
            if (show(a) !== show(b)) differences.push(`${c.file}:${c.line} ${fname}: ${show(a)} vs ${show(b)}`);
          }
        }
        if (JSON.stringify([whole.hits, whole.ignoreHits]) !== JSON.stringify([second.hits, second.ignoreHits])) {
          differences.push(`${cf.name} ${fname}: hits ${JSON.stringify([whole.hits, whole.ignoreHits])} vs ${JSON.stringify([second.hits, second.ignoreHits])}`);
        }
      }
    }
    console.log(`two-stage matching: ${variants} single-line filter variants, ${lines} lines (${preTexts} through the prefregex or past it)`);
    expect(lines).toBeGreaterThan(1000);
    expect(differences).toEqual([]);
  });
});

/** the built CLI, and fail2ban's proftpd sample log with its filter, for the CLI tests below */
const cli = join(here, '../../dist/cli/aegis-ban.js');
const sample = '/usr/lib/python3/dist-packages/fail2ban/tests/files/logs/proftpd';
const proftpdReady = available && existsSync(cli) && existsSync(sample) && existsSync('/etc/fail2ban/filter.d/proftpd.conf');

describe('aegis-ban regex --json over a sample log', () => {
  it.skipIf(!proftpdReady)('prints one object per line, skips comments, and agrees with the failJSON annotations', () => {
    const dir = mkdtempSync(join(tmpdir(), `aegis-regex-${process.pid}-`));
    try {
      mkdirSync(join(dir, 'filter.d'));
      for (const f of ['proftpd.conf', 'common.conf']) copyFileSync(join('/etc/fail2ban/filter.d', f), join(dir, 'filter.d', f));
      const out = execFileSync(process.execPath, [cli, 'regex', sample, 'proftpd', '--config-dir', dir, '--json', '--now', String(TEST_NOW), '--timezone', ZONE], {
        encoding: 'utf8',
      });
      const rows = out.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const lines = readFileSync(sample, 'utf8').replace(/\n$/, '').split('\n');
      expect(rows.length).toBe(lines.length);
      rows.forEach((r, i) => expect(r['line']).toBe(i + 1));
      const zone = new ZoneConverter(ZONE);
      let annotated = 0;
      lines.forEach((l, i) => {
        if (l.startsWith('#') || l.trim() === '') expect(rows[i]).toEqual({ line: i + 1, skipped: true });
        const m = /^# failJSON: (.*)$/.exec(l);
        if (!m) return;
        const fd = JSON.parse(m[1]!) as { match: boolean; host?: string; time?: string };
        const row = rows[i + 1]!;
        annotated++;
        expect(row['match'], lines[i + 1]).toBe(fd.match);
        if (!fd.match) return;
        expect(row['host']).toBe(fd.host);
        if (fd.time) {
          const [d, t] = fd.time.split('T');
          const [Y, M, D] = d!.split('-').map(Number);
          const [h, mi, se] = t!.split(':').map(Number);
          expect(row['time']).toBe(zone.wallToUtc(Date.UTC(Y!, M! - 1, D!, h!, mi!, se!) / 1000));
        }
      });
      expect(annotated).toBeGreaterThan(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('aegis-ban regex summary with and without the native scanner', () => {
  it.skipIf(!proftpdReady)('counts lines, comment and blank lines and matches the same either way', () => {
    const dir = mkdtempSync(join(tmpdir(), `aegis-regex-${process.pid}-`));
    try {
      // the sample twice, with blank and whitespace-only lines and no final newline
      const text = readFileSync(sample, 'utf8');
      const log = join(dir, 'sample.log');
      writeFileSync(log, `${text}\n\n   \t\n${text.trimEnd()}`);
      const run = (env: Record<string, string>): string =>
        execFileSync(process.execPath, [cli, 'regex', log, '/etc/fail2ban/filter.d/proftpd.conf', '--now', String(TEST_NOW), '--timezone', ZONE], { encoding: 'utf8', env: { ...process.env, ...env } });
      const summary = (out: string): string[] => out.split('\n').filter((l) => /^Lines: |comment or blank lines skipped/.test(l));
      const native = summary(run({}));
      const js = summary(run({ AEGIS_NATIVE_SCAN: '0' }));
      expect(native).toEqual(js);
      const lines = readFileSync(log, 'utf8').split('\n');
      const skippable = lines.filter((l) => l.startsWith('#') || /^[ \t\r]*$/.test(l)).length;
      // "Lines:" counts the lines considered, the skipped ones apart
      expect(native.join('\n')).toContain(`Lines: ${lines.length - skippable} lines`);
      expect(native.join('\n')).toContain(`(${skippable} comment or blank lines skipped)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('aegis-ban regex and fail2ban-regex on the same generated sshd log', () => {
  const ready = available && existsSync(cli) && existsSync('/etc/fail2ban/filter.d/sshd.conf') && existsSync('/usr/bin/fail2ban-regex');
  // 45 000 lines (~5 MB) is past the size at which aegis-ban runs the date stage on a second thread
  it.skipIf(!ready).each([
    [4000, 'one thread'],
    [45_000, 'two threads'],
  ])('report failures on exactly the same lines (%i lines: %s)', async (count, threads) => {
    // the bench's generator (plain JS, outside the typed tree): imported by a computed path
    const benchModule: string = join(here, '../../bench/regex.bench.js');
    const { generateSshdLog } = (await import(benchModule)) as { generateSshdLog: (n: number, seed?: number) => string };
    const dir = mkdtempSync(join(tmpdir(), `aegis-regex-diff-${process.pid}-`));
    try {
      const log = join(dir, 'auth.log');
      const text = generateSshdLog(count, 7);
      writeFileSync(log, text);
      const summary = execFileSync(process.execPath, [cli, 'regex', log, 'sshd', '--config-dir', '/etc/fail2ban', '--now', '1795000000', '--timezone', 'UTC'], { encoding: 'utf8' });
      expect(summary).toContain(threads === 'two threads' ? 'on 2 threads' : 'on 1 thread');
      const lines = text.trimEnd().split('\n');
      const ours = execFileSync(process.execPath, [cli, 'regex', log, 'sshd', '--config-dir', '/etc/fail2ban', '--json', '--now', '1795000000', '--timezone', 'UTC'], { encoding: 'utf8', maxBuffer: 1 << 28 })
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as { line: number; match?: boolean })
        .filter((r) => r.match === true)
        .map((r) => lines[r.line - 1]);
      const f2b = execFileSync('/usr/bin/fail2ban-regex', ['--print-all-matched', log, '/etc/fail2ban/filter.d/sshd.conf'], {
        encoding: 'utf8',
        env: { ...process.env, TZ: 'UTC' },
        maxBuffer: 1 << 28,
      });
      const theirs = f2b
        .slice(f2b.indexOf('|- Matched line(s):'))
        .split('\n')
        .filter((l) => l.startsWith('|  '))
        .map((l) => l.slice(3));
      console.log(`generated sshd log: ${lines.length} lines, aegis ${ours.length} failures, fail2ban-regex ${theirs.length}`);
      expect(theirs.length).toBeGreaterThan(100);
      expect(ours).toEqual(theirs);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('aegis-ban regex on one thread and on two', () => {
  const ready = existsSync(cli) && existsSync('/etc/fail2ban/filter.d/common.conf');
  // a filter whose prefregex, early ignoreregex and connection ids all run on the second
  // thread's side of the split, over a log past the two-thread size with lines of every kind
  it.skipIf(!ready)('prints exactly the same result for every line', async () => {
    const benchModule: string = join(here, '../../bench/regex.bench.js');
    const { generateSshdLog } = (await import(benchModule)) as { generateSshdLog: (n: number, seed?: number) => string };
    const dir = mkdtempSync(join(tmpdir(), `aegis-regex-threads-${process.pid}-`));
    try {
      mkdirSync(join(dir, 'filter.d'));
      copyFileSync('/etc/fail2ban/filter.d/common.conf', join(dir, 'filter.d/common.conf'));
      writeFileSync(
        join(dir, 'filter.d/split.conf'),
        [
          '[INCLUDES]',
          'before = common.conf',
          '[Definition]',
          '_daemon = sshd',
          'prefregex = ^<F-MLFID>%(__prefix_line)s</F-MLFID><F-CONTENT>.+</F-CONTENT>$',
          'failregex = ^Failed password for (?:invalid user )?<F-USER>\\S+</F-USER> from <HOST>',
          '            ^Invalid user <F-USER>\\S+</F-USER> from <HOST>',
          '            ^<F-NOFAIL>Accepted \\w+</F-NOFAIL> for <F-USER>\\S+</F-USER> from <HOST>',
          '            ^pam_unix\\(sshd:auth\\): authentication failure;.* rhost=<HOST>\\s+user=<F-USER>\\S+</F-USER>',
          '            ^Connection closed by <HOST> port \\d+ \\[preauth\\]$',
          'ignoreregex = user=root$',
          '',
        ].join('\n'),
      );
      const extra = [
        '# a comment line with sshd: Invalid user x from 198.51.100.1',
        '',
        '   ',
        'no date here sshd[1]: Invalid user nodate from 198.51.100.2',
        'Nov  1 00:00:00 web-01 sshd[7]: Invalid user jürgen from 198.51.100.3 port 22',
        'Nov  1 00:00:00 web-01 sshd[8]: Failed password for root from 198.51.100.4 port 22 ssh2',
      ].join('\n');
      const text = generateSshdLog(45_000, 11);
      const cut = text.indexOf('\n', text.length >> 1) + 1;
      const log = join(dir, 'auth.log');
      writeFileSync(log, `${text.slice(0, cut)}${extra}\n${text.slice(cut)}${extra}`);
      const args = [cli, 'regex', log, 'split', '--config-dir', dir, '--now', '1795000000', '--timezone', 'UTC'];
      const run = (json: boolean, threads: string): string =>
        execFileSync(process.execPath, json ? [...args, '--json'] : args, { encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, AEGIS_REGEX_THREADS: threads } });
      const one = run(true, '1');
      const two = run(true, '2');
      expect(two.split('\n').length).toBe(one.split('\n').length);
      expect(two).toEqual(one);
      const rows = one.trimEnd().split('\n').map((l) => JSON.parse(l) as { match?: boolean; skipped?: boolean; fields?: Record<string, string> });
      expect(rows.filter((r) => r.match === true).length).toBeGreaterThan(1000);
      expect(rows.filter((r) => r.skipped === true).length).toBe(6);
      expect(rows.some((r) => r.fields?.['user'] === 'jürgen')).toBe(true);
      const summary = (out: string): string => out.replace(/\[processed in .*\]/, '');
      const s1 = run(false, '1');
      const s2 = run(false, '2');
      expect(s1).toContain('on 1 thread');
      expect(s2).toContain('on 2 threads');
      expect(summary(s2)).toEqual(summary(s1));
      expect(s1).toMatch(/Ignoreregex: [1-9]\d* total/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
