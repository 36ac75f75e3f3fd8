/**
 * Line decoding shared by the engine and `aegis-ban regex`. Finding candidate lines in the raw
 * bytes is match/prefilter.ts (createLineScanner): only those lines are ever decoded.
 */
import { nativeScan, type NativeScan } from './match/native-scan.js';

/** Decode one line; a trailing CR (CRLF logs) is not part of it. */
export function decodeLine(buf: Buffer, start: number, end: number): string {
  if (end > start && buf[end - 1] === 13) end--;
  return buf.toString('utf8', start, end);
}

/** newline-terminated lines in `buf` (a batch always ends with a newline) */
export function countLines(buf: Buffer, native: NativeScan | null = nativeScan()): number {
  if (native !== null) return native.countLines(buf);
  // memchr per line
  let n = 0;
  for (let p = buf.indexOf(10); p >= 0; p = buf.indexOf(10, p + 1)) n++;
  return n;
}
