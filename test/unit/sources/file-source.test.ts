import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, copyFileSync, mkdirSync, renameSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { MessageChannel } from 'node:worker_threads';
import { createFileSource, type FileSourceOptions } from '../../../src/sources/file-source.js';
import { MemoryPositionStore } from '../../../src/sources/memory-positions.js';
import type { LogSource } from '../../../src/sources/source.js';
import { collect, duplicates, sleep, tempDir, waitFor, type Collected } from './harness.js';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

function setup(tag: string) {
  const t = tempDir(tag);
  cleanups.push(t.cleanup);
  return t.dir;
}

async function startSource(
  c: Collected,
  o: Partial<FileSourceOptions> & Pick<FileSourceOptions, 'globs'>,
): Promise<LogSource> {
  const src = createFileSource({
    mode: 'head',
    positions: o.positions ?? new MemoryPositionStore(),
    hooks: c.hooks,
    pollIntervalMs: 100,
    orphanGraceMs: 1000,
    ...o,
  });
  cleanups.push(() => src.close());
  await src.start();
  return src;
}

const nums = (from: number, to: number, p = 'l'): string[] =>
  Array.from({ length: to - from }, (_, i) => `${p}${from + i}`);
const text = (ls: readonly string[]): string => ls.map((l) => l + '\n').join('');

