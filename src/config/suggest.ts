/** "did you mean" for unknown keys: the closest known key within a small edit distance. */

/** Edit distance where swapping two neighbours counts as one edit (`prot` → `port`). */
export function editDistance(a: string, b: string): number {
  // three rolling rows (i-2, i-1, i) of the optimal-string-alignment table
  let prev2 = new Int32Array(b.length + 1);
  let prev = new Int32Array(b.length + 1);
  let cur = new Int32Array(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      let v = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, (prev2[j - 2] ?? 0) + 1);
      cur[j] = v;
    }
    const t = prev2;
    prev2 = prev;
    prev = cur;
    cur = t;
  }
  return prev[b.length] ?? 0;
}

/**
 * The known key `key` is most likely a typo of, or null. Short keys allow one edit, longer ones
 * two, so helper keys used by interpolation (`sshd_log`, `mta`…) are not taken for typos.
 */
export function closestKey(key: string, known: Iterable<string>): string | null {
  const k = key.toLowerCase();
  const limit = k.length <= 4 ? 1 : 2;
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of known) {
    if (c === k) return null;
    if (Math.abs(c.length - k.length) > limit) continue;
    const d = editDistance(k, c.toLowerCase());
    if (d <= limit && d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}
