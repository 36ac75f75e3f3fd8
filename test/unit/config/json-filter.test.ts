/** The Aegis JSON filter keys, read through loadFilter like any filter.d file. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadFilter } from '../../../src/config/filters.js';
import { formatDiagnostic } from '../../../src/config/types.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), `aegis-jsonf-${process.pid}-`));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
fs.mkdirSync(path.join(root, 'filter.d'));
function filter(name: string, text: string): string {
  fs.writeFileSync(path.join(root, 'filter.d', `${name}.conf`), text);
  return name;
}

describe('JSON filter keys', () => {
  it('parses every condition form into JsonFilterSpec', () => {
    const name = filter(
      'api',
      `[Definition]
jsonhost = req.remoteAddress
jsontime = ts
jsonfail = event=auth.login.failed|auth.mfa.failed
           status=400..499 path~^/api/v1/admin/ user?
           status>=500 level<=30 msg="two words" kind!=probe|health
jsonignore = user=healthcheck
jsonfields = user, path req.id
`,
    );
    const { filter: f, diagnostics } = loadFilter(root, name);
    expect(diagnostics).toEqual([]);
    expect(f?.failregex).toEqual([]);
    expect(f?.json).toEqual({
      hostPath: ['req', 'remoteAddress'],
      timePath: ['ts'],
      fail: [
        [{ path: ['event'], op: 'eq', values: ['auth.login.failed', 'auth.mfa.failed'] }],
        [
          { path: ['status'], op: 'range', values: ['400', '499'] },
          { path: ['path'], op: 'regex', values: ['^/api/v1/admin/'] },
          { path: ['user'], op: 'exists', values: [] },
        ],
        [
          { path: ['status'], op: 'range', values: ['500', 'Infinity'] },
          { path: ['level'], op: 'range', values: ['-Infinity', '30'] },
          { path: ['msg'], op: 'eq', values: ['two words'] },
          { path: ['kind'], op: 'ne', values: ['probe', 'health'] },
        ],
      ],
      ignore: [[{ path: ['user'], op: 'eq', values: ['healthcheck'] }]],
      fields: ['user', 'path', 'req.id'],
    });
  });

  it('keeps regex escapes inside quotes and reads \\| as a literal bar', () => {
    const name = filter('esc', '[Definition]\njsonhost = ip\njsonfail = path~"^/api/v1\\.0/\\d+ x" msg=a\\|b|c note="say \\"hi\\""\n');
    const { filter: f, diagnostics } = loadFilter(root, name);
    expect(diagnostics).toEqual([]);
    expect(f?.json?.fail).toEqual([
      [
        { path: ['path'], op: 'regex', values: ['^/api/v1\\.0/\\d+ x'] },
        { path: ['msg'], op: 'eq', values: ['a|b', 'c'] },
        { path: ['note'], op: 'eq', values: ['say "hi"'] },
      ],
    ]);
  });

  it('defaults jsontime to `time` and selects rules by filter options like any <tag>', () => {
    const name = filter(
      'modes',
      `[Definition]
mode = all
jsonhost = ip
jsonfail-auth = event=login.failed
jsonfail-admin = status=401
jsonfail-all = <jsonfail-auth>
               <jsonfail-admin>
jsonfail = <jsonfail-<mode>>
`,
    );
    expect(loadFilter(root, name).filter?.json?.fail.length).toBe(2);
    const admin = loadFilter(root, `${name}[mode=admin]`).filter?.json;
    expect(admin?.timePath).toEqual(['time']);
    expect(admin?.fail).toEqual([[{ path: ['status'], op: 'eq', values: ['401'] }]]);
  });

  it('names file, line and key of every bad rule, all at once', () => {
    const name = filter(
      'bad',
      `[Definition]
jsonhost = ip
jsonfail = event=ok
           status=9..1
           path~(
`,
    );
    const r = loadFilter(root, name);
    expect(r.filter).toBeNull();
    expect(r.diagnostics.map((d) => formatDiagnostic({ ...d, file: path.basename(d.file) }))).toEqual([
      'bad.conf:4 [Definition] jsonfail: empty range 9..1 for status',
      'bad.conf:5 [Definition] jsonfail: invalid regex "(" for path: Invalid regular expression: /(/: Unterminated group',
    ]);
  });
});

describe('loadFilter specs', () => {
  it('accepts name, name[k=v], name.conf and a path with options; a missing filter is one diagnostic', () => {
    const name = filter('p', '[Definition]\nfailregex = ^<w> <HOST>$\nw = word\n');
    const file = path.join(root, 'filter.d', 'p.conf');
    expect(loadFilter(root, name).filter?.failregex).toEqual(['^word <HOST>$']);
    expect(loadFilter(root, 'p[w="two words"]').filter?.failregex).toEqual(['^two words <HOST>$']);
    expect(loadFilter(root, 'p.conf').filter?.failregex).toEqual(['^word <HOST>$']);
    expect(loadFilter('/nonexistent', `${file}[w=x]`).filter?.failregex).toEqual(['^x <HOST>$']);
    const missing = loadFilter(root, 'nope');
    expect(missing.filter).toBeNull();
    expect(missing.diagnostics.map((d) => d.code)).toEqual(['AEGIS_ERR_FILTER_NOT_FOUND']);
  });

  it('reads NAME.local after NAME.conf and a foreign file with its includes', () => {
    filter('q', '[INCLUDES]\nbefore = q-common.conf\n[Definition]\nfailregex = ^<pre>q <HOST>$\n');
    fs.writeFileSync(path.join(root, 'filter.d', 'q-common.conf'), '[DEFAULT]\npre = common-\n');
    fs.writeFileSync(path.join(root, 'filter.d', 'q.local'), '[Definition]\nignoreregex = ^ignored$\n');
    const f = loadFilter(root, 'q').filter;
    expect(f?.failregex).toEqual(['^common-q <HOST>$']);
    expect(f?.ignoreregex).toEqual(['^ignored$']);
    const foreign = path.join(root, 'elsewhere');
    fs.mkdirSync(foreign, { recursive: true });
    fs.writeFileSync(path.join(foreign, 'mine.conf'), '[INCLUDES]\nafter = extra.conf\n[Definition]\nfailregex = ^<x> <HOST>$\n');
    fs.writeFileSync(path.join(foreign, 'extra.conf'), '[Definition]\nx = included\n');
    expect(loadFilter(root, path.join(foreign, 'mine.conf')).filter?.failregex).toEqual(['^included <HOST>$']);
  });
});
