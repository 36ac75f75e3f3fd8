/** Test helpers: a collecting SourceHooks, temp dirs, waiting on a condition. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Batch } from '../../../src/engine/types.js';
import type { SourceErrorKind, SourceHooks } from '../../../src/sources/source.js';

export interface Collected {
  readonly hooks: SourceHooks;
  readonly batches: Batch[];
  /** every delivered line without its newline, in delivery order */
  readonly lines: string[];
  readonly backlogLines: string[];
  readonly errors: Array<{ kind: SourceErrorKind; message: string }>;
  files: readonly string[];
}

export function collect(onBatch?: (b: Batch) => Promise<void>): Collected {
  const c: Collected = {
    batches: [],
    lines: [],
    backlogLines: [],
    errors: [],
    files: [],
    hooks: {
      async onBatch(b) {
        const text = Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength).toString('utf8');
        if (!text.endsWith('\n')) throw new Error(`batch does not end in a newline: ${JSON.stringify(text.slice(-40))}`);
        const ls = text.slice(0, -1).split('\n');
        if (b.lineCount !== null && ls.length !== b.lineCount) throw new Error(`lineCount ${b.lineCount} but ${ls.length} lines`);
        c.batches.push(b);
        c.lines.push(...ls);
        if (b.isBacklog) c.backlogLines.push(...ls);
        if (onBatch !== undefined) await onBatch(b);
      },
      onError(kind, message) {
        c.errors.push({ kind, message });
      },
      onFiles(files) {
        c.files = files;
      },
    },
  };
  return c;
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function tempDir(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), `aegis-src-${tag}-${process.pid}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** no line twice: returns the duplicates */
export function duplicates(lines: readonly string[]): string[] {
  const seen = new Set<string>();
  const dup: string[] = [];
  for (const l of lines) {
    if (seen.has(l)) dup.push(l);
    seen.add(l);
  }
  return dup;
}
