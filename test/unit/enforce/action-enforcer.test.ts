/**
 * The action enforcer end to end with real /bin/sh processes and action.d files in a temp
 * config dir. A small reader for those files stands in for config/actions.ts here so the test
 * pins the enforcer's behaviour only; the migration e2e test uses the real reader.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ActionDefinition, ActionSpec, ResolvedConfig, ResolvedJail } from '../../../src/config/types.js';
import { createActionEnforcer, type LoadActionFn } from '../../../src/enforce/action.js';
import type { EnforcedBan, Enforcer, EnforcerContext } from '../../../src/enforce/enforcer.js';
import { testJail } from '../../helpers/jail.js';

const root = mkdtempSync(join(tmpdir(), `aegis-act-${process.pid}-`));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const PWNED = `/tmp/pwned-aegis-${process.pid}`;

/** Minimal action.d reader: [Definition], [Init], [Init?family=inet6]; continuation lines. */
const loadAction: LoadActionFn = (configDir, _jail, spec) => {
  const file = join(configDir, 'action.d', `${spec.name}.conf`);
  if (!existsSync(file)) return { action: null, diagnostics: [] };
  const sections = new Map<string, Record<string, string>>();
  let cur: Record<string, string> = {};
  let last: string | null = null;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const sec = /^\[(.+)\]\s*$/.exec(line);
    if (sec) {
      cur = {};
      sections.set(sec[1]!, cur);
      last = null;
      continue;
    }
    if (/^\s*([#;].*)?$/.test(line)) continue;
    if (/^\s/.test(line) && last !== null) {
      cur[last] += `\n${line.trim()}`;
      continue;
    }
    const kv = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (kv) {
      last = kv[1]!;
      cur[last] = kv[2]!;
    }
  }
  const all = { ...(sections.get('Definition') ?? {}), ...(sections.get('Init') ?? {}) };
  const interp = (v: string, depth = 0): string =>
    depth > 10 ? v : v.replace(/%\((\w+)\)s/g, (_m, k: string) => interp(all[k] ?? '', depth + 1));
  for (const sec of sections.values()) for (const k of Object.keys(sec)) sec[k] = interp(sec[k]!).replaceAll('%%', '%');
  const def = sections.get('Definition') ?? {};
  const commands: Record<string, string> = {};
  const tags: Record<string, string> = { ...(sections.get('Init') ?? {}), ...spec.params };
  for (const [k, v] of Object.entries(def)) {
    if (k.startsWith('action')) commands[k] = v;
    else tags[k] = v;
  }
  const action: ActionDefinition = { name: spec.name, file, commands, tags, tagsInet6: sections.get('Init?family=inet6') ?? {} };
  return { action, diagnostics: [] };
};

function jail(name: string, actions: ActionSpec[]): ResolvedJail {
  return testJail({ name, actions, backend: 'polling', logencoding: 'utf-8', maxretry: 3, usedns: 'no' });
}

function context(jails: ResolvedJail[], lines: string[]): EnforcerContext {
  const config: ResolvedConfig = {
    configDir: root,
    daemon: { socket: '', socketMode: 0o600, socketGroup: null, stateDir: '', logLevel: 'debug', enforcer: 'action', interfaces: [], dryRun: false },
    metrics: { enabled: false, bind: '127.0.0.1', port: 0, tokenFile: null, allow: [], tlsCert: null, tlsKey: null, rateLimit: null },
    xdp: { pinPath: '', maxEntries: 1, keepAttached: false, mode: 'auto', rateLimit: { enabled: false, pps: 0, burst: 0 } },
    jails,
  };
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
  return { config, jails, allow: [], log };
}

function ban(jailName: string, ip: string, extra: Partial<EnforcedBan> = {}): EnforcedBan {
  const v6 = ip.includes(':');
  return { jail: jailName, network: ip, prefix: v6 ? 128 : 32, family: v6 ? 6 : 4, ip, since: 1_700_000_000, expires: 1_700_000_600, bantime: 600, banCount: 1, fields: {}, ...extra };
}

let n = 0;
function setup(actionName: string, body: string): { dir: string; out: string } {
  const dir = join(root, `c${n++}`);
  mkdirSync(join(dir, 'action.d'), { recursive: true });
  const out = join(dir, 'out.log');
  writeFileSync(join(dir, 'action.d', `${actionName}.conf`), body.replaceAll('OUT', out));
  return { dir, out };
}
const read = (f: string): string[] => (existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n') : []);

let running: Enforcer | null = null;
afterEach(async () => {
  await running?.stop();
  running = null;
  rmSync(PWNED, { force: true });
});

const RECORDER = `[Definition]
actionstart = echo "start <name> <family>" >> OUT
actionstop = echo "stop <name>" >> OUT
actionflush = echo "flush <name>" >> OUT
actionban = printf '%s\\n' "ban ip=<ip> name=<name> port=<port> proto=<protocol> bantime=<bantime> user=<F-USER> fid=<fid> failures=<failures> blocktype=<blocktype>" >> OUT
actionunban = echo "unban <ip> <blocktype>" >> OUT
[Init]
port = ssh
protocol = tcp
blocktype = REJECT
`;

describe('action enforcer', () => {
  it('runs start, ban, unban, flush and stop in order with the ban tags filled', async () => {
    const { dir, out } = setup('rec', RECORDER);
    const j = jail('sshd', [{ name: 'rec', params: { port: '22,2222' } }]);
    const e = createActionEnforcer({ configDir: dir, loadAction });
    running = e;
    await e.start(context([j], []));
    await e.ban([ban('sshd', '198.18.0.7', { fields: { user: 'alice' }, failures: 5 })]);
    await e.ban([ban('sshd', '198.18.0.8')]);
    await e.unban([ban('sshd', '198.18.0.7')]);
    await e.stop();
    running = null;
    expect(read(out)).toEqual([
      'start sshd ', // <family> is empty for an action without family variants
      'ban ip=198.18.0.7 name=sshd port=22,2222 proto=tcp bantime=600 user=alice fid=198.18.0.7 failures=5 blocktype=REJECT',
      'ban ip=198.18.0.8 name=sshd port=22,2222 proto=tcp bantime=600 user= fid=198.18.0.8 failures=0 blocktype=REJECT',
      'unban 198.18.0.7 REJECT',
      'flush sshd',
      'stop sshd',
    ]);
  });

  it('starts per family on demand and uses the [Init?family=inet6] values for IPv6 bans', async () => {
    const { dir, out } = setup('fam', `${RECORDER}\n[Init?family=inet6]\nblocktype = REJECT6\n`);
    const e = createActionEnforcer({ configDir: dir, loadAction });
    running = e;
    await e.start(context([jail('web', [{ name: 'fam', params: {} }])], []));
    expect(read(out)).toEqual([]);
    await e.ban([ban('web', '2001:db8::5')]);
    await e.ban([ban('web', '198.18.0.9')]);
    await e.unban([ban('web', '2001:db8::5')]);
    await e.stop();
    running = null;
    const lines = read(out);
    expect(lines[0]).toBe('start web inet6');
    expect(lines[1]).toContain('ban ip=2001:db8::5 ');
    expect(lines[1]).toContain('blocktype=REJECT6');
    expect(lines[2]).toBe('start web inet4');
    expect(lines[3]).toContain('blocktype=REJECT');
    expect(lines[3]).not.toContain('REJECT6');
    expect(lines[4]).toBe('unban 2001:db8::5 REJECT6');
    // as fail2ban: a family that ever held a ban is flushed, then every started family stops
    expect(lines.slice(5)).toEqual(['flush web', 'flush web', 'stop web', 'stop web']);
  });

  it('passes <F-USER> values with ; and $() as data, never as shell code', async () => {
    const { dir, out } = setup('rec', RECORDER);
    const e = createActionEnforcer({ configDir: dir, loadAction });
    running = e;
    await e.start(context([jail('sshd', [{ name: 'rec', params: {} }])], []));
    await e.ban([
      ban('sshd', '198.18.0.10', { fields: { user: `x; touch ${PWNED}` } }),
      ban('sshd', '198.18.0.11', { fields: { user: `$(touch ${PWNED})` } }),
      ban('sshd', '198.18.0.12', { fields: { user: `\`touch ${PWNED}\`" '; touch ${PWNED}` } }),
    ]);
    const lines = read(out).filter((l) => l.startsWith('ban'));
    expect(lines).toHaveLength(3);
    expect(lines.find((l) => l.includes('198.18.0.10'))).toContain(`user=x; touch ${PWNED} `);
    expect(lines.find((l) => l.includes('198.18.0.11'))).toContain(`user=$(touch ${PWNED}) `);
    expect(lines.find((l) => l.includes('198.18.0.12'))).toContain(`user=\`touch ${PWNED}\`" '; touch ${PWNED} `);
    expect(existsSync(PWNED)).toBe(false);
  });

  it('kills a command past its timeout, logs and counts it, and keeps going', async () => {
    const { dir, out } = setup(
      'slow',
      `[Definition]\nactionban = if [ "<ip>" = 198.18.0.20 ]; then sleep 30; fi; echo "ban <ip>" >> OUT\n[Init]\ntimeout = 1\n`,
    );
    const lines: string[] = [];
    const e = createActionEnforcer({ configDir: dir, loadAction });
    running = e;
    await e.start(context([jail('sshd', [{ name: 'slow', params: {} }])], lines));
    const t0 = Date.now();
    await e.ban([ban('sshd', '198.18.0.20')]);
    expect(Date.now() - t0).toBeLessThan(5000);
    await e.ban([ban('sshd', '198.18.0.21')]);
    expect(read(out)).toEqual(['ban 198.18.0.21']);
    expect(e.describe()).toMatchObject({ timeouts: 1, failures: 1 });
    expect(lines.some((l) => l.includes('timed out'))).toBe(true);
  });

  it('on a failed ban runs actioncheck, restarts the action (stop + start) and retries once', async () => {
    const flag = join(root, `ready-${n}`);
    const { dir, out } = setup(
      'chk',
      `[Definition]
actionstart = touch ${flag}; echo start >> OUT
actionstop = rm -f ${flag}; echo stop >> OUT
actioncheck = test -e ${flag}
actionban = test -e ${flag} && echo "ban <ip>" >> OUT
`,
    );
    const e = createActionEnforcer({ configDir: dir, loadAction });
    running = e;
    await e.start(context([jail('sshd', [{ name: 'chk', params: {} }])], []));
    rmSync(flag); // someone flushed the firewall behind our back
    await e.ban([ban('sshd', '198.18.0.30')]);
    expect(read(out)).toEqual(['start', 'stop', 'start', 'ban 198.18.0.30']);
  });

  it('repairs once when several bans of one burst fail together', async () => {
    const flag = join(root, `ready-many-${n}`);
    const { dir, out } = setup(
      'chk2',
      `[Definition]
actionstart = touch ${flag}; echo start >> OUT
actionstop = rm -f ${flag}; echo stop >> OUT
actioncheck = test -e ${flag}
actionban = test -e ${flag} && echo "ban <ip>" >> OUT
`,
    );
    const e = createActionEnforcer({ configDir: dir, loadAction });
    running = e;
    await e.start(context([jail('sshd', [{ name: 'chk2', params: {} }])], []));
    rmSync(flag);
    await e.ban([1, 2, 3, 4, 5].map((i) => ban('sshd', `198.18.0.${30 + i}`)));
    const lines = read(out);
    expect(lines.filter((l) => l === 'start')).toHaveLength(2);
    expect(lines.filter((l) => l === 'stop')).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith('ban '))).toHaveLength(5);
  });

  it('on reload restarts only jails whose actions changed and re-applies their bans', async () => {
    const { dir, out } = setup('rec', RECORDER);
    const a = jail('sshd', [{ name: 'rec', params: { port: '22' } }]);
    const b = jail('web', [{ name: 'rec', params: { port: '80' } }]);
    const e = createActionEnforcer({ configDir: dir, loadAction });
    running = e;
    await e.start(context([a, b], []));
    await e.ban([ban('sshd', '198.18.0.60'), ban('web', '198.18.0.61')]);
    const before = read(out).length;
    await e.reconfigure!(context([jail('sshd', [{ name: 'rec', params: { port: '2222' } }]), b], []));
    const after = read(out).slice(before);
    expect(after[0]).toBe('flush sshd');
    expect(after[1]).toBe('stop sshd');
    expect(after[2]).toBe('start sshd ');
    expect(after[3]).toContain('ban ip=198.18.0.60 name=sshd port=2222');
    expect(after.some((l) => l.includes('web'))).toBe(false);
  });

  it('reconcile retries a ban whose command failed and unbans what is no longer wanted', async () => {
    const gate = join(root, `gate-${n}`);
    const { dir, out } = setup('flaky', `[Definition]\nactionban = test -e ${gate} && echo "ban <ip>" >> OUT\nactionunban = echo "unban <ip>" >> OUT\n`);
    const e = createActionEnforcer({ configDir: dir, loadAction });
    running = e;
    await e.start(context([jail('sshd', [{ name: 'flaky', params: {} }])], []));
    await e.ban([ban('sshd', '198.18.0.70'), ban('sshd', '198.18.0.71')]);
    expect(read(out)).toEqual([]);
    writeFileSync(gate, '');
    expect(await e.reconcile!([ban('sshd', '198.18.0.70'), ban('sshd', '198.18.0.71')])).toEqual({ missing: 2, stale: 0 });
    expect(await e.reconcile!([ban('sshd', '198.18.0.71')])).toEqual({ missing: 0, stale: 1 });
    expect(read(out).sort()).toEqual(['ban 198.18.0.70', 'ban 198.18.0.71', 'unban 198.18.0.70']);
  });

  it('without actionflush, unbans each held ban at stop', async () => {
    const { dir, out } = setup('nf', `[Definition]\nactionban = echo "ban <ip>" >> OUT\nactionunban = echo "unban <ip>" >> OUT\nactionstop = echo stop >> OUT\n`);
    const e = createActionEnforcer({ configDir: dir, loadAction });
    await e.start(context([jail('sshd', [{ name: 'nf', params: {} }])], []));
    await e.ban([ban('sshd', '198.18.0.40'), ban('sshd', '198.18.0.0', { prefix: 24, ip: '198.18.0.41' })]);
    await e.stop();
    const lines = read(out);
    expect(lines.slice(0, 2).sort()).toEqual(['ban 198.18.0.0/24', 'ban 198.18.0.40']);
    expect(lines.slice(2, 4).sort()).toEqual(['unban 198.18.0.0/24', 'unban 198.18.0.40']);
    expect(lines[4]).toBe('stop');
  });

  it('never runs more commands at once than its concurrency bound', async () => {
    const { dir, out } = setup('par', `[Definition]\nactionban = echo "s $(date +%s%N)" >> OUT; sleep 0.3; echo "e $(date +%s%N)" >> OUT\n`);
    const e = createActionEnforcer({ configDir: dir, loadAction, concurrency: 2 });
    running = e;
    await e.start(context([jail('sshd', [{ name: 'par', params: {} }])], []));
    const t0 = Date.now();
    await e.ban([1, 2, 3, 4, 5, 6].map((i) => ban('sshd', `198.18.1.${i}`)));
    const ms = Date.now() - t0;
    const events = read(out).map((l) => ({ kind: l[0], t: BigInt(l.slice(2)) })).sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
    let cur = 0;
    let max = 0;
    for (const ev of events) {
      cur += ev.kind === 's' ? 1 : -1;
      max = Math.max(max, cur);
    }
    expect(max).toBe(2);
    expect(ms).toBeGreaterThanOrEqual(850);
  });

  it('runs the stock dummy action from the fail2ban package unchanged', async () => {
    const stock = '/etc/fail2ban/action.d/dummy.conf';
    if (!existsSync(stock)) return void console.log(`skipped: ${stock} missing (apt-get install fail2ban)`);
    const dir = join(root, `c${n++}`);
    mkdirSync(join(dir, 'action.d'), { recursive: true });
    const target = join(dir, 'dummy.state');
    writeFileSync(join(dir, 'action.d', 'dummy.conf'), readFileSync(stock, 'utf8'));
    const e = createActionEnforcer({ configDir: dir, loadAction });
    running = e;
    await e.start(context([jail('sshd', [{ name: 'dummy', params: { target } }])], []));
    await e.ban([ban('sshd', '198.18.0.50')]);
    expect(readFileSync(target, 'utf8')).toContain('198.18.0.50');
  });
});
