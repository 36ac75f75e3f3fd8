/**
 * One jail section → ResolvedJail, following fail2ban's JailReader step by step:
 * 1. read `enabled`, `backend`, `filter`;
 * 2. load the filter with the jail's options, merge its options into the jail as `known/…`;
 * 3. read every jail option (now `%(known/failregex)s` resolves);
 * 4. re-read the filter with all jail options (a jail's failregex/ignoreregex/… replaces the
 *    filter's own, and the jail's lines are appended as fail2ban's command stream does);
 * 5. split the action list.
 * Values are then validated with messages naming file, line, section and key.
 */
import * as path from 'node:path';
import { ErrorCode } from '../errors.js';
import { parseCidr } from '../net/address.js';
import { expandGlob } from './glob.js';
import { recordJailVars } from './actions.js';
import { DefinitionReader, pyInt, type OptDef } from './definition.js';
import {
  applyAutoOptions,
  filterSpecFrom,
  locateFilterByName,
  openFilter,
  type OpenedFilter,
} from './filters.js';
import { ConfigFault, asBool, extractOptions, oneLine, splitWithOptions, splitWords, type ConfigStore, type IniCache } from './ini.js';
import { parseDuration } from './time-units.js';
import type { ActionSpec, BantimeIncrement, Diagnostic, FilterSpec, ResolvedJail } from './types.js';

const OPTS_FIRST: ReadonlyMap<string, OptDef> = new Map<string, OptDef>([
  ['enabled', { type: 'bool', def: 'false' }],
  ['backend', { type: 'string', def: 'auto' }],
  ['filter', { type: 'string', def: '' }],
]);

/** JailReader._configOpts (+ FilterReader's), plus the Aegis keys. */
export const JAIL_OPTS: ReadonlyMap<string, OptDef> = new Map<string, OptDef>([
  ['enabled', { type: 'bool', def: 'false' }],
  ['backend', { type: 'string', def: 'auto' }],
  ['maxretry', { type: 'int', def: null }],
  ['maxmatches', { type: 'int', def: null }],
  ['findtime', { type: 'string', def: null }],
  ['bantime', { type: 'string', def: null }],
  ['bantime.increment', { type: 'bool', def: null }],
  ['bantime.factor', { type: 'string', def: null }],
  ['bantime.formula', { type: 'string', def: null }],
  ['bantime.multipliers', { type: 'string', def: null }],
  ['bantime.maxtime', { type: 'string', def: null }],
  ['bantime.rndtime', { type: 'string', def: null }],
  ['bantime.overalljails', { type: 'bool', def: null }],
  ['ignorecommand', { type: 'string', def: null }],
  ['ignoreself', { type: 'bool', def: null }],
  ['ignoreip', { type: 'string', def: null }],
  ['ignorecache', { type: 'string', def: null }],
  ['filter', { type: 'string', def: '' }],
  ['logtimezone', { type: 'string', def: null }],
  ['logencoding', { type: 'string', def: null }],
  ['logpath', { type: 'string', def: null }],
  ['action', { type: 'string', def: '' }],
  ['usedns', { type: 'string', def: null }],
  ['prefregex', { type: 'string', def: null }],
  ['ignoreregex', { type: 'string', def: null }],
  ['failregex', { type: 'string', def: null }],
  ['maxlines', { type: 'int', def: null }],
  ['datepattern', { type: 'string', def: null }],
  ['journalmatch', { type: 'string', def: null }],
  ['ban_prefix_v4', { type: 'int', def: null }],
  ['ban_prefix_v6', { type: 'int', def: null }],
]);

/** Keys a jail section may carry that feed interpolation in stock files (never warned about). */
const KNOWN_HELPER_KEYS = [
  'port',
  'protocol',
  'chain',
  'mode',
  'banaction',
  'banaction_allports',
  'destemail',
  'sender',
  'mta',
  'fail2ban_agent',
  'action_',
  'action_mw',
  'action_mwl',
  'action_xarf',
  'action_cf_mwl',
  'action_blocklist_de',
  'action_abuseipdb',
  'blocklist_de_apikey',
  'cfemail',
  'cfapikey',
  'abuseipdb_apikey',
  'logtarget',
];
export const KNOWN_JAIL_KEYS: ReadonlySet<string> = new Set([...JAIL_OPTS.keys(), ...KNOWN_HELPER_KEYS]);

