/**
 * JSON string literals for the audit hot paths (ban journal records, ban and unban log lines).
 * What goes there — addresses, jail names, fixed words — almost never needs escaping, and
 * checking that is a third of the cost of JSON.stringify's generic path. The output is always
 * JSON.stringify(s), byte for byte.
 */
export function jsonString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // control characters, quote, backslash, and anything past ASCII (lone surrogates are escaped)
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return JSON.stringify(s);
  }
  return `"${s}"`;
}

/** a number as JSON.stringify writes it (null for NaN and infinities) */
export function jsonNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}
