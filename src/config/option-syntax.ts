/**
 * fail2ban's small syntaxes inside values: `<tag>` substitution (helpers.substituteRecursiveTags),
 * `name[k=v, k2="v 2"]` options and multi-line action lists (extractOptions, splitWithOptions),
 * word lists and booleans.
 */
import { oneLine } from './ini-parse.js';

const TAG_CRE = /<([^ <>]+)>/g;
const MAX_TAG_REPLACE_COUNT = 25;

export class TagRecursionError extends Error {
  readonly tag: string;
  constructor(tag: string, message: string) {
    super(oneLine(message));
    this.tag = tag;
  }
}

function tagSearch(value: string, from: number): RegExpExecArray | null {
  TAG_CRE.lastIndex = from;
  return TAG_CRE.exec(value);
}

/**
 * Replace `<tag>` inside every value by other values (recursively); unknown tags stay as they
 * are (fail2ban's own `<HOST>`, `<ip>` and shell `<STDIN>` among them).
 */
export function substituteRecursiveTags(
  input: ReadonlyMap<string, string>,
  opts: { conditional?: string; ignore?: ReadonlySet<string>; addrepl?: (tag: string) => string | null } = {},
): Map<string, string> {
  const tags = new Map(input);
  const ignore = opts.ignore ?? new Set<string>();
  const done = new Set<string>();
  const repCounts = new Map<string, Map<string, number>>();
  for (;;) {
    let again = false;
    for (const tag of [...tags.keys()]) {
      if (ignore.has(tag) || done.has(tag)) continue;
      const orig = tags.get(tag) ?? '';
      let value = orig;
      const rplc = repCounts.get(tag) ?? new Map<string, number>();
      let m = tagSearch(value, 0);
      while (m) {
        const rtag = m[1] ?? '';
        if (ignore.has(rtag)) {
          m = tagSearch(value, m.index + m[0].length);
          continue;
        }
        if (rtag === tag) throw new TagRecursionError(tag, `<${tag}> refers to itself`);
        if ((rplc.get(rtag) ?? 1) > MAX_TAG_REPLACE_COUNT) {
          throw new TagRecursionError(tag, `<${rtag}> never resolves: its definition loops back to itself`);
        }
        let repl: string | null | undefined;
        if (opts.conditional) repl = tags.get(`${rtag}?${opts.conditional}`);
        if (repl === undefined || repl === null) {
          repl = tags.get(rtag);
          if (repl === undefined && opts.addrepl) repl = opts.addrepl(rtag);
        }
        if (repl === undefined || repl === null) {
          m = tagSearch(value, m.index + m[0].length);
          continue;
        }
        value = value.split(`<${rtag}>`).join(repl);
        rplc.set(rtag, (rplc.get(rtag) ?? 0) + 1);
        m = tagSearch(value, m.index);
      }
      if (orig !== value) {
        if (tagSearch(value, 0)) {
          repCounts.set(tag, rplc);
          again = true;
        }
        tags.set(tag, value);
      }
      if (!value.includes('<')) done.add(tag);
    }
    if (!again) break;
  }
  return tags;
}

// ---------------------------------------------------------------------------------------------
// `name[k=v, k2="v 2"]` (fail2ban helpers.extractOptions / splitWithOptions)

const OPTION_CRE = /^([^[]+)(?:\[(.*)\])?\s*$/s;
const OPTION_EXTRACT_CRE =
  /\s*([\w\-_.]+)=(?:"([^"]*)"|'([^']*)'|([^,\]]*))(?:,|\]\s*\[|$|(?<wrngA>.+))|,?\s*$|(?<wrngB>.+)/gs;
const OPTION_SPLIT_CRE =
  /(?:[^[\s]+(?:\s*\[\s*(?:[\w\-_.]+=(?:"[^"]*"|'[^']*'|[^,\]]*)\s*(?:,|\]\s*\[)?\s*)*\])?\s*|\S+)(?=\n\s*|\s+|$)/gs;

export type ExtractResult = { ok: true; name: string; options: Map<string, string> } | { ok: false; message: string };

export function extractOptions(option: string): ExtractResult {
  const m = OPTION_CRE.exec(option);
  if (!m) return { ok: false, message: 'unexpected option syntax' };
  const name = m[1] ?? '';
  const optstr = m[2];
  const options = new Map<string, string>();
  if (optstr) {
    for (const om of optstr.matchAll(OPTION_EXTRACT_CRE)) {
      const g = om.groups ?? {};
      if (g['wrngA'] !== undefined) {
        return { ok: false, message: `unexpected syntax after option ${JSON.stringify(om[1] ?? '')}: ${JSON.stringify(g['wrngA'].slice(0, 25))}` };
      }
      if (g['wrngB'] !== undefined) {
        return { ok: false, message: `expected option, wrong syntax: ${JSON.stringify(g['wrngB'].slice(0, 25))}` };
      }
      const opt = om[1];
      if (!opt) continue;
      const value = om[2] ?? om[3] ?? om[4] ?? '';
      options.set(opt.trim(), value.trim());
    }
  }
  return { ok: true, name, options };
}

/** Split a multi-line `action = …` list into entries, keeping `[…]` options (even multi-line). */
export function splitWithOptions(option: string): string[] {
  return [...option.matchAll(OPTION_SPLIT_CRE)].map((m) => m[0]);
}

/** fail2ban splitwords: split on commas, spaces and newlines, dropping empties. */
export function splitWords(s: string): string[] {
  return s
    .split(/[ ,\n]+/)
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

/** fail2ban _as_bool */
export function asBool(v: string): boolean {
  return ['1', 'on', 'true', 'yes'].includes(v.toLowerCase());
}
