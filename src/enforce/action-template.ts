/**
 * Turns a fail2ban action.d command into a shell script plus an environment, so that nothing
 * taken from a log line can change what the shell parses.
 *
 * fail2ban substitutes in two steps: static tags (the action's [Init] values, jail params,
 * other commands such as `<actionflush>`) recursively and as raw text — they are config, written
 * by the operator, and may hold shell syntax on purpose (`iptables = iptables <lockingopt>`);
 * then dynamic tags (`<ip>`, `<F-USER>`, `<matches>`…) once, escaped. We keep the first step and
 * replace the second: every dynamic occurrence becomes a reference to an environment variable
 * (`"${AEGIS_TAG_F_USER}"`), quoted to fit the shell context it sits in. The shell expands a
 * parameter after parsing, and the result is never parsed again, so `x; touch /tmp/pwned` or
 * `$(id)` arrive as data in one word. What a command then does with its argument (`eval`,
 * `ssh host "…"`) is outside what any substitution can guard; docs/enforcers.md says so.
 */
import { err, ok, type Result } from '../errors.js';

/** Tags whose values come from the ban (or the log), never from config. */
export const DYNAMIC_TAGS: ReadonlySet<string> = new Set([
  'ip',
  'family',
  'ip-rev',
  'ip-host',
  'fid',
  'failures',
  'time',
  'bantime',
  'bancount',
  'matches',
  'ipmatches',
  'ipjailmatches',
  'ipfailures',
  'ipjailfailures',
  'restored',
  'raw-ticket',
  // host names: not log data, but not config either; fail2ban fills them late too
  'fq-hostname',
  'sh-hostname',
]);

const F_TAG = /^F-[A-Z0-9_-]+$/;
const TAG_RE = /<([^ <>]+)>/g;
/** fail2ban's MAX_TAG_REPLACE_COUNT is 25 per tag; a bound keeps a cycle from looping forever */
const MAX_ROUNDS = 50;
const SENTINEL_RE = /\u0000(\d+)\u0000/y;

export function isDynamicTag(name: string): boolean {
  return DYNAMIC_TAGS.has(name) || F_TAG.test(name);
}

export interface RenderedCommand {
  /** the text handed to `/bin/sh -c` */
  readonly script: string;
  /** AEGIS_TAG_* variables the script references */
  readonly env: Readonly<Record<string, string>>;
}

export interface RenderInput {
  /** command text as in action.d, e.g. `<iptables> -I f2b-<name> 1 -s <ip> -j <blocktype>` */
  readonly command: string;
  /** static tags: [Init] values, params, the action's other commands (family overrides applied) */
  readonly statics: Readonly<Record<string, string>>;
  /** dynamic tags of one ban; null outside a ban (actionstart/stop/flush) */
  readonly dynamic: Readonly<Record<string, string>> | null;
}

/**
 * Expand static tags as fail2ban does, then place dynamic ones as quoted variable references.
 * Refuses (error value) only when a dynamic value cannot be placed safely: inside `$(( ))` with a
 * non-numeric value, or a value with special characters in a quoted here-document.
 */
