/**
 * Raw-buffer candidate scan for a filter's literals (CompiledFilter.literals): the lines that
 * contain at least one literal, found without decoding the buffer as UTF-8.
 *
 * Up to four literals: Buffer.indexOf (memmem) per literal, each searched again only once the
 * scan has passed its last hit, so each literal costs one pass over the buffer (a JSON filter's
 * two event names over 200 MB: 0.06 s, against 0.22 s for the copy and RegExp below). More: the
 * buffer is viewed as latin1 (one char per byte, no validation, a flat copy) and searched with
 * one RegExp alternation of the literals' byte sequences, which irregexp scans in a single pass
 * — several times faster than one indexOf per literal when there are many literals and
 * candidates are dense (0.19 s vs 0.45 s for 1 M sshd lines with 12 literals). Either way:
 * lines in order, each once, `end` excluding the newline.
 *
 * When native/scan is built (native-scan.ts) it does this instead, with the same result: on the
 * JSON bench log 35 ms against 110 ms, on the sshd one about as fast as the RegExp; the code
 * below is then the fallback.
 */
import { nativeScan, FIND_LINES_MAX_BYTES, type NativeScan } from './native-scan.js';

const ESCAPE = /[\\^$.*+?()[\]{}|/-]/g;
/** up to this many literals are searched one by one; more with one RegExp */
const MAX_SEARCHED_APART = 4;

export interface LineScanner {
  scan(buf: Buffer, visit: (start: number, end: number) => void): void;
}

/** candidate lines found per native call: the pairs land in one reused Int32Array */
const NATIVE_PAIRS = 4096;

/** The native scanner (native/scan): memmem, or one SSE2 pass for many literals, over the raw bytes; one call per 4 096 lines found. */
function nativeLineScanner(native: NativeScan, literals: readonly string[]): LineScanner {
  const needles = literals.map((l) => new Uint8Array(Buffer.from(l, 'utf8')));
  const out = new Int32Array(2 * NATIVE_PAIRS);
  return {
    scan(buf, visit) {
      let from = 0;
      for (;;) {
        const n = native.findLines(buf, from, needles, out);
        for (let k = 0; k < n; k++) visit(out[2 * k] as number, out[2 * k + 1] as number);
        if (n < NATIVE_PAIRS) return;
        from = (out[2 * n - 1] as number) + 1;
        if (from >= buf.length) return;
      }
    },
  };
}

/** `native`: the addon when built; null forces the JavaScript scan (tests compare the two) */
export function createLineScanner(literals: readonly string[] | null, native: NativeScan | null = nativeScan()): LineScanner {
  if (native === null || literals === null || literals.length === 0) return jsLineScanner(literals);
  const fast = nativeLineScanner(native, literals);
  // the native scanner reports offsets as int32: a buffer of 2 GiB or more (a huge log given to
  // `aegis-ban regex`) is scanned in JavaScript, built only then
  let js: LineScanner | null = null;
  return {
    scan: (buf, visit) => (buf.length <= FIND_LINES_MAX_BYTES ? fast : (js ??= jsLineScanner(literals))).scan(buf, visit),
  };
}

function jsLineScanner(literals: readonly string[] | null): LineScanner {
  if (literals === null || literals.length === 0) {
    return {
      scan(buf, visit) {
        const len = buf.length;
        let start = 0;
        while (start < len) {
          let nl = buf.indexOf(10, start);
          if (nl < 0) nl = len;
          if (nl > start) visit(start, nl);
          start = nl + 1;
        }
      },
    };
  }
  if (literals.length <= MAX_SEARCHED_APART) {
    const lits = literals.map((l) => Buffer.from(l, 'utf8'));
    return {
      scan(buf, visit) {
        const len = buf.length;
        // next hit of each literal at or after the scan position, -1 when there is none left
        const next = lits.map((l) => buf.indexOf(l, 0));
        let pos = 0;
        while (pos < len) {
          let hit = -1;
          for (let i = 0; i < lits.length; i++) {
            let h = next[i]!;
            if (h >= 0 && h < pos) next[i] = h = buf.indexOf(lits[i]!, pos);
            if (h >= 0 && (hit < 0 || h < hit)) hit = h;
          }
          if (hit < 0) return;
          const start = hit === 0 ? 0 : buf.lastIndexOf(10, hit - 1) + 1;
          let end = buf.indexOf(10, hit);
          if (end < 0) end = len;
          visit(start, end);
          pos = end + 1;
        }
      },
    };
  }
  // the UTF-8 bytes of each literal, spelled as latin1 characters
  const alternation = literals.map((l) => Buffer.from(l, 'utf8').toString('latin1').replace(ESCAPE, '\\$&')).join('|');
  const re = new RegExp(alternation, 'g');
  return {
    scan(buf, visit) {
      const text = buf.toString('latin1');
      const len = text.length;
      re.lastIndex = 0;
      for (;;) {
        const m = re.exec(text);
        if (m === null) return;
        const start = text.lastIndexOf('\n', m.index) + 1;
        let end = text.indexOf('\n', m.index + m[0].length);
        if (end < 0) end = len;
        visit(start, end);
        if (end >= len) return;
        re.lastIndex = end + 1;
      }
    },
  };
}
