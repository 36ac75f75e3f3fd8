/**
 * The piscina host. One task per (jail, batch): a jail whose filter runs away stalls only its
 * own task. A watchdog reads each running task's heartbeat; when one line has been running
 * longer than `lineTimeoutMs` the task is aborted (piscina terminates and replaces the worker
 * thread — a JavaScript regex cannot be interrupted any other way), the line is counted as a
 * regex timeout, and the batch is retried without it.
 */
import { Piscina } from 'piscina';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import type { FilterSpec } from '../config/types.js';
import type { MatchTask } from './worker.js';
import { emptyResult, type FailureColumns, type MatchTaskResult } from './task-result.js';
import { countLines } from './scan.js';

/** a batch's failures for one jail, and how many lines the batch held */
export interface EngineResult {
  /**
   * column-wise and in line order (row k is one failure), as the workers sent them: an object
   * per failure would cost the main thread a good part of what it spends on the failure itself;
   * offsets are the lines' byte offsets in the batch
   */
  readonly failures: FailureColumns;
  readonly lines: number;
}

/** the rows of several parts of one batch as one set; `shifts[i]`: part i's offset in the batch */
function joinRows(parts: readonly FailureColumns[], shifts: readonly number[]): FailureColumns {
  if (parts.length === 1 && shifts[0] === 0) return parts[0] as FailureColumns;
  let n = 0;
  for (const p of parts) n += p.hosts.length;
  const out = {
    hosts: [] as string[],
    times: new Float64Array(n),
    offsets: new Int32Array(n),
    attempts: new Int32Array(n),
    fieldRows: [] as number[],
    fieldValues: [] as Array<Readonly<Record<string, string>>>,
  };
  let row = 0;
  parts.forEach((p, i) => {
    const shift = shifts[i] as number;
    for (let k = 0; k < p.hosts.length; k++) {
      out.hosts.push(p.hosts[k] as string);
      out.offsets[row + k] = (p.offsets[k] as number) + shift;
    }
    out.times.set(p.times, row);
    out.attempts.set(p.attempts, row);
    for (let f = 0; f < p.fieldRows.length; f++) {
      out.fieldRows.push((p.fieldRows[f] as number) + row);
      out.fieldValues.push(p.fieldValues[f] as Readonly<Record<string, string>>);
    }
    row += p.hosts.length;
  });
  return out;
}

export interface EngineOptions {
  readonly threads?: number;
  /** one line may run this long before its worker is replaced */
  readonly lineTimeoutMs?: number;
  /** a batch whose lines time out this many times is abandoned for that jail */
  readonly maxTimeoutsPerBatch?: number;
  readonly workerPath?: string;
  readonly onTimeout: (jail: string, lineOffset: number, lineBytes: number) => void;
}

export interface JailFilter {
  readonly jail: string;
  /** hash of the spec: workers cache compiled filters by it */
  readonly key: string;
  readonly spec: FilterSpec;
  readonly timezone?: string;
}

/** A batch copied once into shared memory, read by every jail's task. */
export interface SharedBatch {
  readonly data: Uint8Array;
}

export function shareBatch(data: Uint8Array): SharedBatch {
  // the file source reads large batches straight into shared memory
  if (data.buffer instanceof SharedArrayBuffer) return { data };
  const sab = new SharedArrayBuffer(data.byteLength);
  const view = new Uint8Array(sab);
  view.set(data);
  return { data: view };
}

/** batches at least this big are split across threads */
const SPLIT_BYTES = 256 * 1024;

/** `n` views over `data` (same memory), each ending at a newline. */
function splitAtLines(data: Uint8Array, n: number): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let start = 0;
  for (let i = 1; i < n && start < data.byteLength; i++) {
    const target = Math.floor((data.byteLength * i) / n);
    const nl = data.indexOf(10, Math.max(start, target));
    if (nl < 0) break;
    parts.push(data.subarray(start, nl + 1));
    start = nl + 1;
  }
  if (start < data.byteLength) parts.push(data.subarray(start));
  return parts;
}

function defaultWorkerPath(): string {
  const here = fileURLToPath(new URL('./worker.js', import.meta.url));
  if (existsSync(here)) return here;
  // running from src/ under vitest: use the compiled worker (Node 20 cannot load .ts)
  return fileURLToPath(new URL('../../dist/engine/worker.js', import.meta.url));
}

interface Running {
  readonly progress: Int32Array;
  readonly controller: AbortController;
  lastBeat: number;
  lastChange: number;
}

