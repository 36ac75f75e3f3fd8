/**
 * The optional native scanner (native/scan, built by `npm install` when g++ and node-gyp are
 * there): the lines of a batch that hold a filter's literals, and the batch's line count, in one
 * call each — memmem or one SSE2 pass, and a vectorised newline count — against a
 * Buffer.indexOf call per line from JavaScript. Without it prefilter.ts and scan.ts do the same
 * in JavaScript; results are identical (test/unit/engine/match/prefilter.test.ts), only slower.
 *
 * AEGIS_NATIVE_SCAN=0 forces the JavaScript path (for the tests that compare the two).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeScan {
  /** newline bytes in buf */
  countLines(buf: Uint8Array): number;
  /**
   * Lines of buf[from..] holding a needle, in order, each once, as [start, end) pairs in `out`
   * (end: the newline, or buf.length); returns the pairs written, stopping when `out` is full.
   * `from` must start a line.
   */
  findLines(buf: Uint8Array, from: number, needles: readonly Uint8Array[], out: Int32Array): number;
  /** lines of buf (a last one may lack its newline) that are blank (spaces, tabs, CR) or start with '#' */
  countSkippable(buf: Uint8Array): number;
}

/** the package root: {src,dist}/engine/match/native-scan.* → ../../.. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SCAN_ADDON_PATH = join(ROOT, 'native', 'scan', 'build', 'Release', 'aegis_scan.node');

/** findLines reports offsets as int32: larger buffers are scanned in JavaScript */
export const FIND_LINES_MAX_BYTES = 2 ** 31 - 1;

let cached: NativeScan | null | undefined;

/** the addon, or null when it is not built, does not load, or AEGIS_NATIVE_SCAN=0 */
export function nativeScan(): NativeScan | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (process.env['AEGIS_NATIVE_SCAN'] === '0' || !existsSync(SCAN_ADDON_PATH)) return cached;
  try {
    const m = createRequire(import.meta.url)(SCAN_ADDON_PATH) as Partial<NativeScan>;
    // a build older than this code lacks functions: use none of it until `npm rebuild`
    const complete = typeof m.countLines === 'function' && typeof m.findLines === 'function' && typeof m.countSkippable === 'function';
    cached = complete ? (m as NativeScan) : null;
  } catch {
    // a stale build for another Node ABI: the JavaScript path does the same work
    cached = null;
  }
  return cached;
}