describe('file source', () => {
  it('reads existing content as backlog (head), then appended lines live, holding a partial line until its newline', async () => {
    const dir = setup('head');
    const f = path.join(dir, 'app.log');
    writeFileSync(f, text(nums(0, 100)));
    const c = collect();
    const src = await startSource(c, { globs: [path.join(dir, '*.log')] });
    await waitFor(() => c.lines.length === 100, 'backlog');
    expect(c.backlogLines).toEqual(nums(0, 100));
    expect(src.files()).toEqual([f]);
    expect(c.files).toEqual([f]);
    appendFileSync(f, 'partial');
    await sleep(150);
    expect(c.lines.length).toBe(100);
    appendFileSync(f, ' line\nnext\n');
    await waitFor(() => c.lines.length === 102, 'completed partial line');
    expect(c.lines.slice(100)).toEqual(['partial line', 'next']);
    expect(c.batches.at(-1)?.isBacklog).toBe(false);
    expect(c.batches.every((b) => b.sourceId === f)).toBe(true);
  });

  it('in tail mode skips what a never-seen file already holds and reads only new lines', async () => {
    const dir = setup('tail');
    const f = path.join(dir, 'app.log');
    writeFileSync(f, text(nums(0, 50)) + 'half');
    const c = collect();
    await startSource(c, { globs: [f], mode: 'tail' });
    await sleep(100);
    expect(c.lines).toEqual([]);
    appendFileSync(f, '-done\n' + text(['x1', 'x2']));
    await waitFor(() => c.lines.length === 3, 'appended');
    // the line that was incomplete at start is delivered whole once its newline comes
    expect(c.lines).toEqual(['half-done', 'x1', 'x2']);
  });

  it('takes the mode per glob: a file matched by a head glob starts at its head, others at their end', async () => {
    const dir = setup('modes');
    const a = path.join(dir, 'a.log');
    const b = path.join(dir, 'b.log');
    writeFileSync(a, 'old a\n');
    writeFileSync(b, 'old b\n');
    const c = collect();
    await startSource(c, {
      globs: [{ glob: path.join(dir, '*.log'), mode: 'tail' }, { glob: a, mode: 'head' }],
      mode: 'tail',
    });
    await waitFor(() => c.lines.length === 1, 'backlog of a');
    appendFileSync(b, 'new b\n');
    await waitFor(() => c.lines.length === 2, 'live line of b');
    expect(c.lines).toEqual(['old a', 'new b']);
    expect(c.backlogLines).toEqual(['old a']);
  });

  it('cuts a line longer than maxLineBytes, reports it, and does not buffer the rest', async () => {
    const dir = setup('long');
    const f = path.join(dir, 'app.log');
    writeFileSync(f, 'short\n' + 'A'.repeat(300) + '\nafter\n');
    const c = collect();
    await startSource(c, { globs: [f], maxLineBytes: 100 });
    await waitFor(() => c.lines.length === 3, 'lines');
    expect(c.lines).toEqual(['short', 'A'.repeat(100), 'after']);
    expect(c.errors.filter((e) => e.kind === 'line_too_long')).toHaveLength(1);

    // a 64 MiB line without a newline for a long while: delivered cut, memory stays flat
    const before = process.memoryUsage();
    const chunk = 'B'.repeat(1 << 20);
    for (let i = 0; i < 64; i++) appendFileSync(f, chunk);
    await sleep(400);
    appendFileSync(f, '\ntail line\n');
    await waitFor(() => c.lines.length === 5, 'long line and the next');
    expect(c.lines[3]).toBe('B'.repeat(100));
    expect(c.lines[4]).toBe('tail line');
    expect(c.errors.filter((e) => e.kind === 'line_too_long')).toHaveLength(2);
    const after = process.memoryUsage();
    // reads are ≤ 1 MiB and nothing is kept: far below the 64 MiB that went through
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(16 << 20);
    expect(Math.max(...c.batches.map((b) => b.data.byteLength))).toBeLessThan(1 << 20);
  });

  it('never delivers the rest of an over-long line as a line, also across a restart in its middle', async () => {
    const dir = setup('long-restart');
    const f = path.join(dir, 'app.log');
    const positions = new MemoryPositionStore();
    // the tail of the long line looks like a failure line: it must never be matched on its own
    writeFileSync(f, 'before\n' + 'A'.repeat(300));
    const c1 = collect();
    const s1 = await startSource(c1, { globs: [f], positions, maxLineBytes: 100 });
    await waitFor(() => c1.lines.length === 2, 'head of the long line');
    await s1.close();
    expect(positions.getFile(f)?.inLongLine).toBe(true);
    appendFileSync(f, 'Failed password for root from 198.18.0.66\nafter\n');
    const c2 = collect();
    await startSource(c2, { globs: [f], positions, maxLineBytes: 100 });
    await waitFor(() => c2.lines.length === 1, 'the line after');
    await sleep(100);
    expect(c1.lines).toEqual(['before', 'A'.repeat(100)]);
    expect(c2.lines).toEqual(['after']);
    expect(positions.getFile(f)?.inLongLine).toBeUndefined();
  });

  it('follows rename + create: the old file is drained (late writes too), the new one read from its start', async () => {
    const dir = setup('rename');
    const f = path.join(dir, 'app.log');
    writeFileSync(f, text(nums(0, 10)));
    const c = collect();
    await startSource(c, { globs: [f] });
    await waitFor(() => c.lines.length === 10, 'initial');
    appendFileSync(f, text(nums(10, 20)));
    renameSync(f, f + '.1');
    appendFileSync(f + '.1', text(nums(20, 30))); // the writer has not reopened yet
    await sleep(50);
    writeFileSync(f, '');
    await sleep(50);
    appendFileSync(f + '.1', text(nums(30, 40)));
    appendFileSync(f, text(nums(40, 50)));
    await waitFor(() => c.lines.length >= 50, 'all lines');
    await sleep(100);
    expect(c.lines).toEqual(nums(0, 50));
  });

  it('follows copytruncate without losing or repeating a line when it had read up to the copy', async () => {
    const dir = setup('ct');
    const f = path.join(dir, 'app.log');
    const c = collect();
    writeFileSync(f, '');
    await startSource(c, { globs: [f] });
    appendFileSync(f, text(nums(0, 20)));
    await waitFor(() => c.lines.length === 20, 'first');
    copyFileSync(f, f + '.1');
    truncateSync(f, 0);
    appendFileSync(f, text(nums(20, 25)));
    await waitFor(() => c.lines.length === 25, 'after truncate');
    // truncated and regrown past the old offset before we looked: the first-line hash tells
    copyFileSync(f, f + '.2');
    truncateSync(f, 0);
    appendFileSync(f, text(nums(25, 60, 'longer-line-')));
    await waitFor(() => c.lines.length === 60, 'after regrow');
    expect(c.lines).toEqual([...nums(0, 25), ...nums(25, 60, 'longer-line-')]);
  });

  it('notices a copytruncate that happens while the first lines it read are being delivered', async () => {
    const dir = setup('ct-race');
    const f = path.join(dir, 'app.log');
    let rotated = false;
    // the rotation runs inside the delivery of the first batch: the file no longer holds the
    // lines just read when the source looks at it again, and its new first line is another
    const c = collect(async () => {
      if (rotated) return;
      rotated = true;
      copyFileSync(f, f + '.1');
      truncateSync(f, 0);
      appendFileSync(f, text(nums(5, 40, 'longer-line-')));
    });
    writeFileSync(f, '');
    await startSource(c, { globs: [f] });
    appendFileSync(f, text(nums(0, 5)));
    await waitFor(() => c.lines.length >= 40, 'lines after the rotation');
    await sleep(100);
    expect(c.lines).toEqual([...nums(0, 5), ...nums(5, 40, 'longer-line-')]);
  });

  it('follows delete + recreate', async () => {
    const dir = setup('del');
    const f = path.join(dir, 'app.log');
    writeFileSync(f, text(nums(0, 5)));
    const c = collect();
    await startSource(c, { globs: [f] });
    await waitFor(() => c.lines.length === 5, 'initial');
    unlinkSync(f);
    await sleep(30);
    writeFileSync(f, text(nums(5, 10)));
    await waitFor(() => c.lines.length === 10, 'recreated');
    unlinkSync(f);
    await sleep(1300); // past orphanGraceMs: the deleted file is let go
    expect(c.files).toEqual([]);
    writeFileSync(f, text(nums(10, 12)));
    await waitFor(() => c.lines.length === 12, 'recreated after grace');
    expect(c.lines).toEqual(nums(0, 12));
  });

  it('picks up files that appear later, also in a directory that did not exist at start', async () => {
    const dir = setup('later');
    const c = collect();
    await startSource(c, { globs: [path.join(dir, 'a', '*.log'), path.join(dir, 'b', '*', 'x.log')], mode: 'tail' });
    mkdirSync(path.join(dir, 'a'));
    await sleep(250);
    writeFileSync(path.join(dir, 'a', 'one.log'), 'one\n');
    writeFileSync(path.join(dir, 'a', 'one.txt'), 'not matched\n');
    mkdirSync(path.join(dir, 'b', 'v1'), { recursive: true });
    await sleep(250);
    writeFileSync(path.join(dir, 'b', 'v1', 'x.log'), 'deep\n');
    await waitFor(() => c.lines.length === 2, 'late files');
    expect([...c.lines].sort()).toEqual(['deep', 'one']);
    expect(c.files).toEqual([path.join(dir, 'a', 'one.log'), path.join(dir, 'b', 'v1', 'x.log')]);
  });

  it('resumes from saved positions after a restart: nothing twice, nothing lost', async () => {
    const dir = setup('resume');
    const f = path.join(dir, 'app.log');
    const positions = new MemoryPositionStore();
    writeFileSync(f, text(nums(0, 10)));
    const c1 = collect();
    const s1 = await startSource(c1, { globs: [f], positions });
    await waitFor(() => c1.lines.length === 10, 'first run');
    await s1.close();
    appendFileSync(f, text(nums(10, 15)));
    const c2 = collect();
    await startSource(c2, { globs: [f], positions, mode: 'tail' });
    await waitFor(() => c2.lines.length === 5, 'second run');
    await sleep(100);
    expect(c2.lines).toEqual(nums(10, 15));
    // written while stopped: backlog (the daemon ignores such failures older than findtime)
    expect(c2.backlogLines).toEqual(nums(10, 15));
  });

  it('resumes a file renamed while stopped (app.log → app.log.1, glob app.log*) at its offset', async () => {
    const dir = setup('resume-rename');
    const f = path.join(dir, 'app.log');
    const positions = new MemoryPositionStore();
    writeFileSync(f, text(nums(0, 10)));
    const c1 = collect();
    const s1 = await startSource(c1, { globs: [f + '*'], positions });
    await waitFor(() => c1.lines.length === 10, 'first run');
    await s1.close();
    appendFileSync(f, text(nums(10, 15)));
    renameSync(f, f + '.1');
    writeFileSync(f, text(nums(15, 20)));
    const c2 = collect();
    await startSource(c2, { globs: [f + '*'], positions });
    await waitFor(() => c2.lines.length === 10, 'second run');
    await sleep(150);
    expect([...c2.lines].sort()).toEqual(nums(10, 20).sort());
  });

  it('reads what was written to app.log.1 after the saved position when app.log rotated while stopped', async () => {
    const dir = setup('resume-dot1');
    const f = path.join(dir, 'app.log');
    const positions = new MemoryPositionStore();
    writeFileSync(f, text(nums(0, 10)));
    const c1 = collect();
    const s1 = await startSource(c1, { globs: [f], positions });
    await waitFor(() => c1.lines.length === 10, 'first run');
    await s1.close();
    appendFileSync(f, text(nums(10, 15)));
    renameSync(f, f + '.1');
    writeFileSync(f, text(nums(15, 20)));
    const c2 = collect();
    await startSource(c2, { globs: [f], positions });
    await waitFor(() => c2.lines.length === 10, 'second run');
    await sleep(150);
    expect(c2.lines).toEqual(nums(10, 20));
    expect(c2.backlogLines).toEqual(nums(10, 20));
    expect(c2.batches.every((b) => b.sourceId === f)).toBe(true);
  });

  it('delivers a line appended to a followed file within milliseconds, without waiting for the poll', async () => {
    const dir = setup('latency');
    const f = path.join(dir, 'app.log');
    writeFileSync(f, '');
    const seen = new Map<string, number>();
    const c = collect(async (b) => {
      const now = performance.now();
      for (const l of Buffer.from(b.data).toString().split('\n')) if (l !== '') seen.set(l, now);
    });
    await startSource(c, { globs: [f], pollIntervalMs: 60_000 });
    await sleep(50);
    const sent = new Map<string, number>();
    for (let i = 0; i < 50; i++) {
      sent.set(`x${i}`, performance.now());
      appendFileSync(f, `x${i}\n`);
      await sleep(2);
    }
    await waitFor(() => seen.size === 50, 'all lines', 3000);
    const lat = [...sent].map(([l, t]) => (seen.get(l) as number) - t).sort((a, b) => a - b);
    // the poll is 60 s: only inotify can deliver this fast (loose bound for a loaded CI machine)
    expect(lat[24]).toBeLessThan(100);
  });

  it('hands a rotated file over between tails of one glob: nothing read twice', async () => {
    const dir = setup('handoff');
    const f = path.join(dir, 'app.log');
    writeFileSync(f, text(nums(0, 10)));
    const c = collect();
    await startSource(c, { globs: [f + '*'] });
    await waitFor(() => c.lines.length === 10, 'initial');
    for (let r = 0; r < 3; r++) {
      appendFileSync(f, text(nums(10 + r * 20, 20 + r * 20)));
      for (let k = 3; k >= 1; k--) {
        try {
          renameSync(`${f}.${k}`, `${f}.${k + 1}`);
        } catch {
          /* not there yet */
        }
      }
      renameSync(f, f + '.1');
      appendFileSync(f + '.1', text(nums(20 + r * 20, 25 + r * 20)));
      writeFileSync(f, text(nums(25 + r * 20, 30 + r * 20)));
      await sleep(150);
    }
    await waitFor(() => c.lines.length >= 70, 'all', 3000);
    await sleep(300);
    expect(duplicates(c.lines)).toEqual([]);
    expect([...c.lines].sort()).toEqual(nums(0, 70).sort());
  });

  it('skips compressed rotated files that the glob matches (app.log* and app.log.2.gz)', async () => {
    const dir = setup('gz');
    const f = path.join(dir, 'app.log');
    writeFileSync(f, 'plain\n');
    writeFileSync(f + '.2.gz', gzipSync('old\n'));
    const c = collect();
    const src = await startSource(c, { globs: [f + '*'] });
    writeFileSync(f + '.3.gz', gzipSync('older\n'));
    await waitFor(() => c.lines.length === 1, 'the plain file');
    await sleep(250);
    expect(c.lines).toEqual(['plain']);
    expect(src.files()).toEqual([f]);
  });

  it('does not open a FIFO that matches the glob (it would block), and reports it', async () => {
    const dir = setup('fifo');
    execFileSync('mkfifo', [path.join(dir, 'pipe.log')]);
    writeFileSync(path.join(dir, 'ok.log'), 'fine\n');
    const c = collect();
    const src = await startSource(c, { globs: [path.join(dir, '*.log')] });
    await waitFor(() => c.lines.length === 1, 'the regular file');
    expect(src.files()).toEqual([path.join(dir, 'ok.log')]);
    expect(c.errors.some((e) => e.kind === 'read' && /not a regular file/.test(e.message))).toBe(true);
  });

  it('lets the engine transfer batch buffers to a worker (no shared pool, not touched afterwards)', async () => {
    const dir = setup('transfer');
    const f = path.join(dir, 'app.log');
    writeFileSync(f, text(nums(0, 1000)));
    const { port1, port2 } = new MessageChannel();
    cleanups.push(() => {
      port1.close();
      port2.close();
    });
    const c = collect(async (b) => {
      port1.postMessage(b.data, [b.data.buffer as ArrayBuffer]); // detaches it here
    });
    await startSource(c, { globs: [f] });
    await waitFor(() => c.lines.length === 1000, 'backlog');
    const small = Buffer.from('still intact');
    appendFileSync(f, text(nums(1000, 1003)));
    await waitFor(() => c.lines.length === 1003, 'live lines');
    expect(small.toString()).toBe('still intact');
    // copytruncate recovery still works: it keeps its own copy of the last bytes read
    appendFileSync(f, text(nums(1003, 1010)));
    copyFileSync(f, f + '.1');
    truncateSync(f, 0);
    appendFileSync(f, text(nums(1010, 1012)));
    await waitFor(() => c.lines.length === 1012, 'after copytruncate');
    expect(c.lines).toEqual(nums(0, 1012));
  });

  it('reads at most three batches ahead of the consumer, and saves no position past a batch not yet done', async () => {
    const dir = setup('bp');
    const f = path.join(dir, 'app.log');
    writeFileSync(f, text(nums(0, 200_000)));
    const positions = new MemoryPositionStore();
    let inFlight = 0;
    let maxInFlight = 0;
    // bytes of each batch in delivery order, and which are done: the saved offset may never
    // pass the first batch that is not
    const sizes: number[] = [];
    const done: boolean[] = [];
    const donePrefix = (): number => {
      let n = 0;
      for (let i = 0; i < sizes.length && done[i]; i++) n += sizes[i]!;
      return n;
    };
    let violations = 0;
    const check = (): void => {
      if ((positions.getFile(f)?.offset ?? 0) > donePrefix()) violations++;
    };
    const c = collect(async (b) => {
      const i = sizes.push(b.data.byteLength) - 1;
      done.push(false);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      check();
      // batches finish out of order now and then: the later one must still wait for the earlier
      await sleep(i % 4 === 0 ? 2 : 12);
      check();
      done[i] = true;
      inFlight--;
    });
    await startSource(c, { globs: [f], maxBatchBytes: 64 * 1024, positions });
    await waitFor(() => c.lines.length === 200_000, 'all lines', 20_000);
    await waitFor(() => positions.getFile(f)?.offset === donePrefix(), 'last position');
    expect(maxInFlight).toBe(4);
    expect(violations).toBe(0);
    expect(c.lines).toEqual(nums(0, 200_000));
  });
});
