/**
 * `aegis-ban regex` on two cores. fail2ban's per-line work has two stages: the date stage
 * (find the date, cut it out, remember the last one) and the matching stage (prefregex,
 * failregexes, connection-id merging). Each keeps state that depends only on the lines it saw,
 * in order, so the date stage can run on a worker thread over the whole file, ahead of the
 * matching stage on the main thread, and the result is exactly the one-thread result.
 *
 * For a single-line filter the start of the matching stage (early ignoreregex, prefregex) has
 * no state at all, so the worker runs it too: the main thread gets the text the failregexes
 * search and never decodes the line itself. That balances the two threads (the failregexes
 * and the merging of failures by connection id stay on the main thread).
 *
 * This module is both sides: `startDateStage` on the main thread starts this file as a worker
 * and yields its output in order; the worker (below) scans the file for candidate lines, runs the
 * date stage (and the pre stage) on each and posts them in column-wise chunks.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { FilterSpec } from '../config/types.js';
import { compileFilter, CUT_LAST, NO_GROUPS, PRE_IGNORED, PRE_MISS, PRE_MISSED, PRE_TEXT, type DetailedMatcher, type PreMatch, type PreparedLine } from '../engine/match/filter.js';
import { createLineScanner } from '../engine/match/prefilter.js';
import { decodeLine } from '../engine/scan.js';

export interface DateStageInput {
  readonly spec: FilterSpec;
  /** the log, in shared memory (read by both threads), filled as `progress` says */
  readonly data: Uint8Array;
  /**
   * How much of `data` holds the log, as the main thread reads it (shared): [sequence, bytes,
   * done]. The worker starts before the log is read, so reading overlaps its start-up.
   */
  readonly progress: Int32Array;
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
  /** the pre stage by row: PRE_MISS / PRE_IGNORED / PRE_TEXT, NOT_PRE when the worker did not run it */
  readonly pre: Uint8Array;
  /** PRE_IGNORED rows: the ignoreregex index */
  readonly preIgnore: Int16Array;
  /**
   * The texts the failregexes search, of the PRE_TEXT rows in order, joined into one string
   * (a string per line would be a heap object per line on both threads; slices of one string
   * are views without a copy); `preEnds` holds where each ends.
   */
  readonly preJoined: string;
  readonly preEnds: Int32Array;
  /** PRE_TEXT rows: how many prefregex groups they have */
  readonly preGroupCounts: Uint8Array;
  /**
   * The prefregex group values, in row order: strings of their own, not slices of preJoined —
   * an `<F-MLFID>` is kept for later lines of its connection, and a slice would keep the whole
   * chunk's text alive with it (measured: 100 MB promoted to the old generation per 1 M lines).
   */
  readonly preGroupValues: string[];
  /** for each group value: its name, an index into the names seen so far */
  readonly preGroupNames: Uint8Array;
  /** group names first seen in this chunk, appended to the list */
  readonly newGroupNames: string[];
}

const NOT_PRE = 255;

type Message = { readonly chunk: DateChunk } | { readonly done: true } | { readonly error: string };

/**
 * Chunks are small, and their joined texts stay under V8's large-object size (~128 KiB): a
 * larger string is allocated as a large object, and one still in use when a scavenge comes is
 * promoted whole to the old generation. With 4 096 lines a chunk, that promoted 100 MB per 1 M
 * lines on the main thread and cost it 350 ms of GC pauses; with 512 lines, 2 MB and 80 ms.
 */
const CHUNK_LINES = 512;
const CHUNK_TEXT = 64 * 1024;

/** blank and comment lines never reach the filter (as in fail2ban-regex), on either thread */
export function isSkippedLine(text: string): boolean {
  return text.startsWith('#') || text.trim() === '';
}

/** the shared progress words of a log being read into `data` */
export function newReadProgress(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(3 * 4));
}

/** publish that `bytes` of the log are in memory (`done`: that is all of it) */
export function publishRead(progress: Int32Array, bytes: number, done: boolean): void {
  Atomics.store(progress, 1, bytes);
  if (done) Atomics.store(progress, 2, 1);
  Atomics.add(progress, 0, 1);
  Atomics.notify(progress, 0);
}

/** true when the file is worth a second thread and the filter has a date stage to move */
export function dateStageApplies(spec: FilterSpec, bytes: number): boolean {
  return spec.json === null && bytes >= 4 * 1024 * 1024 && bytes < 2 ** 31;
}

