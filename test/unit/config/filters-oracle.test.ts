/**
 * Differential: every stock filter in /etc/fail2ban/filter.d, with every `filterOptions` set of
 * fail2ban's own test corpus, loads into exactly the regex strings fail2ban's FilterReader gives.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadFilter } from '../../../src/config/filters.js';

const ETC = '/etc/fail2ban';
const CORPUS = '/usr/lib/python3/dist-packages/fail2ban/tests/files/logs';
const ORACLE = path.join(import.meta.dirname, '../../fixtures/config/f2b-filter-oracle.py');
const PY = '/usr/bin/python3';
const have = fs.existsSync(path.join(ETC, 'filter.d')) && fs.existsSync(PY) && fs.existsSync(CORPUS);

interface Req {
  dir: string;
  name: string;
  options: Record<string, string>;
  /** jail options, as a jail passes them (backend selects the filter's logtype) */
  vars?: Record<string, string>;
}

/** every option set the corpus uses for a filter, following `# addFILE:` like fail2ban's test */
function optionSets(name: string): Record<string, string>[] {
  const sets: Record<string, string>[] = [{}];
  const files = [name];
  for (let i = 0; i < files.length; i++) readSets(files[i] ?? '', sets, files);
  const seen = new Set<string>();
  return sets.filter((o) => {
    const k = JSON.stringify(Object.entries(o).sort());
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function readSets(name: string, sets: Record<string, string>[], files: string[]): void {
  const file = path.join(CORPUS, name);
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) return;
  let common: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const add = /^#\s*addFILE:\s*"(.*)"\s*$/.exec(line);
    if (add) {
      if (!files.includes(add[1] ?? '')) files.push(add[1] ?? '');
      continue;
    }
    const m = /^#\s*(filterOptions|fileOptions):\s*(.*)$/.exec(line);
    if (!m) continue;
    const data = JSON.parse(m[2] ?? '{}') as Record<string, string> | Record<string, string>[];
    if (m[1] === 'fileOptions') {
      common = data as Record<string, string>;
      continue;
    }
    for (const o of Array.isArray(data) ? data : [data]) {
      const opts = Object.fromEntries(Object.entries({ ...common, ...o }).filter(([k]) => !k.startsWith('test.')));
      sets.push(opts);
    }
  }
}

function specOf(name: string, options: Record<string, string>): string {
  const entries = Object.entries(options);
  if (entries.length === 0) return name;
  return `${name}[${entries.map(([k, v]) => (v.includes('"') ? `${k}='${v}'` : `${k}="${v}"`)).join(', ')}]`;
}

describe('stock filters against fail2ban FilterReader', () => {
  it.skipIf(!have)('every stock filter × corpus filterOptions gives fail2ban\'s strings', () => {
    const names = fs
      .readdirSync(path.join(ETC, 'filter.d'))
      .filter((f) => f.endsWith('.conf'))
      .map((f) => f.slice(0, -5))
      .sort();
    const reqs: Req[] = [];
    for (const name of names) for (const options of optionSets(name)) reqs.push({ dir: ETC, name, options });
    // as in a jail with `backend = systemd`: logtype journal unless the filter says otherwise
    for (const name of names) reqs.push({ dir: ETC, name, options: {}, vars: { backend: 'systemd' } });
    const out = execFileSync(PY, [ORACLE], { input: reqs.map((r) => JSON.stringify(r)).join('\n'), encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['pipe', 'pipe', 'ignore'] });
    const expected = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const failures: string[] = [];
    let compared = 0;
    const oracleErrors: string[] = [];
    reqs.forEach((r, i) => {
      const exp = expected[i] ?? {};
      if ('error' in exp) {
        oracleErrors.push(`${specOf(r.name, r.options)}: ${String(exp['error'])}`);
        // fail2ban refuses it: so must we
        if (loadFilter(r.dir, specOf(r.name, r.options), r.vars).filter !== null) failures.push(`${specOf(r.name, r.options)}: loaded, fail2ban refuses it`);
        return;
      }
      const { filter, diagnostics } = loadFilter(r.dir, specOf(r.name, r.options), r.vars);
      const label = `${specOf(r.name, r.options)}${r.vars ? ` with ${JSON.stringify(r.vars)}` : ''}`;
      if (!filter) {
        failures.push(`${label}: ${diagnostics.map((d) => d.message).join('; ')}`);
        return;
      }
      compared++;
      const got = {
        failregex: filter.failregex,
        ignoreregex: filter.ignoreregex,
        prefregex: filter.prefregex,
        datepattern: filter.datepattern,
        journalmatch: filter.journalmatch,
        maxlines: filter.maxlines,
      };
      const want = {
        failregex: exp['failregex'],
        ignoreregex: exp['ignoreregex'],
        prefregex: exp['prefregex'] || null,
        datepattern: exp['datepattern'] || null,
        journalmatch: exp['journalmatch'],
        maxlines: exp['maxlines'] ?? 1,
      };
      for (const k of Object.keys(want) as (keyof typeof want)[]) {
        if (JSON.stringify(got[k]) !== JSON.stringify(want[k])) {
          failures.push(`${label} ${k}:\n  got  ${JSON.stringify(got[k])}\n  want ${JSON.stringify(want[k])}`);
        }
      }
    });
    console.log(`${compared} filter/option sets compared, ${failures.length} differ; fail2ban could not read: ${oracleErrors.join(', ') || 'none'}`);
    expect(failures).toEqual([]);
    expect(compared).toBeGreaterThan(100);
  });
});
