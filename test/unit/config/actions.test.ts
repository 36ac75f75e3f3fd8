/** loadAction: action.d files resolved for a jail, per-ban and per-family tags left for later. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { actionInstanceName, loadAction } from '../../../src/config/actions.js';
import { resolveConfig } from '../../../src/config/resolve.js';
import type { ResolvedJail } from '../../../src/config/types.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), `aegis-actions-${process.pid}-`));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const files: Record<string, string> = {
  'filter.d/demo.conf': '[Definition]\nfailregex = ^fail from <HOST>$\n',
  'action.d/fw-common.conf': '[Init]\nchain = INPUT\nlockopt = -w\n',
  'action.d/fw.conf': `[INCLUDES]
before = fw-common.conf
[Definition]
actionstart = start <name> <port> <chain>
actionban = <cmd> add <ip> user=<F-USER> for <bantime> --<blocktype>
actionunban = <cmd> del <ip>
actioncheck =
[Init]
name = default
port = 22
cmd = fw <lockopt>
blocktype = reject
[Init?family=inet6]
cmd = fw6 <lockopt>
blocktype = reject6
`,
  'action.d/fw.local': '[Init]\nblocktype = drop\n',
  'jail.local': `[app]
enabled = true
filter = demo
port = 8080
action = fw[port="80,443"]
         fw[name=app-extra, chain=FORWARD]
         missing-action
`,
};
for (const [f, t] of Object.entries(files)) {
  fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
  fs.writeFileSync(path.join(root, f), t);
}

function appJail(): ResolvedJail {
  const j = resolveConfig(root).config?.jails.find((x) => x.name === 'app');
  if (!j) throw new Error('no jail');
  return j;
}

describe('loadAction', () => {
  it('resolves [Init], .local, includes and params; leaves per-ban and per-family tags', () => {
    const jail = appJail();
    const spec = jail.actions[0];
    if (!spec) throw new Error('no action');
    const { action, diagnostics } = loadAction(root, jail, spec);
    expect(diagnostics).toEqual([]);
    expect(action?.name).toBe('fw');
    expect(action?.file).toBe(path.join(root, 'action.d/fw.conf'));
    expect(action?.commands).toEqual({
      actionstart: 'start app 80,443 INPUT',
      actionban: '<cmd> add <ip> user=<F-USER> for <bantime> --<blocktype>',
      actionunban: '<cmd> del <ip>',
    });
    expect(action?.tags).toMatchObject({ name: 'app', port: '80,443', chain: 'INPUT', cmd: 'fw <lockopt>', blocktype: 'drop', lockopt: '-w' });
    expect(action?.tagsInet6).toEqual({ cmd: 'fw6 -w', blocktype: 'reject6' });
  });

  it('gives a second instance of the same action its own name, as fail2ban does', () => {
    const jail = appJail();
    const spec = jail.actions[1];
    if (!spec) throw new Error('no action');
    expect(actionInstanceName('app', spec)).toBe('fw-extra');
    const { action } = loadAction(root, jail, spec);
    expect(action?.commands.actionstart).toBe('start app-extra 22 FORWARD');
  });

  it('reports a missing action.d file as one diagnostic', () => {
    const jail = appJail();
    const spec = jail.actions[2];
    if (!spec) throw new Error('no action');
    const r = loadAction(root, jail, spec);
    expect(r.action).toBeNull();
    expect(r.diagnostics.map((d) => [d.code, d.section, d.key])).toEqual([['AEGIS_ERR_ACTION_NOT_FOUND', 'app', 'action']]);
  });
});
