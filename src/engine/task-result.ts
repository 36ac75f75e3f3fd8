/**
 * What a match task hands back to the main thread (engine/worker.ts makes it, engine/pool.ts
 * reads it). Its own module so the pool can build an empty one without loading the worker.
 */
import type { LineOutcome } from './types.js';

/**
 * The failures of one task, column-wise: tens of thousands of small objects cost more to clone
 * to the main thread (and back out of it) than the matching that found them; a few arrays and
 * typed arrays clone in one go. Row i is one failure; `fieldRows`/`fieldValues` list only the rows that have fields.
 */
export interface MatchTaskResult {
  readonly hosts: string[];
  /** log time, epoch s; NaN when the line had none */
  readonly times: Float64Array;
  readonly offsets: Int32Array;
  readonly attempts: Int32Array;
  readonly fieldRows: number[];
  readonly fieldValues: Array<Readonly<Record<string, string>>>;
  /** lines in the task's data (the file source leaves counting to the engine) */
  readonly lines: number;
  readonly candidates: number;
  readonly error?: string;
}

/** no failures in `lines` lines (a filter that did not compile, an abandoned batch) */
export function emptyResult(lines: number, error?: string): MatchTaskResult {
  return { ...new FailureCollector().columns(), lines, candidates: 0, ...(error === undefined ? {} : { error }) };
}

/** the columns of MatchTaskResult, without the task's counts */
export type FailureColumns = Pick<MatchTaskResult, 'hosts' | 'times' | 'offsets' | 'attempts' | 'fieldRows' | 'fieldValues'>;

/** Gathers failures row by row into MatchTaskResult's columns (the workers, and multi-line filters on the main thread). */
export class FailureCollector {
  readonly #hosts: string[] = [];
  readonly #times: number[] = [];
  readonly #offsets: number[] = [];
  readonly #attempts: number[] = [];
  readonly #fieldRows: number[] = [];
  readonly #fieldValues: Array<Readonly<Record<string, string>>> = [];

  /** a failure found in the line at byte `offset` */
  add(out: Extract<LineOutcome, { kind: 'fail' }>, offset: number): void {
    for (const _ in out.fields) {
      this.#fieldRows.push(this.#hosts.length);
      this.#fieldValues.push(out.fields);
      break;
    }
    this.#hosts.push(out.host);
    this.#times.push(out.time ?? NaN);
    this.#offsets.push(offset);
    this.#attempts.push(out.attempts);
  }

  columns(): FailureColumns {
    return {
      hosts: this.#hosts,
      times: Float64Array.from(this.#times),
      offsets: Int32Array.from(this.#offsets),
      attempts: Int32Array.from(this.#attempts),
      fieldRows: this.#fieldRows,
      fieldValues: this.#fieldValues,
    };
  }
}
