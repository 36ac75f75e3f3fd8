/**
 * The Aegis JSON filter keys of a filter's [Definition] (`jsonhost`, `jsontime`, `jsonfail`,
 * `jsonignore`, `jsonfields`), parsed into JsonFilterSpec. Syntax: see JsonFilterSpec in
 * types.ts. Every bad rule is a diagnostic naming file, line and key.
 */
import { ErrorCode } from '../errors.js';
import type { IniEntry } from './ini.js';
import type { Diagnostic, JsonCondition, JsonFilterSpec } from './types.js';

export const JSON_KEYS = ['jsonhost', 'jsontime', 'jsonfail', 'jsonignore', 'jsonfields'] as const;
export type JsonKey = (typeof JSON_KEYS)[number];

const PATH_RE = /^[^\s.=!~<>?"|]+(?:\.[^\s.=!~<>?"|]+)*$/;
const NUM_RE = /^[-+]?\d+(?:\.\d+)?$/;
// one condition: path, operator, value (double-quoted with \" escapes, or a bare word)
const COND_RE = /\s*([^\s=!~<>?"]+)(?:(!=|>=|<=|=|~)(?:"((?:[^"\\]|\\.)*)"|((?:[^\s"=][^\s"]*)?))|(\?))(?=\s|$)/y;

export interface JsonInput {
  readonly value: string;
  readonly entry: IniEntry | undefined;
  readonly file: string;
}

function lineOf(input: JsonInput, index: number, count: number): number | undefined {
  const e = input.entry;
  if (!e) return undefined;
  // the raw value had the same number of lines: point at the exact line
  if (e.lines.length === count) return e.lines[index] ?? e.line;
  return e.line;
}

function splitPath(p: string): string[] {
  return p.split('.');
}

function parseCondition(pathText: string, op: string, value: string): JsonCondition | string {
  if (!PATH_RE.test(pathText)) return `bad field path ${JSON.stringify(pathText)}`;
  const path = splitPath(pathText);
  switch (op) {
    case '?':
      return { path, op: 'exists', values: [] };
    case '~':
      try {
        new RegExp(value);
      } catch (e) {
        return `invalid regex ${JSON.stringify(value)} for ${pathText}: ${e instanceof Error ? e.message : String(e)}`;
      }
      return { path, op: 'regex', values: [value] };
    case '>=':
      if (!NUM_RE.test(value)) return `expected a number after ${pathText}>=, got ${JSON.stringify(value)}`;
      return { path, op: 'range', values: [value, 'Infinity'] };
    case '<=':
      if (!NUM_RE.test(value)) return `expected a number after ${pathText}<=, got ${JSON.stringify(value)}`;
      return { path, op: 'range', values: ['-Infinity', value] };
    case '!=':
    case '=': {
      const range = /^([-+]?\d+(?:\.\d+)?)\.\.([-+]?\d+(?:\.\d+)?)$/.exec(value);
      if (range && op === '=') {
        const lo = range[1] ?? '0';
        const hi = range[2] ?? '0';
        if (Number(lo) > Number(hi)) return `empty range ${value} for ${pathText}`;
        return { path, op: 'range', values: [lo, hi] };
      }
      // `|` separates alternatives; `\|` is a literal bar
      const values = value.split(/(?<!\\)\|/).map((v) => v.replace(/\\\|/g, '|'));
      return { path, op: op === '=' ? 'eq' : 'ne', values };
    }
    default:
      return `unknown operator ${op}`;
  }
}

function parseRules(input: JsonInput, key: JsonKey, diagnostics: Diagnostic[]): JsonCondition[][] {
  const rules: JsonCondition[][] = [];
  const lines = input.value.split('\n');
  lines.forEach((raw, i) => {
    const text = raw.trim();
    if (text.length === 0) return;
    const conds: JsonCondition[] = [];
    const bad = (message: string): void => {
      const d: { -readonly [K in keyof Diagnostic]: Diagnostic[K] } = {
        severity: 'error',
        code: ErrorCode.CONFIG_VALUE,
        file: input.entry?.file ?? input.file,
        section: 'Definition',
        key,
        message,
      };
      const line = lineOf(input, i, lines.length);
      if (line !== undefined) d.line = line;
      diagnostics.push(d);
    };
    let pos = 0;
    let ok = true;
    while (pos < text.length) {
      COND_RE.lastIndex = pos;
      const m = COND_RE.exec(text);
      if (!m) {
        bad(`cannot parse condition at ${JSON.stringify(text.slice(pos).trim().slice(0, 40))} (expected path=value, path!=value, path~regex, path=N..M, path>=N, path<=N or path?)`);
        ok = false;
        break;
      }
      const op = m[2] ?? m[5] ?? '';
      // inside quotes only \" is an escape, so regex escapes (`\.`, `\d`) arrive untouched
      const value = m[3] !== undefined ? m[3].replace(/\\"/g, '"') : (m[4] ?? '');
      if (op !== '?' && op !== '~' && m[3] === undefined && value.length === 0) {
        bad(`missing value after ${m[1] ?? ''}${op}`);
        ok = false;
        break;
      }
      const c = parseCondition(m[1] ?? '', op, value);
      if (typeof c === 'string') {
        bad(c);
        ok = false;
        break;
      }
      conds.push(c);
      pos = COND_RE.lastIndex;
      while (pos < text.length && /\s/.test(text[pos] ?? '')) pos++;
    }
    if (ok && conds.length > 0) rules.push(conds);
  });
  return rules;
}

/** null when the filter has none of the JSON keys. */
export function parseJsonFilter(
  inputs: Partial<Record<JsonKey, JsonInput>>,
  file: string,
  diagnostics: Diagnostic[],
): JsonFilterSpec | null {
  const present = JSON_KEYS.filter((k) => inputs[k] !== undefined && (inputs[k]?.value ?? '').trim().length > 0);
  if (present.length === 0) return null;
  const before = diagnostics.length;
  const err = (key: JsonKey, message: string): void => {
    const input = inputs[key];
    const d: { -readonly [K in keyof Diagnostic]: Diagnostic[K] } = {
      severity: 'error',
      code: ErrorCode.CONFIG_VALUE,
      file: input?.entry?.file ?? file,
      section: 'Definition',
      key,
      message,
    };
    if (input?.entry) d.line = input.entry.line;
    diagnostics.push(d);
  };
  const hostText = inputs.jsonhost?.value.trim() ?? '';
  if (hostText.length === 0) {
    const first = present[0] ?? 'jsonfail';
    const input = inputs[first];
    const d: { -readonly [K in keyof Diagnostic]: Diagnostic[K] } = {
      severity: 'error',
      code: ErrorCode.CONFIG_MISSING,
      file: input?.entry?.file ?? file,
      section: 'Definition',
      key: 'jsonhost',
      message: 'a JSON filter needs jsonhost (the field holding the address to ban)',
    };
    if (input?.entry) d.line = input.entry.line;
    diagnostics.push(d);
  } else if (!PATH_RE.test(hostText)) err('jsonhost', `bad field path ${JSON.stringify(hostText)}`);
  const timeText = inputs.jsontime?.value.trim() || 'time';
  if (!PATH_RE.test(timeText)) err('jsontime', `bad field path ${JSON.stringify(timeText)}`);
  const fail = inputs.jsonfail ? parseRules(inputs.jsonfail, 'jsonfail', diagnostics) : [];
  const ignore = inputs.jsonignore ? parseRules(inputs.jsonignore, 'jsonignore', diagnostics) : [];
  if (fail.length === 0 && diagnostics.length === before) {
    err('jsonfail', 'a JSON filter needs at least one jsonfail rule');
  }
  const fields = (inputs.jsonfields?.value ?? '')
    .split(/[\s,]+/)
    .filter((f) => f.length > 0);
  for (const f of fields) if (!PATH_RE.test(f)) err('jsonfields', `bad field path ${JSON.stringify(f)}`);
  if (diagnostics.length > before) return null;
  return {
    hostPath: splitPath(hostText),
    timePath: splitPath(timeText),
    fail,
    ignore,
    fields,
  };
}
