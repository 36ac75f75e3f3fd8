/**
 * fail2ban's regex tags and the compiled form of one failregex / ignoreregex / prefregex.
 * Tags are expanded exactly as fail2ban's `Regex._resolveHostTag` does (the same group names
 * ip4 / ip6 / dns / fid / cidr, `<F-NAME>…</F-NAME>` as a named group), then the Python text
 * is translated by python-regex.ts.
 */
import { translatePythonRegex, isAscii, type TranslatedRegex } from './python-regex.js';

const IP4 = String.raw`(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})`;
const IP6 = String.raw`(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):))`;
const DNS = String.raw`(?P<dns>[\w\-.^_]*\w)`;
const ADDR = String.raw`\[?(?:${IP4}|${IP6})\]?`;
const HOST = `(?:${ADDR}|${DNS})`;
const CIDR = String.raw`(?P<cidr>\d+)`;
const SUBNET = String.raw`\[?(?:${IP4}|${IP6})(?:/${CIDR})?\]?`;

const STATIC_TAGS: Readonly<Record<string, string>> = {
  IP4,
  'F-IP4/': IP4,
  IP6,
  'F-IP6/': IP6,
  ADDR,
  'F-ADDR/': ADDR,
  CIDR,
  'F-CIDR/': CIDR,
  SUBNET,
  'F-SUBNET/': SUBNET,
  DNS,
  'F-DNS/': DNS,
  'F-ID/': String.raw`(?P<fid>\S+)`,
  'F-PORT/': String.raw`(?P<fport>\w+)`,
};
const TAG_MAP: Readonly<Record<string, string>> = { id: 'fid', port: 'fport' };

const FTAG = /<\/?[\w-]+\/?>/g;
const FCUSTNAME = /^(\/?)F-([A-Z0-9_-]+)$/;

export type UseDns = 'yes' | 'warn' | 'no' | 'raw';

/** `<HOST>`, `<F-USER>…</F-USER>`, `<SKIPLINES>`… → Python regex text, as fail2ban does. */
export function expandTags(regex: string, useDns: UseDns = 'warn'): string {
  const open = new Set<string>();
  let nl = 0;
  return regex.replace(FTAG, (tag) => {
    const tn = tag.slice(1, -1);
    if (tn === 'HOST') return useDns === 'no' ? ADDR : HOST;
    if (tn === 'SKIPLINES') return String.raw`\n(?P<skiplines${nl++}>(?:(?:.*\n)*?))`;
    const st = STATIC_TAGS[tn];
    if (st !== undefined) return st;
    const m = FCUSTNAME.exec(tn);
    if (m) {
      const name = m[2]!;
      if (m[1]) return open.has(name) ? ')' : tag;
      open.add(name);
      const lower = name.toLowerCase();
      return `(?P<${TAG_MAP[lower] ?? lower}>`;
    }
    return tag;
  });
}

// fail2ban maps `((?i)x)` and `(?:(?i)x)` to the scoped `(?i:x)`
const GLOB2LOC = /(?<!\\)\((?:\?:)?(\(\?[a-z]+)\)/g;

export interface CompiledRegex {
  /** the Python form after tag expansion, as fail2ban-client -d shows it (before tags: source) */
  readonly source: string;
  readonly expanded: string;
  readonly t: TranslatedRegex;
  /** Python group names present */
  readonly names: ReadonlySet<string>;
  readonly skiplines: number;
  /** alt_user → user merges */
  readonly altNames: readonly (readonly [string, string])[];
  /** Python group name → JavaScript group indexes, as an array for the hot loop */
  readonly groupList: readonly (readonly [string, readonly number[]])[];
}

export type CompileRegexResult = { ok: true; value: CompiledRegex } | { ok: false; message: string };

export function compileRegex(source: string, opts: { multiline: boolean; useDns?: UseDns }): CompileRegexResult {
  let expanded = expandTags(source, opts.useDns ?? 'warn');
  if (expanded.trim() === '') return { ok: false, message: 'empty regex' };
  expanded = expanded.replace(GLOB2LOC, '$1:');
  const r = translatePythonRegex(expanded, { multiline: opts.multiline });
  if (!r.ok) return r;
  const names = new Set(r.value.nameIndex.keys());
  let skiplines = 0;
  while (names.has(`skiplines${skiplines}`)) skiplines++;
  const altNames: [string, string][] = [];
  for (const n of [...names].sort()) {
    const m = /^(alt_|tuple_)(.*?)(?:_\d+)?$/.exec(n);
    if (m && m[1] === 'alt_' && n.length > 4) altNames.push([n, TAG_MAP[m[2]!] ?? m[2]!]);
  }
  const groupList = [...r.value.nameIndex];
  return { ok: true, value: { source, expanded, t: r.value, names, skiplines, altNames, groupList } };
}

export interface RegexHit {
  readonly m: RegExpExecArray;
  /**
   * Named groups that took part, by Python name (fail2ban's groupdict without its None
   * entries), `alt_*` merged. A Map: failure data are bags of varying keys merged across lines,
   * which plain objects handle badly in V8 (a hidden class per key order).
   */
  readonly groups: Map<string, string>;
}

export function searchRegex(re: CompiledRegex, text: string, ascii: boolean = isAscii(text)): RegexHit | null {
  const t = re.t;
  const regexp = ascii || t.unicode === null ? t.ascii : t.unicode;
  const m = regexp.exec(text);
  if (m === null) return null;
  const groups = new Map<string, string>();
  const list = re.groupList;
  for (let k = 0; k < list.length; k++) {
    const idxs = list[k]![1];
    for (let j = idxs.length - 1; j >= 0; j--) {
      const v = m[idxs[j]!];
      if (v !== undefined) {
        groups.set(list[k]![0], v);
        break;
      }
    }
  }
  for (const [alt, target] of re.altNames) {
    const v = groups.get(alt);
    if (v && !groups.get(target)) groups.set(target, v);
  }
  return { m, groups };
}

export const FAILURE_ID_GROUPS = ['fid', 'ip4', 'ip6', 'dns'] as const;
export function hasFailureId(names: ReadonlySet<string>): boolean {
  return FAILURE_ID_GROUPS.some((g) => names.has(g)) || names.has('mlfid');
}
