/**
 * Python `re` → JavaScript RegExp translation. The pattern is parsed into a small AST, Python
 * constructs JavaScript lacks are rewritten into equivalent ones (conditionals into alternations
 * split on the group's participation, atomic groups into lookahead + back-reference, scoped
 * flags into explicit case classes), and two JavaScript forms are emitted:
 *
 * - `ascii`: no `u` flag, used for lines that are pure ASCII (nearly all log lines). On ASCII
 *   input `\d \w \b` of JavaScript equal Python's Unicode-aware ones, and it is the fast path.
 * - `unicode`: `u` flag with `\d`→`\p{Nd}`, `\w`→`[\p{L}\p{N}_]`, `\b` spelled with lookarounds,
 *   so that non-ASCII lines match as Python `str` patterns match them.
 *
 * What cannot be translated without changing meaning is refused with a message (never guessed).
 */

export interface TranslatedRegex {
  readonly ascii: RegExp;
  readonly unicode: RegExp | null;
  /** per JavaScript group index (1-based; [0] unused): the Python group name, or null */
  readonly groupNames: readonly (string | null)[];
  /** Python group name → JavaScript group indexes holding it (copies made by rewriting) */
  readonly nameIndex: ReadonlyMap<string, readonly number[]>;
  /** Python group number → JavaScript group indexes holding it */
  readonly pyIndex: ReadonlyMap<number, readonly number[]>;
  /** at least one of these strings occurs in every matched text; null when unknown */
  readonly literals: readonly string[] | null;
  /**
   * For a regex anchored at the start of the text (`^`, `\A`): the UTF-16 code units a match
   * can start with; null when any. Lets a filter skip regexes that cannot match a line.
   */
  readonly firstUnits: ReadonlySet<number> | null;
}

export type TranslateResult = { ok: true; value: TranslatedRegex } | { ok: false; message: string };

export interface TranslateOptions {
  /** Python re.MULTILINE (fail2ban sets it for maxlines > 1) */
  readonly multiline?: boolean;
  readonly ignoreCase?: boolean;
  /** add the `d` flag (match indices), for date templates that cut the date out of the line */
  readonly indices?: boolean;
}

// ---------------------------------------------------------------------------------------------
// AST

interface Flags {
  i: boolean;
  s: boolean;
  m: boolean;
  x: boolean;
  a: boolean;
}
type ClassItem = { t: 'range'; from: number; to: number } | { t: 'esc'; k: string };
type Node =
  | { t: 'seq'; items: Node[] }
  | { t: 'alt'; alts: Node[] }
  | {
      t: 'group';
      kind: 'cap' | 'non' | 'la' | 'nla' | 'lb' | 'nlb' | 'atomic';
      idx: number;
      name: string | null;
      body: Node;
    }
  | { t: 'cond'; ref: number; yes: Node; no: Node }
  | { t: 'backref'; ref: number; i: boolean }
  | { t: 'char'; c: number; i: boolean }
  | { t: 'class'; neg: boolean; items: ClassItem[]; i: boolean; a: boolean }
  | { t: 'esc'; k: string; a: boolean }
  | { t: 'assert'; k: string; m: boolean; a: boolean }
  | { t: 'dot'; s: boolean }
  | { t: 'quant'; min: number; max: number; lazy: boolean; possessive: boolean; atom: Node }
  | { t: 'fail' };

class ParseError extends Error {}

const EMPTY: Node = { t: 'seq', items: [] };

class Parser {
  readonly #src: number[];
  #pos = 0;
  #groupCount = 0;
  readonly names = new Map<string, number>();
  readonly pendingNameRefs: { node: { ref: number }; name: string }[] = [];
  globalFlags: Flags;

  constructor(pattern: string, flags: Flags) {
    this.#src = Array.from(pattern, (ch) => ch.codePointAt(0)!);
    this.globalFlags = flags;
  }

  get groupCount(): number {
    return this.#groupCount;
  }

