/**
 * A merged set of INI files as fail2ban's SafeConfigParserWithIncludes holds it: the union of
 * [DEFAULT]s and sections (later files win key by key), `[Sec?cond]` conditional sections,
 * `KNOWN/<section>` memory of overridden values, and `get` with Python's BasicInterpolation plus
 * fail2ban's additions (`%(__name__)s`, `%(sec/opt)s`, `%(default/opt)s`, `%(known/opt)s`).
 */
import { ErrorCode } from '../errors.js';
import { fault, type IniEntry, type IniSection, type ParsedIni } from './ini-parse.js';
import type { Diagnostic } from './types.js';

const MAX_INTERPOLATION_DEPTH = 10;
const SECTION_OPTSUBST = /%\(([\w-]+\/([^)]+))\)s/g;
const SECTION_OPTNAME = /^([\w-]+)\/([^\s>]+)$/;
const CONDITIONAL = /^(\w+)(\?.+)$/;

export type Vars = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

const lowered = new WeakMap<object, Map<string, string>>();
/** vars with lower-cased keys (as ConfigParser's optionxform does); memoised per vars object, so a vars map must not change once used */
function lowerVars(vars: Vars | undefined): Map<string, string> {
  if (!vars) return new Map();
  const hit = lowered.get(vars);
  if (hit) return hit;
  const entries = vars instanceof Map ? [...(vars as ReadonlyMap<string, string>).entries()] : Object.entries(vars as Record<string, string>);
  const m = new Map<string, string>();
  for (const [k, v] of entries) m.set(k.toLowerCase(), v);
  lowered.set(vars, m);
  return m;
}

/** The lookup chain of one `get`: vars, then the section, then [DEFAULT]. */
class Lookup {
  readonly overlay: Map<string, string>;
  readonly section: IniSection | undefined;
  readonly defaults: IniSection;
  constructor(overlay: Map<string, string>, section: IniSection | undefined, defaults: IniSection) {
    this.overlay = overlay;
    this.section = section;
    this.defaults = defaults;
  }
  has(k: string): boolean {
    return this.overlay.has(k) || (this.section?.has(k) ?? false) || this.defaults.has(k);
  }
  get(k: string): string | undefined {
    const o = this.overlay.get(k);
    if (o !== undefined) return o;
    return this.section?.get(k)?.value ?? this.defaults.get(k)?.value;
  }
  copy(): Lookup {
    return new Lookup(new Map(this.overlay), this.section, this.defaults);
  }
}

/** "not set" signals; thrown in the hot path of option reading, so they carry no stack */
export class NoSectionError {
  readonly section: string;
  constructor(section: string) {
    this.section = section;
  }
}
export class NoOptionError {
  readonly option: string;
  constructor(option: string) {
    this.option = option;
  }
}

/**
 * A merged set of files as fail2ban's SafeConfigParserWithIncludes holds it after `read`:
 * the union of [DEFAULT]s and of sections, later files winning key by key.
 */
export class ConfigStore {
  readonly defaults: IniSection = new Map();
  readonly sections = new Map<string, IniSection>();
  /** where each section was first seen */
  readonly sectionOrigin = new Map<string, { file: string; line: number }>();
  readonly files: string[] = [];
  readonly diagnostics: Diagnostic[] = [];

  /** Merge one parsed file (fail2ban `read` of several files). */
  merge(p: ParsedIni): void {
    this.files.push(p.file);
    this.diagnostics.push(...p.diagnostics);
    for (const [k, v] of p.defaults) this.defaults.set(k, v);
    for (const [rawName, sect] of p.sections) {
      let name = rawName;
      let s: IniSection = sect;
      const cond = CONDITIONAL.exec(rawName);
      if (cond) {
        name = cond[1] ?? rawName;
        const suffix = cond[2] ?? '';
        s = new Map();
        for (const [k, v] of sect) s.set(k + suffix, v);
      }
      const prev = this.sections.get(name);
      if (prev) {
        // remember the values being overridden, for %(known/x)s in the overriding file
        let known = this.sections.get(`KNOWN/${name}`);
        if (!known) {
          known = new Map();
          this.sections.set(`KNOWN/${name}`, known);
        }
        for (const [k, v] of prev) if (s.has(k)) known.set(k, v);
        for (const [k, v] of s) prev.set(k, v);
      } else {
        this.sections.set(name, new Map(s));
        this.sectionOrigin.set(name, { file: p.file, line: p.sectionLines.get(rawName) ?? 1 });
      }
    }
  }

