/**
 * What a match task hands back to the main thread (engine/worker.ts makes it, engine/pool.ts
 * reads it). Its own module so the pool can build an empty one without loading the worker.
 */

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
  return {
    hosts: [],
    times: new Float64Array(0),
    offsets: new Int32Array(0),
    attempts: new Int32Array(0),
    fieldRows: [],
    fieldValues: [],
    lines,
    candidates: 0,
    ...(error === undefined ? {} : { error }),
  };
}
