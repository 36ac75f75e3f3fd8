/**
 * Lines that are no longer in the file we follow but in a sibling: what was written to a file
 * after our saved position before it was rotated while we were stopped (`<path>.1`), and what
 * copytruncate copied before we had read it (the copy, `<path>.1`). Both are read once, in
 * batches, with the follower's line cap, and delivered under the followed path.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { Batch } from '../engine/types.js';
import { firstLineHash, isCopyOf, type TruncatedFile } from './file-identity.js';
import { LineChunker } from './line-chunker.js';
import type { FilePosition, PositionStore, SourceErrorKind } from './source.js';

export interface RecoveryContext {
  readonly sourceId: string;
  readonly maxLineBytes: number;
  readonly maxBatchBytes: number;
  isClosed(): boolean;
  deliver(batch: Batch): Promise<void>;
  onError(kind: SourceErrorKind, message: string): void;
}

/**
 * The path was rotated while we were stopped. logrotate's usual name for the previous file is
 * `<path>.1` (uncompressed with delaycompress, Debian's default for syslog files): if it is the
 * inode we had a position in, read what was written to it after that position, as backlog.
 */
export async function readRotatedRemainder(
  rotated: string,
  saved: FilePosition,
  positions: PositionStore,
  ctx: RecoveryContext,
): Promise<void> {
  await withFile(rotated, async (fh) => {
    const st = await fh.stat();
    if (st.dev !== saved.dev || st.ino !== saved.ino || st.size <= saved.offset) return;
    if (saved.firstLineHash !== '' && (await firstLineHash(fh, st.size)).hash !== saved.firstLineHash) return;
    await readRange(fh, rotated, saved.offset, st.size, true, ctx, saved.inLongLine === true, (pos, inLong) =>
      // still the old identity: a crash here resumes inside the rotated file
      positions.setFile({ ...saved, offset: pos, inLongLine: inLong }),
    );
  });
}

/** copytruncate: read from the copy what we had not read of the original before it was cut */
export async function readCopyRemainder(copy: string, rec: TruncatedFile, ctx: RecoveryContext): Promise<void> {
  await withFile(copy, async (fh) => {
    const st = await fh.stat();
    if (st.size <= rec.offset || !(await isCopyOf(fh, st.size, rec))) return;
    await readRange(fh, copy, rec.offset, st.size, false, ctx, false, () => undefined);
  });
}

async function withFile(name: string, use: (fh: FileHandle) => Promise<void>): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(name, 'r');
  } catch {
    return; // not there (any more): nothing to recover
  }
  try {
    await use(fh);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** deliver the complete lines of [from, to) */
async function readRange(
  fh: FileHandle,
  name: string,
  from: number,
  to: number,
  isBacklog: boolean,
  ctx: RecoveryContext,
  inLongLine: boolean,
  progress: (offset: number, inLongLine: boolean) => void,
): Promise<void> {
  const chunker = new LineChunker(ctx.maxLineBytes);
  if (inLongLine) chunker.startDiscarding();
  let pos = from;
  while (pos < to && !ctx.isClosed()) {
    const want = Math.min(ctx.maxBatchBytes, to - pos);
    const { buf, offset } = chunker.allocate(want);
    const { bytesRead } = await fh.read(buf, offset, want, pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
    const r = chunker.push(buf, offset + bytesRead);
    if (r.cut > 0) ctx.onError('line_too_long', `${name}: ${r.cut} line(s) longer than ${ctx.maxLineBytes} bytes cut`);
    if (r.data === null) continue;
    await ctx.deliver({ sourceId: ctx.sourceId, data: r.data, lineCount: null, readAt: Date.now(), isBacklog });
    progress(pos - chunker.pending, chunker.isDiscarding);
  }
}
