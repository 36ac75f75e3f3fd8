/**
 * `aegis-ban check`: the built CLI as a child process (npm test builds first). Exit 0 with a
 * summary, 2 with one line per error on stderr, `--dump` in the SPEC shape, `--json` errors.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = path.resolve(import.meta.dirname, '../../../dist/cli/aegis-ban.js');
const built = fs.existsSync(CLI);
const root = fs.mkdtempSync(path.join(os.tmpdir(), `aegis-check-${process.pid}-`));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function configDir(jailLocal: string): string {
  const d = fs.mkdtempSync(path.join(root, 'c-'));
  fs.mkdirSync(path.join(d, 'filter.d'));
  fs.writeFileSync(path.join(d, 'filter.d', 'demo.conf'), '[Definition]\nfailregex = ^fail from <HOST>$\n');
  fs.writeFileSync(path.join(d, 'app.log'), '');
  fs.writeFileSync(path.join(d, 'jail.local'), jailLocal.replaceAll('@DIR@', d));
  return d;
}
function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'check', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!built)('aegis-ban check', () => {
  it('exits 0 on a good config and says which jails are enabled', () => {
    const d = configDir('[app]\nenabled = true\nfilter = demo\nlogpath = @DIR@/*.log\n');
    const r = run('--config-dir', d);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`OK: ${d}: 1 jail(s) enabled: app\n`);
    expect(r.stderr).toBe('');
  });

  it('exits 2 and prints every error as one line naming file, line, section and key', () => {
    const d = configDir('[app]\nenabled = true\nfilter = demo\nmaxretry = five\nfindtime = soon\n');
    const r = run('--config-dir', d);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n').filter((l) => !l.startsWith('aegis-ban: warning:'))).toEqual(
      [
        `aegis-ban: ${d}/jail.local:4 [app] maxretry: expected a positive integer, got "five"`,
        `aegis-ban: ${d}/jail.local:5 [app] findtime: expected a time such as 600, 10m, 1h or 1d, got "soon"`,
      ],
    );
  });

  it('under --json prints the error object on stdout', () => {
    const d = configDir('[app]\nenabled = true\nfilter = nope\n');
    const r = run('--config-dir', d, '--json');
    expect(r.status).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({
      error: { code: 'AEGIS_ERR_FILTER_NOT_FOUND', message: `${d}/jail.local:3 [app] filter: filter "nope" not found (no filter.d/nope.conf or .local)` },
    });
  });

  it('--dump prints the resolved jails in the SPEC shape with globs expanded', () => {
    const d = configDir('[app]\nenabled = true\nfilter = demo\nlogpath = @DIR@/*.log\nbantime = -1\nfindtime = 5m\nmaxretry = 3\naction = dummy[foo=bar]\n');
    const r = run('--config-dir', d, '--dump');
    expect(r.status).toBe(0);
    const dump = JSON.parse(r.stdout) as { jails: Array<Record<string, unknown>> };
    expect(dump.jails[0]).toMatchObject({
      name: 'app',
      enabled: true,
      maxretry: 3,
      findtime: 300,
      bantime: -1,
      logpath: [path.join(d, 'app.log')],
      failregex: ['^fail from <HOST>$'],
      ignoreregex: [],
      prefregex: null,
      actions: [{ name: 'dummy', params: { foo: 'bar' } }],
      'bantime.increment': { enabled: false, factor: 1, formula: null, multipliers: [], maxtime: null, rndtime: null, overalljails: false },
    });
    // a missing action file only warns unless the action enforcer is chosen
    expect(r.stderr).toContain('action "dummy" not found');
  });

  it('refuses what aegisd would refuse: a broken regex, a formula it cannot evaluate', () => {
    const d = configDir('[app]\nenabled = true\nfilter = demo\nlogpath = @DIR@/app.log\nfailregex = ^bad (<HOST>\nbantime.increment = true\nbantime.formula = __import__("os").system("id")\n');
    const r = run('--config-dir', d);
    expect(r.status).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines.some((l) => l.startsWith(`aegis-ban: ${d}/jail.local:5 [app] failregex: failregex #1 "^bad (<HOST>"`))).toBe(true);
    expect(lines.some((l) => l.includes('[app] bantime.formula:'))).toBe(true);
  });

  it('a missing config directory is a config error (exit 2)', () => {
    const r = run('--config-dir', path.join(root, 'does-not-exist'));
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`aegis-ban: ${path.join(root, 'does-not-exist')}: config directory does not exist\n`);
  });
});
