/**
 * How a followed file is recognised: by its first line (a hash), across renames, restarts and
 * copies; and how a copytruncate copy is told apart from an unrelated file with the same first
 * line (the bytes just before the offset we had reached must be the same too).
 */
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** bytes of the first line hashed for identity (a longer first line is hashed by its prefix) */
export const HASH_BYTES = 4096;
/** bytes before the read offset kept to recognise a copy of the file */
export const TAIL_BYTES = 256;

/** what we had read of a file before it was truncated, to find the same bytes in its copy */
export interface TruncatedFile {
  readonly hash: string;
  readonly hashLen: number;
  /** bytes of it we had delivered */
  readonly offset: number;
  /** the last bytes before offset (up to TAIL_BYTES) */
  readonly tail: Buffer;
}

/** sha256 of the first line (up to HASH_BYTES); '' while the first line is incomplete */
export async function firstLineHash(fh: FileHandle, size: number): Promise<{ hash: string; len: number }> {
  const want = Math.min(size, HASH_BYTES);
  if (want === 0) return { hash: '', len: 0 };
  const buf = Buffer.allocUnsafe(want);
  const { bytesRead } = await fh.read(buf, 0, want, 0);
  const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
  let len: number;
  if (nl >= 0) len = nl + 1;
  else if (bytesRead === HASH_BYTES) len = HASH_BYTES;
  else return { hash: '', len: 0 };
  return { hash: digest(buf.subarray(0, len)), len };
}

/**
 * The same hash from the bytes at the start of the file as we read them; '' while they hold no
 * complete first line. Hashing what was read, not re-reading the file, matters: a file
 * truncated and rewritten between our read and a re-read would otherwise get the new content's
 * hash, and its rewrite would go unnoticed.
 */
export function firstLineHashOf(head: Uint8Array): { hash: string; len: number } {
  const nl = head.indexOf(0x0a);
  let len: number;
  if (nl >= 0 && nl < HASH_BYTES) len = nl + 1;
  else if (head.length >= HASH_BYTES) len = HASH_BYTES;
  else return { hash: '', len: 0 };
  return { hash: digest(head.subarray(0, len)), len };
}

/** the TAIL_BYTES bytes before `end` */
export async function readTail(fh: FileHandle, end: number): Promise<Buffer> {
  const len = Math.min(end, TAIL_BYTES);
  if (len === 0) return Buffer.alloc(0);
  const buf = Buffer.alloc(len);
  const { bytesRead } = await fh.read(buf, 0, len, end - len);
  return bytesRead === len ? buf : Buffer.alloc(0);
}

/** true when the file holds the same first line and the same bytes just before rec.offset */
export async function isCopyOf(fh: FileHandle, size: number, rec: TruncatedFile): Promise<boolean> {
  if (size < rec.offset || (await hashPrefix(fh, rec.hashLen)) !== rec.hash) return false;
  if (rec.tail.length === 0) return rec.offset === 0;
  const buf = Buffer.allocUnsafe(rec.tail.length);
  const { bytesRead } = await fh.read(buf, 0, rec.tail.length, rec.offset - rec.tail.length);
  return bytesRead === rec.tail.length && buf.equals(rec.tail);
}

/** the hash of the first `len` bytes, '' if the file is shorter now */
export async function hashPrefix(fh: FileHandle, len: number): Promise<string> {
  const buf = Buffer.allocUnsafe(len);
  const { bytesRead } = await fh.read(buf, 0, len, 0);
  return bytesRead < len ? '' : digest(buf);
}

/**
 * hashPrefix without the thread-pool round trip, for the check after every batch read: at most
 * one 4 KiB pread of the file's first bytes, which the check before just read (page cache).
 * Asynchronously it cost a drain ~3 ms per 4 MiB batch in waiting (a pool hop, then a turn of
 * the busy event loop), about a fifth of the drain's time.
 */
export function hashPrefixSync(fd: number, len: number): string {
  const buf = Buffer.allocUnsafe(len);
  const bytesRead = readSync(fd, buf, 0, len, 0);
  return bytesRead < len ? '' : digest(buf);
}

const digest = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex').slice(0, 32);

/** the offset just after the last newline: tail mode starts there, so a partial line still counts */
export async function lastLineStart(fh: FileHandle, size: number, maxLine: number): Promise<number> {
  if (size === 0) return 0;
  const want = Math.min(size, maxLine + 1);
  const buf = Buffer.allocUnsafe(want);
  const { bytesRead } = await fh.read(buf, 0, want, size - want);
  const nl = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
  return nl < 0 ? size : size - want + nl + 1;
}
