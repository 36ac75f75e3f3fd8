/**
 * Seeded randomized rotation test: a writer appends, rotates (rename + create, with late writes
 * to the renamed file), copytruncates, truncates and deletes + recreates a real file while the
 * file source follows it. Asserted for every seed:
 * - no line is delivered twice, and no delivered line is something that was never written;
 * - every line is delivered. Lines still unread when a copytruncate happens "racily" (without
 *   waiting for the reader) sit only in the copy `<path>.1`, which logpath does not match: the
 *   source reads them there when it notices the truncation. (Lines written between logrotate's
 *   copy and its truncate are in no file at all — logrotate's own window — which this test does
 *   not produce; test/e2e/21-logrotate.test.ts runs the real logrotate.)
 * - Renames and deletes happen once the reader follows the current file (a file rotated away
 *   before it was ever opened cannot be read when its new name is outside logpath); lines
 *   appended just before them, and after a rename to the renamed file, must all arrive.
 * Set AEGIS_SEED=n to replay one seed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, copyFileSync, renameSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createFileSource } from '../../../src/sources/file-source.js';
import { MemoryPositionStore } from '../../../src/sources/memory-positions.js';
import { collect, duplicates, sleep, tempDir, waitFor } from './harness.js';
import { rng as mulberry32 } from '../../helpers/rng.js';


const seeds = process.env['AEGIS_SEED'] !== undefined ? [Number(process.env['AEGIS_SEED'])] : [1, 2, 3, 4];
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

describe('file source under random rotation', () => {
  for (const seed of seeds) {
    it(`loses no line outside the copytruncate window and repeats none (seed ${seed})`, async () => {
      const rnd = mulberry32(seed);
      const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
      const t = tempDir(`rnd${seed}`);
      cleanups.push(t.cleanup);
      const f = path.join(t.dir, 'app.log');
      writeFileSync(f, '');
      const c = collect();
      const src = createFileSource({
        globs: [f],
        mode: 'head',
        positions: new MemoryPositionStore(),
        hooks: c.hooks,
        pollIntervalMs: 50,
        orphanGraceMs: 500,
        maxBatchBytes: 4096 + int(0, 8192), // small reads: more interleavings
      });
      cleanups.push(() => src.close());
      await src.start();

      const written: string[] = [];
      const atRisk = new Set<string>();
      let n = 0;
      const lines = (k: number): string => {
        let s = '';
        for (let i = 0; i < k; i++) {
          const l = `s${seed}-${n++}-${'x'.repeat(int(0, 120))}`;
          written.push(l);
          s += l + '\n';
        }
        return s;
      };
      // every line that is not at risk has been delivered (counting is not enough: an at-risk
      // line may still arrive late)
      const synced = (): Promise<void> =>
        waitFor(() => {
          const got = new Set(c.lines);
          return written.every((l) => atRisk.has(l) || got.has(l));
        }, 'reader to catch up', 10_000).catch((e: Error) => {
          const got = new Set(c.lines);
          const missing = written.filter((l) => !atRisk.has(l) && !got.has(l)).map((l) => l.split('-').slice(0, 2).join('-'));
          throw new Error(`${e.message}: missing ${missing.slice(0, 10).join(' ')}…; ops ${ops.join(',')}; errors ${JSON.stringify(c.errors)}`);
        });
      const ops: string[] = [];
      // the first line written to the file now at the path (the reader has opened it once that
      // line arrives); a new file starts after each rename, truncation and delete
      let curStart: string | undefined;
      let isNewFile = true;
      const toF = (k: number): void => {
        const t = lines(k);
        if (isNewFile && k > 0) {
          curStart = written[written.length - k];
          isNewFile = false;
        }
        appendFileSync(f, t);
      };

      for (let step = 0; step < 50; step++) {
        const r = rnd();
        if (r < 0.45) {
          ops.push(`append@${n}`);
          toF(int(1, 200));
        } else if (r < 0.55) {
          ops.push(`partial@${n}`);
          // a line written in two pieces: only ever delivered whole
          const l = lines(1);
          if (isNewFile) {
            curStart = written.at(-1);
            isNewFile = false;
          }
          const cut = int(1, l.length - 2);
          appendFileSync(f, l.slice(0, cut));
          await sleep(int(0, 30));
          appendFileSync(f, l.slice(cut));
        } else if (r < 0.7) {
          ops.push(`rename@${n}`);
          // a file rotated away before the reader ever opened it is out of reach (its new name
          // is not in logpath): rotations here wait until the reader follows the current file,
          // then append more, which must be drained from the renamed file
          await synced();
          toF(int(0, 50));
          rmSync(f + '.1', { force: true });
          renameSync(f, f + '.1');
          isNewFile = true;
          appendFileSync(f + '.1', lines(int(0, 20))); // the writer has not reopened yet
          if (rnd() < 0.5) writeFileSync(f, ''); // logrotate `create`
          await sleep(int(0, 40));
          toF(int(1, 20));
        } else if (r < 0.78) {
          ops.push(`copytruncate-synced@${n}`);
          await synced();
          rmSync(f + '.1', { force: true }); // logrotate shifts the old .1 away, never copies into it
          copyFileSync(f, f + '.1');
          truncateSync(f, 0);
          isNewFile = true;
          toF(int(0, 30));
        } else if (r < 0.84) {
          ops.push(`copytruncate-racy@${n}`);
          // not waiting for the reader to catch up, only for it to have opened the current file
          // (logrotate runs daily; a copy of a file the reader never opened is out of reach)
          const first = curStart;
          if (first !== undefined) await waitFor(() => c.lines.includes(first), 'reader to open the file');
          const delivered = new Set(c.lines);
          for (const l of written) if (!delivered.has(l)) atRisk.add(l);
          rmSync(f + '.1', { force: true }); // logrotate shifts the old .1 away, never copies into it
          copyFileSync(f, f + '.1');
          truncateSync(f, 0);
          isNewFile = true;
          toF(int(0, 30));
        } else if (r < 0.92) {
          ops.push(`delete-recreate@${n}`);
          await synced();
          toF(int(0, 50));
          unlinkSync(f);
          isNewFile = true;
          await sleep(int(0, 40));
          const k = int(1, 30);
          writeFileSync(f, lines(k));
          curStart = written[written.length - k];
          isNewFile = false;
        } else {
          ops.push(`sleep@${n}`);
          await sleep(int(5, 80));
        }
        if (rnd() < 0.3) await sleep(int(0, 20));
      }

      await synced().catch(() => undefined);
      await sleep(300);
      const got = c.lines;
      const writtenSet = new Set(written);
      const gotSet = new Set(got);
      const lost = written.filter((l) => !gotSet.has(l));
      const context = `seed ${seed}, ops ${ops.join(",")}, errors ${JSON.stringify(c.errors)}`;
      expect(duplicates(got), context).toEqual([]);
      expect(got.filter((l) => !writtenSet.has(l)), context).toEqual([]);
      expect(lost.filter((l) => !atRisk.has(l)), context).toEqual([]);
      // and the at-risk lines too: the copy is <path>.1 and nothing was written between the
      // copy and the truncation here, so the source finds every one of them in the copy
      expect(lost, context).toEqual([]);
      // lines of one file arrive in the order written
      const idx = got.map((l) => Number(l.split('-')[1]));
      const inversions = idx.filter((v, i) => i > 0 && v < (idx[i - 1] as number)).length;
      expect(inversions, context).toBe(0);
    });
  }
});
