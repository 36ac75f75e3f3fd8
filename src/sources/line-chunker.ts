/**
 * Turns a stream of byte chunks into runs of complete `\n`-terminated lines, without decoding
 * and without per-line allocation: a chunk is split once at its last newline, the lines before
 * it go out as one subarray, the partial tail is kept (bounded by maxLineBytes) until its
 * newline arrives. Lines are not walked one by one: an over-long line is found by looking for a
 * newline in windows of maxLineBytes (a few calls per chunk), and only a chunk that has one takes
 * the slow copying path. Lines are not counted here either: the engine counts them while it
 * scans, off the main thread.
 */

const NL = 0x0a;

export interface ChunkResult {
  /** complete lines, each ending in `\n`; null when the chunk completed none */
  readonly data: Buffer | null;
  /** how many over-long lines were cut in this chunk */
  readonly cut: number;
}

export class LineChunker {
  readonly #maxLineBytes: number;
  /** bytes of a line whose newline has not arrived yet (never contains `\n`, ≤ maxLineBytes) */
  #carry: Buffer | null = null;
  /** true while skipping the rest of a line that was cut */
  #discarding = false;

  constructor(maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes;
  }

  /** bytes held back (partial line): the file offset of the next line is readPos - pending */
  get pending(): number {
    return this.#carry === null ? 0 : this.#carry.length;
  }

  /** inside an over-long line whose head went out: bytes up to its newline are skipped */
  get isDiscarding(): boolean {
    return this.#discarding;
  }

  /** resume inside an over-long line (a saved position said so) */
  startDiscarding(): void {
    this.#carry = null;
    this.#discarding = true;
  }

  /** forget the partial line (the file was truncated or replaced); returns its length */
  reset(): number {
    const n = this.pending;
    this.#carry = null;
    this.#discarding = false;
    return n;
  }

  /**
   * A buffer for the next read: the carried partial line copied at its start, `readSize` free
   * bytes after it. Read into `buf` at `offset`, then call `push(buf, offset + bytesRead)`.
   * `alloc` gives the memory (the follower reuses buffers whose batches are done); by default a
   * fresh buffer, never from Node's shared pool (see concatOwned).
   */
  allocate(readSize: number, alloc: (size: number) => Buffer = (n) => Buffer.allocUnsafeSlow(n)): { buf: Buffer; offset: number } {
    const carry = this.#carry;
    const buf = alloc((carry?.length ?? 0) + readSize);
    if (carry === null) return { buf, offset: 0 };
    carry.copy(buf, 0);
    return { buf, offset: carry.length };
  }

  push(whole: Buffer, end: number): ChunkResult {
    // bytes past `end` are stale (allocUnsafe): never let indexOf see them
    const buf = whole.subarray(0, end);
    const max = this.#maxLineBytes;
    this.#carry = null;
    let start = 0;
    if (this.#discarding) {
      const nl = buf.indexOf(NL, 0);
      if (nl < 0) return { data: null, cut: 0 };
      start = nl + 1;
      this.#discarding = false;
    }
    const last = end > start ? buf.lastIndexOf(NL, end - 1) : -1;
    if (last < start) return this.#keepTail(buf, start, end, null, 0);

    let data = buf.subarray(start, last + 1);
    let cut = 0;
    if (hasLongLine(buf, start, last, max)) {
      const r = cutLongLines(data, max);
      data = r.data;
      cut = r.cut;
    }
    return this.#keepTail(buf, last + 1, end, data, cut);
  }

  /** keep [from, end) as the partial line, or cut it if it is already too long */
  #keepTail(buf: Buffer, from: number, end: number, data: Buffer | null, cut: number): ChunkResult {
    const rest = end - from;
    if (rest <= this.#maxLineBytes) {
      // copy: a subarray would pin the whole read buffer for as long as the line stays partial
      if (rest > 0) this.#carry = Buffer.from(buf.subarray(from, end));
      return { data, cut };
    }
    const head = Buffer.allocUnsafeSlow(this.#maxLineBytes + 1);
    buf.copy(head, 0, from, from + this.#maxLineBytes);
    head[this.#maxLineBytes] = NL;
    this.#discarding = true;
    return {
      data: data === null ? head : concatOwned([data, head]),
      cut: cut + 1,
    };
  }
}

/**
 * True when a line in [start, last] (last is a newline) is longer than max bytes. The line
 * starting at p is too long exactly when [p, p + max] holds no newline; when it holds one, every
 * line up to the last newline in it is short, so the next look starts after that newline.
 */
function hasLongLine(buf: Buffer, start: number, last: number, max: number): boolean {
  for (let p = start; p <= last; ) {
    const nl = buf.lastIndexOf(NL, Math.min(p + max, last));
    if (nl < p) return true;
    p = nl + 1;
  }
  return false;
}

/** slow path, only for chunks that hold a line longer than max: copy each line, cut to max */
function cutLongLines(data: Buffer, max: number): { data: Buffer; cut: number } {
  const parts: Buffer[] = [];
  let cut = 0;
  for (let p = 0; p < data.length; ) {
    const nl = data.indexOf(NL, p);
    if (nl - p > max) {
      parts.push(data.subarray(p, p + max), Buffer.from([NL]));
      cut++;
    } else parts.push(data.subarray(p, nl + 1));
    p = nl + 1;
  }
  return { data: concatOwned(parts), cut };
}

/**
 * Batch data must own its ArrayBuffer: the engine may transfer it to a worker thread, and a
 * small Buffer.concat / allocUnsafe result lives in Node's shared pool (transferring that would
 * detach every other pooled Buffer). allocUnsafeSlow never uses the pool.
 */
export function concatOwned(parts: readonly Uint8Array[]): Buffer {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = Buffer.allocUnsafeSlow(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
