/**
 * Worker thread entry (piscina). Stateless with respect to the log stream: each task carries
 * the batch (a SharedArrayBuffer view shared by every jail's task), the jail's filter spec and
 * the lines to skip. The only thing kept between tasks is a cache of compiled filters, keyed
 * by a hash of the spec, so each filter is compiled once per thread.
 *
 * Progress is published per candidate line in a shared Int32Array ([line offset, heartbeat])
 * so the host's watchdog can tell a slow batch from a line stuck in a catastrophic regex, kill
 * this thread, and retry the batch without that line.
 */
import { compileFilter } from './match/filter.js';
import { countLines, decodeLine } from './scan.js';
import { createLineScanner, type LineScanner } from './match/prefilter.js';
import { DateDetector } from './match/dates.js';
import type { FilterSpec } from '../config/types.js';
import type { CompiledFilter, LineMatcher } from './types.js';
import { emptyResult, FailureCollector, type MatchTaskResult } from './task-result.js';

export type { MatchTaskResult };

export interface MatchTask {
  readonly jail: string;
  readonly filterKey: string;
  /** the FilterSpec as JSON, in shared memory; parsed once per worker per key */
  readonly spec: Uint8Array;
  readonly data: Uint8Array;
  /** byte offsets of lines to skip (they timed out before) */
  readonly skip: readonly number[];
  /** Int32Array(2) over a SharedArrayBuffer: [offset of the line being matched, heartbeat] */
  readonly progress: Int32Array;
  /** epoch seconds: lines without a date get this time */
  readonly now: number;
  readonly timezone?: string;
}

interface CacheEntry {
  readonly filter: CompiledFilter;
  /** searches the raw batch for the filter's literals before any line is decoded */
  readonly scanner: LineScanner;
  readonly matchers: Map<string, LineMatcher>;
}

// The default date templates (dozens of regexes translated from Python) are built once per
// thread; build them while the daemon starts instead of during its first batch.
DateDetector.create(null);

const MAX_CACHED = 256;
const cache = new Map<string, CacheEntry | { error: string }>();
let taskNow = Date.now() / 1000;

function compiled(task: MatchTask): CacheEntry | { error: string } {
  let c = cache.get(task.filterKey);
  if (!c) {
    const spec = JSON.parse(Buffer.from(task.spec.buffer, task.spec.byteOffset, task.spec.byteLength).toString('utf8')) as FilterSpec;
    const { filter, diagnostics } = compileFilter(spec);
    c = filter
      ? { filter, scanner: createLineScanner(filter.literals), matchers: new Map() }
      : { error: diagnostics.map((d) => d.message).join('; ') || 'filter did not compile' };
    if (cache.size >= MAX_CACHED) {
      const oldest = cache.keys().next();
      if (!oldest.done) cache.delete(oldest.value);
    }
    cache.set(task.filterKey, c);
  }
  return c;
}

export default function match(task: MatchTask): MatchTaskResult {
  taskNow = task.now;
  const progress = task.progress;
  Atomics.store(progress, 1, 1);
  const buf = Buffer.from(task.data.buffer, task.data.byteOffset, task.data.byteLength);
  const lines = countLines(buf);
  const c = compiled(task);
  if ('error' in c) return emptyResult(lines, c.error);
  const tz = task.timezone ?? '';
  let matcher = c.matchers.get(tz);
  if (!matcher) {
    matcher = c.filter.createMatcher({ now: () => taskNow, ...(task.timezone ? { timezone: task.timezone } : {}) });
    c.matchers.set(tz, matcher);
  }
  const skip = task.skip.length > 0 ? new Set(task.skip) : null;
  const found = new FailureCollector();
  let candidates = 0;
  const m = matcher;
  c.scanner.scan(buf, (start, end) => {
    if (skip?.has(start)) return;
    candidates++;
    Atomics.store(progress, 0, start);
    Atomics.add(progress, 1, 1);
    const out = m.match(decodeLine(buf, start, end));
    if (out.kind === 'fail') found.add(out, start);
  });
  return { ...found.columns(), lines, candidates };
}
