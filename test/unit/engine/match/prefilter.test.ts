import { describe, expect, it } from 'vitest';
import { createLineScanner } from '../../../../src/engine/match/prefilter.js';
import { nativeScan, SCAN_ADDON_PATH, type NativeScan } from '../../../../src/engine/match/native-scan.js';
import { countLines } from '../../../../src/engine/scan.js';

const native = nativeScan();
if (native === null) console.log(`native line scanner not built (${SCAN_ADDON_PATH}): its tests are skipped, the JavaScript scan is tested alone`);

function naive(text: string, literals: readonly string[] | null): string[] {
  const lines = text.split('\n');
  if (text.endsWith('\n')) lines.pop();
  return lines.filter((l) => l.length > 0 && (literals === null || literals.some((x) => l.includes(x))));
}

function scanned(text: string, literals: readonly string[] | null, with_: NativeScan | null = null): string[] {
  const buf = Buffer.from(text, 'utf8');
  const out: string[] = [];
  createLineScanner(literals, with_).scan(buf, (s, e) => out.push(buf.toString('utf8', s, e)));
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
      const lits = [null, ['Failed '], ['é', 'a.b'], ['(x)', '[y]', 'password'], ['€uro', 'Failed password', 'root'], ['for', 'root', 'from', 'é', '(x)', 'a.b']][rnd(6)]!;
      const want = naive(text, lits);
      expect(scanned(text, lits), JSON.stringify({ text, lits })).toEqual(want);
      if (native !== null) {
        expect(scanned(text, lits, native), `native: ${JSON.stringify({ text, lits })}`).toEqual(want);
        const buf = Buffer.from(text, 'utf8');
        expect(countLines(buf, native)).toBe(countLines(buf, null));
      }
    }
  });
});

describe.skipIf(native === null)('native line scanner', () => {
  it('returns more candidate lines than one call holds, in order, and counts lines as JavaScript does', () => {
    // 10 000 candidates: the 4 096-pair output fills twice and the scan resumes after it
    let text = '';
    for (let i = 0; i < 30_000; i++) text += i % 3 === 0 ? `{"event":"auth.login.failed","n":${i}}\n` : `{"event":"ok","n":${i}}\n`;
    text += 'last line auth.login.failed without a newline';
    const lits = ['auth.login.failed'];
    const got = scanned(text, lits, native);
    expect(got).toHaveLength(10_001);
    expect(got).toEqual(naive(text, lits));
    const buf = Buffer.from(text);
    expect(countLines(buf, native)).toBe(30_000);
    expect(countLines(buf.subarray(1, 1), native)).toBe(0);
  });

  it('finds sparse literals across a buffer many search windows long, with one literal never present', () => {
    let text = '';
    for (let i = 0; i < 60_000; i++) {
      // 'rare' every ~250 KB, 'often' every 7th line, 'absent' nowhere; some lines hold two
      let line = `line ${i} some filler text to make the buffer long enough`;
      if (i % 5_000 === 17) line += ' rare';
      if (i % 7 === 3) line += ' often';
      if (i % 35_000 === 5) line = `rare and often ${line}`;
      text += `${line}\n`;
    }
    // up to four literals take the memmem path, more the one-pass SIMD path
    for (const lits of [['rare'], ['absent', 'rare'], ['often', 'absent', 'rare'], ['absent'], ['absent', 'rare', 'nowhere', 'not here', 'neither'], ['a', 'rare', 'often', 'absent', 'filler text to make']]) {
      expect(scanned(text, lits, native)).toEqual(naive(text, lits));
    }
  });

  it('counts blank (spaces, tabs, CR) and comment lines as the line-by-line rule does', () => {
    let seed = 11;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pieces = ['', ' ', '\t', '\r', '#', '# c', 'x', ' #', 'a b', '\u00a0'];
    for (let round = 0; round < 300; round++) {
      const lines = Array.from({ length: rnd(12) }, () => pieces[rnd(pieces.length)]! + (rnd(3) === 0 ? pieces[rnd(pieces.length)]! : ''));
      const text = lines.join('\n') + (rnd(2) ? '\n' : '');
      const buf = Buffer.from(text);
      // the lines a reader sees: split at newlines, no empty line after a final newline
      const seen = text === '' ? [] : (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n');
      const want = seen.filter((l) => l.startsWith('#') || /^[ \t\r]*$/.test(l)).length;
      expect(native!.countSkippable(buf), JSON.stringify(text)).toBe(want);
    }
  });

  it('reads SharedArrayBuffer views and refuses what is not a Uint8Array', () => {
    const bytes = Buffer.from('a\nxx needle\nb\n');
    const shared = new Uint8Array(new SharedArrayBuffer(bytes.length));
    shared.set(bytes);
    const out = new Int32Array(8);
    expect(native!.findLines(shared, 0, [Buffer.from('needle')], out)).toBe(1);
    expect(Array.from(out.subarray(0, 2))).toEqual([2, 11]);
    expect(native!.countLines(shared)).toBe(3);
    expect(() => native!.countLines('text' as unknown as Uint8Array)).toThrow(/Uint8Array/);
    expect(() => native!.findLines(shared, 99, [Buffer.from('x')], out)).toThrow(/range/);
    expect(() => native!.findLines(shared, 0, [Buffer.alloc(0)], out)).toThrow(/empty/);
  });
});
