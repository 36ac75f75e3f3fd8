/**
 * Every file in test/fixtures/config/invalid/ is a broken config whose first line says the
 * exact one-line message `aegis-ban check` must print for it:
 *   # expect-error: jail.local:5 [app] maxretry: expected a positive integer, got "five"
 * (or `# expect-warning:` for a problem that must warn without failing). The fixture is
 * installed as jail.local over test/fixtures/config/invalid-base; `# --- file: PATH` starts
 * another file (aegis.conf, filter.d/x.conf…), that marker line being its line 1.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/config/resolve.js';
import { formatDiagnostic } from '../../../src/config/types.js';

const FIXTURES = path.join(import.meta.dirname, '../../fixtures/config/invalid');
const BASE = path.join(import.meta.dirname, '../../fixtures/config/invalid-base');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `aegis-invalid-${process.pid}-`));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function install(fixture: string): string {
  const dir = fs.mkdtempSync(path.join(tmp, `${fixture.replace(/\.conf$/, '')}-`));
  fs.cpSync(BASE, dir, { recursive: true });
  const text = fs.readFileSync(path.join(FIXTURES, fixture), 'utf8');
  const files = new Map<string, string[]>([['jail.local', []]]);
  let current = 'jail.local';
  for (const line of text.split('\n')) {
    const m = /^# --- file: (\S+)\s*$/.exec(line);
    if (m) {
      current = m[1] ?? 'x';
      files.set(current, []);
    }
    files.get(current)?.push(line);
  }
  for (const [f, lines] of files) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), lines.join('\n'));
  }
  return dir;
}

const cases = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.conf')).sort();

describe('invalid configs: one exact line per problem', () => {
  it('has fixtures', () => {
    expect(cases.length).toBeGreaterThan(20);
  });
  for (const fixture of cases) {
    const first = fs.readFileSync(path.join(FIXTURES, fixture), 'utf8').split('\n')[0] ?? '';
    const m = /^# expect-(error|warning): (.*)$/.exec(first);
    it(`${fixture}: ${m?.[2] ?? '(no expectation line!)'}`, () => {
      expect(m).not.toBeNull();
      const dir = install(fixture);
      const { config, diagnostics } = resolveConfig(dir);
      const lines = diagnostics.filter((d) => d.severity === m?.[1]).map((d) => formatDiagnostic({ ...d, file: path.relative(dir, d.file) }));
      expect(lines).toContain(m?.[2]);
      if (m?.[1] === 'error') expect(config).toBeNull();
      else expect(config).not.toBeNull();
    });
  }
});
