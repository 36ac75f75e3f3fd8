/**
 * Without CAP_BPF / CAP_NET_ADMIN the failure must say what is missing and how to fix it, both
 * from the cheap pre-check and from the kernel's own EPERM through the addon.
 * Runs child processes as root with every capability dropped (setpriv).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADDON_PATH, OBJECT_PATH, xdpAvailability } from '../../../src/enforce/xdp/native.js';

const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
const avail = xdpAvailability();
const hasSetpriv = spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = !avail.ok ? avail.reason : !hasSetpriv ? 'setpriv (util-linux) not installed' : '';
if (skip) console.warn(`skipping XDP permission tests: ${skip}`);

function withoutCaps(script: string): string {
  return execFileSync('setpriv', ['--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', process.execPath, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    cwd: ROOT,
  });
}

describe.skipIf(skip !== '')('XDP without privileges', () => {
  it('xdpAvailability names the missing capabilities', () => {
    const out = withoutCaps(`import { xdpAvailability } from ${JSON.stringify(resolve(ROOT, 'dist/enforce/xdp/native.js'))}; process.stdout.write(JSON.stringify(xdpAvailability()));`);
    const r = JSON.parse(out) as { ok: boolean; reason?: string };
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/CAP_BPF/);
  });

  it('the addon turns the kernel\'s EPERM into an error with code, errno and the fix', () => {
    const script = `
      import { createRequire } from 'node:module';
      const m = createRequire(import.meta.url)(${JSON.stringify(ADDON_PATH)});
      try {
        new m.Program({ object: ${JSON.stringify(OBJECT_PATH)}, pinPath: '/sys/fs/bpf/aegis-noperm-${process.pid}', maxEntries: 16, rateEntries: 16, ratePps: 0, rateBurst: 0 });
        process.stdout.write('{"loaded":true}');
      } catch (e) {
        process.stdout.write(JSON.stringify({ code: e.code, errno: e.errno, message: e.message }));
      }`;
    const r = JSON.parse(withoutCaps(script)) as { code?: string; errno?: number; message?: string };
    expect(r.code).toBe('EPERM');
    expect(r.errno).toBe(1);
    expect(r.message).toContain('needs CAP_BPF and CAP_NET_ADMIN, or root');
  });

  it('the enforcer reports AEGIS_ERR_BPF_PERMISSION with a hint', () => {
    const script = `
      import { createXdpEnforcer } from ${JSON.stringify(resolve(ROOT, 'dist/enforce/xdp.js'))};
      const log = { info() {}, warn() {}, error() {}, debug() {}, child() { return log; } };
      const e = createXdpEnforcer({ xdp: { pinPath: '/sys/fs/bpf/aegis-noperm-${process.pid}', maxEntries: 16, keepAttached: false, mode: 'auto', rateLimit: { enabled: false, pps: 0, burst: 0 } }, interfaces: [] });
      e.start({ config: {}, jails: [], allow: [], log }).then(
        () => process.stdout.write('{"started":true}'),
        (err) => process.stdout.write(JSON.stringify({ code: err.code, hint: err.hint, message: err.message })));`;
    const r = JSON.parse(withoutCaps(script)) as { code?: string; hint?: string };
    expect(r.code).toBe('AEGIS_ERR_BPF_PERMISSION');
    expect(r.hint).toMatch(/CAP_BPF/);
  });
});
