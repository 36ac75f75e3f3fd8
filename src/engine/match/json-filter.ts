/**
 * The JSON filter (Aegis extension, syntax in config/types.ts JsonFilterSpec): rules on the
 * parsed fields of a JSON-lines log. The host only ever comes from the `jsonhost` path of the
 * parsed object and must be an IP address, so text inside another field (a user name, a URL
 * path) can never become the banned host — unlike a regex over the raw line. A line whose host
 * key appears more than once on the host path is refused (JSON.parse would silently keep the
 * last one, which an attacker who can inject a key could pick).
 */
import type { JsonCondition, JsonFilterSpec } from '../../config/types.js';
import { isAddress } from '../../net/address.js';
import type { LineOutcome } from '../types.js';
import type { ZoneConverter } from './dates.js';
import type { DetailedOutcome } from './filter.js';

/** longest line we parse; longer lines are not failures (and cost nothing) */
export const MAX_JSON_LINE = 64 * 1024;

type Test = (v: unknown) => boolean;
interface CompiledRule {
  readonly tests: readonly { readonly path: readonly string[]; readonly test: Test }[];
}

export interface JsonMatcherCore {
  readonly literals: readonly string[] | null;
  match(line: string, zone: ZoneConverter): DetailedOutcome | null;
}

const MISS: DetailedOutcome = Object.freeze({ outcome: Object.freeze({ kind: 'miss' }) as LineOutcome, fail: null, matchCount: 0, ignoreIndex: null });
const IGNORED: DetailedOutcome = Object.freeze({ outcome: Object.freeze({ kind: 'ignored' }) as LineOutcome, fail: null, matchCount: 0, ignoreIndex: 0 });

function scalarText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null) return 'null';
  return null;
}

function toNumber(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && /^\s*-?\d+(?:\.\d+)?\s*$/.test(v)) return Number(v);
  return null;
}

function compileCondition(c: JsonCondition): Test | string {
  switch (c.op) {
    case 'eq':
    case 'ne': {
      const set = new Set(c.values);
      const eq: Test = (v) => {
        const s = scalarText(v);
        return s !== null && set.has(s);
      };
      return c.op === 'eq' ? eq : (v) => !eq(v);
    }
    case 'regex': {
      let re: RegExp;
      try {
        re = new RegExp(c.values[0] ?? '');
      } catch (e) {
        return `invalid regex for ${c.path.join('.')}: ${e instanceof Error ? e.message : String(e)}`;
      }
      return (v) => {
        const s = scalarText(v);
        return s !== null && re.test(s);
      };
    }
    case 'range': {
      const lo = c.values[0] === undefined || c.values[0] === '' ? -Infinity : Number(c.values[0]);
      const hi = c.values[1] === undefined || c.values[1] === '' ? Infinity : Number(c.values[1]);
      if (Number.isNaN(lo) || Number.isNaN(hi)) return `invalid numeric range for ${c.path.join('.')}`;
      return (v) => {
        const n = toNumber(v);
        return n !== null && n >= lo && n <= hi;
      };
    }
    case 'exists':
      return (v) => v !== undefined;
  }
}

