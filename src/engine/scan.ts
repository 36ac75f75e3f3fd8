/**
 * Line decoding shared by the engine and `aegis-ban regex`. Finding candidate lines in the raw
 * bytes is match/prefilter.ts (createLineScanner): only those lines are ever decoded.
 */

/** Decode one line; a trailing CR (CRLF logs) is not part of it. */
export function decodeLine(buf: Buffer, start: number, end: number): string {
  if (end > start && buf[end - 1] === 13) end--;
  return buf.toString('utf8', start, end);
}
