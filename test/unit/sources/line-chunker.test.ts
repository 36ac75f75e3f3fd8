import { describe, expect, it } from 'vitest';
import { LineChunker } from '../../../src/sources/line-chunker.js';

/** feed `pieces` through a chunker and return the delivered lines and the cut count */
function feed(max: number, pieces: string[]): { lines: string[]; cut: number; pending: number } {
  const ch = new LineChunker(max);
  const lines: string[] = [];
  let cut = 0;
  for (const p of pieces) {
    const src = Buffer.from(p);
    const { buf, offset } = ch.allocate(src.length);
    src.copy(buf, offset);
    const r = ch.push(buf, offset + src.length);
    cut += r.cut;
    if (r.data !== null) {
      const s = r.data.toString();
      expect(s.endsWith('\n')).toBe(true);
      lines.push(...s.slice(0, -1).split('\n'));
    }
  }
  return { lines, cut, pending: ch.pending };
}

describe('LineChunker', () => {
  it('delivers only complete lines and carries the partial one', () => {
    expect(feed(100, ['a\nb', 'c\nd', '\n'])).toEqual({ lines: ['a', 'bc', 'd'], cut: 0, pending: 0 });
    expect(feed(100, ['abc'])).toEqual({ lines: [], cut: 0, pending: 3 });
  });

  it('keeps empty lines and a line of exactly the limit', () => {
    expect(feed(3, ['\n\nabc\n'])).toEqual({ lines: ['', '', 'abc'], cut: 0, pending: 0 });
  });

  it('cuts an over-long line inside a chunk and across chunks, discarding to its newline', () => {
    expect(feed(4, ['ok\n123456789\nok2\n'])).toEqual({ lines: ['ok', '1234', 'ok2'], cut: 1, pending: 0 });
    expect(feed(4, ['12', '345', '678', '9\nnext\n'])).toEqual({ lines: ['1234', 'next'], cut: 1, pending: 0 });
    // the carried part never exceeds the limit
    expect(feed(4, ['1234567']).pending).toBe(0);
  });
});
