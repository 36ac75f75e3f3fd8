/**
 * One INI file read the way fail2ban reads it: Python's ConfigParser (strict, `#`/`;` full-line
 * comments, `;` inline comments only after whitespace, indented continuation lines, keys
 * lower-cased, section names kept as written, `[DEFAULT]`). Values keep where they came from
 * (file and line of every value line) so every diagnostic can name file, line, section and key.
 *
 * Problems deeper in the config layer are thrown as ConfigFault and turned into Diagnostic
 * values at the module edges (loadFilter, loadAction, resolveConfig): interpolation is deeply
 * recursive and fail2ban itself aborts the whole jail at the first fault.
 */
import * as fs from 'node:fs';
import { ErrorCode } from '../errors.js';
import type { Diagnostic } from './types.js';

export interface IniEntry {
  readonly value: string;
  readonly file: string;
  /** line of `key = …` */
  readonly line: number;
  /** line number of every line of the value after joining (same length as value.split('\n')) */
  readonly lines: readonly number[];
}

export type IniSection = Map<string, IniEntry>;

export interface ParsedIni {
  readonly file: string;
  readonly defaults: IniSection;
  readonly sections: Map<string, IniSection>;
  readonly sectionLines: Map<string, number>;
  readonly diagnostics: Diagnostic[];
}

/** A problem found while reading or interpolating; converted to a Diagnostic at module edges. */
export class ConfigFault extends Error {
  readonly diagnostic: Diagnostic;
  constructor(d: Diagnostic) {
    super(d.message);
    this.diagnostic = d;
  }
}

/** Diagnostics are one line: user text that carries a newline shows it as `\n`. */
export function oneLine(s: string): string {
  return s.replace(/\r?\n|\r/g, '\\n');
}

export function fault(
  code: Diagnostic['code'],
  file: string,
  message: string,
  where: { line?: number | undefined; section?: string | undefined; key?: string | undefined } = {},
): ConfigFault {
  const d: { -readonly [K in keyof Diagnostic]: Diagnostic[K] } = { severity: 'error', code, file, message: oneLine(message) };
  if (where.line !== undefined) d.line = where.line;
  if (where.section !== undefined) d.section = where.section;
  if (where.key !== undefined) d.key = where.key;
  return new ConfigFault(d);
}

const SECTCRE = /^\[(.+)\]/;
const OPTCRE = /^(.*?)\s*(=|:)\s*(.*)$/s;

function isSpace(ch: string | undefined): boolean {
  return ch !== undefined && /\s/.test(ch);
}

interface Building {
  parts: string[];
  lines: number[];
  line: number;
}

/**
 * Python ConfigParser._read with fail2ban's settings (inline_comment_prefixes=';', strict).
 * Never throws: syntax problems are diagnostics, the rest of the file is still read.
 */
export function parseIni(text: string, file: string): ParsedIni {
  const defaults: IniSection = new Map();
  const sections = new Map<string, IniSection>();
  const sectionLines = new Map<string, number>();
  const diagnostics: Diagnostic[] = [];
  const building = new Map<IniSection, Map<string, Building>>();
  const added = new Set<string>();
  let cursect: IniSection | null = null;
  let sectname: string | null = null;
  let optname: string | null = null;
  let indentLevel = 0;
  const err = (line: number, message: string, section?: string, key?: string): void => {
    const d: { -readonly [K in keyof Diagnostic]: Diagnostic[K] } = {
      severity: 'error',
      code: ErrorCode.CONFIG_SYNTAX,
      file,
      line,
      message,
    };
    if (section !== undefined) d.section = section;
    if (key !== undefined) d.key = key;
    diagnostics.push(d);
  };
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const lineno = i + 1;
    const line = lines[i] ?? '';
    // inline comments: a ';' counts only at the start or after whitespace
    let commentStart: number | null = null;
    for (let idx = line.indexOf(';'); idx >= 0; idx = line.indexOf(';', idx + 1)) {
      if (idx === 0 || isSpace(line[idx - 1])) {
        commentStart = idx;
        break;
      }
    }
    const stripped = line.trim();
    if (stripped.startsWith('#') || stripped.startsWith(';')) commentStart = 0;
    const value = (commentStart === null ? line : line.slice(0, commentStart)).trim();
    if (value.length === 0) {
      // empty_lines_in_values: a blank (not comment) line inside a value is kept
      if (commentStart === null && cursect !== null && optname !== null) {
        const b = building.get(cursect)?.get(optname);
        if (b) {
          b.parts.push('');
          b.lines.push(lineno);
        }
      }
      continue;
    }
    const firstNonSpace = line.search(/\S/);
    const curIndent = firstNonSpace < 0 ? 0 : firstNonSpace;
    if (cursect !== null && optname !== null && curIndent > indentLevel) {
      const b = building.get(cursect)?.get(optname);
      if (b) {
        b.parts.push(value);
        b.lines.push(lineno);
      }
      continue;
    }
    indentLevel = curIndent;
    const sm = SECTCRE.exec(value);
    if (sm) {
      const name = sm[1] ?? '';
      sectname = name;
      if (name === 'DEFAULT') {
        cursect = defaults;
      } else if (sections.has(name)) {
        err(lineno, `section [${name}] appears twice in this file`, name);
        cursect = sections.get(name) ?? null;
      } else {
        cursect = new Map();
        sections.set(name, cursect);
        sectionLines.set(name, lineno);
      }
      optname = null;
      continue;
    }
    if (cursect === null) {
      err(lineno, `no section header before this line: ${JSON.stringify(stripped)}`);
      continue;
    }
    const om = OPTCRE.exec(value);
    if (!om || (om[1] ?? '').length === 0) {
      err(lineno, `not a "key = value" line: ${JSON.stringify(stripped)}`, sectname ?? undefined);
      optname = null;
      continue;
    }
    const key = (om[1] ?? '').trimEnd().toLowerCase();
    const dupKey = `${sectname ?? ''}\u0000${key}`;
    if (added.has(dupKey)) err(lineno, `key appears twice in this section`, sectname ?? undefined, key);
    added.add(dupKey);
    optname = key;
    let secBuild = building.get(cursect);
    if (!secBuild) {
      secBuild = new Map();
      building.set(cursect, secBuild);
    }
    secBuild.set(key, { parts: [(om[3] ?? '').trim()], lines: [lineno], line: lineno });
    // placeholder keeps insertion order; replaced with the joined value below
    cursect.set(key, { value: '', file, line: lineno, lines: [lineno] });
  }
  // join multi-line values; trailing blank lines are dropped (Python: '\n'.join(...).rstrip())
  for (const [sect, opts] of building) {
    for (const [key, b] of opts) {
      const joined = b.parts.join('\n').replace(/\s+$/, '');
      const n = joined.length === 0 ? 1 : joined.split('\n').length;
      sect.set(key, { value: joined, file, line: b.line, lines: b.lines.slice(0, n) });
    }
  }
  return { file, defaults, sections, sectionLines, diagnostics };
}

/** Parse a file; null when it cannot be read (like ConfigParser.read, which skips it). */
export function readIniFile(file: string): ParsedIni | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return null;
    // a file that exists but cannot be read must not silently drop its settings
    return {
      file,
      defaults: new Map(),
      sections: new Map(),
      sectionLines: new Map(),
      diagnostics: [{ severity: 'error', code: ErrorCode.CONFIG_MISSING, file, message: `cannot read: ${code ?? String(e)}` }],
    };
  }
  return parseIni(text, file);
}
