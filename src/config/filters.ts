/**
 * filter.d loading, as fail2ban's FilterReader does it (and fail2ban-regex for paths):
 * `NAME.conf`, `NAME.d/*.conf`, `NAME.local`, `NAME.d/*.local` with their [INCLUDES], then
 * `[Init]` defaults, `name[k=v]` options, `%(x)s` and `<tag>` substitution. The regexes come
 * out exactly as `fail2ban-client -d` prints them: fail2ban's own tags (`<HOST>`, `<F-USER>`,
 * `<SKIPLINES>`…) are kept, the matcher translates them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode } from '../errors.js';
import { DefinitionReader, pyInt, type OptDef } from './definition.js';
import { ConfigFault, IniCache, extractOptions, isFile, type ConfigStore } from './ini.js';
import { JSON_KEYS, parseJsonFilter, type JsonInput, type JsonKey } from './json-filter.js';
import type { Diagnostic, FilterSpec } from './types.js';

/** FilterReader._configOpts, plus the Aegis JSON keys. */
export const FILTER_OPTS: ReadonlyMap<string, OptDef> = new Map<string, OptDef>([
  ['usedns', { type: 'string', def: null }],
  ['prefregex', { type: 'string', def: null }],
  ['ignoreregex', { type: 'string', def: null }],
  ['failregex', { type: 'string', def: null }],
  ['maxlines', { type: 'int', def: null }],
  ['datepattern', { type: 'string', def: null }],
  ['journalmatch', { type: 'string', def: null }],
  ...JSON_KEYS.map((k): [string, OptDef] => [k, { type: 'string', def: null }]),
]);

export interface FilterLocation {
  /** filter name (file name without extension) */
  readonly name: string;
  /** the files read, in order, before includes */
  readonly files: readonly string[];
  /** the first file: where messages point when no line is known */
  readonly mainFile: string;
}

function globSorted(dir: string, ext: string): string[] {
  try {
    return fs
      .readdirSync(dir)
      .filter((f) => f.endsWith(ext))
      .sort()
      .map((f) => path.join(dir, f))
      .filter(isFile);
  } catch {
    return [];
  }
}

/** ConfigReaderUnshared.read: base.conf, base.d/*.conf, base.local, base.d/*.local (existing). */
export function configFiles(base: string): string[] {
  return [
    `${base}.conf`,
    ...globSorted(`${base}.d`, '.conf'),
    `${base}.local`,
    ...globSorted(`${base}.d`, '.local'),
  ].filter(isFile);
}

/** A filter by name in `configDir/filter.d` (a `.conf`/`.local` suffix is allowed), or null. */
export function locateFilterByName(configDir: string, name0: string): FilterLocation | null {
  const name = /\.(conf|local)$/.test(name0) ? name0.replace(/\.(conf|local)$/, '') : name0;
  const base = path.isAbsolute(name) ? name : path.join(configDir, 'filter.d', name);
  const files = configFiles(base);
  if (files.length === 0) return null;
  return { name: path.basename(name), files, mainFile: files[0] ?? `${base}.conf` };
}

/** A filter given as a path (fail2ban-regex rules): a file under some filter.d loads fully. */
export function locateFilterByPath(p: string): FilterLocation | null {
  const abs = path.resolve(p);
  const tries = abs.slice(-6).includes('.') ? [abs] : [abs, `${abs}.conf`, `${abs}.local`];
  const file = tries.find(isFile);
  if (file === undefined) return null;
  const dir = path.dirname(file);
  const name = path.basename(file).replace(/\.[^.]*$/, '');
  if (path.basename(dir) === 'filter.d') return locateFilterByName(path.dirname(dir), name);
  // a foreign file: read it with its includes and its .local
  return { name, files: [file], mainFile: file };
}

export interface OpenedFilter {
  readonly location: FilterLocation;
  readonly store: ConfigStore;
  readonly reader: DefinitionReader;
}

export function openFilter(cache: IniCache, location: FilterLocation, initOpts: Map<string, string>): OpenedFilter {
  const store = cache.load(location.files);
  const reader = new DefinitionReader(store, location.mainFile, initOpts, FILTER_OPTS);
  return { location, store, reader };
}

/** FilterReader.applyAutoOptions: `logtype` follows the jail's backend unless the filter sets it. */
export function applyAutoOptions(f: OpenedFilter, backend: string): void {
  if (!f.reader.initOpts.get('logtype') && !f.store.hasOption('Definition', 'logtype', false)) {
    f.reader.initOpts.set('logtype', backend.startsWith('systemd') ? 'journal' : 'file');
  }
}

function lines(v: string | null | undefined): string[] {
  if (v === null || v === undefined) return [];
  return v.split('\n').filter((r) => r !== '');
}

