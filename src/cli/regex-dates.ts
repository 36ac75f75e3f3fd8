/**
 * `aegis-ban regex` on two cores. fail2ban's per-line work has two stages: the date stage
 * (find the date, cut it out, remember the last one) and the matching stage (prefregex,
 * failregexes, connection-id merging). Each keeps state that depends only on the lines it saw,
 * in order, so the date stage can run on a worker thread over the whole file, ahead of the
 * matching stage on the main thread, and the result is exactly the one-thread result.
 *
 * This module is both sides: `startDateStage` on the main thread starts this file as a worker
 * and yields its output in order; the worker (below) scans the file for candidate lines, runs the
 * date stage on each and posts them in column-wise chunks.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { FilterSpec } from '../config/types.js';
import { compileFilter, CUT_LAST, type DetailedMatcher, type PreparedLine } from '../engine/match/filter.js';
import { createLineScanner } from '../engine/match/prefilter.js';
import { decodeLine } from '../engine/scan.js';

export interface DateStageInput {
  readonly spec: FilterSpec;
  /** the log, in shared memory (read by both threads) */
  readonly data: Uint8Array;
  /** fixed "now" (epoch s), or null for the clock */
  readonly now: number | null;
  readonly timezone?: string;
}

/** One chunk of candidate lines, in file order. `skip` lines (blank or comment) have no date stage. */
export interface DateChunk {
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  readonly skip: Uint8Array;
  readonly cut: Uint8Array;
  readonly cutStart: Int32Array;
  readonly cutEnd: Int32Array;
  /** NaN: no date */
  readonly date: Float64Array;
  readonly ascii: Uint8Array;
  /** index into the template names seen so far, -1 for none */
  readonly template: Int16Array;
  /** names first seen in this chunk, appended to the list */
  readonly newTemplates: string[];
  /** the previous date text of CUT_LAST lines, by row */
  readonly lastTextRows: number[];
  readonly lastTexts: string[];
}

type Message = { readonly chunk: DateChunk } | { readonly done: true } | { readonly error: string };

const CHUNK_LINES = 16_384;

/** blank and comment lines never reach the filter (as in fail2ban-regex), on either thread */
export function isSkippedLine(text: string): boolean {
  return text.startsWith('#') || text.trim() === '';
}

/** true when the file is worth a second thread and the filter has a date stage to move */
export function dateStageApplies(spec: FilterSpec, bytes: number): boolean {
  return spec.json === null && bytes >= 4 * 1024 * 1024 && bytes < 2 ** 31;
}

export interface DateStage {
  /**
   * Feed every candidate line, in file order, to `onLine` with its prepared date stage (null
   * for blank/comment lines); resolves when the file is done.
   */
  consume(onLine: (start: number, end: number, p: PreparedLine | null) => void): Promise<void>;
  cancel(): void;
}

/**
 * Start the date stage on a worker at once (its start-up and filter compilation overlap the
 * caller's own); chunks that arrive before `consume` wait in order.
 */
export function startDateStage(input: DateStageInput): DateStage {
  const worker = new Worker(new URL(import.meta.url), { workerData: input });
  const templates: (string | null)[] = [];
  const queued: DateChunk[] = [];
  let onLine: ((start: number, end: number, p: PreparedLine | null) => void) | null = null;
  let outcome: { ok: true } | { ok: false; error: Error } | null = null;
  let settle: (() => void) | null = null;
  const finish = (o: { ok: true } | { ok: false; error: Error }): void => {
    if (outcome !== null) return;
    outcome = o;
    settle?.();
  };
  const feed = (c: DateChunk, visit: (start: number, end: number, p: PreparedLine | null) => void): void => {
    templates.push(...c.newTemplates);
    let lt = 0;
    for (let i = 0; i < c.starts.length; i++) {
      if (c.skip[i] === 1) {
        visit(c.starts[i]!, c.ends[i]!, null);
        continue;
      }
      let lastText = '';
      if (c.lastTextRows[lt] === i) lastText = c.lastTexts[lt++]!;
      const t = c.template[i]!;
      const d = c.date[i]!;
      visit(c.starts[i]!, c.ends[i]!, {
        cut: c.cut[i] as PreparedLine['cut'],
        cutStart: c.cutStart[i]!,
        cutEnd: c.cutEnd[i]!,
        lastText,
        date: Number.isNaN(d) ? null : d,
        ascii: c.ascii[i] === 1,
        template: t < 0 ? null : (templates[t] ?? null),
      });
    }
  };
  worker.on('message', (m: Message) => {
    if ('error' in m) {
      finish({ ok: false, error: new Error(m.error) });
      void worker.terminate();
    } else if ('done' in m) finish({ ok: true });
    else if (onLine !== null) feed(m.chunk, onLine);
    else queued.push(m.chunk);
  });
  worker.on('error', (e) => finish({ ok: false, error: e }));
  worker.on('exit', (code) => finish({ ok: false, error: new Error(`date stage worker exited with code ${code}`) }));
  return {
    consume(visit) {
      onLine = visit;
      for (const c of queued.splice(0)) feed(c, visit);
      return new Promise<void>((resolve, reject) => {
        const done = (): void => {
          const o = outcome!;
          if (o.ok) resolve();
          else reject(o.error);
        };
        if (outcome !== null) done();
        else settle = done;
      });
    },
    cancel() {
      finish({ ok: false, error: new Error('cancelled') });
      void worker.terminate();
    },
  };
}