export function renderCommand(input: RenderInput): Result<RenderedCommand, string> {
  const names: string[] = [];
  const index = new Map<string, number>();
  const sentinel = (name: string): string => {
    let i = index.get(name);
    if (i === undefined) {
      i = names.length;
      names.push(name);
      index.set(name, i);
    }
    return `\u0000${i}\u0000`;
  };

  let text = stripNul(input.command);
  for (let round = 0; ; round++) {
    if (round >= MAX_ROUNDS) return err(`tag substitution does not terminate (a tag refers to itself?) in: ${input.command}`);
    let changed = false;
    text = text.replace(TAG_RE, (whole, name: string) => {
      if (input.dynamic !== null && isDynamicTag(name)) {
        changed = true;
        return sentinel(name);
      }
      if (name === 'br') {
        changed = true;
        return '\n';
      }
      if (name === 'sp') {
        changed = true;
        return ' ';
      }
      const v = input.statics[name];
      if (v === undefined) return whole;
      changed = true;
      return stripNul(v);
    });
    if (!changed) break;
  }

  if (names.length === 0) return ok({ script: text, env: {} });

  const env: Record<string, string> = {};
  const varOf: string[] = [];
  const used = new Set<string>();
  for (const name of names) {
    let v = `AEGIS_TAG_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
    while (used.has(v)) v += '_';
    used.add(v);
    varOf.push(v);
    // A missing dynamic value becomes empty (fail2ban does so for F-* tags): a literal `<F-X>`
    // left in a command would be a shell redirection.
    env[v] = stripNul(input.dynamic?.[name] ?? '');
  }
  const r = placeReferences(text, (i) => {
    const variable = varOf[i] ?? '';
    return { variable, value: env[variable] ?? '' };
  });
  return r.ok ? ok({ script: r.script, env }) : err(r.error);
}

function stripNul(s: string): string {
  return s.includes('\u0000') ? s.replace(/\u0000/g, '') : s;
}

type Ctx = 'top' | 'dq' | 'sq' | 'bq' | 'sub' | 'arith';
interface Frame {
  ctx: Ctx;
  depth: number;
}
interface Heredoc {
  delim: string;
  quoted: boolean;
  stripTabs: boolean;
}

/**
 * One pass over the script tracking POSIX sh quoting: unquoted, "…", '…', `…`, $(…), $((…))
 * and here-documents. Each sentinel is replaced by a reference valid in its context. `$'…'` is
 * not POSIX (Debian's /bin/sh, dash, reads it as `$` and '…'), so it is scanned as dash does.
 * Where the scan and a shell could disagree, the worst outcome is a reference left unexpanded
 * or word-split — never log text parsed as code: raw text is only ever placed in a quoted
 * here-document body, and only when it is made of harmless characters.
 */
function placeReferences(
  text: string,
  lookup: (i: number) => { variable: string; value: string },
): { ok: true; script: string } | { ok: false; error: string } {
  const stack: Frame[] = [{ ctx: 'top', depth: 0 }];
  const pending: Heredoc[] = [];
  let out = '';
  let i = 0;
  let comment = false;
  const top = (): Frame => stack[stack.length - 1] ?? { ctx: 'top', depth: 0 };
  const unquotedLike = (c: Ctx): boolean => c === 'top' || c === 'bq' || c === 'sub';

  while (i < text.length) {
    SENTINEL_RE.lastIndex = i;
    const s = SENTINEL_RE.exec(text);
    if (s) {
      const { variable, value } = lookup(Number(s[1]));
      const ctx = top().ctx;
      i += s[0].length;
      if (comment) continue;
      if (ctx === 'sq') out += `'"\${${variable}}"'`;
      else if (ctx === 'dq') out += `\${${variable}}`;
      else if (ctx === 'arith') {
        // Arithmetic re-reads the expanded text as an expression (bash even runs `a[$(…)]`).
        if (!/^-?\d+$/.test(value)) return { ok: false, error: `non-numeric value for a tag inside $(( )): refused` };
        out += `\${${variable}}`;
      } else out += `"\${${variable}}"`;
      continue;
    }
    const c = text[i] ?? '';
    const next = text[i + 1] ?? '';
    const f = top();

    if (comment) {
      out += c;
      i++;
      if (c === '\n') {
        comment = false;
        const r = consumeHeredocs();
        if (!r.ok) return r;
      }
      continue;
    }

    if (f.ctx === 'sq') {
      if (c === "'") stack.pop();
      out += c;
      i++;
      continue;
    }
    if (f.ctx === 'dq') {
      if (c === '\\') {
        out += c + next;
        i += 2;
        continue;
      }
      if (c === '"') {
        stack.pop();
        out += c;
        i++;
        continue;
      }
      if (openExpansion()) continue;
      out += c;
      i++;
      continue;
    }
    if (f.ctx === 'arith') {
      if (c === '(') f.depth++;
      else if (c === ')') {
        if (f.depth === 0 && next === ')') {
          stack.pop();
          out += '))';
          i += 2;
          continue;
        }
        f.depth--;
      }
      if (openExpansion()) continue;
      out += c;
      i++;
      continue;
    }
    // unquoted-like: top, `…`, $(…)
    if (unquotedLike(f.ctx)) {
      if (c === '\\') {
        out += c + next;
        i += 2;
        continue;
      }
      if (c === "'") {
        stack.push({ ctx: 'sq', depth: 0 });
        out += c;
        i++;
        continue;
      }
      if (c === '"') {
        stack.push({ ctx: 'dq', depth: 0 });
        out += c;
        i++;
        continue;
      }
      if (c === '`' && f.ctx === 'bq') {
        stack.pop();
        out += c;
        i++;
        continue;
      }
      if (c === '#' && atWordStart()) {
        comment = true;
        out += c;
        i++;
        continue;
      }
      if (f.ctx === 'sub') {
        if (c === '(') f.depth++;
        else if (c === ')') {
          if (f.depth === 0) {
            stack.pop();
            out += c;
            i++;
            continue;
          }
          f.depth--;
        }
      }
      if (c === '<' && next === '<' && text[i + 2] !== '<') {
        const r = readHeredocOperator();
        if (r) continue;
      }
      if (openExpansion()) continue;
      out += c;
      i++;
      if (c === '\n') {
        const r = consumeHeredocs();
        if (!r.ok) return r;
      }
      continue;
    }
    out += c;
    i++;
  }
  return { ok: true, script: out };

  function atWordStart(): boolean {
    if (i === 0) return true;
    const p = text[i - 1] ?? '';
    return /[\s;&|()<>]/.test(p);
  }

  /** `$((`, `$(`, and a backtick (outside `…` already) */
  function openExpansion(): boolean {
    const c = text[i] ?? '';
    if (c === '$' && text[i + 1] === '(' && text[i + 2] === '(') {
      stack.push({ ctx: 'arith', depth: 0 });
      out += '$((';
      i += 3;
      return true;
    }
    if (c === '$' && text[i + 1] === '(') {
      stack.push({ ctx: 'sub', depth: 0 });
      out += '$(';
      i += 2;
      return true;
    }
    if (c === '`') {
      stack.push({ ctx: 'bq', depth: 0 });
      out += c;
      i++;
      return true;
    }
    return false;
  }

  /** `<<WORD`, `<<-WORD`, `<<'WORD'`, `<<"WORD"`: remember it; the body starts at the next newline */
  function readHeredocOperator(): boolean {
    let j = i + 2;
    let stripTabs = false;
    if (text[j] === '-') {
      stripTabs = true;
      j++;
    }
    while (text[j] === ' ' || text[j] === '\t') j++;
    let delim = '';
    let quoted = false;
    while (j < text.length && !/[\s;&|()<>]/.test(text[j] ?? '')) {
      const ch = text[j] ?? '';
      if (ch === "'" || ch === '"') {
        quoted = true;
        const end = text.indexOf(ch, j + 1);
        if (end < 0) return false;
        delim += text.slice(j + 1, end);
        j = end + 1;
        continue;
      }
      if (ch === '\\') {
        quoted = true;
        delim += text[j + 1] ?? '';
        j += 2;
        continue;
      }
      delim += ch;
      j++;
    }
    if (delim.length === 0) return false;
    pending.push({ delim, quoted, stripTabs });
    out += text.slice(i, j);
    i = j;
    return true;
  }

  /** Copy the bodies of pending here-documents, placing references per their quoting. */
  function consumeHeredocs(): { ok: true } | { ok: false; error: string } {
    while (pending.length > 0) {
      const h = pending.shift()!;
      for (;;) {
        if (i >= text.length) return { ok: true };
        const nl = text.indexOf('\n', i);
        const end = nl < 0 ? text.length : nl;
        const raw = text.slice(i, end);
        const bare = h.stripTabs ? raw.replace(/^\t+/, '') : raw;
        let line = '';
        let k = 0;
        while (k < raw.length) {
          SENTINEL_RE.lastIndex = k;
          const s = SENTINEL_RE.exec(raw);
          if (s) {
            const { variable, value } = lookup(Number(s[1]));
            if (h.quoted) {
              // A quoted body is never expanded, so a reference would stay literal: the value goes
              // in as text, and only when it is made of characters no shell reading could act on
              // (it cannot end the document early, nor mean anything if our scan were wrong).
              if (!/^[A-Za-z0-9 @%+=:,./_-]*$/.test(value)) {
                return { ok: false, error: 'a tag value with special characters inside a quoted here-document: refused' };
              }
              line += value;
            } else line += `\${${variable}}`;
            k += s[0].length;
            continue;
          }
          line += raw[k];
          k++;
        }
        out += line + (nl < 0 ? '' : '\n');
        i = nl < 0 ? text.length : nl + 1;
        if (bare === h.delim) break;
      }
    }
    return { ok: true };
  }
}
