import { describe, expect, it } from 'vitest';
import { createLineScanner } from '../../../../src/engine/match/prefilter.js';

function naive(text: string, literals: readonly string[] | null): string[] {
  const lines = text.split('\n');
  if (text.endsWith('\n')) lines.pop();
  return lines.filter((l) => l.length > 0 && (literals === null || literals.some((x) => l.includes(x))));
}

function scanned(text: string, literals: readonly string[] | null): string[] {
  const buf = Buffer.from(text, 'utf8');
  const out: string[] = [];
  createLineScanner(literals).scan(buf, (s, e) => out.push(buf.toString('utf8', s, e)));
  return out;
}

describe('literal line scanner', () => {
  it('finds exactly the lines holding a literal, in order, each once', () => {
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const words = ['Failed ', 'password', 'for', 'root', 'from', 'é', '€uro', 'a.b', '(x)', '[y]', 'Failed password'];
    for (let round = 0; round < 200; round++) {
      let text = '';
      const lines = 1 + rnd(30);
      for (let i = 0; i < lines; i++) {
        const n = rnd(6);
        for (let k = 0; k < n; k++) text += words[rnd(words.length)]! + (rnd(2) ? ' ' : '');
        if (i < lines - 1 || rnd(2)) text += '\n';
      }
      const lits = [null, ['Failed '], ['é', 'a.b'], ['(x)', '[y]', 'password'], ['€uro', 'Failed password', 'root']][rnd(5)]!;
      expect(scanned(text, lits), JSON.stringify({ text, lits })).toEqual(naive(text, lits));
    }
  });
});
