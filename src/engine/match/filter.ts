/**
 * compileFilter: a FilterSpec (fail2ban regexes and/or JSON rules) → CompiledFilter, whose
 * matchers reproduce fail2ban's Filter.processLine / findFailure: the date is found and cut out
 * of the line, prefregex (with <F-CONTENT>) narrows the text, failregexes are tried in order,
 * ignoreregex hides a match, multi-line buffers (maxlines) and connection ids (<F-MLFID>) merge
 * lines, <F-NOFAIL> / <F-MLFGAINED> / <F-MLFFORGET> steer that merge.
 *
 * Everything is compiled once; match() allocates only the strings a match needs.
 */
import { ErrorCode } from '../../errors.js';
import type { Diagnostic, FilterSpec } from '../../config/types.js';
import type { CompiledFilter, LineMatcher, LineOutcome, MatcherOptions } from '../types.js';
import { compileRegex, hasFailureId, searchRegex, type CompiledRegex, type RegexHit, type UseDns } from './failregex.js';
import { DateDetector, ZoneConverter, zoneToOffset, type TimeContext } from './dates.js';
import { isAscii } from './python-regex.js';
import { compileJsonFilter, jsonTime, MAX_JSON_LINE, type JsonMatcherCore } from './json-filter.js';

export type TupleLine = readonly [pre: string, date: string, post: string];

export const CUT_NONE = 0;
export const CUT_DATE = 1;
export const CUT_LAST = 2;

/** A line after fail2ban's date stage: which part is the date, and the time it gave. */
export interface PreparedLine {
  /** CUT_NONE: match the whole line; CUT_DATE: the date at [cutStart, cutEnd) is cut out;
   * CUT_LAST: no date of its own, the previous line's (lastText) stands for it */
  readonly cut: typeof CUT_NONE | typeof CUT_DATE | typeof CUT_LAST;
  readonly cutStart: number;
  readonly cutEnd: number;
  readonly lastText: string;
  readonly date: number | null;
  readonly ascii: boolean;
  /** the date template that found it, for the regex tool's summary */
  readonly template: string | null;
}
/**
 * What fail2ban's findFailure does before the failregexes: the early ignoreregex check and the
 * prefregex. For a single-line filter it depends on the line alone, so `aegis-ban regex` runs it
 * on its second thread together with the date stage.
 */
export const PRE_MISS = 0;
export const PRE_IGNORED = 1;
export const PRE_TEXT = 2;
export interface PreMatch {
  readonly kind: typeof PRE_MISS | typeof PRE_IGNORED | typeof PRE_TEXT;
  /** PRE_IGNORED: the ignoreregex that hid the line */
  readonly ignoreIndex: number;
  /** PRE_TEXT: what the failregexes search, ending in "\n": the prefregex's <F-CONTENT>, else the line without its date */
  readonly text: string;
  /** PRE_TEXT: the prefregex's groups other than content, as name, value, name, value… */
  readonly groups: readonly string[];
}
export const NO_GROUPS: readonly string[] = Object.freeze([]);
/** the pre stage of every line the prefregex does not find */
export const PRE_MISSED: PreMatch = Object.freeze({ kind: PRE_MISS, ignoreIndex: -1, text: '', groups: NO_GROUPS });

type FailValue = string | undefined | number | Set<string>;
export type FailData = Map<string, FailValue>;

/** What one line produced, with fail2ban's full failure data (for the regex tool and tests). */
export interface DetailedOutcome {
  readonly outcome: LineOutcome;
  /** fail2ban's failure dict (groups, users…; `matches` is the number of lines) when the line failed */
  readonly fail: FailData | null;
  /** lines in the failure's `matches` (fail2ban's test "attempts") */
  readonly matchCount: number;
  /** index of the ignoreregex that hid the line, when it did */
  readonly ignoreIndex: number | null;
}

