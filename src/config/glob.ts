/** logpath globs expanded the way fail2ban does it (Python glob.glob: no `**`, sorted names). */
import * as fs from 'node:fs';
import * as path from 'node:path';

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? '';
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = glob.slice(i + 1, end);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

const MAGIC = /[*?[]/;

/** Python glob.glob semantics (no `**`, hidden files only when the pattern names them). */
export function expandGlob(pattern: string): string[] {
  if (!MAGIC.test(pattern)) return fs.existsSync(pattern) ? [pattern] : [];
  const abs = path.isAbsolute(pattern);
  const parts = pattern.split('/').filter((p, i) => p.length > 0 || i === 0);
  let current: string[] = [abs ? '/' : '.'];
  const start = abs ? 1 : 0;
  for (let i = start; i < parts.length; i++) {
    const part = parts[i] ?? '';
    const last = i === parts.length - 1;
    const next: string[] = [];
    for (const base of current) {
      if (!MAGIC.test(part)) {
        const p = path.join(base, part);
        if (last ? fs.existsSync(p) : isDir(p)) next.push(p);
        continue;
      }
      const re = globToRegExp(part);
      let names: string[];
      try {
        names = fs.readdirSync(base);
      } catch {
        continue;
      }
      for (const n of names.sort()) {
        if (n.startsWith('.') && !part.startsWith('.')) continue;
        if (!re.test(n)) continue;
        const p = path.join(base, n);
        if (last || isDir(p)) next.push(p);
      }
    }
    current = next;
  }
  return abs ? current : current.map((p) => path.relative('.', p) || p);
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

