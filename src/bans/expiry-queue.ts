/** A min-heap of (expires, key) with lazy deletion: callers re-check the key on pop. */
export class ExpiryQueue {
  readonly #heap: Array<{ at: number; key: string }> = [];

  push(at: number, key: string): void {
    const h = this.#heap;
    h.push({ at, key });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((h[p] as { at: number }).at <= at) break;
      [h[i], h[p]] = [h[p] as { at: number; key: string }, h[i] as { at: number; key: string }];
      i = p;
    }
  }

  peek(): { at: number; key: string } | undefined {
    return this.#heap[0];
  }

  pop(): { at: number; key: string } | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && (h[l] as { at: number }).at < (h[m] as { at: number }).at) m = l;
        if (r < h.length && (h[r] as { at: number }).at < (h[m] as { at: number }).at) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m] as { at: number; key: string }, h[i] as { at: number; key: string }];
        i = m;
      }
    }
    return top;
  }

  get size(): number {
    return this.#heap.length;
  }

  clear(): void {
    this.#heap.length = 0;
  }
}