export class MatchEngine {
  readonly #pool: Piscina;
  readonly #opts: EngineOptions;
  readonly #running = new Set<Running>();
  readonly #watchdog: NodeJS.Timeout;
  readonly #lineTimeoutMs: number;
  readonly #threads: number;
  readonly #specs = new Map<string, Uint8Array>();
  #closed = false;

  constructor(opts: EngineOptions) {
    this.#opts = opts;
    this.#lineTimeoutMs = opts.lineTimeoutMs ?? 1000;
    const threads = opts.threads ?? Math.max(1, Math.min(4, availableParallelism()));
    this.#threads = threads;
    this.#pool = new Piscina({
      filename: opts.workerPath ?? defaultWorkerPath(),
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 60_000,
      // a task aborted mid-regex kills its thread; piscina starts a fresh one
    });
    this.#watchdog = setInterval(() => this.#check(), Math.max(10, Math.floor(this.#lineTimeoutMs / 5)));
    this.#watchdog.unref();
  }

  /**
   * The filter spec travels as JSON in shared memory: cloning a SharedArrayBuffer handle is
   * free, while cloning the spec object for every task cost more than matching a batch.
   * Workers parse it only the first time they see the key.
   */
  #sharedSpec(jail: JailFilter): Uint8Array {
    let b = this.#specs.get(jail.key);
    if (!b) {
      const bytes = Buffer.from(JSON.stringify(jail.spec));
      b = new Uint8Array(new SharedArrayBuffer(bytes.length));
      b.set(bytes);
      if (this.#specs.size > 1024) this.#specs.clear();
      this.#specs.set(jail.key, b);
    }
    return b;
  }

  #check(): void {
    const now = performance.now();
    for (const r of this.#running) {
      const beat = Atomics.load(r.progress, 1);
      if (beat === 0) continue; // still queued
      if (beat !== r.lastBeat) {
        r.lastBeat = beat;
        r.lastChange = now;
      } else if (now - r.lastChange > this.#lineTimeoutMs) {
        r.controller.abort();
      }
    }
  }

  /**
   * Match one batch for one jail; resolves with the failures found, in line order. A large
   * batch is split at line boundaries across the threads (one jail reading one busy file would
   * otherwise use one core); the parts' matches are concatenated in order.
   */
  async match(jail: JailFilter, batch: SharedBatch, now: number): Promise<EngineResult> {
    const data = batch.data;
    const parts = this.threads > 1 && data.byteLength >= SPLIT_BYTES ? splitAtLines(data, this.threads) : [data];
    const results = await Promise.all(parts.map((p) => this.#matchPart(jail, p, now)));
    let lines = 0;
    for (const r of results) lines += r.lines;
    return { failures: joinRows(results, parts.map((p) => p.byteOffset - data.byteOffset)), lines };
  }

  async #matchPart(jail: JailFilter, data: Uint8Array, now: number): Promise<MatchTaskResult> {
    const batch = { data };
    const skip: number[] = [];
    const maxTimeouts = this.#opts.maxTimeoutsPerBatch ?? 8;
    for (;;) {
      if (this.#closed) return emptyResult(0);
      const progress = new Int32Array(new SharedArrayBuffer(8));
      const running: Running = { progress, controller: new AbortController(), lastBeat: 0, lastChange: performance.now() };
      const task: MatchTask = {
        jail: jail.jail,
        filterKey: jail.key,
        spec: this.#sharedSpec(jail),
        data: batch.data,
        skip,
        progress,
        now,
        ...(jail.timezone ? { timezone: jail.timezone } : {}),
      };
      this.#running.add(running);
      try {
        return (await this.#pool.run(task, { signal: running.controller.signal })) as MatchTaskResult;
      } catch (e) {
        if (!running.controller.signal.aborted) throw e;
        const offset = Atomics.load(progress, 0);
        const end = batch.data.indexOf(10, offset);
        this.#opts.onTimeout(jail.jail, offset, (end < 0 ? batch.data.length : end) - offset);
        skip.push(offset);
        // a hostile burst: stop retrying this batch for this jail, bounded work wins
        if (skip.length >= maxTimeouts) return emptyResult(countLines(Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
      } finally {
        this.#running.delete(running);
      }
    }
  }

  get threads(): number {
    return this.#threads;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#watchdog);
    for (const r of this.#running) r.controller.abort();
    await this.#pool.close({ force: true });
  }
}