/** a candidate line [start, end): its date stage (null: blank or comment), its pre stage when the worker ran it */
export type LineVisitor = (start: number, end: number, p: PreparedLine | null, pre: PreMatch | null) => void;

export interface DateStage {
  /**
   * Feed every candidate line, in file order, to `onLine` with its prepared date stage (null
   * for blank/comment lines); resolves when the file is done.
   */
  consume(onLine: LineVisitor): Promise<void>;
  cancel(): void;
}

/**
 * Start the date stage on a worker at once (its start-up and filter compilation overlap the
 * caller's own); chunks that arrive before `consume` wait in order.
 */
export function startDateStage(input: DateStageInput): DateStage {
  // chunks the main thread has matched, read by the worker to balance the two threads
  const consumed = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(new URL(import.meta.url), { workerData: { ...input, consumed } satisfies WorkerInput });
  const templates: (string | null)[] = [];
  const queued: DateChunk[] = [];
  let onLine: LineVisitor | null = null;
  let outcome: { ok: true } | { ok: false; error: Error } | null = null;
  let settle: (() => void) | null = null;
  const finish = (o: { ok: true } | { ok: false; error: Error }): void => {
    if (outcome !== null) return;
    outcome = o;
    settle?.();
  };
  const groupNames: string[] = [];
  const feed = (c: DateChunk, visit: LineVisitor): void => {
    templates.push(...c.newTemplates);
    groupNames.push(...c.newGroupNames);
    let lt = 0;
    let piece = 0;
    let textStart = 0;
    let gn = 0;
    for (let i = 0; i < c.starts.length; i++) {
      if (c.skip[i] === 1) {
        visit(c.starts[i]!, c.ends[i]!, null, null);
        continue;
      }
      const k = c.pre[i]!;
      let pre: PreMatch | null = null;
      if (k === PRE_TEXT) {
        const textEnd = c.preEnds[piece++]!;
        const text = c.preJoined.slice(textStart, textEnd);
        textStart = textEnd;
        const n = c.preGroupCounts[i]!;
        let groups = NO_GROUPS;
        if (n > 0) {
          const g: string[] = [];
          for (let q = 0; q < n; q++, gn++) g.push(groupNames[c.preGroupNames[gn]!]!, c.preGroupValues[gn]!);
          groups = g;
        }
        pre = { kind: k, ignoreIndex: -1, text, groups };
      } else if (k === PRE_MISS) pre = PRE_MISSED;
      else if (k === PRE_IGNORED) pre = { kind: k, ignoreIndex: c.preIgnore[i]!, text: '', groups: NO_GROUPS };
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
      }, pre);
    }
  };
  worker.on('message', (m: Message) => {
    if ('error' in m) {
      finish({ ok: false, error: new Error(m.error) });
      void worker.terminate();
    } else if ('done' in m) finish({ ok: true });
    else if (onLine !== null) {
      feed(m.chunk, onLine);
      Atomics.add(consumed, 0, 1);
    }
    else queued.push(m.chunk);
  });
  worker.on('error', (e) => finish({ ok: false, error: e }));
  worker.on('exit', (code) => finish({ ok: false, error: new Error(`date stage worker exited with code ${code}`) }));
  return {
    consume(visit) {
      onLine = visit;
      for (const c of queued.splice(0)) {
        feed(c, visit);
        Atomics.add(consumed, 0, 1);
      }
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

interface WorkerInput extends DateStageInput {
  readonly consumed: Int32Array;
}

/**
 * The worker runs the pre stage of a chunk only while the main thread is behind (16 chunks,
 * 8 192 lines, or more waiting for it): the pre stage costs the worker more than it saves the
 * main thread (strings cross threads), so it pays only when the worker would otherwise run
 * ahead. Measured on the bench's sshd log: 2.3–2.6 s with 8 or 16, 2.8 s with 2, 4 or never.
 */
const BEHIND = 16;

function workerMain(input: WorkerInput): void {
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
  const preMatchable = matcher.preMatchable;
  let produced = 0;
  // the first chunk always: the main thread is still compiling its filter when it is ready
  let preStage = preMatchable;
  let rows: {
    starts: number[]; ends: number[]; skip: number[]; cut: number[]; cutStart: number[]; cutEnd: number[];
    date: number[]; ascii: number[]; template: number[]; newTemplates: string[]; lastTextRows: number[]; lastTexts: string[];
    pre: number[]; preIgnore: number[]; preTexts: string[]; preEnds: number[]; preGroupCounts: number[]; preGroupValues: string[]; preGroupNames: number[]; newGroupNames: string[];
  };
  let preLength = 0;
  const groupIndex = new Map<string, number>();
  const reset = (): void => {
    rows = {
      starts: [], ends: [], skip: [], cut: [], cutStart: [], cutEnd: [], date: [], ascii: [], template: [], newTemplates: [], lastTextRows: [], lastTexts: [],
      pre: [], preIgnore: [], preTexts: [], preEnds: [], preGroupCounts: [], preGroupValues: [], preGroupNames: [], newGroupNames: [],
    };
    preLength = 0;
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
      pre: Uint8Array.from(r.pre),
      preIgnore: Int16Array.from(r.preIgnore),
      preJoined: r.preTexts.join(''),
      preEnds: Int32Array.from(r.preEnds),
      preGroupCounts: Uint8Array.from(r.preGroupCounts),
      preGroupValues: r.preGroupValues,
      preGroupNames: Uint8Array.from(r.preGroupNames),
      newGroupNames: r.newGroupNames,
    };
    const columns = [chunk.starts, chunk.ends, chunk.skip, chunk.cut, chunk.cutStart, chunk.cutEnd, chunk.date, chunk.ascii, chunk.template];
    columns.push(chunk.pre, chunk.preIgnore, chunk.preEnds, chunk.preGroupCounts, chunk.preGroupNames);
    const transfer = columns.map((a) => a.buffer as ArrayBuffer);
    port.postMessage({ chunk } satisfies Message, transfer);
    produced++;
    preStage = preMatchable && produced - Atomics.load(input.consumed, 0) >= BEHIND;
    reset();
  };
  /** a row's pre-stage columns; null: the worker did not run it (or the line is skipped) */
  const pushPre = (pm: PreMatch | null): void => {
    const r = rows;
    r.pre.push(pm === null ? NOT_PRE : pm.kind);
    r.preIgnore.push(pm !== null && pm.kind === PRE_IGNORED ? pm.ignoreIndex : -1);
    if (pm === null || pm.kind !== PRE_TEXT) {
      r.preGroupCounts.push(0);
      return;
    }
    r.preTexts.push(pm.text);
    r.preEnds.push((preLength += pm.text.length));
    const g = pm.groups;
    // a prefregex has a few groups; more than a byte's worth would be a filter nobody writes
    if (g.length > 2 * 255) throw new Error(`prefregex with ${g.length / 2} groups`);
    r.preGroupCounts.push(g.length / 2);
    for (let q = 0; q < g.length; q += 2) {
      let ni = groupIndex.get(g[q]!);
      if (ni === undefined) {
        ni = groupIndex.size;
        if (ni > 255) throw new Error('prefregex with more than 256 group names');
        groupIndex.set(g[q]!, ni);
        r.newGroupNames.push(g[q]!);
      }
      r.preGroupNames.push(ni);
      r.preGroupValues.push(g[q + 1]!);
    }
  };
  const onLine = (start: number, end: number): void => {
    const r = rows;
    r.starts.push(start);
    r.ends.push(end);
    const text = decodeLine(buf, start, end);
    if (isSkippedLine(text)) {
      r.skip.push(1);
      r.cut.push(0); r.cutStart.push(0); r.cutEnd.push(0); r.date.push(NaN); r.ascii.push(0); r.template.push(-1);
      pushPre(null);
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
      pushPre(preStage ? matcher.preMatch(text, p) : null);
    }
    if (r.starts.length >= CHUNK_LINES || preLength >= CHUNK_TEXT) flush();
  };
  // scan the log as the main thread reads it: whole lines only, until it says it is done
  const scanner = createLineScanner(filter.literals);
  const progress = input.progress;
  let pos = 0;
  for (;;) {
    const seq = Atomics.load(progress, 0);
    const done = Atomics.load(progress, 2) === 1;
    const bytes = Atomics.load(progress, 1);
    const upTo = done ? bytes : bytes > 0 ? buf.lastIndexOf(10, bytes - 1) + 1 : 0;
    if (upTo > pos) {
      const from = pos;
      scanner.scan(buf.subarray(from, upTo), (start, end) => onLine(from + start, from + end));
      pos = upTo;
    }
    if (done) break;
    Atomics.wait(progress, 0, seq);
  }
  flush();
  port.postMessage({ done: true } satisfies Message);
}

if (!isMainThread && parentPort !== null && (workerData as { spec?: unknown } | null)?.spec !== undefined) {
  workerMain(workerData as WorkerInput);
}
