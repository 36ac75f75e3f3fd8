/**
 * fail2ban's date detection: `datepattern` templates (strptime directives, `{^LN-BEG}`,
 * `{EPOCH}`, `{LEPOCH}`, `{NONE}`, `{UNB}`), the default template list, and the detector that
 * remembers the last matching template so a steady log costs one regex per line. Template
 * regexes are built with fail2ban's own rules (word/line boundaries, `(?iu)` for names) and then
 * translated like any Python regex. Times without a zone are read in the jail's IANA zone.
 */
import { translatePythonRegex, type TranslatedRegex } from './python-regex.js';

// strptime directive → Python regex (fail2ban's strptime.timeRE, C locale)
const TIME_RE: Record<string, string> = {
  d: String.raw`(?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])`,
  f: String.raw`(?P<f>[0-9]{1,6})`,
  H: String.raw`(?P<H>[0-1]?\d|2[0-3])`,
  I: String.raw`(?P<I>1[0-2]|0[1-9]|[1-9])`,
  G: String.raw`(?P<G>\d\d\d\d)`,
  j: String.raw`(?P<j>36[0-6]|3[0-5]\d|[1-2]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])`,
  m: String.raw`(?P<m>0?[1-9]|1[0-2])`,
  M: String.raw`(?P<M>[0-5]?\d)`,
  S: String.raw`(?P<S>[0-5]?\d|6[0-1])`,
  U: String.raw`(?P<U>5[0-3]|[0-4]\d|\d)`,
  w: String.raw`(?P<w>[0-6])`,
  u: String.raw`(?P<u>[1-7])`,
  V: String.raw`(?P<V>5[0-3]|0[1-9]|[1-4]\d|\d)`,
  y: String.raw`(?P<y>\d\d)`,
  Y: String.raw`(?P<Y>\d{4})`,
  z: String.raw`(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)`,
  A: String.raw`(?P<A>wednesday|thursday|saturday|tuesday|monday|friday|sunday)`,
  a: String.raw`(?P<a>mon|tue|wed|thu|fri|sat|sun)`,
  B: String.raw`(?P<B>september|february|november|december|january|october|august|march|april|june|july|may)`,
  b: String.raw`(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)`,
  p: String.raw`(?P<p>am|pm)`,
  Z: String.raw`(?P<Z>Z|[A-Z]{3,5})`,
  '%': '%',
  W: String.raw`(?P<W>5[0-3]|[0-4]\d|\d)`,
  c: String.raw`(?P<a>mon|tue|wed|thu|fri|sat|sun)\s+(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\s+(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])\s+(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)\s+(?P<Y>\d\d\d\d)`,
  x: String.raw`(?P<m>1[0-2]|0[1-9]|[1-9])/(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])/(?P<y>\d\d)`,
  X: String.raw`(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)`,
  k: String.raw` ?(?P<H>[0-2]?\d)`,
  l: String.raw` ?(?P<I>1?\d)`,
  ExZ: String.raw`(?P<Z>[A-Z](?:[A-Z]{2,4})?)`,
  Exz: String.raw`(?P<z>(?:[A-Z](?:[A-Z]{2,4})?)?[+-][01]\d(?::?\d{2})?|[A-Z](?:[A-Z]{2,4})?)`,
  Exd: String.raw`(?P<d>[1-2]\d|0[1-9]|3[0-1])`,
  Exm: String.raw`(?P<m>0[1-9]|1[0-2])`,
  ExH: String.raw`(?P<H>[0-1]\d|2[0-3])`,
  Exk: String.raw` ?(?P<H>[0-1]?\d|2[0-3])`,
  Exl: String.raw` ?(?P<I>1[0-2]|\d)`,
  ExM: String.raw`(?P<M>[0-5]\d)`,
  ExS: String.raw`(?P<S>[0-5]\d|6[0-1])`,
  ExY: exYear(new Date().getUTCFullYear()),
  Exy: String.raw`(?P<y>\d{2})`,
};

/** fail2ban's %ExY: the centuries of last year … 3 years ahead, plus 2000 onwards (its tests) */
function exYear(year: number): string {
  const cents = new Set<string>();
  for (const y of [year - 1, year + 3]) cents.add(String(y).slice(0, 3));
  for (let y = 2000; y <= year; y += 3) cents.add(String(y).slice(0, 3));
  const list = [...cents].sort();
  return `(?P<Y>(?:${list.join('|')})\\d)`;
}

