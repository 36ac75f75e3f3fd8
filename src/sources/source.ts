/**
 * The contract every log source implements (files, journald).
 *
 * - A source delivers complete lines in Batches through `onBatch`: the promise resolves once
 *   the engine and ban stages are done with the batch. Only then does the source advance its
 *   saved position, so a crash replays at most the batches in flight (nothing lost). A file
 *   source may call onBatch for its next batches before the previous one resolved (at most four
 *   per file, so reading overlaps matching); batches of one source arrive in file order, and
 *   the consumer must apply them in that order. Pending promises are the back-pressure.
 * - A line longer than `maxLineBytes` is cut there, the rest up to its newline discarded, and
 *   reported once through `onError('line_too_long', …)`; nothing is buffered without bound.
 * - A Batch's `data` is valid until its onBatch promise resolves; the source may then reuse the
 *   memory. It never lies in Node's shared Buffer pool, and large batches already lie in a
 *   SharedArrayBuffer, which worker threads read without a copy.
 * - Sources report problems through `onError(kind, message)` and keep going; the caller logs and
 *   counts them (aegis_source_errors_total{kind}). They never throw into the daemon.
 */
import type { Batch } from '../engine/types.js';

/** Where a file source stopped, kept in state (fail2ban keeps the same per file). */
export interface FilePosition {
  readonly path: string;
  /** identity that survives rename: device + inode, and a hash of the first line */
  readonly dev: number;
  readonly ino: number;
  readonly firstLineHash: string;
  readonly offset: number;
  /**
   * true when offset is inside a line longer than the line cap whose first bytes were already
   * delivered: on resume the rest of it, up to its newline, is skipped (never read as a line)
   */
  readonly inLongLine?: boolean;
}

export interface PositionStore {
  getFile(path: string): FilePosition | undefined;
  setFile(pos: FilePosition): void;
  getCursor(id: string): string | undefined;
  setCursor(id: string, cursor: string): void;
  /**
   * Optional: every saved file position. With it a file renamed while the daemon was stopped
   * (app.log → app.log.1, both matched by logpath) resumes at its offset by inode and first-line
   * hash instead of being read again from the start.
   */
  listFiles?(): Iterable<FilePosition>;
}

export type SourceErrorKind =
  | 'line_too_long'
  | 'read'
  | 'rotation'
  | 'permission'
  | 'journal'
  | 'decode';

export interface SourceHooks {
  onBatch(batch: Batch): Promise<void>;
  onError(kind: SourceErrorKind, message: string): void;
  /** files currently followed changed (for `aegis-ban status JAIL` file list) */
  onFiles?(files: readonly string[]): void;
}

export interface LogSource {
  readonly id: string;
  start(): Promise<void>;
  /** the files currently followed */
  files(): readonly string[];
  close(): Promise<void>;
}