export interface DetailedMatcher extends LineMatcher {
  /** `date` (epoch s): the line's time is already known (journal entries); no date search */
  matchDetailed(line: string, date?: number): DetailedOutcome;
  /** matchDetailed in two stages (regex filters only; a JSON filter matches whole lines) */
  prepare(line: string): PreparedLine;
  matchPrepared(line: string, p: PreparedLine): DetailedOutcome;
  /** true when preMatch applies: a single-line regex filter, whose pre stage has no state */
  readonly preMatchable: boolean;
  /** the pre stage of matchPrepared (preMatchable filters only); counts nothing */
  preMatch(line: string, p: PreparedLine): PreMatch;
  /** matchPrepared for a line whose pre stage is `pre` */
  matchPreMatched(p: PreparedLine, pre: PreMatch): DetailedOutcome;
  /** hits per failregex / ignoreregex so far */
  readonly hits: readonly number[];
  readonly ignoreHits: readonly number[];
  /** the date template that found the date of the last line, null when it had none */
  readonly lineTemplate: string | null;
}

const MISS: LineOutcome = Object.freeze({ kind: 'miss' });
const IGNORED: LineOutcome = Object.freeze({ kind: 'ignored' });
const PENDING: LineOutcome = Object.freeze({ kind: 'pending' });
const NONE: DetailedOutcome = Object.freeze({ outcome: MISS, fail: null, matchCount: 0, ignoreIndex: null });

/** group names that are not user-visible fields */
const INTERNAL = new Set(['ip4', 'ip6', 'dns', 'fid', 'cidr', 'mlfid', 'nofail', 'mlfforget', 'mlfgained', 'mlfpending', 'content', 'matches', 'nofail-matches', 'users', 'ip']);

interface RegexFilterParts {
  readonly pref: CompiledRegex | null;
  readonly fail: readonly CompiledRegex[];
  readonly ignore: readonly CompiledRegex[];
  readonly maxlines: number;
  readonly datepattern: string | null;
  readonly defaultOffset: number | null;
}

export interface CompileOptions {
  /** accepted for the engine; time bounds are enforced by the worker pool (see engine/pool) */
  readonly timeoutGuard?: boolean;
}

