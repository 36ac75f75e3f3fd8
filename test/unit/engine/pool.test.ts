import { afterAll, describe, expect, it } from 'vitest';
import { MatchEngine, shareBatch, type JailFilter } from '../../../src/engine/pool.js';
import type { FilterSpec } from '../../../src/config/types.js';

const spec = (failregex: string[]): FilterSpec => ({
  name: 't',
  file: null,
  options: {},
  failregex,
  ignoreregex: [],
  prefregex: null,
  datepattern: '{NONE}',
  maxlines: 1,
  journalmatch: [],
  json: null,
  origin: { file: 'test', section: 'Definition' },
});

const timeouts: Array<[string, number]> = [];
const engine = new MatchEngine({ threads: 2, lineTimeoutMs: 300, onTimeout: (jail, offset) => timeouts.push([jail, offset]) });
afterAll(() => engine.close());

describe('match engine (worker threads)', () => {
  it('a large batch split across threads yields every match once, in line order, with batch offsets', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 40_000; i++) lines.push(i % 7 === 0 ? `fail from 198.51.${(i >> 8) & 255}.${i & 255} #${i}` : `ok request ${i} ${'x'.repeat(20)}`);
    const text = lines.join('\n') + '\n';
    const jail: JailFilter = { jail: 'split', key: 'split-1', spec: spec(['^fail from <HOST> #\\d+$']) };
    const { failures: got, lines: counted } = await engine.match(jail, shareBatch(Buffer.from(text)), Date.now() / 1000);
    expect(counted).toBe(40_000);
    const want = lines.flatMap((l, i) => (i % 7 === 0 ? [`198.51.${(i >> 8) & 255}.${i & 255}`] : []));
    expect(got.hosts).toEqual(want);
    expect(got.offsets).toHaveLength(want.length);
    // every row's offset is its line's, in the whole batch (the second thread's part included)
    const buf = Buffer.from(text);
    for (const off of got.offsets) expect(buf.toString('utf8', off, off + 10)).toBe('fail from ');
    expect(buf.toString('utf8', got.offsets[want.length - 1]!).startsWith(lines[Math.floor(39_999 / 7) * 7]!)).toBe(true);
  });

  it('a line that runs away is skipped and reported; the rest of the batch still matches', async () => {
    const evil = `${'a'.repeat(36)}! b 198.51.100.1`;
    const text = `aab 198.51.100.2\n${evil}\naaab 198.51.100.3\n`;
    const jail: JailFilter = { jail: 'redos', key: 'redos-1', spec: spec(['^(a+)+b <HOST>$']) };
    const started = Date.now();
    const { failures: got, lines: counted } = await engine.match(jail, shareBatch(Buffer.from(text)), Date.now() / 1000);
    expect(got.hosts).toEqual(['198.51.100.2', '198.51.100.3']);
    expect(counted).toBe(3);
    expect(timeouts).toEqual([['redos', text.indexOf(evil)]]);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