  #peek(off = 0): number | undefined {
    return this.#src[this.#pos + off];
  }
  #ch(off = 0): string {
    const c = this.#src[this.#pos + off];
    return c === undefined ? '' : String.fromCodePoint(c);
  }
  #eof(): boolean {
    return this.#pos >= this.#src.length;
  }
  #fail(msg: string): never {
    throw new ParseError(`${msg} at position ${this.#pos}`);
  }

  parse(): Node {
    // global flags: Python 3.11 accepts them only at the very start of the pattern
    while (this.#ch() === '(' && this.#ch(1) === '?' && /[aiLmsux]/.test(this.#ch(2))) {
      let j = 2;
      let flagsText = '';
      while (/[aiLmsux]/.test(this.#ch(j))) flagsText += this.#ch(j++);
      if (this.#ch(j) !== ')') break;
      this.#applyFlags(this.globalFlags, flagsText, true);
      this.#pos += j + 1;
    }
    const node = this.#parseAlt({ ...this.globalFlags });
    if (!this.#eof()) this.#fail('unbalanced parenthesis');
    for (const p of this.pendingNameRefs) {
      const idx = this.names.get(p.name);
      if (idx === undefined) throw new ParseError(`unknown group name '${p.name}'`);
      p.node.ref = idx;
    }
    return node;
  }

  #applyFlags(f: Flags, text: string, on: boolean): void {
    for (const ch of text) {
      if (ch === 'i') f.i = on;
      else if (ch === 's') f.s = on;
      else if (ch === 'm') f.m = on;
      else if (ch === 'x') f.x = on;
      else if (ch === 'a') f.a = on;
      else if (ch === 'u') f.a = false;
      else if (ch === 'L') throw new ParseError('the L (locale) flag has no JavaScript equivalent');
    }
  }

  #parseAlt(flags: Flags): Node {
    const alts: Node[] = [this.#parseSeq(flags)];
    while (this.#ch() === '|') {
      this.#pos++;
      alts.push(this.#parseSeq(flags));
    }
    return alts.length === 1 ? alts[0]! : { t: 'alt', alts };
  }

  #parseSeq(flags: Flags): Node {
    const items: Node[] = [];
    for (;;) {
      if (flags.x) this.#skipVerbose();
      const c = this.#ch();
      if (c === '' || c === '|' || c === ')') break;
      let atom = this.#parseAtom(flags);
      if (atom === null) continue;
      if (flags.x) this.#skipVerbose();
      atom = this.#parseQuant(atom, flags);
      items.push(atom);
    }
    return items.length === 1 ? items[0]! : { t: 'seq', items };
  }

  #skipVerbose(): void {
    for (;;) {
      const c = this.#ch();
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') this.#pos++;
      else if (c === '#') {
        while (!this.#eof() && this.#ch() !== '\n') this.#pos++;
      } else break;
    }
  }

  #parseQuant(atom: Node, flags: Flags): Node {
    for (;;) {
      const c = this.#ch();
      let min: number;
      let max: number;
      if (c === '*') {
        min = 0;
        max = Infinity;
        this.#pos++;
      } else if (c === '+') {
        min = 1;
        max = Infinity;
        this.#pos++;
      } else if (c === '?') {
        min = 0;
        max = 1;
        this.#pos++;
      } else if (c === '{') {
        const m = /^\{(\d*)(?:(,)(\d*))?\}/.exec(this.#rest(24));
        if (!m) return atom; // a literal `{`, left for the next atom
        if (m[1] === '' && m[2] === undefined) return atom;
        min = m[1] === '' ? 0 : Number(m[1]);
        max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
        if (max < min) this.#fail('min repeat greater than max repeat');
        this.#pos += m[0].length;
      } else return atom;
      if (atom.t === 'assert' || atom.t === 'quant') {
        if (atom.t === 'quant') this.#fail('multiple repeat');
        this.#fail('nothing to repeat');
      }
      let lazy = false;
      let possessive = false;
      if (this.#ch() === '?') {
        lazy = true;
        this.#pos++;
      } else if (this.#ch() === '+') {
        possessive = true;
        this.#pos++;
      }
      atom = { t: 'quant', min, max, lazy, possessive, atom };
      if (flags.x) this.#skipVerbose();
      if (!/[*+?{]/.test(this.#ch())) return atom;
      if (this.#ch() === '{' && !/^\{\d*(?:,\d*)?\}/.test(this.#rest(24))) return atom;
      this.#fail('multiple repeat');
    }
  }

  #rest(n: number): string {
    let s = '';
    for (let k = 0; k < n && this.#pos + k < this.#src.length; k++) s += String.fromCodePoint(this.#src[this.#pos + k]!);
    return s;
  }

  #parseAtom(flags: Flags): Node | null {
    const c = this.#ch();
    switch (c) {
      case '(':
        return this.#parseGroup(flags);
      case '[':
        return this.#parseClass(flags);
      case '.':
        this.#pos++;
        return { t: 'dot', s: flags.s };
      case '^':
        this.#pos++;
        return { t: 'assert', k: '^', m: flags.m, a: flags.a };
      case '$':
        this.#pos++;
        return { t: 'assert', k: '$', m: flags.m, a: flags.a };
      case '\\':
        return this.#parseEscape(flags);
      case '*':
      case '+':
      case '?':
        this.#fail('nothing to repeat');
      // falls through (unreachable)
      case '{':
        if (/^\{\d*(?:,\d*)?\}/.test(this.#rest(24)) && !/^\{\}/.test(this.#rest(2)) && !/^\{,\}/.test(this.#rest(3)))
          this.#fail('nothing to repeat');
        this.#pos++;
        return { t: 'char', c: 0x7b, i: flags.i };
      default: {
        const cp = this.#peek()!;
        this.#pos++;
        return { t: 'char', c: cp, i: flags.i };
      }
    }
  }

  #parseGroup(outer: Flags): Node | null {
    this.#pos++; // (
    const flags = { ...outer };
    let kind: 'cap' | 'non' | 'la' | 'nla' | 'lb' | 'nlb' | 'atomic' = 'cap';
    let name: string | null = null;
    if (this.#ch() === '?') {
      this.#pos++;
      const c = this.#ch();
      if (c === ':') {
        kind = 'non';
        this.#pos++;
      } else if (c === '=') {
        kind = 'la';
        this.#pos++;
      } else if (c === '!') {
        kind = 'nla';
        this.#pos++;
      } else if (c === '>') {
        kind = 'atomic';
        this.#pos++;
      } else if (c === '<' && (this.#ch(1) === '=' || this.#ch(1) === '!')) {
        kind = this.#ch(1) === '=' ? 'lb' : 'nlb';
        this.#pos += 2;
      } else if (c === '#') {
        while (!this.#eof() && this.#ch() !== ')') this.#pos++;
        if (this.#eof()) this.#fail('missing ), unterminated comment');
        this.#pos++;
        return null;
      } else if (c === 'P' && this.#ch(1) === '<') {
        this.#pos += 2;
        name = this.#readName('>');
        if (this.names.has(name)) this.#fail(`redefinition of group name '${name}'`);
      } else if (c === 'P' && this.#ch(1) === '=') {
        this.#pos += 2;
        const ref = this.#readName(')');
        const idx = this.names.get(ref);
        if (idx === undefined) this.#fail(`unknown group name '${ref}'`);
        return { t: 'backref', ref: idx, i: flags.i };
      } else if (c === '(') {
        this.#pos++;
        const refText = this.#readName(')');
        const node: { t: 'cond'; ref: number; yes: Node; no: Node } = { t: 'cond', ref: 0, yes: EMPTY, no: EMPTY };
        if (/^\d+$/.test(refText)) node.ref = Number(refText);
        else if (this.names.has(refText)) node.ref = this.names.get(refText)!;
        else this.pendingNameRefs.push({ node, name: refText });
        node.yes = this.#parseSeq(flags);
        if (this.#ch() === '|') {
          this.#pos++;
          node.no = this.#parseSeq(flags);
        }
        if (this.#ch() === '|') this.#fail('conditional backref with more than two branches');
        if (this.#ch() !== ')') this.#fail('missing ), unterminated subpattern');
        this.#pos++;
        return node;
      } else if (/[aiLmsux-]/.test(c)) {
        let on = '';
        let off = '';
        while (/[aiLmsux]/.test(this.#ch())) on += this.#ch(), this.#pos++;
        if (this.#ch() === '-') {
          this.#pos++;
          while (/[aiLmsux]/.test(this.#ch())) off += this.#ch(), this.#pos++;
        }
        if (this.#ch() === ')') this.#fail('global flags not at the start of the expression');
        if (this.#ch() !== ':') this.#fail('unknown extension');
        this.#pos++;
        this.#applyFlags(flags, on, true);
        this.#applyFlags(flags, off, false);
        kind = 'non';
      } else this.#fail(`unknown extension ?${c}`);
    }
    let idx = 0;
    if (kind === 'cap') {
      idx = ++this.#groupCount;
      if (name !== null) this.names.set(name, idx);
    }
    const body = this.#parseAlt(flags);
    if (this.#ch() !== ')') this.#fail('missing ), unterminated subpattern');
    this.#pos++;
    return { t: 'group', kind, idx, name, body };
  }

  #readName(end: string): string {
    let s = '';
    while (!this.#eof() && this.#ch() !== end) s += this.#ch(), this.#pos++;
    if (this.#eof()) this.#fail('missing ' + end);
    this.#pos++;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$|^\d+$/.test(s)) this.#fail(`bad character in group name '${s}'`);
    return s;
  }

  /** `\…` outside a class */
  #parseEscape(flags: Flags): Node {
    this.#pos++;
    const c = this.#ch();
    if (c === '') this.#fail('bad escape (end of pattern)');
    if ('dDwWsS'.includes(c)) {
      this.#pos++;
      return { t: 'esc', k: c, a: flags.a };
    }
    if ('bBAZ'.includes(c)) {
      this.#pos++;
      return { t: 'assert', k: c, m: flags.m, a: flags.a };
    }
    if (/[1-9]/.test(c)) {
      // octal \ddd (three digits) or a back-reference \N / \NN
      const m = /^[0-7]{3}/.exec(this.#rest(3));
      if (m && /^[0-3]/.test(m[0])) {
        this.#pos += 3;
        return { t: 'char', c: parseInt(m[0], 8), i: flags.i };
      }
      const d = /^\d\d?/.exec(this.#rest(2))![0];
      this.#pos += d.length;
      const ref = Number(d);
      if (ref > this.#groupCount) this.#fail(`invalid group reference ${ref}`);
      return { t: 'backref', ref, i: flags.i };
    }
    const cp = this.#charEscape(false);
    return { t: 'char', c: cp, i: flags.i };
  }

  /** an escape that stands for one character (after the backslash) */
  #charEscape(inClass: boolean): number {
    const c = this.#ch();
    this.#pos++;
    switch (c) {
      case 'n':
        return 10;
      case 't':
        return 9;
      case 'r':
        return 13;
      case 'f':
        return 12;
      case 'v':
        return 11;
      case 'a':
        return 7;
      case 'b':
        if (inClass) return 8;
        break;
      case '0': {
        const m = /^[0-7]{0,2}/.exec(this.#rest(2))![0];
        this.#pos += m.length;
        return parseInt('0' + m, 8);
      }
      case 'x': {
        const m = /^[0-9a-fA-F]{2}/.exec(this.#rest(2));
        if (!m) this.#fail('incomplete escape \\x');
        this.#pos += 2;
        return parseInt(m[0], 16);
      }
      case 'u':
      case 'U': {
        const n = c === 'u' ? 4 : 8;
        const m = new RegExp(`^[0-9a-fA-F]{${n}}`).exec(this.#rest(n));
        if (!m) this.#fail(`incomplete escape \\${c}`);
        this.#pos += n;
        const v = parseInt(m[0], 16);
        if (v > 0x10ffff) this.#fail('bad escape');
        return v;
      }
      case 'N':
        this.#fail('\\N{name} escapes are not supported');
    }
    if (inClass && /[0-7]/.test(c)) {
      const m = /^[0-7]{0,2}/.exec(this.#rest(2))![0];
      this.#pos += m.length;
      return parseInt(c + m, 8);
    }
    if (/[A-Za-z0-9]/.test(c)) {
      this.#pos--;
      this.#fail(`bad escape \\${c}`);
    }
    return c.codePointAt(0)!;
  }

  #parseClass(flags: Flags): Node {
    this.#pos++; // [
    let neg = false;
    if (this.#ch() === '^') {
      neg = true;
      this.#pos++;
    }
    const items: ClassItem[] = [];
    let first = true;
    for (;;) {
      if (this.#eof()) this.#fail('unterminated character set');
      const c = this.#ch();
      if (c === ']' && !first) {
        this.#pos++;
        break;
      }
      first = false;
      let lo: number;
      if (c === '\\') {
        this.#pos++;
        const e = this.#ch();
        if ('dDwWsS'.includes(e)) {
          this.#pos++;
          items.push({ t: 'esc', k: e });
          continue;
        }
        lo = this.#charEscape(true);
      } else {
        lo = this.#peek()!;
        this.#pos++;
      }
      if (this.#ch() === '-' && this.#ch(1) !== ']' && this.#ch(1) !== '') {
        this.#pos++;
        let hi: number;
        if (this.#ch() === '\\') {
          this.#pos++;
          if ('dDwWsS'.includes(this.#ch())) this.#fail('bad character range');
          hi = this.#charEscape(true);
        } else {
          hi = this.#peek()!;
          this.#pos++;
        }
        if (hi < lo) this.#fail('bad character range');
        items.push({ t: 'range', from: lo, to: hi });
      } else items.push({ t: 'range', from: lo, to: lo });
    }
    return { t: 'class', neg, items, i: flags.i, a: flags.a };
  }
}

// ---------------------------------------------------------------------------------------------
// Rewriting: conditionals and back-references

class RewriteError extends Error {}

function participation(node: Node, ref: number): 'always' | 'never' | 'maybe' {
  switch (node.t) {
    case 'group':
      if (node.kind === 'cap' && node.idx === ref) return 'always';
      if (node.kind === 'nla' || node.kind === 'nlb') return 'never';
      return participation(node.body, ref);
    case 'seq': {
      let maybe = false;
      for (const it of node.items) {
        const p = participation(it, ref);
        if (p === 'always') return 'always';
        if (p === 'maybe') maybe = true;
      }
      return maybe ? 'maybe' : 'never';
    }
    case 'alt': {
      const ps = node.alts.map((a) => participation(a, ref));
      if (ps.every((p) => p === 'always')) return 'always';
      if (ps.every((p) => p === 'never')) return 'never';
      return 'maybe';
    }
    case 'quant': {
      const p = participation(node.atom, ref);
      if (p === 'never') return 'never';
      return node.min >= 1 ? p : 'maybe';
    }
    case 'cond': {
      const a = participation(node.yes, ref);
      const b = participation(node.no, ref);
      return a === b ? a : 'maybe';
    }
    default:
      return 'never';
  }
}

function containsCond(node: Node): boolean {
  switch (node.t) {
    case 'cond':
      return true;
    case 'group':
      return containsCond(node.body);
    case 'seq':
      return node.items.some(containsCond);
    case 'alt':
      return node.alts.some(containsCond);
    case 'quant':
      return containsCond(node.atom);
    default:
      return false;
  }
}

function condRefs(node: Node, out: Set<number>): Set<number> {
  switch (node.t) {
    case 'cond':
      out.add(node.ref);
      condRefs(node.yes, out);
      condRefs(node.no, out);
      break;
    case 'group':
      condRefs(node.body, out);
      break;
    case 'seq':
      node.items.forEach((n) => condRefs(n, out));
      break;
    case 'alt':
      node.alts.forEach((n) => condRefs(n, out));
      break;
    case 'quant':
      condRefs(node.atom, out);
      break;
    default:
  }
  return out;
}

/** back-references become `(?(g)\g|(?!))`: Python fails on a group that did not take part, JS matches empty */
function backrefsToConds(node: Node): Node {
  switch (node.t) {
    case 'backref':
      return { t: 'cond', ref: node.ref, yes: node, no: { t: 'fail' } };
    case 'group':
      return { ...node, body: backrefsToConds(node.body) };
    case 'seq':
      return { t: 'seq', items: node.items.map(backrefsToConds) };
    case 'alt':
      return { t: 'alt', alts: node.alts.map(backrefsToConds) };
    case 'quant':
      return { ...node, atom: backrefsToConds(node.atom) };
    case 'cond':
      return { ...node, yes: backrefsToConds(node.yes), no: backrefsToConds(node.no) };
    default:
      return node;
  }
}

type Env = ReadonlyMap<number, boolean>;

/**
 * Removes every conditional. Walking a sequence left to right, the participation of each
 * referenced group is known after the item that may define it, provided that item is split
 * into its choices (`X?` → `X|`, `(?:a|b)` → `a|b`) with the rest of the sequence copied
 * behind each choice: `p (?:a|b) s` ≡ `p (?:a s|b s)` for a backtracking matcher, keeping
 * the order in which alternatives are tried, hence the same match and the same captures.
 */
function resolve(node: Node, env: Env, refs: ReadonlySet<number>): Node {
  switch (node.t) {
    case 'seq':
      return resolveSeq(node.items, env, refs);
    case 'alt':
      return { t: 'alt', alts: node.alts.map((a) => resolve(a, env, refs)) };
    case 'group':
      return { ...node, body: resolve(node.body, env, refs) };
    case 'quant': {
      const atom = resolve(node.atom, env, refs);
      for (const r of refs) {
        if (participation(node.atom, r) !== 'never' && containsCondOn(node.atom, r) && node.max > 1)
          throw new RewriteError('a conditional inside a repeated group that defines its own reference');
      }
      return { ...node, atom };
    }
    case 'cond':
      return resolveSeq([node], env, refs);
    default:
      return node;
  }
}

function containsCondOn(node: Node, ref: number): boolean {
  return condRefs(node, new Set()).has(ref);
}

function resolveSeq(itemsIn: readonly Node[], envIn: Env, refs: ReadonlySet<number>): Node {
  const items = [...itemsIn];
  const env = new Map(envIn);
  const out: Node[] = [];
  for (let i = 0; i < items.length; i++) {
    let item = items[i]!;
    if (item.t === 'cond') {
      // known participation (or not defined yet: Python's "no")
      const branch = env.get(item.ref) === true ? item.yes : item.no;
      items.splice(i, 1, branch.t === 'seq' ? { t: 'group', kind: 'non', idx: 0, name: null, body: branch } : branch);
      i--;
      continue;
    }
    // which referenced groups does this item decide, and how?
    const undecided: number[] = [];
    for (const r of refs) {
      if (env.has(r)) continue;
      const p = participation(item, r);
      if (p === 'always') continue;
      if (p === 'maybe') undecided.push(r);
    }
    const laterConds = items.slice(i + 1).some((n) => undecided.some((r) => containsCondOn(n, r)));
    if (undecided.length > 0 && laterConds) {
      const choices = splitChoices(item);
      if (choices === null) {
        // a plain non-capturing group with one branch: inline and look again
        if (item.t === 'group' && item.kind === 'non' && item.body.t === 'seq') {
          items.splice(i, 1, ...item.body.items);
          i--;
          continue;
        }
        if (item.t === 'group' && item.kind === 'non') {
          items.splice(i, 1, item.body);
          i--;
          continue;
        }
        throw new RewriteError('a conditional whose group is decided inside a repeated or capturing construct');
      }
      const rest = items.slice(i + 1);
      const alts = choices.map((c) => resolveSeq([c, ...rest], env, refs));
      out.push({ t: 'group', kind: 'non', idx: 0, name: null, body: { t: 'alt', alts } });
      return out.length === 1 ? out[0]! : { t: 'seq', items: out };
    }
    item = resolve(item, env, refs);
    for (const r of refs) if (!env.has(r) && participation(item, r) === 'always') env.set(r, true);
    out.push(item);
  }
  return out.length === 1 ? out[0]! : { t: 'seq', items: out };
}

function splitChoices(item: Node): Node[] | null {
  if (item.t === 'quant' && item.min === 0 && item.max === 1 && !item.possessive) {
    const atom = item.atom;
    return item.lazy ? [EMPTY, atom] : [atom, EMPTY];
  }
  if (item.t === 'group' && (item.kind === 'cap' || item.kind === 'non') && item.body.t === 'alt') {
    return item.body.alts.map((a) => ({ ...item, body: a }));
  }
  if (item.t === 'alt') return item.alts;
  if (item.t === 'quant' && item.min === 0 && item.max > 1 && !item.possessive) {
    // X{0,n} ≡ (?:X X{0,n-1}|) greedy
    const once: Node = { t: 'seq', items: [item.atom, { ...item, max: item.max - 1 }] };
    if (item.max - 1 === 0) return item.lazy ? [EMPTY, item.atom] : [item.atom, EMPTY];
    return item.lazy ? [EMPTY, once] : [once, EMPTY];
  }
  if (item.t === 'quant' && item.min >= 1 && !item.possessive) {
    // X{m,n} ≡ X X{m-1,n-1}: the first copy decides nothing new if the rest decides it
    return null;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Emission

// Python's Unicode whitespace for str patterns ([ \t\n\r\f\v] plus \x1c-\x1f, \x85 and Z*)
const PY_SPACE_ASCII = '\\t-\\r\\x1c-\\x20';
const PY_SPACE_UNI = '\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const UNI_WORD = '\\p{L}\\p{N}_';

interface EmitState {
  uni: boolean;
  jsI: boolean;
  nextGroup: number;
  groupNames: (string | null)[];
  groupPy: number[];
  /** python group index → most recently emitted JS index */
  lastEmitted: Map<number, number>;
  pyNames: Map<number, string>;
}

function hex(cp: number): string {
  return cp.toString(16).padStart(2, '0');
}

function escChar(cp: number, uni: boolean, inClass: boolean): string {
  if (cp > 0xffff) {
    if (uni) return `\\u{${cp.toString(16)}}`;
    const s = String.fromCodePoint(cp);
    return inClass ? '' : `(?:\\u${s.charCodeAt(0).toString(16)}\\u${s.charCodeAt(1).toString(16)})`;
  }
  const ch = String.fromCharCode(cp);
  if (/[A-Za-z0-9 _]/.test(ch)) return ch;
  if (ch === '-' && !inClass) return ch;
  if ('\\^$.|?*+()[]{}/-'.includes(ch)) return `\\${ch}`;
  if (cp < 0x20 || cp === 0x7f || cp >= 0x80) return cp <= 0xff ? `\\x${hex(cp)}` : `\\u${cp.toString(16).padStart(4, '0')}`;
  return ch;
}

function caseVariants(cp: number): number[] {
  const s = String.fromCodePoint(cp);
  const set = new Set<number>([cp]);
  for (const v of [s.toLowerCase(), s.toUpperCase()]) {
    const arr = Array.from(v);
    if (arr.length === 1) set.add(arr[0]!.codePointAt(0)!);
  }
  for (const v of [...set]) {
    const t = String.fromCodePoint(v);
    for (const w of [t.toLowerCase(), t.toUpperCase()]) {
      const arr = Array.from(w);
      if (arr.length === 1) set.add(arr[0]!.codePointAt(0)!);
    }
  }
  return [...set].sort((a, b) => a - b);
}

function classEsc(k: string, uni: boolean, asciiFlag: boolean, soleNegation: boolean): string {
  const u = uni && !asciiFlag;
  switch (k) {
    case 'd':
      return u ? '\\p{Nd}' : '0-9';
    case 'D':
      if (u) return '\\P{Nd}';
      return soleNegation ? '' : '\\D';
    case 'w':
      return u ? UNI_WORD : 'A-Za-z0-9_';
    case 's':
      return u ? PY_SPACE_UNI : PY_SPACE_ASCII;
    case 'W':
    case 'S':
      return '';
    default:
      return '';
  }
}

function emitClass(node: Extract<Node, { t: 'class' }>, st: EmitState): string {
  let body = '';
  const negEsc: string[] = [];
  const ranges: [number, number][] = [];
  for (const it of node.items) {
    if (it.t === 'esc') {
      if (it.k === 'W' || it.k === 'S' || (it.k === 'D' && !(st.uni && !node.a))) negEsc.push(it.k);
      else body += classEsc(it.k, st.uni, node.a, false);
    } else ranges.push([it.from, it.to]);
  }
  const wantFold = node.i && !st.jsI;
  if (!node.i && st.jsI && node.items.some((it) => it.t === 'range' && caseVariants(it.from).length > 1))
    throw new RewriteError('a case-sensitive class inside a case-insensitive pattern');
  const extra: number[] = [];
  for (const [lo, hi] of ranges) {
    let a = lo;
    let b = hi;
    if (!st.uni) {
      if (a > 0xffff) continue;
      b = Math.min(b, 0xffff);
    }
    body += a === b ? escChar(a, st.uni, true) : `${escChar(a, st.uni, true)}-${escChar(b, st.uni, true)}`;
    if (wantFold) {
      if (b - a > 0x3000) throw new RewriteError('a case-insensitive scoped flag over a very large class range');
      for (let c = a; c <= b; c++) for (const v of caseVariants(c)) if (v < a || v > b) extra.push(v);
    }
  }
  for (const v of extra) if (st.uni || v <= 0xffff) body += escChar(v, st.uni, true);
  if (negEsc.length > 0) {
    // [\S], [\W], [^\W\d]…: JavaScript classes cannot hold a negated Unicode set beside others
    // except in the `v` flag; spell the common forms exactly
    if (ranges.length === 0 && body === '' && negEsc.length === 1) {
      const k = negEsc[0]!;
      const pos = classEsc(k.toLowerCase(), st.uni, node.a, false);
      return node.neg ? `[${pos}]` : `[^${pos}]`;
    }
    if (!st.uni || node.a) {
      for (const k of negEsc) body += `\\${k}`;
    } else {
      // v-flag-free exact form: (?:[pos]|[^negSet])
      if (node.neg) throw new RewriteError('a negated class holding \\W, \\S or \\D (Unicode form)');
      const alts = [`[${body}]`, ...negEsc.map((k) => `[^${classEsc(k.toLowerCase(), true, false, false)}]`)];
      return `(?:${alts.filter((a) => a !== '[]').join('|')})`;
    }
  }
  return `[${node.neg ? '^' : ''}${body}]`;
}

function emit(node: Node, st: EmitState): string {
  switch (node.t) {
    case 'seq':
      return node.items.map((n) => emit(n, st)).join('');
    case 'alt':
      return node.alts.map((n) => emit(n, st)).join('|');
    case 'fail':
      return '(?!)';
    case 'char': {
      if (node.i && !st.jsI) {
        const vs = caseVariants(node.c);
        if (vs.length > 1) {
          if (vs.some((v) => v > 0xffff) && !st.uni) return `(?:${vs.map((v) => escChar(v, false, false)).join('|')})`;
          return `[${vs.map((v) => escChar(v, st.uni, true)).join('')}]`;
        }
      } else if (!node.i && st.jsI) {
        if (caseVariants(node.c).length > 1) throw new RewriteError('a case-sensitive part inside a case-insensitive pattern');
      }
      return escChar(node.c, st.uni, false);
    }
    case 'dot':
      return node.s ? (st.uni ? '[^]' : '[^]') : '[^\\n]';
    case 'esc': {
      const u = st.uni && !node.a;
      switch (node.k) {
        case 'd':
          return u ? '\\p{Nd}' : '\\d';
        case 'D':
          return u ? '\\P{Nd}' : '\\D';
        case 'w':
          return u ? `[${UNI_WORD}]` : '\\w';
        case 'W':
          return u ? `[^${UNI_WORD}]` : '\\W';
        case 's':
          return `[${u ? PY_SPACE_UNI : PY_SPACE_ASCII}]`;
        case 'S':
          return `[^${u ? PY_SPACE_UNI : PY_SPACE_ASCII}]`;
      }
      throw new RewriteError(`unknown escape \\${node.k}`);
    }
    case 'assert': {
      const u = st.uni && !node.a;
      switch (node.k) {
        case '^':
          return node.m ? '(?<![^\\n])' : '^';
        case '$':
          // Python: end, or before a newline that ends the string; with M: before any newline
          return node.m ? '(?![^\\n])' : '(?=\\n?$)';
        case 'A':
          return '^';
        case 'Z':
          return '$';
        case 'b':
          return u
            ? `(?:(?<=[${UNI_WORD}])(?![${UNI_WORD}])|(?<![${UNI_WORD}])(?=[${UNI_WORD}]))`
            : '\\b';
        case 'B':
          return u ? `(?:(?<=[${UNI_WORD}])(?=[${UNI_WORD}])|(?<![${UNI_WORD}])(?![${UNI_WORD}]))` : '\\B';
      }
      throw new RewriteError(`unknown assertion ${node.k}`);
    }
    case 'backref': {
      if (node.i && !st.jsI) throw new RewriteError('a back-reference under a scoped case-insensitive flag');
      const js = st.lastEmitted.get(node.ref);
      if (js === undefined) return '(?!)';
      return `(?:\\${js})`;
    }
    case 'group': {
      switch (node.kind) {
        case 'cap': {
          const js = st.nextGroup++;
          st.groupNames[js] = node.name;
          st.groupPy[js] = node.idx;
          const body = emit(node.body, st);
          st.lastEmitted.set(node.idx, js);
          return `(${body})`;
        }
        case 'non':
          return `(?:${emit(node.body, st)})`;
        case 'la':
          return `(?=${emit(node.body, st)})`;
        case 'nla':
          return `(?!${emit(node.body, st)})`;
        case 'lb':
          return `(?<=${emit(node.body, st)})`;
        case 'nlb':
          return `(?<!${emit(node.body, st)})`;
        case 'atomic': {
          // (?>X) ≡ (?=(X))\k: the lookahead commits to X's first match, the reference consumes it
          const js = st.nextGroup++;
          st.groupNames[js] = null;
          st.groupPy[js] = 0;
          const body = emit(node.body, st);
          return `(?:(?=(${body}))\\${js})`;
        }
      }
      throw new RewriteError('unknown group');
    }
    case 'quant': {
      if (node.possessive) {
        const inner: Node = { ...node, possessive: false };
        return emit({ t: 'group', kind: 'atomic', idx: 0, name: null, body: inner }, st);
      }
      let atom = emit(node.atom, st);
      if (!isSingleAtom(node.atom, atom)) atom = `(?:${atom})`;
      const q =
        node.min === 0 && node.max === Infinity
          ? '*'
          : node.min === 1 && node.max === Infinity
            ? '+'
            : node.min === 0 && node.max === 1
              ? '?'
              : node.max === Infinity
                ? `{${node.min},}`
                : node.min === node.max
                  ? `{${node.min}}`
                  : `{${node.min},${node.max}}`;
      return `${atom}${q}${node.lazy ? '?' : ''}`;
    }
    case 'cond':
      throw new RewriteError('internal: conditional left after rewriting');
    case 'class':
      return emitClass(node, st);
  }
}

function isSingleAtom(node: Node, text: string): boolean {
  if (node.t === 'group' && node.kind !== 'atomic') return true;
  if (node.t === 'class') return text.startsWith('[');
  if (node.t === 'dot') return true;
  if (node.t === 'esc') return true;
  if (node.t === 'char') return !text.startsWith('(?:') && (text.length === 1 || text.startsWith('\\') || text.startsWith('['));
  return false;
}

// ---------------------------------------------------------------------------------------------
// Literal extraction (for the raw-buffer prefilter)

/**
 * Returns a set S of strings such that every text matched by `node` contains one of S, or
 * null. Sequences pick their best mandatory item; runs of literal characters are joined.
 */
function literalsOf(node: Node): string[] | null {
  switch (node.t) {
    case 'char':
      if (node.i && caseVariants(node.c).length > 1) return null;
      return [String.fromCodePoint(node.c)];
    case 'group':
      if (node.kind === 'cap' || node.kind === 'non' || node.kind === 'atomic') return literalsOf(node.body);
      return null;
    case 'alt': {
      const out: string[] = [];
      for (const a of node.alts) {
        const l = literalsOf(a);
        if (l === null) return null;
        out.push(...l);
      }
      return [...new Set(out)];
    }
    case 'quant':
      return node.min >= 1 ? literalsOf(node.atom) : null;
    case 'seq': {
      let best: string[] | null = null;
      let run = '';
      const consider = (cand: string[] | null): void => {
        if (cand === null || cand.length === 0) return;
        if (best === null || score(cand) > score(best)) best = cand;
      };
      for (const it of node.items) {
        const direct = charLiteral(it);
        if (direct !== null) {
          run += direct;
          continue;
        }
        if (it.t === 'assert' || (it.t === 'group' && (it.kind === 'la' || it.kind === 'nla' || it.kind === 'lb' || it.kind === 'nlb'))) continue; // zero-width: the run goes on
        if (run) consider([run]);
        run = '';
        consider(literalsOf(it));
      }
      if (run) consider([run]);
      return best;
    }
    default:
      return null;
  }
}

function charLiteral(n: Node): string | null {
  if (n.t === 'char' && !(n.i && caseVariants(n.c).length > 1)) return String.fromCodePoint(n.c);
  if (n.t === 'group' && n.kind === 'non' && n.body.t === 'char') return charLiteral(n.body);
  if (n.t === 'quant' && n.min === n.max && n.min > 0 && n.min <= 8) {
    const c = charLiteral(n.atom);
    return c === null ? null : c.repeat(n.min);
  }
  return null;
}

// words that appear in most log lines of any daemon: poor prefilter literals
const COMMON_WORDS = new Set(['from', 'for', 'user', 'by', 'to', 'the', 'of', 'on', 'in', 'port', 'with', 'session', 'for user', 'from user', 'and', 'is', 'error', 'info']);

/** a set is as good as its weakest member, and worse the more members it has */
function score(set: readonly string[]): number {
  let min = Infinity;
  let common = false;
  for (const s of set) {
    let len = s.length;
    const t = s.trim().toLowerCase();
    if (COMMON_WORDS.has(t)) {
      common = true;
      len = Math.min(len, 2);
    }
    min = Math.min(min, len);
  }
  return min * 4 - set.length - (common ? 4 : 0);
}

// ---------------------------------------------------------------------------------------------
// First characters of an anchored regex (dispatch: skip regexes that cannot match a line)

interface First {
  units: Set<number> | null; // null: any
  nullable: boolean;
}

const ANY: First = { units: null, nullable: false };

function firstOf(node: Node): First {
  switch (node.t) {
    case 'char': {
      if (node.c > 0xffff) return ANY;
      const vs = node.i ? caseVariants(node.c) : [node.c];
      if (vs.some((v) => v > 0xffff)) return ANY;
      return { units: new Set(vs), nullable: false };
    }
    case 'class': {
      if (node.neg || node.items.some((it) => it.t === 'esc')) return ANY;
      const units = new Set<number>();
      for (const it of node.items) {
        if (it.t !== 'range') return ANY;
        if (it.to > 0xffff || it.to - it.from > 512) return ANY;
        for (let c = it.from; c <= it.to; c++) for (const v of node.i ? caseVariants(c) : [c]) {
          if (v > 0xffff) return ANY;
          units.add(v);
        }
      }
      return { units, nullable: false };
    }
    case 'assert':
      return { units: new Set(), nullable: true };
    case 'group':
      if (node.kind === 'la' || node.kind === 'nla' || node.kind === 'lb' || node.kind === 'nlb') return { units: new Set(), nullable: true };
      return firstOf(node.body);
    case 'quant': {
      const f = firstOf(node.atom);
      return { units: f.units, nullable: f.nullable || node.min === 0 };
    }
    case 'seq': {
      const units = new Set<number>();
      for (const it of node.items) {
        const f = firstOf(it);
        if (f.units === null) return ANY;
        for (const u of f.units) units.add(u);
        if (!f.nullable) return { units, nullable: false };
      }
      return { units, nullable: true };
    }
    case 'alt': {
      const units = new Set<number>();
      let nullable = false;
      for (const a of node.alts) {
        const f = firstOf(a);
        if (f.units === null) return ANY;
        for (const u of f.units) units.add(u);
        nullable ||= f.nullable;
      }
      return { units, nullable };
    }
    case 'fail':
      return { units: new Set(), nullable: false };
    default:
      return ANY;
  }
}

function anchoredFirstUnits(ast: Node): Set<number> | null {
  const items = ast.t === 'seq' ? ast.items : [ast];
  const head = items[0];
  // only `^` without MULTILINE and `\A` pin the match to the start of the text
  if (head === undefined || head.t !== 'assert' || !((head.k === '^' && !head.m) || head.k === 'A')) return null;
  const f = firstOf({ t: 'seq', items: items.slice(1) });
  if (f.units === null || f.nullable) return null;
  return f.units;
}

// ---------------------------------------------------------------------------------------------

export function translatePythonRegex(pattern: string, options: TranslateOptions = {}): TranslateResult {
  const jsFlags = options.indices ? 'd' : '';
  let ast: Node;
  let parser: Parser;
  try {
    parser = new Parser(pattern, { i: options.ignoreCase ?? false, s: false, m: options.multiline ?? false, x: false, a: false });
    ast = parser.parse();
  } catch (e) {
    if (e instanceof ParseError) return { ok: false, message: `invalid Python regex: ${e.message}` };
    throw e;
  }
  try {
    ast = backrefsToConds(ast);
    if (containsCond(ast)) ast = resolve(ast, new Map(), condRefs(ast, new Set()));
    const literals = literalsOf(ast);
    const firstUnits = anchoredFirstUnits(ast);
    const jsI = parser.globalFlags.i;
    const build = (uni: boolean): { re: RegExp; st: EmitState } => {
      const st: EmitState = {
        uni,
        jsI,
        nextGroup: 1,
        groupNames: [null],
        groupPy: [0],
        lastEmitted: new Map(),
        pyNames: new Map(),
      };
      const src = emit(ast, st);
      return { re: new RegExp(src, jsFlags + (jsI ? 'i' : '') + (uni ? 'u' : '')), st };
    };
    const ascii = build(false);
    // the Unicode form is what non-ASCII lines are matched with: without it they would be
    // matched with ASCII classes, a silent change of meaning, so its failure refuses the regex
    const unicode: RegExp | null = build(true).re;
    const nameIndex = new Map<string, number[]>();
    ascii.st.groupNames.forEach((n, js) => {
      if (n === null || js === 0) return;
      const arr = nameIndex.get(n) ?? [];
      arr.push(js);
      nameIndex.set(n, arr);
    });
    const pyIndex = new Map<number, number[]>();
    ascii.st.groupPy.forEach((p, js) => {
      if (js === 0 || p === 0) return;
      const arr = pyIndex.get(p) ?? [];
      arr.push(js);
      pyIndex.set(p, arr);
    });
    return {
      ok: true,
      value: {
        pyIndex,
        ascii: ascii.re,
        unicode,
        groupNames: ascii.st.groupNames,
        nameIndex,
        literals: literals === null ? null : literals.filter((l) => l.length > 0),
        firstUnits,
      },
    };
  } catch (e) {
    if (e instanceof RewriteError) return { ok: false, message: `cannot translate to JavaScript: ${e.message}` };
    if (e instanceof SyntaxError) return { ok: false, message: `cannot translate to JavaScript: ${e.message}` };
    throw e;
  }
}

/** True when every code unit is ASCII: such lines use the fast (non-`u`) form. */
const NON_ASCII = /[^\x00-\x7f]/;
export function isAscii(s: string): boolean {
  return !NON_ASCII.test(s);
}

/** Run a translated regex like Python's `search`, choosing the form by the text. */
export function pySearch(t: TranslatedRegex, text: string, ascii: boolean): RegExpExecArray | null {
  const re = ascii || t.unicode === null ? t.ascii : t.unicode;
  return re.exec(text);
}

/** The value of a Python group name in a match: the copy that took part, if any. */
export function groupValue(t: TranslatedRegex, m: RegExpExecArray, name: string): string | undefined {
  const idxs = t.nameIndex.get(name);
  if (idxs === undefined) return undefined;
  for (let k = idxs.length - 1; k >= 0; k--) {
    const v = m[idxs[k]!];
    if (v !== undefined) return v;
  }
  return undefined;
}
