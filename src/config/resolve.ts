/**
 * resolveConfig(dir): every config file of a directory → one frozen ResolvedConfig plus all
 * problems found (config is null when any of them is an error).
 *
 * Files, later wins: `aegis.conf`, `aegis.local` (daemon settings) and `jail.conf`,
 * `jails.d/*.conf`, `jail.local`, `jails.d/*.local` (`jail.d/` is read as an alias of
 * `jails.d/`, so an existing /etc/fail2ban tree loads), each with its `[INCLUDES]`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode } from '../errors.js';
import { IniCache, isFile, type ConfigStore } from './ini.js';
import { KNOWN_JAIL_KEYS, resolveJail } from './jail.js';
import { readDaemonSettings } from './settings.js';
import { closestKey } from './suggest.js';
import type { Diagnostic, ResolveResult, ResolvedConfig, ResolvedJail } from './types.js';

/** fail2ban's version string, for `%(fail2ban_version)s` in stock files */
const FAIL2BAN_COMPAT_VERSION = '1.0.2';

function listDirs(configDir: string, ext: string): string[] {
  const found: Array<{ base: string; file: string }> = [];
  for (const d of ['jail.d', 'jails.d']) {
    const dir = path.join(configDir, d);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) if (n.endsWith(ext) && isFile(path.join(dir, n))) found.push({ base: n, file: path.join(dir, n) });
  }
  found.sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : a.file < b.file ? -1 : 1));
  return found.map((f) => f.file);
}

/** The jail files of a directory in reading order (existing ones only). */
export function jailFiles(configDir: string): string[] {
  return [
    path.join(configDir, 'jail.conf'),
    ...listDirs(configDir, '.conf'),
    path.join(configDir, 'jail.local'),
    ...listDirs(configDir, '.local'),
  ].filter(isFile);
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as Record<string, unknown>)) deepFreeze(v);
  }
  return o;
}

function warnUnknownKeys(store: ConfigStore, sections: readonly string[], out: Diagnostic[]): void {
  const check = (section: string, keys: Iterable<[string, { file: string; line: number }]>): void => {
    for (const [key, e] of keys) {
      if (KNOWN_JAIL_KEYS.has(key) || key.startsWith('known/')) continue;
      const near = closestKey(key, KNOWN_JAIL_KEYS);
      if (!near) continue;
      const d: { -readonly [K in keyof Diagnostic]: Diagnostic[K] } = {
        severity: 'warning',
        code: ErrorCode.CONFIG_UNKNOWN_KEY,
        file: e.file,
        section,
        key,
        message: `unknown key, ignored; did you mean ${JSON.stringify(near)}?`,
      };
      if (e.line > 0) d.line = e.line;
      out.push(d);
    }
  };
  check('DEFAULT', store.defaults.entries());
  for (const s of sections) {
    const sec = store.sections.get(s);
    if (sec) check(s, sec.entries());
  }
}

export function resolveConfig(dir: string): ResolveResult {
  const configDir = path.resolve(dir);
  const diagnostics: Diagnostic[] = [];
  const cache = new IniCache();
  if (!fs.existsSync(configDir) || !fs.statSync(configDir).isDirectory()) {
    diagnostics.push({ severity: 'error', code: ErrorCode.CONFIG_MISSING, file: configDir, message: 'config directory does not exist' });
    return { config: null, diagnostics };
  }

  // daemon settings
  const aegisFiles = [path.join(configDir, 'aegis.conf'), path.join(configDir, 'aegis.local')].filter(isFile);
  const aegisStore = cache.load(aegisFiles);
  diagnostics.push(...aegisStore.diagnostics);
  const settings = readDaemonSettings(aegisStore, diagnostics);

  // jails
  const files = jailFiles(configDir);
  const jails: ResolvedJail[] = [];
  if (files.length > 0) {
    const store = cache.load(files);
    diagnostics.push(...store.diagnostics);
    store.setDefault('fail2ban_version', FAIL2BAN_COMPAT_VERSION, files[0] ?? configDir);
    store.setDefault('fail2ban_confpath', configDir, files[0] ?? configDir);
    const sections = store.sectionNames().filter((s) => s !== 'INCLUDES');
    warnUnknownKeys(store, sections, diagnostics);
    const ctx = { configDir, store, cache, enforcer: settings.daemon.enforcer };
    for (const name of sections) {
      const own: Diagnostic[] = [];
      const jail = resolveJail(ctx, name, own);
      if (jail === null || jail.enabled) {
        // fail2ban reads nothing of a disabled jail but its `enabled`: its problems are not ours
        if (jail !== null || isEnabledRaw(store, name)) diagnostics.push(...own);
      }
      if (jail) jails.push(jail);
    }
  }
  if (!jails.some((j) => j.enabled) && !diagnostics.some((d) => d.severity === 'error')) {
    diagnostics.push({
      severity: 'warning',
      code: ErrorCode.CONFIG_MISSING,
      file: files[files.length - 1] ?? path.join(configDir, 'jail.conf'),
      message: files.length === 0 ? 'no jail.conf, jail.local or jails.d/*.conf: no jails' : 'no jail is enabled',
    });
  }
  const hasError = diagnostics.some((d) => d.severity === 'error');
  const config: ResolvedConfig = { configDir, ...settings, jails };
  return { config: hasError ? null : deepFreeze(config), diagnostics };
}

function isEnabledRaw(store: ConfigStore, name: string): boolean {
  try {
    return ['1', 'on', 'true', 'yes'].includes(store.get(name, 'enabled').toLowerCase());
  } catch {
    return false;
  }
}