const BACKENDS = new Set(['auto', 'polling', 'pyinotify', 'systemd']);
const USEDNS = new Set(['yes', 'warn', 'no', 'raw']);

type MutableDiag = { -readonly [K in keyof Diagnostic]: Diagnostic[K] };

/** Python str() of a converted option value, as fail2ban passes jail options on as vars. */
function pyStr(type: OptDef['type'], v: string): string {
  if (type === 'bool') return asBool(v) ? 'True' : 'False';
  if (type === 'int') {
    const n = pyInt(v);
    return n === null ? v : String(n);
  }
  return v;
}

export interface JailContext {
  readonly configDir: string;
  readonly store: ConfigStore;
  readonly cache: IniCache;
  /** the enforcer chosen in aegis.conf (missing action files are errors only for `action`) */
  readonly enforcer: string | null;
}

function emptyFilter(file: string): FilterSpec {
  return {
    name: '',
    file: null,
    options: {},
    failregex: [],
    ignoreregex: [],
    prefregex: null,
    datepattern: null,
    maxlines: 1,
    journalmatch: [],
    json: null,
    origin: { file, section: 'Definition' },
  };
}

function lines(v: string | null | undefined): string[] {
  if (v === null || v === undefined) return [];
  return v.split('\n').filter((r) => r !== '');
}

/** `192.0.2.0/255.255.255.0` (accepted by fail2ban) → `192.0.2.0/24`; anything else unchanged. */
function dottedMaskToPrefix(w: string): string {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,3}(?:\.\d{1,3}){3})$/.exec(w);
  if (!m) return w;
  const bits = (m[2] ?? '')
    .split('.')
    .map((o) => Number(o).toString(2).padStart(8, '0'))
    .join('');
  if (!/^1*0*$/.test(bits) || bits.length !== 32) return w;
  return `${m[1] ?? ''}/${bits.indexOf('0') < 0 ? 32 : bits.indexOf('0')}`;
}

