/**
 * Differential test, fail2ban as the oracle: Debian's stock /etc/fail2ban plus crafted
 * overrides (test/fixtures/config/f2b-overrides: filter options, includes, interpolation chains,
 * %(known/…)s, bantime.increment settings, a custom filter with [k=v] params, several actions)
 * must resolve in `aegis-ban check --dump` exactly as `fail2ban-client -c DIR -d` resolves them.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actionInstanceName, loadAction } from '../../src/config/actions.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { parseDuration } from '../../src/config/time-units.js';
import type { ResolvedConfig } from '../../src/config/types.js';

const F2B = '/usr/bin/fail2ban-client';
const ETC = '/etc/fail2ban';
const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli/aegis-ban.js');
const OVERRIDES = path.join(ROOT, 'test/fixtures/config/f2b-overrides');
const have = fs.existsSync(F2B) && fs.existsSync(path.join(ETC, 'jail.conf'));
if (!have) console.log('skipping: fail2ban (Debian package) is not installed');

// ---- a reader for the Python literals fail2ban-client -d prints --------------------------
type Py = string | number | boolean | null | Py[];
function parsePy(text: string): Py {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && /\s/.test(text[i] ?? '')) i++;
  };
  const value = (): Py => {
    ws();
    const c = text[i];
    if (c === '[') {
      i++;
      const out: Py[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return out;
      }
      for (;;) {
        out.push(value());
        ws();
        if (text[i] === ',') {
          i++;
          ws();
          if (text[i] === ']') {
            i++;
            return out;
          }
          continue;
        }
        if (text[i] === ']') {
          i++;
          return out;
        }
        throw new Error(`bad list at ${i}: ${text.slice(i, i + 20)}`);
      }
    }
    if (c === "'" || c === '"') {
      i++;
      let s = '';
      while (text[i] !== c) {
        const ch = text[i++] ?? '';
        if (ch !== '\\') {
          s += ch;
          continue;
        }
        const e = text[i++] ?? '';
        if (e === 'n') s += '\n';
        else if (e === 't') s += '\t';
        else if (e === 'r') s += '\r';
        else if (e === 'x') {
          s += String.fromCharCode(parseInt(text.slice(i, i + 2), 16));
          i += 2;
        } else if (e === 'u') {
          s += String.fromCharCode(parseInt(text.slice(i, i + 4), 16));
          i += 4;
        } else s += e;
      }
      i++;
      return s;
    }
    const m = /^(True|False|None|-?\d+(?:\.\d+)?)/.exec(text.slice(i));
    if (!m) throw new Error(`bad literal at ${i}: ${text.slice(i, i + 20)}`);
    i += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return Number(m[0]);
  };
  return value();
}

interface F2bJail {
  backend: string;
  failregex: string[];
  ignoreregex: string[];
  logpath: string[];
  journalmatch: string[];
  ignoreip: string[];
  set: Map<string, Py>;
  actions: string[];
  actionOpts: Map<string, Map<string, string>>;
}

function readF2b(out: string): Map<string, F2bJail> {
  const jails = new Map<string, F2bJail>();
  for (const line of out.split('\n')) {
    if (!line.startsWith('[')) continue;
    const cmd = parsePy(line) as Py[];
    const [op, name] = cmd as [string, string];
    if (op === 'add') {
      jails.set(name, { backend: String(cmd[2]), failregex: [], ignoreregex: [], logpath: [], journalmatch: [], ignoreip: [], set: new Map(), actions: [], actionOpts: new Map() });
      continue;
    }
    const j = jails.get(name);
    if (!j || (op !== 'set' && op !== 'multi-set')) continue;
    const key = String(cmd[2]);
    const vals = op === 'multi-set' ? (cmd[3] as Py[]) : [cmd[3] ?? null];
    if (key === 'addfailregex') j.failregex.push(...(vals as string[]));
    else if (key === 'addignoreregex') j.ignoreregex.push(...(vals as string[]));
    else if (key === 'addlogpath') j.logpath.push(String(cmd[3]));
    else if (key === 'addjournalmatch') j.journalmatch.push((cmd.slice(3) as string[]).join(' '));
    else if (key === 'addignoreip') j.ignoreip.push(...(cmd.slice(3) as string[]));
    else if (key === 'addaction') j.actions.push(String(cmd[3]));
    else if (key === 'action') {
      const act = String(cmd[3]);
      const pairs = op === 'multi-set' ? (cmd[4] as Py[][]) : [[cmd[4] ?? '', cmd[5] ?? '']];
      const m = j.actionOpts.get(act) ?? new Map<string, string>();
      for (const [k, v] of pairs) m.set(String(k), String(v));
      j.actionOpts.set(act, m);
    } else j.set.set(key, vals[0] ?? null);
  }
  return jails;
}

function secs(v: Py | undefined): number | null {
  if (v === undefined || v === null) return null;
  return parseDuration(String(v));
}

// ---- the config trees -----------------------------------------------------------------------
interface Scenario {
  readonly name: string;
  /** prepare DIR/cfg (a copy of /etc/fail2ban) and the log files under DIR/logs */
  readonly build: (cfg: string, logs: string) => void;
  readonly minJails: number;
}

