/**
 * Reading a set of files with fail2ban's `[INCLUDES] before/after` and `.local` companions,
 * parsing each file once (fail2ban's share_config: `common.conf` serves every filter).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode } from '../errors.js';
import { ConfigStore } from './config-store.js';
import { ConfigFault, readIniFile, type ParsedIni } from './ini-parse.js';
import type { Diagnostic } from './types.js';

/** fail2ban `_expandConfFilesWithLocal`: each X.conf is followed by X.local when it exists. */
function expandWithLocal(files: readonly string[]): string[] {
  const out: string[] = [];
  for (const f of files) {
    out.push(f);
    const ext = path.extname(f);
    const local = (ext ? f.slice(0, -ext.length) : f) + '.local';
    if (!files.includes(local) && isFile(local)) out.push(local);
  }
  return out;
}

export function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Reads files and their includes; shares parsed files across calls (fail2ban's share_config:
 * `common.conf` is parsed once for every filter).
 */
export class IniCache {
  readonly #parsed = new Map<string, ParsedIni | null>();

  parse(file: string): ParsedIni | null {
    if (this.#parsed.has(file)) return this.#parsed.get(file) ?? null;
    const p = readIniFile(file);
    this.#parsed.set(file, p);
    return p;
  }

  readonly #expanded = new Map<string, { files: string[]; diagnostics: Diagnostic[] }>();

  /** The full, ordered file list for `files` with includes resolved (before + file + after). */
  expandIncludes(files: readonly string[], seen: readonly string[] = []): { files: string[]; diagnostics: Diagnostic[] } {
    const key = `${files.join('\u0000')}\u0001${seen.join('\u0000')}`;
    const hit = this.#expanded.get(key);
    if (hit) return { files: [...hit.files], diagnostics: [...hit.diagnostics] };
    const r = this.#expandIncludesUncached(files, seen);
    this.#expanded.set(key, r);
    return { files: [...r.files], diagnostics: [...r.diagnostics] };
  }

  #expandIncludesUncached(files: readonly string[], seen: readonly string[]): { files: string[]; diagnostics: Diagnostic[] } {
    const out: string[] = [];
    const diagnostics: Diagnostic[] = [];
    for (const f of expandWithLocal(files)) {
      const r = this.#includesOf(f, seen);
      out.push(...r.files);
      diagnostics.push(...r.diagnostics);
    }
    return { files: out, diagnostics };
  }

  #includesOf(file: string, seen: readonly string[]): { files: string[]; diagnostics: Diagnostic[] } {
    const p = this.parse(file);
    if (!p) return { files: [], diagnostics: [] };
    const diagnostics: Diagnostic[] = [];
    const before: string[] = [];
    const after: string[] = [];
    const inc = p.sections.get('INCLUDES');
    if (inc) {
      // the include list is interpolated within its own file only
      const single = new ConfigStore();
      single.merge({ ...p, diagnostics: [] });
      for (const [opt, list] of [
        ['before', before],
        ['after', after],
      ] as const) {
        if (!inc.has(opt)) continue;
        let value: string;
        try {
          value = single.get('INCLUDES', opt);
        } catch (e) {
          if (e instanceof ConfigFault) {
            diagnostics.push(e.diagnostic);
            continue;
          }
          throw e;
        }
        const entry = inc.get(opt);
        for (const item of value.split('\n')) {
          if (item.trim().length === 0) continue;
          const r = path.isAbsolute(item) ? item : path.join(path.dirname(file), item);
          if (r === file || seen.includes(r)) continue;
          if (item.trim().length > 0 && !isFile(r) && !r.endsWith('.local')) {
            const d: Diagnostic = {
              severity: 'warning',
              code: ErrorCode.CONFIG_INCLUDE,
              file,
              line: entry?.line ?? 0,
              section: 'INCLUDES',
              key: opt,
              message: `included file ${r} does not exist`,
            };
            diagnostics.push(d);
          }
          const sub = this.expandIncludes([r], [...seen, file]);
          list.push(...sub.files);
          diagnostics.push(...sub.diagnostics);
        }
      }
    }
    return { files: [...before, file, ...after], diagnostics };
  }

  /** Read files (with includes) into one merged store. */
  load(files: readonly string[]): ConfigStore {
    const store = new ConfigStore();
    const { files: all, diagnostics } = this.expandIncludes(files);
    store.diagnostics.push(...diagnostics);
    for (const f of all) {
      const p = this.parse(f);
      if (p) store.merge(p);
    }
    return store;
  }
}
