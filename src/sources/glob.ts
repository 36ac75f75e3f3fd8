/**
 * logpath globs as fail2ban (Python `glob.glob`) understands them: `*`, `?` and `[...]` inside
 * one path segment, no `**`. chokidar 4+ dropped glob support, so a glob is split into a static
 * base directory (watched) and per-segment matchers (used to filter what chokidar reports).
 */
import path from 'node:path';

export interface CompiledGlob {
  readonly pattern: string;
  /** the longest leading directory without glob characters */
  readonly base: string;
  /** how many directory levels below base chokidar must descend (0 = files directly in base) */
  readonly depth: number;
  /** true when `p` is a file path the glob matches */
  matches(p: string): boolean;
  /** true when `p` is base or a directory that may contain matches (for chokidar's `ignored`) */
  mayContain(p: string): boolean;
  /** true when files directly inside directory `p` can match */
  isLeafDir(p: string): boolean;
}

const GLOB_CHARS = /[*?[]/;

type SegmentMatcher = (s: string) => boolean;

function segmentMatcher(seg: string): SegmentMatcher {
  let re = '^';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i] as string;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = seg.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = seg.slice(i + 1, close);
      // Python's fnmatch negates with `!`; escape what means something else in a JS class
      if (body.startsWith('!')) body = '^' + body.slice(1);
      re += '[' + body.replace(/\\/g, '\\\\') + ']';
      i = close;
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  // Python's glob does not let a wildcard match a leading dot; keep that (no `.swp` surprises)
  const rx = new RegExp(re + '$');
  if (seg.startsWith('.')) return (s) => rx.test(s);
  return (s) => !s.startsWith('.') && rx.test(s);
}

export function compileGlob(pattern: string): CompiledGlob {
  const abs = path.resolve(pattern);
  const parts = abs.split('/').filter((s) => s !== '');
  let i = 0;
  while (i < parts.length - 1 && !GLOB_CHARS.test(parts[i] as string)) i++;
  const base = '/' + parts.slice(0, i).join('/');
  const rest = parts.slice(i);
  const matchers: SegmentMatcher[] = rest.map((seg) =>
    GLOB_CHARS.test(seg) ? segmentMatcher(seg) : (s: string) => s === seg,
  );
  const relSegments = (p: string): string[] | null => {
    const rel = path.relative(base, path.resolve(p));
    if (rel === '') return [];
    if (rel.startsWith('..') || path.isAbsolute(rel)) return null;
    return rel.split('/');
  };
  const prefixOk = (segs: string[]): boolean => segs.every((s, k) => matchers[k]?.(s) === true);
  return {
    pattern,
    base,
    depth: Math.max(0, rest.length - 1),
    matches(p) {
      const segs = relSegments(p);
      return segs !== null && segs.length === matchers.length && prefixOk(segs);
    },
    isLeafDir(p) {
      const segs = relSegments(p);
      return segs !== null && segs.length === matchers.length - 1 && prefixOk(segs);
    },
    mayContain(p) {
      const segs = relSegments(p);
      return segs !== null && segs.length <= matchers.length && prefixOk(segs);
    },
  };
}