const NAMES: Record<string, string> = {
  a: 'DAY', A: 'DAYNAME', b: 'MON', B: 'MONTH', d: 'Day', H: '24hour', I: '12hour', j: 'Yearday',
  m: 'Month', M: 'Minute', p: 'AMPM', S: 'Second', U: 'Yearweek', w: 'Weekday', W: 'Yearweek',
  y: 'Year2', Y: 'Year', '%': '%', z: 'Zone offset', f: 'Microseconds', Z: 'Zone name',
};
function directiveName(k: string): string {
  const n = NAMES[k];
  if (n !== undefined) return n;
  if (k.startsWith('Ex')) {
    const b = NAMES[k.slice(2)];
    if (b !== undefined) return `Ex${b}`;
  }
  return `%${k}`;
}

const DIRECTIVE = /%(%|ExZ|Exz|Exd|Exm|ExH|Exk|Exl|ExM|ExS|ExY|Exy|[dfHIGjmMSUwuVyYzAaBbpZWcxXkl])/g;

// fail2ban datetemplate.py rules, on pattern text
const RE_GROUPED = /(?<!(?:\(\?))(?<!\\)\((?!\?)/;
const RE_GROUP = /^((?:\(\?\w+\))?\^?(?:\(\?\w+\))?)(.*?)(\$?)$/s;
const RE_GLOBALFLAGS = /((?:^|(?!<\\))\(\?[a-z]+\))/;
const RE_EXLINE_NO_BOUNDS = /^\{UNB\}/;
const RE_EXLINE_BOUND_BEG = /^\{\^LN-BEG\}/;
const RE_EXSANC_BOUND_BEG = /^\((?:\?:)?\^\|\\b\|\\W\)/;
const RE_EXEANC_BOUND_BEG = /\(\?=\\b\|\\W\|\$\)$/;
const RE_NO_WRD_BOUND_BEG = /^\(*(?:\(\?\w+\))?(?:\^|\(*\*\*|\((?:\?:)?\^)/;
const RE_NO_WRD_BOUND_END = /(?<!\\)(?:\$\)?|\\b|\\s|\*\*\)*)$/;
const RE_DEL_WRD_BOUNDS = /^\(*(?:\(\?\w+\))?\(*\*\*|(?<!\\)\*\*\)*$/g;
const RE_LINE_BOUND_BEG = /^(?:\(\?\w+\))?(?:\^|\((?:\?:)?\^(?!\|))/;
const RE_LINE_BOUND_END = /(?<![\\|])(?:\$\)?)$/;
const RE_ALPHA_PATTERN = /(?<!%)%[aAbBpc]/;
const RE_EPOCH_PATTERN = /(?<!\\)\{L?EPOCH\}/i;

export const LINE_BEGIN = 8;
export const LINE_END = 4;
export const WORD_BEGIN = 2;
export const WORD_END = 1;

export interface DateMatch {
  readonly start: number;
  readonly end: number;
  readonly index: number;
  readonly endAll: number;
  readonly m: RegExpExecArray;
  /** text of the value group */
  readonly value: string;
}

export interface TimeContext {
  /** "now", epoch seconds */
  readonly now: number;
  readonly zone: ZoneConverter;
  /** fail2ban logtimezone: a fixed offset in minutes, or null */
  readonly defaultOffset: number | null;
}

export abstract class DateTemplate {
  name = '';
  weight = 1.0;
  flags = 0;
  /**
   * How many characters may precede the cut-out date in the line: 2 (all non-word) for the
   * `{^LN-BEG}` form, 0 for a pattern anchored with `^(`, null when unknown. The literal
   * prefilter uses it to know where fail2ban's date cut can split a literal.
   */
  preCut: number | null = null;
  protected re!: TranslatedRegex;
  #dateGroups: readonly number[] = [1];
  #valueGroups: readonly number[] = [1];
  /** Python group holding the value (fail2ban DateEpoch with a pattern reads group 2) */
  protected valueGroup = 1;
  /** true when the date group's position needs match indices (a pattern with its own group) */
  protected needIndices = true;
  /** set by templates whose own group 1 is known to end the match */
  protected groupIsSuffix = false;
  #sticky: RegExp | null = null;
  #stickyU: RegExp | null = null;

  /** fail2ban DateTemplate.setRegex: word / line boundaries, a group around the date */
  protected setRegex(regexIn: string, wordBegin: boolean | 'start' = true, wordEnd = true): string | null {
    let regex = regexIn.trim();
    const gf = RE_GLOBALFLAGS.exec(regex);
    if (gf) regex = regex.replace(RE_GLOBALFLAGS, '');
    const boundBegin = wordBegin !== false && !RE_NO_WRD_BOUND_BEG.test(regex);
    const boundEnd = wordEnd && !RE_NO_WRD_BOUND_END.test(regex);
    // without a group of the pattern's own, group 1 is ours and ends the consumed text, so its
    // position follows from the match without the (allocating) `d` flag
    const ownGroup = RE_GROUPED.test(regex);
    if (!ownGroup) regex = regex.replace(RE_GROUP, '$1($2)$3');
    this.needIndices = ownGroup && !this.groupIsSuffix;
    this.flags = 0;
    if (boundBegin) {
      this.flags |= wordBegin !== 'start' ? WORD_BEGIN : LINE_BEGIN;
      if (wordBegin !== 'start') regex = String.raw`(?=^|\b|\W)` + regex;
      else {
        regex = String.raw`^(?:\W{0,2})?` + regex;
        if (!this.name.startsWith('{^LN-BEG}')) this.name = '{^LN-BEG}' + this.name;
      }
    }
    if (boundEnd) {
      this.flags |= WORD_END;
      regex += String.raw`(?=\b|\W|$)`;
    }
    if (!(this.flags & LINE_BEGIN) && RE_LINE_BOUND_BEG.test(regex)) this.flags |= LINE_BEGIN;
    if (!(this.flags & LINE_END) && RE_LINE_BOUND_END.test(regex)) this.flags |= LINE_END;
    regex = regex.replace(RE_DEL_WRD_BOUNDS, (m) => m.replace('**', ''));
    if (gf) regex = gf[1]! + regex;
    this.preCut = boundBegin && wordBegin === 'start' ? 2 : /^(?:\(\?\w+\))?\^\((?!\?)/.test(regex) ? 0 : null;
    return this.compile(regex, [1], [this.valueGroup]);
  }

  protected compile(pyRegex: string, pyGroups: readonly number[], valueGroups: readonly number[] = pyGroups): string | null {
    const t = translatePythonRegex(pyRegex, { indices: this.needIndices });
    if (!t.ok) return t.message;
    this.re = t.value;
    const js: number[] = [];
    for (const g of pyGroups) js.push(...(t.value.pyIndex.get(g) ?? []));
    this.#dateGroups = js;
    const vs: number[] = [];
    for (const g of valueGroups) vs.push(...(t.value.pyIndex.get(g) ?? []));
    this.#valueGroups = vs;
    return null;
  }

  get regexSource(): string {
    return this.re.ascii.source;
  }

  /** Python `search(line, pos, endpos)` */
  matchDate(line: string, ascii: boolean, pos = 0, endpos = line.length): DateMatch | null {
    const base = ascii || this.re.unicode === null ? this.re.ascii : this.re.unicode;
    let re: RegExp;
    if (pos === 0 && endpos >= line.length) {
      re = base;
    } else {
      if (ascii || this.re.unicode === null) re = this.#sticky ??= new RegExp(base.source, base.flags + 'g');
      else re = this.#stickyU ??= new RegExp(base.source, base.flags + 'g');
      re.lastIndex = pos;
      if (endpos < line.length) line = line.slice(0, endpos);
    }
    const m = re.exec(line);
    if (m === null) return null;
    let start = m.index;
    let end = m.index + m[0].length;
    if (this.needIndices) {
      for (const g of this.#dateGroups) {
        const idx = m.indices?.[g];
        if (idx !== undefined) {
          start = idx[0];
          end = idx[1];
          break;
        }
      }
    } else {
      for (const g of this.#dateGroups) {
        const v = m[g];
        if (v !== undefined) {
          start = end - v.length;
          break;
        }
      }
    }
    let value = m[0];
    for (const g of this.#valueGroups) {
      const v = m[g];
      if (v !== undefined) {
        value = v;
        break;
      }
    }
    return { start, end, index: m.index, endAll: m.index + m[0].length, m, value };
  }

  abstract getDate(dm: DateMatch, ctx: TimeContext): number | null;
}

const EPOCH_RE = String.raw`\d{10,11}\b(?:\.\d{3,6})?`;
const LEPOCH_RE = String.raw`\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?`;

export class DateEpoch extends DateTemplate {
  readonly #long: boolean;
  constructor(opts: { lineBeginOnly?: boolean; pattern?: string; longFrm?: boolean }) {
    super();
    this.#long = opts.longFrm ?? false;
    // every epoch form below consumes nothing after its number group
    this.groupIsSuffix = true;
    this.name = opts.pattern ?? (this.#long ? 'LongEpoch' : 'Epoch');
    const epoch = this.#long ? LEPOCH_RE : EPOCH_RE;
    let err: string | null;
    if (opts.pattern) {
      const regex = '(' + opts.pattern.replace(new RegExp(RE_EPOCH_PATTERN.source, 'gi'), () => `(${epoch})`) + ')';
      err = this.setRegexWithGroup(regex, 2);
    } else if (!opts.lineBeginOnly) {
      // fail2ban's form ends in (?:(?(selinux)…)|(?(square)…)), whose first branch always
      // matches empty when its group is absent: the two conditions never constrain anything
      err = this.setRegexWithGroup(String.raw`((?:^|(?<=^\[)|(?<=\baudit\())${epoch})`, 1, false);
    } else {
      // ((?P<square>(?<=^\[))?E)(?(square)(?=\])) split on the participation of `square`
      err = this.compileBounded(
        String.raw`(?:(?<=^\[)(${epoch})(?=\])|(${epoch}))`,
      );
    }
    if (err !== null) throw new Error(err);
  }

  private setRegexWithGroup(regex: string, group: number, wordBegin: boolean | 'start' = true): string | null {
    this.valueGroup = group;
    return this.setRegex(regex, wordBegin, true);
  }

  private compileBounded(core: string): string | null {
    // the `start` form of setRegex for the line-begin epoch: ^(?:\W{0,2})? … (?=\b|\W|$)
    this.flags = LINE_BEGIN | WORD_END;
    this.preCut = 2;
    this.needIndices = false;
    if (!this.name.startsWith('{^LN-BEG}')) this.name = '{^LN-BEG}' + this.name;
    return this.compile(String.raw`^(?:\W{0,2})?` + core + String.raw`(?=\b|\W|$)`, [1, 2]);
  }

  getDate(dm: DateMatch): number | null {
    const v = dm.value;
    let n = Number(v);
    if (!Number.isFinite(n)) return null;
    if (this.#long && v.length >= 13) n = v.length >= 16 && !v.includes('.') ? n / 1_000_000 : n / 1000;
    return n;
  }
}

export class DateTai64n extends DateTemplate {
  constructor(wordBegin: boolean | 'start' = false) {
    super();
    this.name = 'TAI64N';
    const err = this.setRegex('@[0-9a-f]{24}', wordBegin);
    if (err !== null) throw new Error(err);
  }
  getDate(dm: DateMatch): number | null {
    return parseInt(dm.value.slice(2, 17), 16);
  }
}

export class DatePatternRegex extends DateTemplate {
  readonly pattern: string;
  constructor(pattern: string, wordBegin: boolean | 'start' = true, wordEnd = true) {
    super();
    this.pattern = pattern;
    let p = pattern;
    if (RE_EXLINE_NO_BOUNDS.test(p)) {
      p = p.replace(RE_EXLINE_NO_BOUNDS, '');
      wordBegin = false;
      wordEnd = false;
    }
    if (wordBegin !== false && RE_EXLINE_BOUND_BEG.test(p)) {
      p = p.replace(RE_EXLINE_BOUND_BEG, '');
      wordBegin = 'start';
    }
    let bad = false;
    const names = p.replace(DIRECTIVE, (_m, k: string) => directiveName(k));
    let regex = p.replace(DIRECTIVE, (_m, k: string) => TIME_RE[k] ?? '');
    if (/(?<!%)%(?!%)/.test(regex.replace(/%%/g, ''))) bad = true;
    this.name = names;
    if (bad) throw new Error(`invalid datepattern '${pattern}' (unknown directive or unescaped %)`);
    if (RE_ALPHA_PATTERN.test(p)) regex = '(?iu)' + regex;
    const err = this.setRegex(regex, wordBegin, wordEnd);
    if (err !== null) throw new Error(`invalid datepattern '${pattern}': ${err}`);
  }

  #groups: readonly (readonly [string, readonly number[]])[] | null = null;

  getDate(dm: DateMatch, ctx: TimeContext): number | null {
    const groups = (this.#groups ??= [...this.re.nameIndex]);
    const g: Record<string, string | undefined> = {};
    for (let k = 0; k < groups.length; k++) {
      const [name, idxs] = groups[k]!;
      for (let j = 0; j < idxs.length; j++) {
        const v = dm.m[idxs[j]!];
        if (v !== undefined) {
          g[name] = v;
          break;
        }
      }
    }
    return strptimeGroups(g, ctx);
  }
}

const MONTHS_A = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MONTHS_F = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];

/** fail2ban's reGroupDictStrptime: fields → epoch seconds (fractions dropped, as fail2ban does) */
export function strptimeGroups(g: Record<string, string | undefined>, ctx: TimeContext): number | null {
  let year: number | null = null;
  let month: number | null = null;
  let day: number | null = null;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let julian: number | null = null;
  let tzoffset: number | null = null;
  for (const key of Object.keys(g)) {
    const val = g[key];
    if (val === undefined) continue;
    switch (key) {
      case 'y':
        year = Number(val);
        if (year <= 2000) year += 2000;
        break;
      case 'Y':
        year = Number(val);
        break;
      case 'm':
        month = Number(val);
        break;
      case 'B':
        month = MONTHS_F.indexOf(val.toLowerCase()) + 1;
        break;
      case 'b':
        month = MONTHS_A.indexOf(val.toLowerCase()) + 1;
        break;
      case 'd':
        day = Number(val);
        break;
      case 'H':
        hour = Number(val);
        break;
      case 'I': {
        hour = Number(val);
        const ampm = (g['p'] ?? '').toLowerCase();
        if (ampm === '' || ampm === 'am') {
          if (hour === 12) hour = 0;
        } else if (ampm === 'pm' && hour !== 12) hour += 12;
        break;
      }
      case 'M':
        minute = Number(val);
        break;
      case 'S':
        second = Number(val);
        break;
      case 'j':
        julian = Number(val);
        break;
      case 'z':
      case 'Z': {
        if (val === 'Z' || val === 'UTC' || val === 'GMT') tzoffset = 0;
        else {
          const off = zoneToOffset(val);
          if (off === null) return null;
          tzoffset = off;
        }
        break;
      }
      default:
    }
  }
  const nowWall = ctx.now + ctx.zone.offsetAtUtc(ctx.now);
  const nowD = wallDate(nowWall);
  let assumeYear = false;
  if (year === null) {
    year = nowD.getUTCFullYear();
    assumeYear = true;
  }
  if ((month === null || day === null) && julian !== null) {
    const d = new Date(Date.UTC(year, 0, julian));
    year = d.getUTCFullYear();
    month = d.getUTCMonth() + 1;
    day = d.getUTCDate();
  }
  let assumeToday = false;
  if (month === null && day === null) {
    month = nowD.getUTCMonth() + 1;
    day = nowD.getUTCDate();
    assumeToday = true;
  }
  if (month === null || day === null || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 61) return null;
  if (second > 59) return null; // datetime() refuses leap seconds as fail2ban's does
  // naive wall-clock time as seconds (UTC arithmetic on the wall clock)
  let wall = Date.UTC(year, month - 1, day, hour, minute, second) / 1000;
  if (tzoffset === null && ctx.defaultOffset !== null) tzoffset = ctx.defaultOffset;
  if (tzoffset !== null) wall -= tzoffset * 60;
  // comparisons against "now" are made the way fail2ban makes them (naive datetimes)
  const nowCmp = tzoffset !== null ? nowWall : nowWall;
  if (assumeToday && wall > nowCmp) wall -= 86400;
  if (assumeYear && wall > nowCmp + 86400) {
    const y = year - 1;
    if (day > daysIn(y, month)) return null;
    wall = Date.UTC(y, month - 1, day, hour, minute, second) / 1000 - (tzoffset !== null ? tzoffset * 60 : 0);
  }
  if (tzoffset !== null) return wall;
  return ctx.zone.wallToUtc(wall);
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
function daysIn(year: number, month: number): number {
  if (month === 2 && ((year % 4 === 0 && year % 100 !== 0) || year % 400 === 0)) return 29;
  return DAYS[month - 1] ?? 31;
}

// "now" as a wall-clock Date, kept while now does not change (a batch shares one now)
let lastNowWall = NaN;
let lastNowDate = new Date(0);
function wallDate(nowWall: number): Date {
  if (nowWall !== lastNowWall) {
    lastNowWall = nowWall;
    lastNowDate = new Date(nowWall * 1000);
  }
  return lastNowDate;
}

// fail2ban's table of zone abbreviations (fixed offsets, hours)
const TZ_STR = `-12 Y
-11 X NUT SST
-10 W CKT HAST HST TAHT TKT
-9 V AKST GAMT GIT HADT HNY
-8 U AKDT CIST HAY HNP PST PT
-7 T HAP HNR MST PDT
-6 S CST EAST GALT HAR HNC MDT
-5 R CDT COT EASST ECT EST ET HAC HNE PET
-4 Q AST BOT CLT COST EDT FKT GYT HAE HNA PYT
-3 P ADT ART BRT CLST FKST GFT HAA PMST PYST SRT UYT WGT
-2 O BRST FNT PMDT UYST WGST
-1 N AZOT CVT EGT
0 Z EGST GMT UTC WET WT
1 A CET DFT WAT WEDT WEST
2 B CAT CEDT CEST EET SAST WAST
3 C EAT EEDT EEST IDT MSK
4 D AMT AZT GET GST KUYT MSD MUT RET SAMT SCT
5 E AMST AQTT AZST HMT MAWT MVT PKT TFT TJT TMT UZT YEKT
6 F ALMT BIOT BTT IOT KGT NOVT OMST YEKST
7 G CXT DAVT HOVT ICT KRAT NOVST OMSST THA WIB
8 H ACT AWST BDT BNT CAST HKT IRKT KRAST MYT PHT SGT ULAT WITA WST
9 I AWDT IRKST JST KST PWT TLT WDT WIT YAKT
10 K AEST ChST PGT VLAT YAKST YAPT
11 L AEDT LHDT MAGT NCT PONT SBT VLAST VUT
12 M ANAST ANAT FJT GILT MAGST MHT NZST PETST PETT TVT WFT
13 FJST NZDT
11.5 NFT
10.5 ACDT LHST
9.5 ACST
6.5 CCT MMT
5.75 NPT
5.5 SLT
4.5 AFT IRDT
3.5 IRST
-2.5 HAT NDT
-3.5 HNT NST NT
-4.5 HLV VET
-9.5 MART MIT`;
const TZ_ABBR = new Map<string, number>([['', 0]]);
for (const line of TZ_STR.split('\n')) {
  const [off, ...names] = line.trim().split(/\s+/);
  for (const n of names) TZ_ABBR.set(n, Math.trunc(Number(off) * 60));
}
const FIXED_OFFSET_TZ = /^([A-Z](?:[A-Z]{2,4})?)?([+-][01]\d(?::?\d{2})?)?$/;

/** `CET`, `+0100`, `UTC+02:00`, `-05` → minutes east of UTC; null if unknown */
export function zoneToOffset(z: string): number | null {
  const m = FIXED_OFFSET_TZ.exec(z);
  if (!m) return null;
  const base = TZ_ABBR.get(m[1] ?? '');
  if (base === undefined) return null;
  const o = m[2];
  if (o === undefined || o === '') return base;
  const sign = o[0] === '-' ? -1 : 1;
  if (o.length <= 3) return base + Number(o) * 60;
  const hh = Number(o.slice(1, 3));
  const mm = o[3] === ':' ? Number(o.slice(4, 6)) : Number(o.slice(3, 5));
  return base + sign * (hh * 60 + mm);
}

/** Wall clock ↔ UTC for an IANA zone, cached per hour (Intl is slow per call). */
export class ZoneConverter {
  readonly zone: string;
  readonly #fmt: Intl.DateTimeFormat;
  readonly #cache = new Map<number, number>();
  constructor(zone?: string) {
    // an explicit zone must be valid; TZ from the environment may be a POSIX rule or a path
    // (`:/etc/localtime`) that Intl does not take: then use the zone ICU resolved for the process
    const env = process.env['TZ'];
    const resolved = Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC';
    this.zone = zone ?? (env !== undefined && env !== '' && ZoneConverter.isValid(env) ? env : resolved);
    let fmt: Intl.DateTimeFormat;
    try {
      fmt = new Intl.DateTimeFormat('en-US', { timeZone: this.zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    } catch {
      throw new RangeError(`unknown time zone '${this.zone}'`);
    }
    this.#fmt = fmt;
  }
  static isValid(zone: string): boolean {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  }
  /** seconds east of UTC at instant `utc` (epoch s) */
  offsetAtUtc(utc: number): number {
    const key = Math.floor(utc / 900);
    const hit = this.#cache.get(key);
    if (hit !== undefined) return hit;
    const parts = this.#fmt.formatToParts(new Date(key * 900 * 1000));
    const get = (t: string): number => Number(parts.find((p) => p.type === t)?.value ?? 0);
    const wall = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second')) / 1000;
    const off = wall - key * 900;
    if (this.#cache.size > 4096) this.#cache.clear();
    this.#cache.set(key, off);
    return off;
  }
  /** like mktime: a wall-clock time in this zone → epoch seconds (DST gaps move forward) */
  wallToUtc(wall: number): number {
    let utc = wall - this.offsetAtUtc(wall);
    const off2 = this.offsetAtUtc(utc);
    utc = wall - off2;
    const off3 = this.offsetAtUtc(utc);
    if (off3 !== off2) utc = wall - Math.max(off2, off3);
    return utc;
  }
}

// ---------------------------------------------------------------------------------------------
// templates by pattern, and the default list

const DEFAULT_TEMPLATES = [
  String.raw`%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?`,
  String.raw`(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
  String.raw`(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?`,
  String.raw`%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S`,
  String.raw`%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?`,
  String.raw`%m/%d/%ExY:%H:%M:%S`,
  String.raw`%m-%d-%ExY %k:%M:%S(?:\.%f)?`,
  'EPOCH',
  String.raw`{^LN-BEG}%H:%M:%S`,
  String.raw`^<%m/%d/%Exy@%H:%M:%S>`,
  String.raw`%Exy%Exm%Exd  ?%H:%M:%S`,
  String.raw`%b %d, %ExY %I:%M:%S %p`,
  String.raw`^%b-%d-%Exy %k:%M:%S`,
  String.raw`%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?`,
  String.raw`(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
  String.raw`(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
  'TAI64N',
];

function patternKey(pattern: string): string {
  return pattern.includes('%') ? pattern : pattern.toUpperCase();
}

/** fail2ban's _getPatternTemplate */
export function templateForPattern(pattern: string): DateTemplate {
  const key = patternKey(pattern);
  if (key.includes('EPOCH')) {
    if (RE_EPOCH_PATTERN.test(pattern)) return new DateEpoch({ pattern, longFrm: key.includes('LEPOCH') });
    if (key === 'EPOCH' || key === '{^LN-BEG}EPOCH' || key === '^EPOCH') return new DateEpoch({ lineBeginOnly: key !== 'EPOCH' });
    if (key === 'LEPOCH' || key === '{^LN-BEG}LEPOCH' || key === '^LEPOCH')
      return new DateEpoch({ lineBeginOnly: key !== 'LEPOCH', longFrm: true });
  }
  if (key === 'TAI64N' || key === '{^LN-BEG}TAI64N' || key === '^TAI64N') return new DateTai64n(key !== 'TAI64N' ? 'start' : false);
  return new DatePatternRegex(pattern);
}

function anchoredTemplate(t: DateTemplate): DateTemplate {
  if (t instanceof DatePatternRegex) return templateForPattern('{^LN-BEG}' + t.pattern);
  return templateForPattern('{^LN-BEG}' + t.name);
}

let defaultCache: DateTemplate[] | null = null;
let defaultPlain: DateTemplate[] | null = null;
/** the default list: line-begin anchored variants first (weight 100), then the plain ones */
function defaultTemplates(): { all: DateTemplate[]; plain: DateTemplate[] } {
  if (defaultCache && defaultPlain) return { all: defaultCache, plain: defaultPlain };
  const anchored: DateTemplate[] = [];
  const plain: DateTemplate[] = [];
  for (const p of DEFAULT_TEMPLATES) {
    const t = templateForPattern(p);
    if (!t.name.startsWith('{^LN-BEG}') && !t.name.startsWith('^')) {
      const t2 = anchoredTemplate(t);
      if (t2.name !== t.name) {
        t2.weight = 100;
        anchored.push(t2);
      }
    }
    plain.push(t);
  }
  defaultCache = [...anchored, ...plain];
  defaultPlain = plain;
  return { all: defaultCache, plain };
}

// ---------------------------------------------------------------------------------------------
// the detector

interface Slot {
  readonly template: DateTemplate;
  hits: number;
  lastUsed: number;
  distance: number;
}

export type DetectorResult = { ok: true; value: DateDetector } | { ok: false; message: string };

/**
 * Per-matcher state: templates with their hit counts and the position of the last date, so
 * that a line of the same shape is tried with the last template first (fail2ban matchTime).
 */
export class DateDetector {
  readonly #slots: Slot[] = [];
  #lastTemplIdx = Number.MAX_SAFE_INTEGER;
  // where the last date was, and the line it was in (its boundary characters are read from
  // that line when needed instead of being copied out on every line)
  #lastDist = 1;
  #lastEnd = Number.MAX_SAFE_INTEGER;
  #lastLine = '';
  #firstUnused = 0;
  readonly #names = new Set<string>();
  /** {NONE}: no date in lines at all */
  readonly isNone: boolean;

  private constructor(templates: DateTemplate[], isNone: boolean) {
    for (const t of templates) {
      if (this.#names.has(t.name)) continue;
      this.#names.add(t.name);
      this.#slots.push({ template: t, hits: 0, lastUsed: 0, distance: Number.MAX_SAFE_INTEGER });
    }
    this.isNone = isNone;
  }

  /** `datepattern` (several lines allowed) or null for the defaults */
  static create(datepattern: string | null): DetectorResult {
    try {
      if (datepattern === null || datepattern.trim() === '') return { ok: true, value: new DateDetector(defaultTemplates().all, false) };
      const list: DateTemplate[] = [];
      let none = false;
      for (const raw of datepattern.split(/\n+/)) {
        const p = raw.trim();
        if (p === '') continue;
        const key = patternKey(p);
        if (key === '{^LN-BEG}' || key === '{DEFAULT}') {
          for (const t of defaultTemplates().all) if (key === '{DEFAULT}' || t.flags & LINE_BEGIN) list.push(t);
        } else if (key.includes('{DATE}')) {
          for (const t of defaultTemplates().plain) {
            const inner = t instanceof DatePatternRegex ? t.pattern : t.name;
            list.push(templateForPattern(p.replace(/(?<!\\)\{DATE\}/gi, () => unboundPattern(inner))));
          }
        } else if (key === '{NONE}') {
          none = true;
          list.push(new DatePatternRegex('{UNB}^'));
        } else list.push(templateForPattern(p));
      }
      return { ok: true, value: new DateDetector(list, none) };
    } catch (e) {
      return { ok: false, message: e instanceof Error ? e.message : String(e) };
    }
  }

  /** the most characters (all non-word) that can precede a cut-out date, null when unknown */
  get preCutMax(): number | null {
    let max = 0;
    for (const s of this.#slots) {
      if (s.template.preCut === null) return null;
      max = Math.max(max, s.template.preCut);
    }
    return max;
  }

  /** name of the template used last (for `aegis-ban regex` summaries) */
  get lastTemplateName(): string | null {
    const s = this.#slots[this.#lastTemplIdx];
    return s === undefined ? null : s.template.name;
  }

  /** fail2ban DateDetector.matchTime */
  matchTime(line: string, ascii: boolean): { dm: DateMatch; template: DateTemplate } | null {
    const slots = this.#slots;
    let match: DateMatch | null = null;
    let found: [DateMatch | null, number, number, number] = [null, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, -1];
    let ignoreBySearch = Number.MAX_SAFE_INTEGER;
    let i = this.#lastTemplIdx;
    let slot: Slot | undefined = slots[i];
    if (slot !== undefined) {
      const template = slot.template;
      if (template.flags & (LINE_BEGIN | LINE_END)) {
        match = template.matchDate(line, ascii);
        ignoreBySearch = i;
      } else {
        const distance = this.#lastDist;
        const endpos = this.#lastEnd;
        const ll = this.#lastLine;
        const pb = ll.slice(Math.max(0, distance - 1), distance);
        const pc = ll.charAt(distance);
        const ec = ll.charAt(endpos - 1);
        const ea = ll.slice(endpos, endpos + 1);
        if (
          (line.slice(Math.max(0, distance - 1), distance) === pb ||
            (line.slice(distance, distance + 1) === pc && !isAlnum(pc))) &&
          (line.slice(endpos, endpos + 1) === ea ||
            (line.slice(Math.max(0, endpos - 1), endpos) === ec && !isAlnum(ec)))
        ) {
          match = template.matchDate(line, ascii, distance, endpos);
        } else {
          match = template.matchDate(line, ascii);
          ignoreBySearch = i;
        }
      }
      if (match) {
        const distance = match.index;
        const endpos = match.endAll;
        if (
          !(
            slots.length === 1 ||
            template.flags & (LINE_BEGIN | LINE_END) ||
            (distance === this.#lastDist && endpos === this.#lastEnd)
          )
        ) {
          found = [match, distance, endpos, i];
          match = null;
        }
      }
    }
    if (!match) {
      i = 0;
      for (; i < slots.length; i++) {
        if (i === ignoreBySearch) continue;
        slot = slots[i]!;
        const template = slot.template;
        match = template.matchDate(line, ascii);
        if (match) {
          const distance = match.index;
          if (i + 1 >= slots.length) break;
          if (template.flags & (LINE_BEGIN | LINE_END)) break;
          if (distance === 0 && slot.hits && !slots[i + 1]!.hits) break;
          if (distance > slot.distance || distance > this.#lastDist) {
            if (distance < found[1]) found = [match, distance, match.endAll, i];
            match = null;
            continue;
          }
          break;
        }
      }
      if (!match && found[0]) {
        match = found[0];
        i = found[3];
      }
    }
    if (!match) return null;
    slot = slots[i]!;
    slot.hits++;
    slot.lastUsed = Date.now();
    const distance = match.index;
    const endpos = match.endAll;
    slot.distance = distance;
    if (this.#firstUnused === i) this.#firstUnused++;
    this.#lastDist = distance;
    this.#lastEnd = endpos;
    this.#lastLine = line;
    if (i && i !== this.#lastTemplIdx) i = this.#reorder(i);
    this.#lastTemplIdx = i;
    return { dm: match, template: slot.template };
  }

  #weight(s: Slot): number {
    return (s.hits * s.template.weight) / Math.max(1, s.distance);
  }

  /** fail2ban _reorderTemplate: bubble a template up once its hits weigh more */
  #reorder(num: number): number {
    const slots = this.#slots;
    const slot = slots[num]!;
    const untime = slot.lastUsed - 300_000;
    const weight = this.#weight(slot);
    let pos = this.#firstUnused < num ? this.#firstUnused : num >> 1;
    const moveable = (): boolean => weight > this.#weight(slots[pos]!) || untime > slots[pos]!.lastUsed;
    if (!moveable()) {
      if (pos === num - 1) return num;
      pos = num - 1;
      if (!moveable()) return num;
    }
    slots.splice(num, 1);
    slots.splice(pos, 0, slot);
    while (this.#firstUnused < slots.length && slots[this.#firstUnused]!.hits) this.#firstUnused++;
    return pos;
  }
}

function isAlnum(c: string): boolean {
  return c !== '' && /^[\p{L}\p{N}]$/u.test(c);
}

export function unboundPattern(p: string): string {
  return p
    .replace(RE_EXLINE_NO_BOUNDS, '')
    .replace(RE_EXLINE_BOUND_BEG, '')
    .replace(RE_EXSANC_BOUND_BEG, '')
    .replace(RE_EXEANC_BOUND_BEG, '');
}