function getPath(obj: unknown, path: readonly string[]): unknown {
  let cur = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(cur, k)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

// characters that every JSON encoder writes as themselves (no \/, no \u003c, no \u00e9)
const SAFE_RUN = /[A-Za-z0-9 !#$%()*+,.:;=?@[\]^_`{|}~-]+/g;

function safeLiteral(value: string): string | null {
  let best = '';
  for (const m of value.matchAll(SAFE_RUN)) if (m[0].length > best.length) best = m[0];
  return best.length >= 3 ? best : null;
}

/** for each rule: the best equality condition's alternatives, as they appear in raw JSON */
function ruleLiterals(rule: readonly JsonCondition[]): string[] | null {
  let best: string[] | null = null;
  for (const c of rule) {
    if (c.op !== 'eq') continue;
    const lits: string[] = [];
    let ok = true;
    for (const v of c.values) {
      const l = safeLiteral(v);
      if (l === null) {
        ok = false;
        break;
      }
      lits.push(l);
    }
    if (!ok || lits.length === 0) continue;
    const min = Math.min(...lits.map((l) => l.length));
    const bmin = best === null ? -1 : Math.min(...best.map((l) => l.length));
    if (best === null || min * 4 - lits.length > bmin * 4 - best.length) best = lits;
  }
  return best;
}

export function compileJsonFilter(spec: JsonFilterSpec): { ok: true; value: JsonMatcherCore } | { ok: false; message: string } {
  if (spec.hostPath.length === 0) return { ok: false, message: 'jsonhost: a field path is required' };
  if (spec.fail.length === 0) return { ok: false, message: 'jsonfail: at least one rule is required' };
  const compileRules = (rules: readonly (readonly JsonCondition[])[]): CompiledRule[] | string => {
    const out: CompiledRule[] = [];
    for (const r of rules) {
      const tests: { path: readonly string[]; test: Test }[] = [];
      for (const c of r) {
        const t = compileCondition(c);
        if (typeof t === 'string') return t;
        tests.push({ path: c.path, test: t });
      }
      out.push({ tests });
    }
    return out;
  };
  const fail = compileRules(spec.fail);
  if (typeof fail === 'string') return { ok: false, message: fail };
  const ignore = compileRules(spec.ignore);
  if (typeof ignore === 'string') return { ok: false, message: ignore };
  let literals: string[] | null = [];
  for (const r of spec.fail) {
    const l = ruleLiterals(r);
    if (l === null) {
      literals = null;
      break;
    }
    literals.push(...l);
  }
  if (literals !== null) literals = [...new Set(literals)];
  return { ok: true, value: new JsonMatcher(spec, fail, ignore, literals) };
}

class JsonMatcher implements JsonMatcherCore {
  readonly literals: readonly string[] | null;
  readonly #spec: JsonFilterSpec;
  readonly #fail: readonly CompiledRule[];
  readonly #ignore: readonly CompiledRule[];
  readonly #hostKey: string;
  /** jsonfields: name and path of each */
  readonly #fields: readonly (readonly [string, readonly string[]])[];
  readonly #timePath: readonly string[];

  constructor(spec: JsonFilterSpec, fail: CompiledRule[], ignore: CompiledRule[], literals: string[] | null) {
    this.#spec = spec;
    this.#fields = spec.fields.map((f) => [f, f.split('.')] as const);
    this.#timePath = spec.timePath.length > 0 ? spec.timePath : ['time'];
    this.#fail = fail;
    this.#ignore = ignore;
    this.literals = literals;
    this.#hostKey = JSON.stringify(spec.hostPath[spec.hostPath.length - 1]);
  }

  match(line: string, zone: ZoneConverter): DetailedOutcome | null {
    if (line.length > MAX_JSON_LINE) return MISS;
    let i = 0;
    while (i < line.length && (line.charCodeAt(i) === 32 || line.charCodeAt(i) === 9)) i++;
    if (line.charCodeAt(i) !== 123 /* { */) return null;
    const lits = this.literals;
    if (lits !== null) {
      let found = false;
      for (const l of lits) if (line.includes(l)) { found = true; break; }
      if (!found) return MISS;
    }
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      return MISS;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return MISS;
    if (!this.#fail.some((r) => ruleHolds(r, obj))) return MISS;
    if (this.#ignore.some((r) => ruleHolds(r, obj))) return IGNORED;
    const hostValue = getPath(obj, this.#spec.hostPath);
    if (typeof hostValue !== 'string' || !isAddress(hostValue)) return MISS;
    // a repeated host key: JSON.parse keeps the last, which an injected key could choose
    const first = line.indexOf(this.#hostKey);
    if (first >= 0 && line.indexOf(this.#hostKey, first + 1) >= 0 && countPath(line, this.#spec.hostPath) > 1) return MISS;
    const fields: Record<string, string> = {};
    for (const [name, path] of this.#fields) {
      const v = scalarText(getPath(obj, path));
      if (v !== null && v !== 'null') fields[name] = v;
    }
    const time = jsonTime(getPath(obj, this.#timePath), zone);
    // no FailData: it serves regex features (<F-MLFID> merging, tags of a multi-line failure)
    // a JSON line has none of, and building it cost a fifth of a match
    return {
      outcome: { kind: 'fail', host: hostValue, time, fields, regexIndex: -1, attempts: 1 },
      fail: null,
      matchCount: 1,
      ignoreIndex: null,
    };
  }
}

function ruleHolds(r: CompiledRule, obj: unknown): boolean {
  for (const t of r.tests) if (!t.test(getPath(obj, t.path))) return false;
  return true;
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** the `time` of a JSON line: epoch s, ms or µs (by magnitude), or ISO 8601; null when absent */
export function jsonTime(v: unknown, zone: ZoneConverter): number | null {
  let n: number | null = null;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string') {
    const s = v.trim();
    if (/^\d+(?:\.\d+)?$/.test(s)) n = Number(s);
    else {
      const m = ISO.exec(s);
      if (!m) return null;
      const wall =
        Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0)) / 1000 +
        (m[7] ? Number(`0.${m[7]}`) : 0);
      const z = m[8];
      if (z === undefined) return zone.wallToUtc(Math.floor(wall)) + (wall - Math.floor(wall));
      if (z.toUpperCase() === 'Z') return wall;
      const sign = z[0] === '-' ? -1 : 1;
      const digits = z.slice(1).replace(':', '');
      const off = Number(digits.slice(0, 2)) * 3600 + Number(digits.slice(2, 4) || 0) * 60;
      return wall - sign * off;
    }
  }
  if (n === null || !Number.isFinite(n) || n < 0) return null;
  // seconds until year 5138; then ms; then µs
  if (n >= 1e14) return n / 1e6;
  if (n >= 1e11) return n / 1e3;
  return n;
}

/** how many times the key path occurs in the raw JSON text (a small scanner, run rarely) */
export function countPath(text: string, path: readonly string[]): number {
  let pos = 0;
  let count = 0;
  const stack: (string | null)[] = []; // key of each open object/array level
  let pendingKey: string | null = null;
  const skipWs = (): void => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };
  const readString = (): string | null => {
    let out = '';
    pos++; // opening quote
    while (pos < text.length) {
      const c = text[pos]!;
      if (c === '"') {
        pos++;
        return out;
      }
      if (c === '\\') {
        const e = text[pos + 1];
        if (e === 'u') {
          out += String.fromCharCode(parseInt(text.slice(pos + 2, pos + 6), 16));
          pos += 6;
        } else {
          out += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e === 'b' ? '\b' : e === 'f' ? '\f' : (e ?? '');
          pos += 2;
        }
      } else {
        out += c;
        pos++;
      }
    }
    return null;
  };
  const atPath = (key: string): boolean => {
    if (stack.length !== path.length) return false;
    for (let i = 1; i < path.length; i++) if (stack[i] !== path[i - 1]) return false;
    return key === path[path.length - 1];
  };
  while (pos < text.length) {
    skipWs();
    const c = text[pos];
    if (c === undefined) break;
    if (c === '{' || c === '[') {
      stack.push(pendingKey);
      pendingKey = null;
      if (c === '[') stack[stack.length - 1] = null;
      pos++;
    } else if (c === '}' || c === ']') {
      stack.pop();
      pos++;
    } else if (c === '"') {
      const s = readString();
      if (s === null) return count;
      skipWs();
      if (text[pos] === ':') {
        pos++;
        if (atPath(s)) count++;
        pendingKey = s;
      }
    } else pos++;
  }
  return count;
}