  hasSection(name: string): boolean {
    return this.sections.has(name);
  }

  /** Section names in first-seen order, without fail2ban's internal KNOWN/ sections. */
  sectionNames(): string[] {
    return [...this.sections.keys()].filter((n) => !n.startsWith('KNOWN/'));
  }

  /** Own keys of a section, or own + [DEFAULT] keys. */
  options(section: string, withDefault: boolean): string[] {
    const s = this.sections.get(section);
    if (!s) throw new NoSectionError(section);
    const own = [...s.keys()];
    if (!withDefault) return own;
    const out = new Set(own);
    for (const k of this.defaults.keys()) out.add(k);
    return [...out];
  }

  hasOption(section: string, option: string, withDefault = true): boolean {
    const s = this.sections.get(section);
    const k = option.toLowerCase();
    if (withDefault) {
      if (section !== 'DEFAULT' && !s) return false;
      return (s?.has(k) ?? false) || this.defaults.has(k);
    }
    return s?.has(k) ?? false;
  }

  /** The entry a get would read (for line numbers in messages). */
  entry(section: string, option: string): IniEntry | undefined {
    const k = option.toLowerCase();
    return this.sections.get(section)?.get(k) ?? this.defaults.get(k);
  }

  /** Add keys to a section (fail2ban merge_section; `pref` prefixes keys not already prefixed). */
  mergeSection(section: string, options: ReadonlyMap<string, string>, pref: string, origin: { file: string; line: number }): void {
    let sec = this.sections.get(section);
    if (!sec) {
      sec = new Map();
      this.sections.set(section, sec);
    }
    for (const [k, v] of options) {
      if (pref && (k.startsWith(pref) || k === '__name__')) continue;
      sec.set(pref + k, { value: v, file: origin.file, line: origin.line, lines: [origin.line] });
    }
  }

  setDefault(key: string, value: string, file: string): void {
    this.defaults.set(key.toLowerCase(), { value, file, line: 0, lines: [0] });
  }

  /**
   * ConfigParser.get with fail2ban's interpolation. Throws NoSectionError / NoOptionError
   * (callers treat them as "not set") and ConfigFault for broken interpolation.
   */
  get(section: string, option: string, opts: { raw?: boolean; vars?: Vars | undefined } = {}): string {
    const lookup = this.#unify(section, opts.vars);
    const key = option.toLowerCase();
    const value = lookup.get(key);
    if (value === undefined) throw new NoOptionError(`${section}/${option}`);
    if (opts.raw === true) return value;
    const accum: string[] = [];
    this.#interpolate(section, key, accum, value, lookup, 1);
    return accum.join('');
  }

  /** fail2ban get_ex: also accepts `sec/opt`, `known/opt`, `default/opt` names. */
  getEx(section: string, option: string, opts: { raw?: boolean; vars?: Vars | undefined } = {}): string {
    const m = option.includes('/') ? SECTION_OPTNAME.exec(option) : null;
    if (m) {
      const sec = m[1] ?? '';
      const opt = m[2] ?? '';
      const low = sec.toLowerCase();
      const tries = low === 'known' ? [`KNOWN/${section}`, section] : [low === 'default' ? 'DEFAULT' : sec];
      for (const s of tries) {
        try {
          return this.get(s, opt, { raw: opts.raw === true });
        } catch (e) {
          if (!(e instanceof NoSectionError || e instanceof NoOptionError)) throw e;
        }
      }
    }
    return this.get(section, option, opts);
  }

