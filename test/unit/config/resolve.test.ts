/**
 * resolveConfig on real directories: file order, [DEFAULT] inheritance, jail.d alias, daemon
 * settings and their defaults, relative paths, value parsing, frozen results.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/config/resolve.js';
import { formatDiagnostic, type ResolvedJail } from '../../../src/config/types.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), `aegis-resolve-${process.pid}-`));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
function dir(files: Record<string, string>): string {
  const d = path.join(root, `c${n++}`);
  const all: Record<string, string> = { 'filter.d/demo.conf': '[Definition]\nfailregex = ^fail from <HOST>$\n', ...files };
  for (const [f, text] of Object.entries(all)) {
    fs.mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
    fs.writeFileSync(path.join(d, f), text);
  }
  return d;
}
function jail(d: string, name: string): ResolvedJail {
  const r = resolveConfig(d);
  expect(r.diagnostics.filter((x) => x.severity === 'error').map(formatDiagnostic)).toEqual([]);
  const j = r.config?.jails.find((x) => x.name === name);
  if (!j) throw new Error(`no jail ${name}`);
  return j;
}

describe('resolveConfig: files and precedence', () => {
  it('reads jail.conf, jails.d/*.conf, jail.local, jails.d/*.local in that order (later wins)', () => {
    const d = dir({
      'jail.conf': '[DEFAULT]\nmaxretry = 1\nfindtime = 1m\nbantime = 1m\n[app]\nenabled = true\nfilter = demo\n',
      'jails.d/b.conf': '[app]\nmaxretry = 2\nfindtime = 2m\n',
      'jails.d/a.conf': '[app]\nmaxretry = 9\nfindtime = 9m\nbantime = 9m\n',
      'jail.local': '[app]\nmaxretry = 3\n',
      'jails.d/z.local': '[app]\nmaxretry = 4\n',
    });
    const j = jail(d, 'app');
    expect([j.maxretry, j.findtime, j.bantime]).toEqual([4, 120, 540]);
  });

  it('accepts jail.d/ as an alias of jails.d/ (an /etc/fail2ban tree loads)', () => {
    const d = dir({ 'jail.d/app.conf': '[app]\nenabled = true\nfilter = demo\nmaxretry = 7\n' });
    expect(jail(d, 'app').maxretry).toBe(7);
  });

  it('inherits [DEFAULT] and interpolates %(x)s chains and %(__name__)s', () => {
    const d = dir({
      'jail.conf': '[DEFAULT]\nbase = 3\nretry = %(base)s\nmaxretry = %(retry)s\nfilter = %(__name__)s\nlogpath = /var/log/%(__name__)s.log\n',
      'filter.d/web.conf': '[Definition]\nfailregex = ^web <HOST>$\n',
      'jail.local': '[web]\nenabled = true\nbase = 6\n',
    });
    const j = jail(d, 'web');
    expect(j.maxretry).toBe(6);
    expect(j.filter.name).toBe('web');
    expect(j.logpath).toEqual(['/var/log/web.log']);
  });

  it('applies filter = name[k=v] options and a jail-level failregex that extends %(known/failregex)s', () => {
    const d = dir({
      'filter.d/p.conf': '[Definition]\nfailregex = ^<mode> from <HOST>$\nmode = normal\n',
      'jail.local': '[a]\nenabled = true\nfilter = p[mode="very bad"]\n[b]\nenabled = true\nfilter = p\nfailregex = %(known/failregex)s\n            ^also <HOST>$\n',
    });
    expect(jail(d, 'a').filter.failregex).toEqual(['^very bad from <HOST>$']);
    expect(jail(d, 'b').filter.failregex).toEqual(['^normal from <HOST>$', '^also <HOST>$']);
    expect(jail(d, 'a').filter.options).toEqual({ mode: 'very bad' });
  });

  it('lists every jail, enabled or not, in file order; only enabled ones are read fully', () => {
    const d = dir({ 'jail.conf': '[x]\nfilter = missing-filter\n[y]\nenabled = true\nfilter = demo\n' });
    const r = resolveConfig(d);
    expect(r.config?.jails.map((j) => [j.name, j.enabled])).toEqual([
      ['x', false],
      ['y', true],
    ]);
  });
});

describe('resolveConfig: jail values', () => {
  it('parses time units, -1 permanent, logpath lines with tail, ignoreip kinds and prefixes', () => {
    const d = dir({
      'jail.local': [
        '[app]',
        'enabled = true',
        'filter = demo',
        'findtime = 1h 30m',
        'bantime = -1',
        'logpath = /var/log/a.log',
        '          /var/log/b-*.log tail',
        'ignoreip = 127.0.0.1/8 ::1, 198.51.100.7 2001:db8::/48 gateway.example.org 203.0.113.0/255.255.255.0',
        'ban_prefix_v6 = 64',
        'bantime.increment = yes',
        'bantime.factor = 1.5',
        'bantime.multipliers = 1 2 4 8',
        'bantime.maxtime = 5w',
        'bantime.overalljails = true',
        'usedns = no',
        'action = iptables-multiport[name=x, port="http,https"]',
        '         sendmail-whois[dest=root]',
      ].join('\n'),
    });
    const j = jail(d, 'app');
    expect(j.findtime).toBe(5400);
    expect(j.bantime).toBe(-1);
    expect(j.logpath).toEqual(['/var/log/a.log', '/var/log/b-*.log']);
    expect(j.logpathMode).toBe('tail');
    expect(j.ignoreip).toEqual(['127.0.0.1/8', '::1', '198.51.100.7', '2001:db8::/48', '203.0.113.0/24']);
    expect(j.ignoreHostnames).toEqual(['gateway.example.org']);
    expect([j.banPrefixV4, j.banPrefixV6]).toEqual([32, 64]);
    expect(j.increment).toEqual({ enabled: true, factor: 1.5, formula: null, multipliers: [1, 2, 4, 8], maxtime: 5 * 7 * 86400, rndtime: null, overalljails: true });
    expect(j.usedns).toBe('no');
    expect(j.actions).toEqual([
      { name: 'iptables-multiport', params: { name: 'x', port: 'http,https' } },
      { name: 'sendmail-whois', params: { dest: 'root' } },
    ]);
  });

  it('uses fail2ban defaults when nothing is set (maxretry 5, findtime/bantime 10m, usedns warn)', () => {
    const j = jail(dir({ 'jail.local': '[app]\nenabled = true\nfilter = demo\n' }), 'app');
    expect([j.maxretry, j.findtime, j.bantime, j.usedns, j.maxmatches, j.ignoreself, j.backend]).toEqual([5, 600, 600, 'warn', 5, true, 'auto']);
    expect(j.ignoreip).toEqual([]); // loopback is added by the daemon, not here
  });

  it('ignores logpath for the systemd backend and keeps the journalmatch', () => {
    const j = jail(dir({ 'jail.local': '[app]\nenabled = true\nfilter = demo\nbackend = systemd\nlogpath = /x.log\njournalmatch = _COMM=app\n' }), 'app');
    expect(j.logpath).toEqual([]);
    expect(j.filter.journalmatch).toEqual(['_COMM=app']);
  });

  it('returns a deeply frozen config', () => {
    const r = resolveConfig(dir({ 'jail.local': '[app]\nenabled = true\nfilter = demo\n' }));
    const j = r.config?.jails[0];
    expect(Object.isFrozen(r.config)).toBe(true);
    expect(Object.isFrozen(j?.filter.failregex)).toBe(true);
    expect(Object.isFrozen(r.config?.daemon)).toBe(true);
  });

  it('collects every error at once and returns no config', () => {
    const r = resolveConfig(dir({ 'jail.local': '[a]\nenabled = true\nfilter = demo\nmaxretry = x\nbantime = y\n[b]\nenabled = true\nfilter = nope\n' }));
    expect(r.config).toBeNull();
    expect(r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.section ?? ''} ${d.key ?? ''}`)).toEqual(['a maxretry', 'a bantime', 'b filter']);
  });
});

describe('resolveConfig: daemon settings', () => {
  it('has the SPEC defaults without aegis.conf', () => {
    const r = resolveConfig(dir({ 'jail.local': '[app]\nenabled = true\nfilter = demo\n' }));
    expect(r.config?.daemon).toEqual({ socket: '/run/aegis/aegis.sock', socketMode: 0o600, socketGroup: null, stateDir: '/var/lib/aegis', logLevel: 'info', enforcer: null, interfaces: [], dryRun: false });
    expect(r.config?.metrics).toEqual({ enabled: true, bind: '127.0.0.1', port: 9190, tokenFile: null, allow: [], tlsCert: null, tlsKey: null, rateLimit: null });
    expect(r.config?.xdp).toEqual({ pinPath: '/sys/fs/bpf/aegis', maxEntries: 1048576, keepAttached: false, mode: 'auto', rateLimit: { enabled: false, pps: 1000, burst: 2000 } });
  });

  it('reads aegis.conf then aegis.local; relative paths resolve against the working directory', () => {
    const d = dir({
      'aegis.conf': '[daemon]\nsocket = var/aegis.sock\nstate_dir = var/state\nenforcer = log\ninterfaces = eth0, eth1\nsocket_mode = 0660\nsocket_group = adm\n[metrics]\nport = 9200\nallow = 127.0.0.1 10.0.0.0/8\ntoken_file = var/token\nrate_limit = 60\n[xdp]\nrate_limit = 500\nrate_limit_burst = 800\nkeep_attached = true\nmode = generic\nmax_entries = 4096\n',
      'aegis.local': '[daemon]\nlog_level = debug\ndry_run = yes\n[metrics]\nenabled = false\n',
      'jail.local': '[app]\nenabled = true\nfilter = demo\n',
    });
    const c = resolveConfig(d).config;
    expect(c?.daemon).toEqual({ socket: path.resolve('var/aegis.sock'), socketMode: 0o660, socketGroup: 'adm', stateDir: path.resolve('var/state'), logLevel: 'debug', enforcer: 'log', interfaces: ['eth0', 'eth1'], dryRun: true });
    expect(c?.metrics).toMatchObject({ enabled: false, port: 9200, allow: ['127.0.0.1', '10.0.0.0/8'], tokenFile: path.resolve('var/token'), rateLimit: 60 });
    expect(c?.xdp).toEqual({ pinPath: '/sys/fs/bpf/aegis', maxEntries: 4096, keepAttached: true, mode: 'generic', rateLimit: { enabled: true, pps: 500, burst: 800 } });
  });
});

describe('resolveConfig: the repository demo config', () => {
  it('loads demo/ (jails/ and filters/ as jails.d/ and filter.d/) without errors', () => {
    const demo = path.resolve(import.meta.dirname, '../../../demo');
    if (!fs.existsSync(demo)) return;
    const r = resolveConfig(demo);
    expect(r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
    const names = r.config?.jails.filter((j) => j.enabled).map((j) => j.name).sort();
    expect(names).toEqual(['cartae-admin', 'cartae-api-auth']);
    expect(r.config?.jails.every((j) => j.filter.json !== null)).toBe(true);
  });
});