/** Resolve one jail. Diagnostics go to `out`; returns null when the jail cannot be built. */
export function resolveJail(ctx: JailContext, name: string, out: Diagnostic[]): ResolvedJail | null {
  const { store } = ctx;
  const origin = store.sectionOrigin.get(name) ?? { file: path.join(ctx.configDir, 'jail.conf'), line: 1 };
  const diag = (severity: Diagnostic['severity'], code: Diagnostic['code'], key: string | undefined, message: string): void => {
    const e = key === undefined ? undefined : store.entry(name, key);
    const d: MutableDiag = { severity, code, file: e?.file ?? origin.file, section: name, message: oneLine(message) };
    const line = e ? e.line : origin.line;
    if (line > 0) d.line = line;
    if (key !== undefined) d.key = key;
    out.push(d);
  };
  const errorsBefore = out.filter((d) => d.severity === 'error').length;
  try {
    // 1. the options needed before the filter
    const first = DefinitionReader.readOptions(store, name, OPTS_FIRST, new Map());
    const enabled = asBool(first.get('enabled') ?? 'false');
    const backendRaw = first.get('backend') ?? 'auto';
    const filterRaw = first.get('filter') ?? '';
    const firstVars = new Map<string, string>();
    for (const [k, v] of first) if (v !== null) firstVars.set(k, pyStr(OPTS_FIRST.get(k)?.type ?? 'string', v));

    // 2. the filter
    let opened: OpenedFilter | null = null;
    let filterOptions = new Map<string, string>();
    // like fail2ban, a disabled jail's filter is not read
    if (filterRaw && enabled) {
      const ex = extractOptions(filterRaw);
      if (!ex.ok) {
        diag('error', ErrorCode.CONFIG_VALUE, 'filter', `invalid filter definition ${JSON.stringify(filterRaw)}: ${ex.message}`);
        return null;
      }
      const loc = locateFilterByName(ctx.configDir, ex.name.trim());
      if (!loc) {
        diag('error', ErrorCode.FILTER_NOT_FOUND, 'filter', `filter ${JSON.stringify(ex.name.trim())} not found (no filter.d/${ex.name.trim()}.conf or .local)`);
        return null;
      }
      filterOptions = new Map(ex.options);
      opened = openFilter(ctx.cache, loc, new Map(ex.options));
      const fileErrors = opened.store.diagnostics;
      out.push(...fileErrors);
      if (fileErrors.some((d) => d.severity === 'error')) return null;
      applyAutoOptions(opened, backendRaw);
      opened.reader.getOptions(firstVars, true);
      const combined = opened.reader.getCombined();
      const merged = new Map<string, string>();
      for (const [k, v] of combined) if (v !== null) merged.set(k, v);
      store.mergeSection(name, merged, 'known/', origin);
    }

    // 3. every jail option
    const opts = DefinitionReader.readOptions(store, name, JAIL_OPTS, new Map());
    const vars = new Map<string, string>();
    for (const [k, v] of opts) if (v !== null) vars.set(k, pyStr(JAIL_OPTS.get(k)?.type ?? 'string', v));

    // 4. the filter again, with every jail option as a var (jail values replace the filter's)
    let filter: FilterSpec = emptyFilter(origin.file);
    let filterUsedns: string | null = null;
    let filterSetsMaxlines = false;
    if (opened) {
      opened.reader.getOptions(vars, false);
      const combined = opened.reader.getCombined();
      filterUsedns = combined.get('usedns') ?? null;
      filterSetsMaxlines = (combined.get('maxlines') ?? null) !== null;
      const spec = filterSpecFrom(opened, combined, filterOptions, out);
      if (!spec) return null;
      filter = spec;
    }
    const get = (k: string): string | null => opts.get(k) ?? null;
    // jail lines come after the filter's in fail2ban's command stream
    const jailMaxlines = get('maxlines');
    let maxlines = filter.maxlines;
    // the filter's maxlines is sent after the jail's, so it wins when both exist
    if (jailMaxlines !== null && !filterSetsMaxlines) {
      const n = pyInt(jailMaxlines);
      if (n === null || n < 1) diag('error', ErrorCode.CONFIG_VALUE, 'maxlines', `expected a positive integer, got ${JSON.stringify(jailMaxlines)}`);
      else maxlines = n;
    }
    // the jail's logtimezone travels with the filter options, where the matcher reads it
    const ltz = get('logtimezone');
    if (ltz !== null && ltz.trim() !== '' && filter.options['logtimezone'] === undefined) {
      filter = { ...filter, options: { ...filter.options, logtimezone: ltz.trim() } };
    }
    const jailPref = get('prefregex');
    const jailDate = get('datepattern');
    const jailFail = get('failregex');
    const jailFailEntry = jailFail !== null ? store.entry(name, 'failregex') : undefined;
    if (jailFailEntry && filter.failregex.length === 0) {
      // every failregex line now comes from the jail's key: point messages there
      const all = jailFail?.split('\n') ?? [];
      const exact = all.length === jailFailEntry.lines.length;
      const failLines: (number | undefined)[] = [];
      all.forEach((r, i) => {
        if (r !== '') failLines.push(exact ? (jailFailEntry.lines[i] ?? jailFailEntry.line) : jailFailEntry.line);
      });
      filter = { ...filter, origin: { file: jailFailEntry.file, section: name }, regexLines: { failregex: failLines } };
    }
    filter = {
      ...filter,
      failregex: [...filter.failregex, ...lines(get('failregex'))],
      ignoreregex: [...filter.ignoreregex, ...lines(get('ignoreregex'))],
      prefregex: filter.prefregex ?? (jailPref ? jailPref : null),
      datepattern: jailDate ? jailDate : filter.datepattern,
      maxlines,
      journalmatch: [...filter.journalmatch, ...lines(get('journalmatch'))],
    };

    // 5. values
    const backendName = backendRaw.replace(/\[.*$/s, '').trim();
    let backend: ResolvedJail['backend'] = 'auto';
    if (BACKENDS.has(backendName)) backend = backendName as ResolvedJail['backend'];
    else if (backendName === 'gamin') diag('warning', ErrorCode.CONFIG_VALUE, 'backend', 'gamin is not supported, using auto');
    else diag('error', ErrorCode.CONFIG_VALUE, 'backend', `expected auto, polling, pyinotify or systemd, got ${JSON.stringify(backendRaw)}`);

    const logpath: string[] = [];
    let logpathMode: ResolvedJail['logpathMode'] = 'head';
    const lp = get('logpath');
    if (lp !== null && backend !== 'systemd') {
      for (const raw of lp.split('\n')) {
        const t = raw.trim();
        if (!t) continue;
        const m = /^(.*\S)\s+(tail|head)$/.exec(t);
        if (m) {
          logpath.push(m[1] ?? t);
          if (m[2] === 'tail') logpathMode = 'tail';
        } else logpath.push(t);
      }
    }
    if (enabled && backend !== 'systemd' && logpath.length === 0 && filter.failregex.length + (filter.json ? 1 : 0) > 0) {
      diag('warning', ErrorCode.CONFIG_MISSING, 'logpath', 'no logpath: this jail reads nothing');
    }
    // fail2ban refuses such a jail; Aegis watches the globs and reads the files when they appear
    if (enabled && logpath.length > 0 && !logpath.some((g) => expandGlob(g).length > 0)) {
      diag('warning', ErrorCode.CONFIG_MISSING, 'logpath', `no file matches ${logpath.map((g) => JSON.stringify(g)).join(', ')} yet (it is read when it appears)`);
    }

    const int = (key: string, dflt: number, min: number, max: number, what = 'a positive integer'): number => {
      const v = get(key);
      if (v === null) return dflt;
      const n = pyInt(v);
      if (n === null || n < min || n > max) {
        diag('error', ErrorCode.CONFIG_VALUE, key, `expected ${what}, got ${JSON.stringify(v)}`);
        return dflt;
      }
      return n;
    };
    const time = (key: string, dflt: number | null, allowPermanent: boolean): number | null => {
      const v = get(key);
      if (v === null || v.trim() === '') return dflt;
      const n = parseDuration(v);
      if (n === null || (!allowPermanent && n <= 0)) {
        diag('error', ErrorCode.CONFIG_VALUE, key, `expected a time such as 600, 10m, 1h or 1d${allowPermanent ? ' (-1 = permanent)' : ''}, got ${JSON.stringify(v)}`);
        return dflt;
      }
      if (allowPermanent && n < 0) return -1;
      if (n === 0 && allowPermanent) {
        diag('error', ErrorCode.CONFIG_VALUE, key, `expected a positive time or -1 (permanent), got ${JSON.stringify(v)}`);
        return dflt;
      }
      return n;
    };
    const bool = (key: string, dflt: boolean): boolean => {
      const v = get(key);
      if (v === null || v.trim() === '') return dflt;
      const low = v.trim().toLowerCase();
      if (!['1', 'on', 'true', 'yes', '0', 'off', 'false', 'no'].includes(low)) {
        diag('warning', ErrorCode.CONFIG_VALUE, key, `expected true or false, got ${JSON.stringify(v)} (read as false, as fail2ban does)`);
      }
      return asBool(low);
    };
    const enabledRaw = get('enabled');
    if (enabledRaw !== null) bool('enabled', false);

    const maxretry = int('maxretry', 5, 1, Number.MAX_SAFE_INTEGER);
    const findtime = time('findtime', 600, false) ?? 600;
    const bantime = time('bantime', 600, true) ?? 600;
    const maxmatches = int('maxmatches', maxretry, 0, Number.MAX_SAFE_INTEGER, 'a non-negative integer');

    let factor = 1;
    const fRaw = get('bantime.factor');
    if (fRaw !== null && fRaw.trim() !== '') {
      const f = Number(fRaw.trim());
      if (!Number.isFinite(f) || f <= 0) diag('error', ErrorCode.CONFIG_VALUE, 'bantime.factor', `expected a positive number, got ${JSON.stringify(fRaw)}`);
      else factor = f;
    }
    const multipliers: number[] = [];
    const mRaw = get('bantime.multipliers');
    if (mRaw !== null && mRaw.trim() !== '') {
      for (const w of mRaw.trim().split(/\s+/)) {
        const n = Number(w);
        if (!Number.isFinite(n) || n < 0) {
          diag('error', ErrorCode.CONFIG_VALUE, 'bantime.multipliers', `expected numbers separated by spaces, got ${JSON.stringify(w)}`);
          break;
        }
        multipliers.push(n);
      }
    }
    const formula = get('bantime.formula');
    const increment: BantimeIncrement = {
      enabled: bool('bantime.increment', false),
      factor,
      formula: formula !== null && formula.trim() !== '' ? formula.trim() : null,
      multipliers,
      maxtime: time('bantime.maxtime', null, false),
      rndtime: time('bantime.rndtime', null, false),
      overalljails: bool('bantime.overalljails', false),
    };

    const ignoreip: string[] = [];
    const ignoreHostnames: string[] = [];
    for (const w0 of splitWords(get('ignoreip') ?? '')) {
      const w = dottedMaskToPrefix(w0);
      const c = parseCidr(w);
      if (c) ignoreip.push(w);
      else if (/^[0-9.]+(\/\d+)?$/.test(w) || w.includes(':') || !/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(w)) {
        diag('error', ErrorCode.ADDRESS_INVALID, 'ignoreip', `${JSON.stringify(w)} is not an IP address, CIDR prefix or host name`);
      } else ignoreHostnames.push(w);
    }

    let usedns: ResolvedJail['usedns'] = 'warn';
    const udRaw = get('usedns') ?? filterUsedns;
    if (udRaw !== null && udRaw.trim() !== '') {
      const u = udRaw.trim().toLowerCase();
      if (USEDNS.has(u)) usedns = u as ResolvedJail['usedns'];
      else diag('error', ErrorCode.CONFIG_VALUE, 'usedns', `expected yes, warn, no or raw, got ${JSON.stringify(udRaw)}`);
    }

    const ignorecommand = get('ignorecommand');
    const actions: ActionSpec[] = [];
    for (const a0 of splitWithOptions(get('action') ?? '')) {
      const a = a0.trim();
      if (!a) continue;
      const ex = extractOptions(a);
      if (!ex.ok) {
        diag('error', ErrorCode.CONFIG_VALUE, 'action', `invalid action definition ${JSON.stringify(a)}: ${ex.message}`);
        continue;
      }
      const actName = ex.name.trim();
      if (!actName.endsWith('.py') && enabled) {
        const base = path.isAbsolute(actName) ? actName : path.join(ctx.configDir, 'action.d', actName);
        const found = ['.conf', '.local'].some((ext) => ctx.cache.parse(`${base}${ext}`) !== null);
        if (!found) {
          diag(
            ctx.enforcer === 'action' ? 'error' : 'warning',
            ErrorCode.ACTION_NOT_FOUND,
            'action',
            `action ${JSON.stringify(actName)} not found (no action.d/${actName}.conf or .local)${ctx.enforcer === 'action' ? '' : ' (only the action enforcer runs it)'}`,
          );
        }
      }
      actions.push({ name: actName, params: Object.fromEntries(ex.options) });
    }

    const jail: ResolvedJail = {
      name,
      enabled,
      filter,
      logpath,
      logpathMode,
      backend,
      logencoding: (get('logencoding') ?? 'auto').trim() || 'auto',
      maxretry,
      findtime,
      bantime,
      increment,
      ignoreip,
      ignoreHostnames,
      ignoreself: bool('ignoreself', true),
      ignorecommand: ignorecommand !== null && ignorecommand.trim() !== '' ? ignorecommand : null,
      maxmatches,
      usedns,
      banPrefixV4: int('ban_prefix_v4', 32, 0, 32, 'a prefix length from 0 to 32'),
      banPrefixV6: int('ban_prefix_v6', 128, 0, 128, 'a prefix length from 0 to 128'),
      actions,
      origin,
    };
    if (out.filter((d) => d.severity === 'error').length > errorsBefore) return null;
    recordJailVars(jail, vars);
    return jail;
  } catch (e) {
    if (e instanceof ConfigFault) {
      out.push(e.diagnostic);
      return null;
    }
    throw e;
  }
}