/** Build the FilterSpec from the combined (substituted) options of a filter. */
export function filterSpecFrom(
  f: OpenedFilter,
  combined: ReadonlyMap<string, string | null>,
  options: ReadonlyMap<string, string>,
  diagnostics: Diagnostic[],
): FilterSpec | null {
  const store = f.store;
  const file = f.location.mainFile;
  let maxlines = 1;
  const ml = combined.get('maxlines');
  if (ml !== null && ml !== undefined) {
    const n = pyInt(ml);
    const entry = store.entry('Definition', 'maxlines') ?? store.entry('Init', 'maxlines');
    if (n === null || n < 1) {
      const d: { -readonly [K in keyof Diagnostic]: Diagnostic[K] } = {
        severity: 'error',
        code: ErrorCode.CONFIG_VALUE,
        file: entry?.file ?? file,
        section: 'Definition',
        key: 'maxlines',
        message: `expected a positive integer, got ${JSON.stringify(ml)}`,
      };
      if (entry) d.line = entry.line;
      diagnostics.push(d);
      return null;
    }
    maxlines = n;
  }
  const jsonInputs: Partial<Record<JsonKey, JsonInput>> = {};
  for (const k of JSON_KEYS) {
    const v = combined.get(k);
    if (v !== null && v !== undefined) jsonInputs[k] = { value: v, entry: store.entry('Definition', k), file };
  }
  const before = diagnostics.filter((d) => d.severity === 'error').length;
  const json = parseJsonFilter(jsonInputs, file, diagnostics);
  if (diagnostics.filter((d) => d.severity === 'error').length > before) return null;
  const prefregex = combined.get('prefregex');
  const datepattern = combined.get('datepattern');
  const failEntry = store.entry('Definition', 'failregex');
  const originFile = failEntry?.file ?? file;
  // line of each regex in originFile: exact when the value kept the raw line structure,
  // else the line of the key itself (interpolation may have produced the lines)
  const regexLinesOf = (key: string): (number | undefined)[] | undefined => {
    const e = store.entry('Definition', key);
    const v = combined.get(key);
    if (!e || e.file !== originFile || v === null || v === undefined) return undefined;
    const all = v.split('\n');
    const exact = all.length === e.lines.length;
    const out: (number | undefined)[] = [];
    all.forEach((r, i) => {
      if (r !== '') out.push(exact ? (e.lines[i] ?? e.line) : e.line);
    });
    return out;
  };
  const keyLine = (key: string): number | undefined => {
    const e = store.entry('Definition', key);
    return e && e.file === originFile && e.line > 0 ? e.line : undefined;
  };
  const regexLines: { -readonly [K in keyof NonNullable<FilterSpec['regexLines']>]: NonNullable<FilterSpec['regexLines']>[K] } = {};
  const fl = regexLinesOf('failregex');
  if (fl) regexLines.failregex = fl;
  const il = regexLinesOf('ignoreregex');
  if (il) regexLines.ignoreregex = il;
  const pl = prefregex ? keyLine('prefregex') : undefined;
  if (pl !== undefined) regexLines.prefregex = pl;
  const dl = datepattern ? keyLine('datepattern') : undefined;
  if (dl !== undefined) regexLines.datepattern = dl;
  return {
    name: f.location.name,
    file,
    options: Object.fromEntries(options),
    failregex: lines(combined.get('failregex')),
    ignoreregex: lines(combined.get('ignoreregex')),
    prefregex: prefregex ? prefregex : null,
    datepattern: datepattern ? datepattern : null,
    maxlines,
    journalmatch: lines(combined.get('journalmatch')),
    json,
    origin: { file: originFile, section: 'Definition' },
    regexLines,
  };
}

function freeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as Record<string, unknown>)) freeze(v);
  }
  return o;
}

/**
 * Load a filter the way `aegis-ban regex` and `filter = …` name it: `name`, `name[k=v, k2="v 2"]`,
 * or a file path with or without `[options]`. `vars` are jail-level options (fail2ban passes
 * the jail's options the same way): a filter option of the same name is then taken from vars,
 * and `backend` selects the filter's `logtype` as in a jail. Options in `spec` win over vars.
 */
export function loadFilter(
  configDir: string,
  spec: string,
  vars?: Readonly<Record<string, string>>,
  cache: IniCache = new IniCache(),
): { filter: FilterSpec | null; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const ex = extractOptions(spec);
  if (!ex.ok) {
    diagnostics.push({ severity: 'error', code: ErrorCode.CONFIG_VALUE, file: spec, message: `invalid filter ${JSON.stringify(spec)}: ${ex.message}` });
    return { filter: null, diagnostics };
  }
  const name = ex.name.trim();
  const location = name.includes('/') ? locateFilterByPath(name) : locateFilterByName(configDir, name);
  if (!location) {
    const where = name.includes('/') ? path.resolve(name) : path.join(configDir, 'filter.d', `${name}.conf`);
    diagnostics.push({
      severity: 'error',
      code: ErrorCode.FILTER_NOT_FOUND,
      file: where,
      message: `filter ${JSON.stringify(name)} not found (no ${where} or .local)`,
    });
    return { filter: null, diagnostics };
  }
  const options = new Map(ex.options);
  try {
    const f = openFilter(cache, location, new Map(ex.options));
    diagnostics.push(...f.store.diagnostics);
    if (diagnostics.some((d) => d.severity === 'error')) return { filter: null, diagnostics };
    const pOpts = new Map(Object.entries(vars ?? {}));
    const backend = pOpts.get('backend');
    if (backend !== undefined) applyAutoOptions(f, backend);
    f.reader.getOptions(pOpts, false);
    const combined = f.reader.getCombined();
    const filter = filterSpecFrom(f, combined, options, diagnostics);
    return { filter: filter ? freeze(filter) : null, diagnostics };
  } catch (e) {
    if (e instanceof ConfigFault) {
      diagnostics.push(e.diagnostic);
      return { filter: null, diagnostics };
    }
    throw e;
  }
}
