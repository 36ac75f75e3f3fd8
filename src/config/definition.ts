/**
 * fail2ban's DefinitionInitConfigReader: the common reader of filter.d and action.d files.
 * `[Definition]` holds the known options, `[Init]` holds defaults that a jail's
 * `name[k=v]` parameters override; `<tag>`s are then substituted across all of them.
 * The precedence rules here are fail2ban's, step by step, because the differential test holds
 * us to `fail2ban-client -d` byte for byte.
 */
import { ErrorCode } from '../errors.js';
import {
  ConfigFault,
  NoOptionError,
  NoSectionError,
  TagRecursionError,
  fault,
  substituteRecursiveTags,
  type ConfigStore,
} from './ini.js';

export interface OptDef {
  readonly type: 'string' | 'int' | 'bool';
  readonly def: string | null;
}

const CONDITIONAL = /^(\w+)(\?.+)$/;

export class DefinitionReader {
  readonly store: ConfigStore;
  readonly file: string;
  readonly configOpts: ReadonlyMap<string, OptDef>;
  /** the `name[k=v]` parameters, later also [Init] values and their known/ copies */
  readonly initOpts: Map<string, string>;
  opts = new Map<string, string | null>();
  pOpts = new Map<string, string>();
  readonly #defCache = new Map<string, string | null>();

  constructor(store: ConfigStore, file: string, initOpts: Map<string, string>, configOpts: ReadonlyMap<string, OptDef>) {
    this.store = store;
    this.file = file;
    this.initOpts = initOpts;
    this.configOpts = configOpts;
  }

  /** ConfigReader.getOptions with convert=False: read the known options of a section. */
  static readOptions(
    store: ConfigStore,
    sec: string,
    configOpts: ReadonlyMap<string, OptDef>,
    pOpts: ReadonlyMap<string, string>,
  ): Map<string, string | null> {
    const values = new Map<string, string | null>();
    for (const [name, def] of configOpts) {
      if (pOpts.has(name)) continue;
      try {
        values.set(name, store.get(sec, name, { vars: pOpts }));
      } catch (e) {
        if (e instanceof NoSectionError) values.set(name, def.def);
        else if (e instanceof NoOptionError) {
          if (def.def !== null) values.set(name, def.def);
        } else throw e;
      }
    }
    return values;
  }

  getOptions(pOpts0: ReadonlyMap<string, string> | null, all: boolean): void {
    let pOpts = new Map(pOpts0 ?? []);
    if (this.initOpts.size > 0) pOpts = new Map([...pOpts, ...this.initOpts]);
    this.opts = DefinitionReader.readOptions(this.store, 'Definition', this.configOpts, pOpts);
    this.pOpts = pOpts;
    if (this.store.hasSection('Init')) {
      for (const opt of this.store.options('Init', false)) {
        if (opt === '__name__') continue;
        let v: string | null = null;
        if (!opt.startsWith('known/')) {
          v = this.store.get('Init', opt);
          this.initOpts.set(`known/${opt}`, v);
        }
        if (!this.initOpts.has(opt)) {
          if (v === null) v = this.store.get('Init', opt);
          this.initOpts.set(opt, v);
        }
      }
    }
    if (all && this.store.hasSection('Definition')) {
      for (const opt of this.store.options('Definition', true)) {
        if (opt === '__name__' || this.opts.has(opt)) continue;
        this.opts.set(opt, this.store.get('Definition', opt));
      }
    }
  }

  getCombOption(name: string): string | null {
    if (this.#defCache.has(name)) return this.#defCache.get(name) ?? null;
    let v: string | null;
    try {
      v = this.store.getEx('Definition', name, { vars: this.pOpts });
    } catch (e) {
      if (e instanceof NoSectionError || e instanceof NoOptionError) v = null;
      else throw e;
    }
    this.#defCache.set(name, v);
    return v;
  }

  /** Options merged with [Init]/params and `<tag>`-substituted (before type conversion). */
  getCombined(ignore: ReadonlySet<string> = new Set()): Map<string, string | null> {
    const combined = new Map<string, string | null>([...this.opts, ...this.initOpts]);
    if (combined.size === 0) return new Map();
    const ign = new Set(ignore);
    for (const n of combined.keys()) {
      const c = CONDITIONAL.exec(n);
      if (c) ign.add(c[1] ?? n);
    }
    const strings = new Map<string, string>();
    for (const [k, v] of combined) if (v !== null) strings.set(k, v);
    let out: Map<string, string>;
    try {
      out = substituteRecursiveTags(strings, { ignore: ign, addrepl: (t) => this.getCombOption(t) });
    } catch (e) {
      if (e instanceof TagRecursionError) {
        // fail2ban keeps `known/x` copies of [Init] values: report the original key
        const key = e.tag.startsWith('known/') ? e.tag.slice('known/'.length) : e.tag;
        const inInit = this.store.sections.get('Init')?.get(key);
        const entry = inInit ?? this.store.entry('Definition', key);
        throw fault(ErrorCode.CONFIG_INTERPOLATION, entry?.file ?? this.file, e.message, {
          line: entry?.line,
          section: inInit ? 'Init' : 'Definition',
          key,
        });
      }
      throw e;
    }
    const result = new Map<string, string | null>();
    for (const k of combined.keys()) result.set(k, out.get(k) ?? null);
    return result;
  }
}

/** Python int(): optional sign, digits with single underscores, surrounding spaces. */
export function pyInt(v: string): number | null {
  const s = v.trim();
  if (!/^[-+]?\d+(?:_\d+)*$/.test(s)) return null;
  return Number(s.replace(/_/g, ''));
}

export { ConfigFault };