function copyOverrides(cfg: string, logs: string, rel = '.'): void {
  const src = path.join(OVERRIDES, rel);
  if (fs.statSync(src).isDirectory()) {
    for (const n of fs.readdirSync(src)) copyOverrides(cfg, logs, path.join(rel, n));
    return;
  }
  fs.mkdirSync(path.dirname(path.join(cfg, rel)), { recursive: true });
  fs.writeFileSync(path.join(cfg, rel), fs.readFileSync(src, 'utf8').replaceAll('@LOGDIR@', logs));
}

const SCENARIOS: Scenario[] = [
  {
    name: 'stock tree + crafted overrides (modes, includes, interpolation chains, known/, increment, custom filter, actions)',
    minJails: 8,
    build: (cfg, logs) => {
      for (const f of ['auth.log', 'mail.log', 'nginx/a.log', 'nginx/b.log', 'apache/error.log', 'fail2ban.log', 'app-1.log', 'app-2.log']) {
        fs.mkdirSync(path.dirname(path.join(logs, f)), { recursive: true });
        fs.writeFileSync(path.join(logs, f), '');
      }
      copyOverrides(cfg, logs);
    },
  },
  {
    name: 'every stock jail of jail.conf enabled',
    minJails: 80,
    build: (cfg, logs) => {
      fs.mkdirSync(logs, { recursive: true });
      fs.writeFileSync(path.join(logs, 'x.log'), '');
      const names = [...fs.readFileSync(path.join(cfg, 'jail.conf'), 'utf8').matchAll(/^\[([^\]]+)\]/gm)].map((m) => m[1] ?? '').filter((n) => n !== 'INCLUDES' && n !== 'DEFAULT');
      fs.writeFileSync(path.join(cfg, 'jail.d', '99-all.local'), names.map((n) => `[${n}]\nenabled = true\nlogpath = ${logs}/x.log\n`).join('\n'));
    },
  },
];

const tmpRoot = have ? fs.mkdtempSync(path.join(os.tmpdir(), `aegis-f2bdiff-${process.pid}-`)) : '';
afterAll(() => {
  if (tmpRoot) fs.rmSync(tmpRoot, { recursive: true, force: true });
});