function workerMain(input: DateStageInput): void {
  const port = parentPort!;
  const { filter, diagnostics } = compileFilter(input.spec);
  if (filter === null) {
    port.postMessage({ error: diagnostics.map((d) => d.message).join('; ') || 'filter did not compile' } satisfies Message);
    return;
  }
  const clock = input.now;
  const matcher = filter.createMatcher({ now: () => (clock !== null ? clock : Date.now() / 1000), ...(input.timezone ? { timezone: input.timezone } : {}) }) as DetailedMatcher;
  const buf = Buffer.from(input.data.buffer, input.data.byteOffset, input.data.byteLength);
  const templateIndex = new Map<string, number>();
  let rows: {
    starts: number[]; ends: number[]; skip: number[]; cut: number[]; cutStart: number[]; cutEnd: number[];
    date: number[]; ascii: number[]; template: number[]; newTemplates: string[]; lastTextRows: number[]; lastTexts: string[];
  };
  const reset = (): void => {
    rows = { starts: [], ends: [], skip: [], cut: [], cutStart: [], cutEnd: [], date: [], ascii: [], template: [], newTemplates: [], lastTextRows: [], lastTexts: [] };
  };
  reset();
  const flush = (): void => {
    const r = rows;
    if (r.starts.length === 0) return;
    const chunk: DateChunk = {
      starts: Int32Array.from(r.starts),
      ends: Int32Array.from(r.ends),
      skip: Uint8Array.from(r.skip),
      cut: Uint8Array.from(r.cut),
      cutStart: Int32Array.from(r.cutStart),
      cutEnd: Int32Array.from(r.cutEnd),
      date: Float64Array.from(r.date),
      ascii: Uint8Array.from(r.ascii),
      template: Int16Array.from(r.template),
      newTemplates: r.newTemplates,
      lastTextRows: r.lastTextRows,
      lastTexts: r.lastTexts,
    };
    const transfer = [chunk.starts, chunk.ends, chunk.skip, chunk.cut, chunk.cutStart, chunk.cutEnd, chunk.date, chunk.ascii, chunk.template].map((a) => a.buffer as ArrayBuffer);
    port.postMessage({ chunk } satisfies Message, transfer);
    reset();
  };
  createLineScanner(filter.literals).scan(buf, (start, end) => {
    const r = rows;
    r.starts.push(start);
    r.ends.push(end);
    const text = decodeLine(buf, start, end);
    if (isSkippedLine(text)) {
      r.skip.push(1);
      r.cut.push(0); r.cutStart.push(0); r.cutEnd.push(0); r.date.push(NaN); r.ascii.push(0); r.template.push(-1);
    } else {
      const p = matcher.prepare(text);
      r.skip.push(0);
      r.cut.push(p.cut);
      r.cutStart.push(p.cutStart);
      r.cutEnd.push(p.cutEnd);
      r.date.push(p.date ?? NaN);
      r.ascii.push(p.ascii ? 1 : 0);
      let t = -1;
      if (p.template !== null) {
        t = templateIndex.get(p.template) ?? -1;
        if (t < 0) {
          t = templateIndex.size;
          templateIndex.set(p.template, t);
          r.newTemplates.push(p.template);
        }
      }
      r.template.push(t);
      if (p.cut === CUT_LAST) {
        r.lastTextRows.push(r.starts.length - 1);
        r.lastTexts.push(p.lastText);
      }
    }
    if (r.starts.length >= CHUNK_LINES) flush();
  });
  flush();
  port.postMessage({ done: true } satisfies Message);
}

if (!isMainThread && parentPort !== null && (workerData as { spec?: unknown } | null)?.spec !== undefined) {
  workerMain(workerData as DateStageInput);
}