  #unify(section: string, vars: Vars | undefined): Lookup {
    const sect = this.sections.get(section);
    if (!sect && section !== 'DEFAULT') throw new NoSectionError(section);
    // shared, never mutated: #interpolate copies it before adding anything
    return new Lookup(lowerVars(vars), sect, this.defaults);
  }

  #where(section: string, option: string): { file: string; line: number | undefined } {
    const e = this.entry(section, option);
    if (e) return { file: e.file, line: e.line };
    const o = this.sectionOrigin.get(section);
    return { file: o?.file ?? this.files[this.files.length - 1] ?? '', line: o?.line };
  }

  /** fail2ban `_map_section_options`: make `%(sec/opt)s` references resolvable in `map`. */
  #mapSectionOptions(section: string, rest: string, map: Lookup): void {
    if (!rest.includes('/') || !rest.includes('%(')) return;
    for (const m of rest.matchAll(SECTION_OPTSUBST)) {
      const sopt = m[1] ?? '';
      const opt = m[2] ?? '';
      if (map.has(sopt)) continue;
      const sec = sopt.slice(0, sopt.length - opt.length - 1);
      const low = sec.toLowerCase();
      let v: string | undefined;
      let useDefault = false;
      if (low !== 'default') {
        if (low === 'known') {
          v = this.sections.get(`KNOWN/${section}`)?.get(opt)?.value;
          if (v === undefined) useDefault = true;
        } else {
          const s = this.sections.get(sec);
          if (!s) continue;
          v = s.get(opt)?.value;
          if (v === undefined) useDefault = true;
        }
      } else {
        useDefault = true;
      }
      if (useDefault) {
        v = this.defaults.get(opt)?.value;
        if (v === undefined) continue;
      }
      if (v !== undefined) map.overlay.set(sopt, v);
    }
  }

  #interpolate(section: string, option: string, accum: string[], rest0: string, map0: Lookup, depth: number): void {
    // fail2ban re-adds __name__ and section/option mapping at every level (its guard never fires)
    const map = map0.copy();
    map.overlay.set('__name__', section);
    this.#mapSectionOptions(section, rest0, map);
    const where = (): { file: string; line: number | undefined } => this.#where(section, option);
    if (depth > MAX_INTERPOLATION_DEPTH) {
      const w = where();
      throw fault(ErrorCode.CONFIG_INTERPOLATION, w.file, `%(…)s references nest deeper than ${MAX_INTERPOLATION_DEPTH} levels (a loop?)`, {
        line: w.line,
        section,
        key: option,
      });
    }
    let rest = rest0;
    while (rest.length > 0) {
      const p = rest.indexOf('%');
      if (p < 0) {
        accum.push(rest);
        return;
      }
      if (p > 0) {
        accum.push(rest.slice(0, p));
        rest = rest.slice(p);
      }
      const c = rest.slice(1, 2);
      if (c === '%') {
        accum.push('%');
        rest = rest.slice(2);
      } else if (c === '(') {
        const m = /^%\(([^)]+)\)s/.exec(rest);
        if (!m) {
          const w = where();
          throw fault(ErrorCode.CONFIG_INTERPOLATION, w.file, `bad interpolation reference ${JSON.stringify(rest.slice(0, 30))} (expected %(name)s)`, {
            line: w.line,
            section,
            key: option,
          });
        }
        const v0 = (m[1] ?? '').toLowerCase();
        rest = rest.slice(m[0].length);
        const v = map.get(v0);
        if (v === undefined) {
          const w = where();
          throw fault(ErrorCode.CONFIG_INTERPOLATION, w.file, `%(${m[1] ?? ''})s is not defined in [${section}] or [DEFAULT]`, {
            line: w.line,
            section,
            key: option,
          });
        }
        if (v.includes('%')) this.#interpolate(section, option, accum, v, map, depth + 1);
        else accum.push(v);
      } else {
        const w = where();
        throw fault(ErrorCode.CONFIG_INTERPOLATION, w.file, `'%' must be followed by '%' or '(' (write %% for a literal %), found ${JSON.stringify(rest.slice(0, 30))}`, {
          line: w.line,
          section,
          key: option,
        });
      }
    }
  }
}