export function compileFilter(
  spec: FilterSpec,
  _opts?: CompileOptions,
): { filter: CompiledFilter | null; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const file = spec.origin.file;
  const section = spec.origin.section;
  const diag = (key: string, line: number | undefined, code: Diagnostic['code'], message: string): void => {
    diagnostics.push({ severity: 'error', code, file, ...(line === undefined ? {} : { line }), section, key, message });
  };
  const multiline = spec.maxlines > 1;
  // usedns=no makes <HOST> an address only, as in fail2ban (no look-ups here either way)
  const ud = spec.options['usedns'];
  const useDns: UseDns = ud === 'no' || ud === 'raw' || ud === 'yes' || ud === 'warn' ? ud : 'warn';
  const compileOne = (src: string, key: string, idx: number, line: number | undefined): CompiledRegex | null => {
    const r = compileRegex(src, { multiline, useDns });
    if (!r.ok) {
      const code = r.message.startsWith('invalid') || r.message === 'empty regex' ? ErrorCode.REGEX_INVALID : ErrorCode.REGEX_UNTRANSLATABLE;
      diag(key, line, code, `${key}${idx >= 0 ? ` #${idx + 1}` : ''} ${JSON.stringify(src)}: ${r.message}`);
      return null;
    }
    return r.value;
  };
  const lines = spec.regexLines;
  const pref = spec.prefregex ? compileOne(spec.prefregex, 'prefregex', -1, lines?.prefregex) : null;
  const fail: CompiledRegex[] = [];
  spec.failregex.forEach((src, i) => {
    const c = compileOne(src, 'failregex', i, lines?.failregex?.[i]);
    if (c === null) return;
    if (!hasFailureId(c.names) && !(pref !== null && hasFailureId(pref.names))) {
      diag('failregex', lines?.failregex?.[i], ErrorCode.REGEX_INVALID, `failregex #${i + 1} ${JSON.stringify(src)}: no failure-id group (<HOST>, <ADDR>, <F-ID>…)`);
      return;
    }
    fail.push(c);
  });
  const ignore: CompiledRegex[] = [];
  spec.ignoreregex.forEach((src, i) => {
    const c = compileOne(src, 'ignoreregex', i, lines?.ignoreregex?.[i]);
    if (c !== null) ignore.push(c);
  });
  const det = DateDetector.create(spec.datepattern);
  if (!det.ok) diag('datepattern', lines?.datepattern, ErrorCode.DATEPATTERN_INVALID, det.message);
  let defaultOffset: number | null = null;
  const ltz = spec.options['logtimezone'];
  if (ltz !== undefined && ltz !== '') {
    defaultOffset = zoneToOffset(ltz);
    if (defaultOffset === null) diag('logtimezone', undefined, ErrorCode.CONFIG_VALUE, `unknown or unsupported time zone '${ltz}'`);
  }
  let json: JsonMatcherCore | null = null;
  if (spec.json) {
    const j = compileJsonFilter(spec.json);
    if (!j.ok) diag('jsonfail', undefined, ErrorCode.CONFIG_VALUE, j.message);
    else json = j.value;
  }
  if (diagnostics.length > 0) return { filter: null, diagnostics };
  if (json === null && fail.length === 0) {
    diag('failregex', undefined, ErrorCode.CONFIG_MISSING, 'the filter has no failregex and no JSON rules');
    return { filter: null, diagnostics };
  }
  const parts: RegexFilterParts = { pref, fail, ignore, maxlines: Math.max(1, spec.maxlines), datepattern: spec.datepattern, defaultOffset };
  // where fail2ban's cut of the date can fall inside a literal (0: never, {NONE} has no date)
  const preCut = det.ok ? (det.value.isNone ? 0 : det.value.preCutMax) : null;
  const literals = combineLiterals(json, parts, preCut);
  const filter: CompiledFilter = {
    literals,
    isMultiline: multiline,
    createMatcher: (options: MatcherOptions) => new FilterMatcher(parts, json, options),
  };
  return { filter, diagnostics };
}

// ---------------------------------------------------------------------------------------------
// literal prefilter

const MIN_LITERAL = 3;

/**
 * fail2ban matches the line with its date cut out, so a literal of the regex may straddle the
 * cut in the raw line. One of its two halves is then still whole, so each literal is replaced
 * by its halves when a date may be cut.
 */
function halve(set: readonly string[] | null, preCut: number | null): string[] | null {
  if (set === null) return null;
  const out = new Set<string>();
  for (const l0 of set) {
    // a single-line buffer is `line\n`: text after a newline in a literal is never in the line
    let l = l0.split('\n')[0]!;
    if (l.length === 0) return null;
    if (preCut === null) {
      // the cut may be anywhere: one of the two halves is whole
      if (l.length < 2) out.add(l);
      else {
        const h = Math.ceil(l.length / 2);
        out.add(l.slice(0, h));
        out.add(l.slice(h));
      }
    } else {
      // only up to preCut non-word characters precede the date: they may be all that stands
      // before the cut inside the literal
      let k = 0;
      while (k < preCut && k < l.length && !WORD_CHAR.test(l[k]!)) k++;
      l = l.slice(k);
      if (l.length === 0) return null;
      out.add(l);
    }
  }
  return [...out];
}

const WORD_CHAR = /[\p{L}\p{N}_]/u;

/** a literal containing another one adds nothing: a line holding it holds the shorter one */
function pruneSubsumed(set: readonly string[]): string[] {
  const sorted = [...new Set(set)].sort((a, b) => a.length - b.length);
  const out: string[] = [];
  for (const l of sorted) if (!out.some((o) => l.includes(o))) out.push(l);
  return out;
}

function setScore(set: readonly string[] | null): number {
  if (set === null || set.length === 0) return -Infinity;
  let min = Infinity;
  for (const s of set) min = Math.min(min, s.length);
  return min * 4 - set.length;
}

function minLen(set: readonly string[]): number {
  let min = Infinity;
  for (const s of set) min = Math.min(min, Buffer.byteLength(s));
  return min;
}

function combineLiterals(json: JsonMatcherCore | null, parts: RegexFilterParts, dateCuts: number | null): string[] | null {
  if (parts.maxlines > 1) return null; // every line may be part of a buffer
  const candidates: (string[] | null)[] = [];
  let regexSet: string[] | null = null;
  if (parts.fail.length > 0) {
    const pref = parts.pref ? halve(parts.pref.t.literals, dateCuts) : null;
    let union: string[] | null = [];
    for (const f of parts.fail) {
      const l = halve(f.t.literals, dateCuts);
      if (l === null) {
        union = null;
        break;
      }
      union.push(...l);
    }
    if (union !== null) union = [...new Set(union)];
    candidates.push(pref, union);
    regexSet = setScore(pref) >= setScore(union) ? pref : union;
    if (regexSet === null) return null;
  }
  let set: string[] | null = regexSet === null ? null : pruneSubsumed(regexSet);
  if (json !== null) {
    if (json.literals === null) return null;
    set = parts.fail.length > 0 ? [...new Set([...(regexSet ?? []), ...json.literals])] : [...json.literals];
  }
  if (set === null || set.length === 0 || minLen(set) < MIN_LITERAL) return null;
  return set;
}

// ---------------------------------------------------------------------------------------------
// matcher

interface MlfidEntry {
  fail: FailData;
  at: number;
}

const MLFID_MAX = 100;
const MLFID_TTL_MS = 5 * 60 * 1000;

function tupleBuf(lines: readonly TupleLine[]): string {
  if (lines.length === 1) {
    const t = lines[0]!;
    return t[0] + t[2] + '\n';
  }
  let s = '';
  for (const t of lines) s += t[0] + t[2] + '\n';
  return s;
}

/** the line as fail2ban's (before date, date, after date) tuple, for a line whose date stage is `p` */
function tupleOf(line: string, p: PreparedLine): TupleLine {
  return p.cut === CUT_DATE
    ? [line.slice(0, p.cutStart), line.slice(p.cutStart, p.cutEnd), line.slice(p.cutEnd)]
    : p.cut === CUT_LAST
      ? ['', p.lastText, line]
      : ['', '', line];
}

class FilterMatcher implements DetailedMatcher {
  readonly #p: RegexFilterParts;
  readonly #json: JsonMatcherCore | null;
  readonly #now: () => number;
  readonly #ctx: { now: number; zone: ZoneConverter; defaultOffset: number | null };
  /**
   * Made on first use: building the default templates (dozens of translated regexes) takes
   * ~70 ms, and `aegis-ban regex` on a large log runs the date stage on another thread, so its
   * main-thread matcher never needs them.
   */
  #dateDetector: DateDetector | null = null;
  #lineBuffer: TupleLine[] = [];
  #lastTimeText = '';
  #lastDate: number | null = null;
  readonly #mlfid = new Map<string, MlfidEntry>();
  /** per failregex hits, for the regex tool */
  readonly hits: number[];
  readonly ignoreHits: number[];

  constructor(p: RegexFilterParts, json: JsonMatcherCore | null, options: MatcherOptions) {
    this.#p = p;
    this.#json = json;
    this.#now = options.now;
    this.#ctx = { now: 0, zone: new ZoneConverter(options.timezone), defaultOffset: p.defaultOffset };
    this.hits = p.fail.map(() => 0);
    this.ignoreHits = p.ignore.map(() => 0);
  }

  lineTemplate: string | null = null;
  #bufAscii = true;
  /** failregex indexes worth trying for a text starting with a given code unit, in order */
  readonly #byFirst = new Map<number, readonly number[]>();

  #dispatch(unit: number): readonly number[] {
    let order = this.#byFirst.get(unit);
    if (order === undefined) {
      const o: number[] = [];
      this.#p.fail.forEach((re, i) => {
        const f = re.t.firstUnits;
        if (f === null || f.has(unit)) o.push(i);
      });
      order = o;
      if (this.#byFirst.size < 4096) this.#byFirst.set(unit, order);
    }
    return order;
  }
  // the last date text and its time: a steady log repeats the same second many times
  #cacheText = '';
  #cacheTemplate: unknown = null;
  #cacheNow = NaN;
  #cacheDate: number | null = null;

  #dates(): DateDetector {
    if (this.#dateDetector === null) {
      const d = DateDetector.create(this.#p.datepattern);
      if (!d.ok) throw new Error(`datepattern compiled before but not now: ${d.message}`);
      this.#dateDetector = d.value;
    }
    return this.#dateDetector;
  }

  get dateTemplate(): string | null {
    return this.#dateDetector?.lastTemplateName ?? null;
  }

  match(line: string): LineOutcome {
    return this.matchDetailed(line).outcome;
  }

  matchDetailed(line: string, date?: number): DetailedOutcome {
    if (date !== undefined && this.#json === null) {
      this.#ctx.now = this.#now();
      this.#lastTimeText = '';
      this.#lastDate = date;
      return this.#findFailure(['', '', line], date, isAscii(line));
    }
    if (this.#json !== null) {
      const j = this.#json.match(line, this.#ctx.zone);
      this.lineTemplate = j !== null && j.outcome.kind === 'fail' && j.outcome.time !== null ? 'JSON time' : null;
      if (j !== null && (j.outcome.kind !== 'miss' || this.#p.fail.length === 0)) return j;
      if (this.#p.fail.length === 0) return { outcome: MISS, fail: null, matchCount: 0, ignoreIndex: null };
    }
    return this.#processLine(line);
  }

  #processLine(line: string): DetailedOutcome {
    return this.matchPrepared(line, this.prepare(line));
  }

  /**
   * The date stage of fail2ban's processLine: find the line's date, cut it out, keep the last
   * date for lines without one. Its state (template order, last date) depends only on the lines
   * it was given, in order, so `aegis-ban regex` runs it on another thread, ahead of matching.
   */
  prepare(line: string): PreparedLine {
    const ctx = this.#ctx;
    const now = this.#now();
    ctx.now = now;
    const ascii = isAscii(line);
    // SPEC "Time of a line": a JSON line under a filter without datepattern takes its time from
    // the top-level `time` field (epoch s / ms / ISO 8601); the line is matched whole
    if (this.#p.datepattern === null && line.charCodeAt(0) === 123 /* { */ && line.length <= MAX_JSON_LINE) {
      const jt = topLevelJsonTime(line, ctx.zone);
      if (jt !== undefined) {
        if (jt !== null) {
          this.#lastTimeText = '';
          this.#lastDate = jt;
        }
        return { cut: CUT_NONE, cutStart: 0, cutEnd: 0, lastText: '', date: jt, ascii, template: jt === null ? null : 'JSON time' };
      }
    }
    const tm = this.#dates().matchTime(line, ascii);
    const template = tm === null ? null : tm.template.name;
    let cut: PreparedLine['cut'] = CUT_NONE;
    let cutStart = 0;
    let cutEnd = 0;
    let date: number | null = null;
    if (tm !== null) {
      cut = CUT_DATE;
      cutStart = tm.dm.start;
      cutEnd = tm.dm.end;
      const m = line.slice(cutStart, cutEnd);
      if (m) {
        if (m === this.#cacheText && tm.template === this.#cacheTemplate && now === this.#cacheNow) date = this.#cacheDate;
        else {
          date = tm.template.getDate(tm.dm, ctx as TimeContext);
          this.#cacheText = m;
          this.#cacheTemplate = tm.template;
          this.#cacheNow = now;
          this.#cacheDate = date;
        }
        if (date !== null) {
          this.#lastTimeText = m;
          this.#lastDate = date;
        }
      } else if (this.#lastDate !== null && this.#lastDate > now - 60) {
        cut = CUT_LAST;
        date = this.#lastDate;
      } else date = now;
    }
    if (date === null && this.#lastDate !== null && this.#lastDate > now - 60) {
      cut = CUT_LAST;
      date = this.#lastDate;
    }
    return { cut, cutStart, cutEnd, lastText: cut === CUT_LAST ? this.#lastTimeText : '', date, ascii, template };
  }

  /** the matching stage of processLine, for a line whose date stage is `p` */
  matchPrepared(line: string, p: PreparedLine): DetailedOutcome {
    this.lineTemplate = p.template;
    return this.#findFailure(tupleOf(line, p), p.date, p.ascii);
  }

  get preMatchable(): boolean {
    return this.#p.maxlines === 1 && this.#json === null;
  }

  preMatch(line: string, p: PreparedLine): PreMatch {
    if (!this.preMatchable) throw new Error('preMatch on a multi-line or JSON filter');
    const t = tupleOf(line, p);
    return this.#preStage(tupleBuf([t]), [t], p.ascii);
  }

  matchPreMatched(p: PreparedLine, pre: PreMatch): DetailedOutcome {
    this.lineTemplate = p.template;
    if (pre.kind === PRE_MISS) return NONE;
    if (pre.kind === PRE_IGNORED) {
      this.ignoreHits[pre.ignoreIndex]!++;
      return { outcome: IGNORED, fail: null, matchCount: 0, ignoreIndex: pre.ignoreIndex };
    }
    // a single-line buffer: what the failregex stage uses of it is that it holds one line
    const org: TupleLine[] = [['', '', pre.text]];
    this.#lineBuffer = org;
    this.#bufAscii = p.ascii;
    return this.#failStage(pre.text, pre.groups, org, p.date);
  }

  /** the first ignoreregex that finds the buffer (fail2ban's ignoreLine), not counted */
  #ignoreIndex(buf: string, orgBuffer: TupleLine[], failHit: { re: CompiledRegex; hit: RegexHit; buf: string; org: TupleLine[] } | null): number | null {
    if (failHit !== null && this.#p.maxlines > 1) {
      orgBuffer = matchedTupleLines(failHit.re, failHit.hit, failHit.buf, failHit.org).matched;
      buf = tupleBuf(orgBuffer);
    }
    const ignore = this.#p.ignore;
    for (let i = 0; i < ignore.length; i++) {
      if (searchRegex(ignore[i]!, buf, this.#bufAscii) !== null) {
        if (failHit !== null) this.#lineBuffer = matchedTupleLines(failHit.re, failHit.hit, failHit.buf, failHit.org).unmatched;
        return i;
      }
    }
    return null;
  }

  #ignoreLine(buf: string, orgBuffer: TupleLine[], failHit: { re: CompiledRegex; hit: RegexHit; buf: string; org: TupleLine[] } | null): number | null {
    const i = this.#ignoreIndex(buf, orgBuffer, failHit);
    if (i !== null) this.ignoreHits[i]!++;
    return i;
  }

  #findFailure(tuple: TupleLine, date: number | null, ascii: boolean): DetailedOutcome {
    const p = this.#p;
    let orgBuffer: TupleLine[];
    if (p.maxlines > 1) {
      this.#lineBuffer.push(tuple);
      if (this.#lineBuffer.length > p.maxlines) this.#lineBuffer = this.#lineBuffer.slice(-p.maxlines);
      orgBuffer = this.#lineBuffer;
    } else {
      orgBuffer = this.#lineBuffer = [tuple];
    }
    const buf = tupleBuf(orgBuffer);
    // the fast (non-`u`) regex forms are exact on ASCII text; a buffer is ASCII when its lines are
    const bufAscii = p.maxlines > 1 ? isAscii(buf) : ascii;
    const pre = this.#preStage(buf, orgBuffer, bufAscii);
    if (pre.kind === PRE_MISS) return NONE;
    if (pre.kind === PRE_IGNORED) {
      this.ignoreHits[pre.ignoreIndex]!++;
      return { outcome: IGNORED, fail: null, matchCount: 0, ignoreIndex: pre.ignoreIndex };
    }
    return this.#failStage(pre.text, pre.groups, orgBuffer, date);
  }

  /**
   * findFailure up to the failregexes: the early ignoreregex check, then the prefregex, whose
   * <F-CONTENT> (when not empty) becomes the only line of the buffer. `buf` is tupleBuf(orgBuffer).
   */
  #preStage(buf: string, orgBuffer: TupleLine[], bufAscii: boolean): PreMatch {
    const p = this.#p;
    this.#bufAscii = bufAscii;
    if (p.ignore.length > 0 && p.ignore.length < p.fail.length - 2) {
      const ig = this.#ignoreIndex(buf, orgBuffer, null);
      if (ig !== null) return { kind: PRE_IGNORED, ignoreIndex: ig, text: '', groups: NO_GROUPS };
    }
    if (p.pref === null) return { kind: PRE_TEXT, ignoreIndex: -1, text: buf, groups: NO_GROUPS };
    const h = searchRegex(p.pref, buf, bufAscii);
    if (h === null) return PRE_MISSED;
    let content: string | undefined;
    const groups: string[] = [];
    for (const [k, v] of h.groups) {
      if (k === 'content') content = v;
      else groups.push(k, v);
    }
    if (content) {
      this.#lineBuffer = [['', '', content]];
      return { kind: PRE_TEXT, ignoreIndex: -1, text: content + '\n', groups };
    }
    return { kind: PRE_TEXT, ignoreIndex: -1, text: buf, groups };
  }

  /**
   * findFailure from the failregexes on: `buf` is what they search, tupleBuf(this.#lineBuffer);
   * `orgBuffer` the lines before the prefregex cut (for ignoreregex and the matched lines).
   */
  #failStage(buf: string, preGroups: readonly string[], orgBuffer: TupleLine[], date: number | null): DetailedOutcome {
    const p = this.#p;
    const bufAscii = this.#bufAscii;
    const none = NONE;
    const order = this.#dispatch(buf.charCodeAt(0));
    for (let k = 0; k < order.length; k++) {
      const i = order[k]!;
      const re = p.fail[i]!;
      const hit = searchRegex(re, buf, bufAscii);
      if (hit === null) continue;
      // hits count every match, failure or not (as fail2ban-regex counts them)
      this.hits[i]!++;
      let fail: FailData = hit.groups;
      if (p.ignore.length > 0) {
        const ig = this.#ignoreLine(buf, orgBuffer, { re, hit, buf, org: orgBuffer });
        if (ig !== null) return { outcome: IGNORED, fail: null, matchCount: 0, ignoreIndex: ig };
      }
      const split = matchedTupleLines(re, hit, buf, orgBuffer);
      this.#lineBuffer = split.unmatched;
      // fail2ban: fail = preGroups.copy(); fail.update(groupdict) — the failregex's groups win,
      // and one of them that did not take part (None) hides a prefregex value of that name
      for (let g = 0; g < preGroups.length; g += 2) if (!re.names.has(preGroups[g]!)) fail.set(preGroups[g]!, preGroups[g + 1]!);
      const mlfid = fail.get('mlfid');
      if (typeof mlfid === 'string') {
        fail = this.#mergeFailure(mlfid, fail, split.matched);
        if (fail.get('nofail')) return { outcome: PENDING, fail, matchCount: 0, ignoreIndex: null };
      } else {
        fail.set('matches', ((fail.get('matches') as number | undefined) ?? 0) + split.matched.length);
      }
      // an <F-NOFAIL> line is no failure (SPEC; fail2ban-regex and fail2ban's tests skip it too)
      if (fail.get('nofail')) return { outcome: PENDING, fail, matchCount: 0, ignoreIndex: null };
      const fid = fail.get('fid') as string | undefined;
      let ip = (fail.get('ip4') ?? fail.get('ip6') ?? fail.get('dns')) as string | undefined;
      if (ip === undefined) {
        if (fid === undefined && mlfid === undefined) return none; // no id at all (cannot happen: checked at compile)
        ip = fid;
      }
      if (ip === undefined) {
        fail.set('mlfpending', 1);
        return { outcome: PENDING, fail, matchCount: 0, ignoreIndex: null };
      }
      const host = fid === undefined || fid === ip ? ip : fid;
      if (fid !== undefined && fid !== ip) fail.set('ip', ip);
      const matches = fail.get('matches');
      const matchCount = typeof matches === 'number' ? matches : 0;
      return {
        outcome: { kind: 'fail', host, time: date, fields: fieldsOf(fail), regexIndex: i, attempts: 1 },
        fail,
        matchCount,
        ignoreIndex: null,
      };
    }
    return none;
  }

  #mergeFailure(mlfid: string, failIn: FailData, matchedLines: TupleLine[]): FailData {
    let fail = failIn;
    const nowMs = Date.now();
    let entry = this.#mlfid.get(mlfid);
    if (entry !== undefined && nowMs - entry.at > MLFID_TTL_MS) {
      this.#mlfid.delete(mlfid);
      entry = undefined;
    }
    let users: Set<string> | undefined;
    let nfflgs = 0;
    if (fail.get('mlfgained')) {
      nfflgs |= 8 | 1;
      if (!fail.get('nofail')) fail.set('nofail', fail.get('mlfgained'));
    } else if (fail.get('nofail')) nfflgs |= 1;
    const forget = fail.get('mlfforget');
    fail.delete('mlfforget');
    if (forget) nfflgs |= 2;
    if (entry !== undefined) {
      const g = entry.fail;
      users = updateUsers(g, fail.get('user') as string | undefined);
      if (g.get('nofail') !== undefined) {
        if (g.get('nofail')) nfflgs |= 4;
        g.delete('nofail');
      }
      if (g.get('mlfgained') !== undefined) {
        if (g.get('mlfgained')) nfflgs |= 4;
        g.delete('mlfgained');
      }
      if (nfflgs & 8) g.delete('mlfpending');
      if ((nfflgs & 4) === 0 && !g.get('mlfpending')) g.delete('matches');
      for (const [k, v] of fail) if (v !== undefined) g.set(k, v);
      fail = g;
      if (nfflgs & 2) this.#mlfid.delete(mlfid);
    } else if (!(nfflgs & 2)) {
      users = updateUsers(fail, fail.get('user') as string | undefined);
      if (this.#mlfid.size >= MLFID_MAX) {
        // fail2ban's Utils.Cache: drop from the front (FIFO) up to and including the first entry
        // that has not expired
        for (const [k, e] of this.#mlfid) {
          this.#mlfid.delete(k);
          if (nowMs - e.at <= MLFID_TTL_MS && this.#mlfid.size < MLFID_MAX) break;
        }
      }
      this.#mlfid.set(mlfid, { fail, at: nowMs });
    }
    const pending = fail.get('mlfpending');
    fail.delete('mlfpending');
    if (pending || (users !== undefined && users.size > 1)) {
      fail.delete('nofail');
      fail.delete('mlfgained');
      nfflgs &= ~(8 | 1);
    }
    if ((nfflgs & 1) === 0) {
      // fail2ban keeps the matched lines; only their number is used here
      let m = (fail.get('nofail-matches') as number | undefined) ?? 0;
      fail.delete('nofail-matches');
      m += (fail.get('matches') as number | undefined) ?? 0;
      if ((nfflgs & 8) === 0) m += matchedLines.length;
      fail.set('matches', m);
    } else if ((nfflgs & 3) === 1) {
      fail.set('nofail-matches', ((fail.get('nofail-matches') as number | undefined) ?? 0) + matchedLines.length);
    }
    return fail;
  }
}