describe.each(SCENARIOS.map((s, i) => ({ ...s, i })))('aegis-ban check --dump agrees with fail2ban-client -d: $name', (scenario) => {
  let cfg = '';
  let f2b = new Map<string, F2bJail>();
  let dump: { jails: Array<Record<string, unknown>> } = { jails: [] };
  let resolved: ResolvedConfig | null = null;

  beforeAll(() => {
    if (!have) return;
    const tmp = path.join(tmpRoot, String(scenario.i));
    cfg = path.join(tmp, 'cfg');
    fs.mkdirSync(tmp, { recursive: true });
    fs.cpSync(ETC, cfg, { recursive: true });
    scenario.build(cfg, path.join(tmp, 'logs'));
    const out = execFileSync(F2B, ['-c', cfg, '-d'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], cwd: tmp, maxBuffer: 1 << 28 });
    f2b = readF2b(out);
    const r = spawnSync(process.execPath, [CLI, 'check', '--config-dir', cfg, '--dump'], { encoding: 'utf8', cwd: tmp, maxBuffer: 1 << 28 });
    if (r.status !== 0) throw new Error(`aegis-ban check --dump exited ${r.status}: ${r.stderr}`);
    dump = JSON.parse(r.stdout) as typeof dump;
    resolved = resolveConfig(cfg).config;
  });

  it.skipIf(!have)('enables the same jails', () => {
    const ours = dump.jails.filter((j) => j['enabled'] === true).map((j) => String(j['name']));
    expect(ours.sort()).toEqual([...f2b.keys()].sort());
    expect(ours.length).toBeGreaterThanOrEqual(scenario.minJails);
  });

  it.skipIf(!have)('resolves maxretry, findtime, bantime, logpaths and regex lists of every enabled jail identically', () => {
    const problems: string[] = [];
    for (const j of dump.jails.filter((x) => x['enabled'] === true)) {
      const name = String(j['name']);
      const f = f2b.get(name);
      if (!f) continue;
      const cmp = (what: string, ours: unknown, theirs: unknown): void => {
        if (JSON.stringify(ours) !== JSON.stringify(theirs)) problems.push(`${name} ${what}: aegis ${JSON.stringify(ours)} fail2ban ${JSON.stringify(theirs)}`);
      };
      cmp('maxretry', j['maxretry'], f.set.get('maxretry') ?? 5);
      cmp('findtime', j['findtime'], secs(f.set.get('findtime')) ?? 600);
      const bt = secs(f.set.get('bantime')) ?? 600;
      cmp('bantime', j['bantime'], bt < 0 ? -1 : bt);
      cmp('logpath', [...(j['logpath'] as string[])].sort(), [...f.logpath].sort());
      cmp('failregex', j['failregex'], f.failregex);
      cmp('ignoreregex', j['ignoreregex'], f.ignoreregex);
      cmp('prefregex', j['prefregex'], f.set.get('prefregex') || null);
      cmp('datepattern', j['datepattern'], f.set.get('datepattern') || null);
      cmp('maxlines', j['maxlines'], f.set.get('maxlines') ?? 1);
      cmp('journalmatch', j['journalmatch'], f.journalmatch);
      cmp('maxmatches', j['maxmatches'], f.set.get('maxmatches'));
      cmp('usedns', j['usedns'], f.set.get('usedns'));
      // Aegis writes a dotted netmask as a prefix length
      const maskToPrefix = (w: string): string => {
        const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+\.\d+\.\d+\.\d+)$/.exec(w);
        if (!m) return w;
        const bits = (m[2] ?? '').split('.').map((o) => Number(o).toString(2).padStart(8, '0')).join('');
        return `${m[1] ?? ''}/${bits.replace(/0+$/, '').length}`;
      };
      cmp('ignoreip', j['ignoreip'], f.ignoreip.map(maskToPrefix));
      cmp('backend', j['backend'], f.backend);
      const inc = j['bantime.increment'] as Record<string, unknown>;
      cmp('bantime.increment', inc['enabled'], f.set.get('bantime.increment') ?? false);
      if (f.set.has('bantime.factor')) cmp('bantime.factor', inc['factor'], Number(f.set.get('bantime.factor')));
      if (f.set.has('bantime.maxtime')) cmp('bantime.maxtime', inc['maxtime'], secs(f.set.get('bantime.maxtime')));
      if (f.set.has('bantime.rndtime')) cmp('bantime.rndtime', inc['rndtime'], secs(f.set.get('bantime.rndtime')));
      if (f.set.has('bantime.overalljails')) cmp('bantime.overalljails', inc['overalljails'], f.set.get('bantime.overalljails'));
      if (f.set.has('bantime.formula')) cmp('bantime.formula', inc['formula'], f.set.get('bantime.formula'));
      if (f.set.has('bantime.multipliers')) cmp('bantime.multipliers', inc['multipliers'], String(f.set.get('bantime.multipliers')).split(/\s+/).map(Number));
    }
    expect(problems).toEqual([]);
  });

  it.skipIf(!have)('resolves the same actions, with the same commands after loading action.d', () => {
    const problems: string[] = [];
    let compared = 0;
    expect(resolved).not.toBeNull();
    for (const jail of resolved?.jails.filter((x) => x.enabled) ?? []) {
      const f = f2b.get(jail.name);
      if (!f) continue;
      const names = jail.actions.map((a) => actionInstanceName(jail.name, a));
      if (JSON.stringify(names) !== JSON.stringify(f.actions)) problems.push(`${jail.name} actions: aegis ${JSON.stringify(names)} fail2ban ${JSON.stringify(f.actions)}`);
      for (const spec of jail.actions) {
        const { action, diagnostics } = loadAction(cfg, jail, spec);
        if (!action) {
          problems.push(`${jail.name} ${spec.name}: ${diagnostics.map((d) => d.message).join('; ')}`);
          continue;
        }
        const theirs = f.actionOpts.get(action.name) ?? new Map<string, string>();
        for (const c of ['actionstart', 'actionstop', 'actioncheck', 'actionban', 'actionunban', 'actionflush'] as const) {
          const t = theirs.get(c);
          const o = action.commands[c];
          if ((t ?? '').trim() === '' && o === undefined) continue;
          compared++;
          if (o !== t) problems.push(`${jail.name} ${action.name} ${c}:\n  aegis    ${JSON.stringify(o)}\n  fail2ban ${JSON.stringify(t)}`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(compared).toBeGreaterThan(40);
  });
});