function updateUsers(fail: FailData, user: string | undefined): Set<string> | undefined {
  let users = fail.get('users') as Set<string> | undefined;
  if (user) {
    if (!users) fail.set('users', users = new Set());
    users.add(user);
  }
  return users;
}

function fieldsOf(fail: FailData): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of fail) {
    if (typeof v !== 'string' || INTERNAL.has(k) || k.startsWith('skiplines') || k.startsWith('alt_') || k.startsWith('tuple_') || k.startsWith('_')) continue;
    out[k] = v;
  }
  const users = fail.get('users');
  if (users instanceof Set && users.size > 1) out['users'] = [...users].sort().join(',');
  return out;
}

/** fail2ban Regex.search's split of a multi-line buffer into matched / unmatched lines */
function matchedTupleLines(re: CompiledRegex, hit: RegexHit, buf: string, org: TupleLine[]): { matched: TupleLine[]; unmatched: TupleLine[] } {
  if (org.length <= 1) return { matched: org, unmatched: [] };
  const start = hit.m.index;
  const end = start + hit.m[0].length;
  const lineStart = buf.lastIndexOf('\n', start) + 1; // rindex("\n", 0, start + 1) + 1
  let lineStartFixed = lineStart;
  // rindex searches buf[0:start+1]: a newline exactly at `start` counts
  if (buf[start] === '\n') lineStartFixed = start + 1;
  let lineEnd = buf.indexOf('\n', Math.max(0, end - 1));
  lineEnd = lineEnd < 0 ? buf.length : lineEnd + 1;
  const count1 = countNl(buf, 0, lineStartFixed);
  const count2 = countNl(buf, 0, lineEnd);
  const matched = org.slice(count1, count2);
  const unmatched = org.slice(0, count1);
  if (re.skiplines > 0) {
    const skipped: string[] = [];
    let text = '';
    for (let n = 0; n < re.skiplines; n++) {
      const v = hit.groups.get(`skiplines${n}`);
      if (v !== undefined) text += v;
    }
    if (text) skipped.push(...text.split(/\r\n|\r|\n/).filter((_s, i, a) => i < a.length - 1 || a[i] !== ''));
    let n = 0;
    for (const s of skipped) {
      for (let m = n; m < matched.length; m++) {
        const t = matched[m]!;
        if (t[0] + t[2] === s) {
          unmatched.push(matched.splice(m, 1)[0]!);
          n = m;
          break;
        }
      }
    }
  }
  unmatched.push(...org.slice(count2));
  return { matched, unmatched };
}

function countNl(s: string, from: number, to: number): number {
  let c = 0;
  for (let i = s.indexOf('\n', from); i >= 0 && i < to; i = s.indexOf('\n', i + 1)) c++;
  return c;
}

/** the `time` of a JSON object line; undefined when the line is not a JSON object */
function topLevelJsonTime(line: string, zone: ZoneConverter): number | null | undefined {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
  return jsonTime((obj as Record<string, unknown>)['time'], zone);
}
