/**
 * Address handling shared by every stage. One rule holds everywhere (SPEC "Addresses"):
 * an IPv4-mapped IPv6 address is the IPv4 address; IPv6 is shown in RFC 5952 form.
 */

export type Family = 4 | 6;

export interface Address {
  /** canonical text: dotted quad, or RFC 5952 IPv6 */
  readonly text: string;
  readonly family: Family;
  readonly bytes: Uint8Array;
}

export interface Cidr {
  /** network address in canonical text (host bits cleared) */
  readonly network: string;
  readonly prefix: number;
  readonly family: Family;
  readonly bytes: Uint8Array;
  /** `network/prefix`, or the bare address for a full-length prefix */
  readonly text: string;
}

/**
 * Where the address text lies in `input` once white space and [ ] are stripped: [spanFrom,
 * spanTo). Module state instead of a returned pair, so the check a worker runs on every
 * candidate host allocates nothing.
 */
let spanFrom = 0;
let spanTo = 0;

/** false when nothing address-sized is left */
function findSpan(input: string): boolean {
  let from = 0;
  let to = input.length;
  while (from < to && isSpace(input.charCodeAt(from))) from++;
  while (to > from && isSpace(input.charCodeAt(to - 1))) to--;
  if (to - from >= 2 && input.charCodeAt(from) === 91 /* [ */ && input.charCodeAt(to - 1) === 93 /* ] */) {
    from++;
    to--;
  }
  spanFrom = from;
  spanTo = to;
  const n = to - from;
  return n > 0 && n <= 45;
}

/** parseAddress(input) !== null, without building the address */
export function isAddress(input: string): boolean {
  if (!findSpan(input)) return false;
  return quadAt(input, spanFrom, spanTo) >= 0 || v6GroupsAt(input, spanFrom, spanTo) !== null;
}

/**
 * Strict parse (no shorthand IPv4 like `127.1`, no leading zeros, no zone ids); null when not
 * an address. This runs for every failure a worker finds and for every new offender on the
 * main thread, so it is a hand-written scanner over char codes: ipaddr.js validates with
 * regexes and by throwing, ~10 µs an IPv6 address, more than the rest of a failure's path.
 * test/unit/net/address.test.ts holds it to ipaddr.js on a large random sample.
 */
export function parseAddress(input: string): Address | null {
  if (!findSpan(input)) return null;
  const from = spanFrom;
  const to = spanTo;
  const v4 = quadAt(input, from, to);
  if (v4 >= 0) {
    const bytes = Uint8Array.of(v4 >>> 24, (v4 >>> 16) & 255, (v4 >>> 8) & 255, v4 & 255);
    return { text: from === 0 && to === input.length ? input : input.slice(from, to), family: 4, bytes };
  }
  const groups = v6GroupsAt(input, from, to);
  if (groups === null) return null;
  // ::ffff:a.b.c.d is the IPv4 address (SPEC "Addresses")
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    const bytes = Uint8Array.of(groups[6]! >>> 8, groups[6]! & 255, groups[7]! >>> 8, groups[7]! & 255);
    return { text: `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`, family: 4, bytes };
  }
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    bytes[2 * i] = groups[i]! >>> 8;
    bytes[2 * i + 1] = groups[i]! & 255;
  }
  return { text: rfc5952(groups), family: 6, bytes };
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0xfeff || c === 0x2028 || c === 0x2029 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x202f || c === 0x205f || c === 0x3000;
}

/** a strict dotted quad filling s[from, to) as a uint32, or -1 */
function quadAt(s: string, from: number, to: number): number {
  let value = 0;
  let parts = 0;
  let i = from;
  while (parts < 4) {
    const start = i;
    let octet = 0;
    while (i < to && i - start < 4) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      octet = octet * 10 + (c - 48);
      i++;
    }
    const digits = i - start;
    if (digits === 0 || digits > 3 || octet > 255) return -1;
    if (digits > 1 && s.charCodeAt(start) === 48) return -1; // leading zero
    value = value * 256 + octet;
    parts++;
    if (parts < 4) {
      if (i >= to || s.charCodeAt(i) !== 46 /* . */) return -1;
      i++;
    }
  }
  return i === to ? value : -1;
}

const scratch = new Array<number>(8);

/**
 * The eight 16-bit groups of an IPv6 address filling s[from, to) — hex groups of 1–4 digits,
 * at most one `::` standing for one or more zero groups, optionally ending in a strict dotted
 * quad — or null. The array is reused: copy what you keep.
 */
function v6GroupsAt(s: string, from: number, to: number): number[] | null {
  const g = scratch;
  let count = 0;
  let gap = -1; // index in g where `::` stands
  let i = from;
  if (i + 1 < to && s.charCodeAt(i) === 58 && s.charCodeAt(i + 1) === 58) {
    gap = 0;
    i += 2;
    if (i === to) {
      g.fill(0);
      return g;
    }
  } else if (i < to && s.charCodeAt(i) === 58) return null;
  for (;;) {
    if (count === 8) return null;
    const start = i;
    let value = 0;
    while (i < to) {
      const c = s.charCodeAt(i);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) break;
      value = value * 16 + d;
      i++;
    }
    const digits = i - start;
    if (i < to && s.charCodeAt(i) === 46 /* . */) {
      // the last 32 bits as a dotted quad
      if (count > 6) return null;
      const q = quadAt(s, start, to);
      if (q < 0) return null;
      g[count++] = q >>> 16;
      g[count++] = q & 0xffff;
      break;
    }
    if (digits === 0 || digits > 4) return null;
    g[count++] = value;
    if (i === to) break;
    if (s.charCodeAt(i) !== 58) return null;
    i++;
    if (i < to && s.charCodeAt(i) === 58) {
      if (gap >= 0) return null; // a second `::`
      gap = count;
      i++;
      if (i === to) break;
    } else if (i === to) return null; // a trailing single colon
  }
  if (gap < 0) return count === 8 ? g : null;
  // `::` stands for at least one group
  if (count > 7) return null;
  const zeros = 8 - count;
  for (let k = count - 1; k >= gap; k--) g[k + zeros] = g[k]!;
  for (let k = gap; k < gap + zeros; k++) g[k] = 0;
  return g;
}

/** RFC 5952: lowercase, no leading zeros, the first longest run of two or more zero groups as `::` */
function rfc5952(g: readonly number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return g.map((x) => x.toString(16)).join(':');
  let head = '';
  for (let i = 0; i < best; i++) head += (i > 0 ? ':' : '') + g[i]!.toString(16);
  let tail = '';
  for (let i = best + bestLen; i < 8; i++) tail += (i > best + bestLen ? ':' : '') + g[i]!.toString(16);
  return `${head}::${tail}`;
}

/** Parse `addr` or `addr/prefix`; host bits are cleared. Mapped IPv4 prefixes become IPv4. */
export function parseCidr(input: string): Cidr | null {
  const s = input.trim();
  const slash = s.indexOf('/');
  const addr = parseAddress(slash < 0 ? s : s.slice(0, slash));
  if (!addr) return null;
  let prefix = addr.family === 4 ? 32 : 128;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return null;
    prefix = Number(p);
    // `::ffff:a.b.c.d/120` arrives already converted to IPv4: shift the prefix with it.
    if (addr.family === 4 && s.slice(0, slash).includes(':')) prefix -= 96;
    if (prefix < 0 || prefix > (addr.family === 4 ? 32 : 128)) return null;
  }
  return makeCidr(addr.bytes, addr.family, prefix);
}

/** what a ban of `addr` under `prefix` covers; a full-length prefix is the address itself (no copy) */
export function addressCidr(addr: Address, prefix: number): Cidr {
  if (prefix === (addr.family === 4 ? 32 : 128)) return { network: addr.text, prefix, family: addr.family, bytes: addr.bytes, text: addr.text };
  return makeCidr(addr.bytes, addr.family, prefix);
}

export function makeCidr(bytes: Uint8Array, family: Family, prefix: number): Cidr {
  const masked = maskBytes(bytes, prefix);
  const network = bytesToText(masked, family);
  const full = family === 4 ? 32 : 128;
  return { network, prefix, family, bytes: masked, text: prefix === full ? network : `${network}/${prefix}` };
}

export function maskBytes(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = (bytes[i] ?? 0) & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

export function bytesToText(bytes: Uint8Array, family: Family): string {
  if (family === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const g = scratch;
  for (let i = 0; i < 8; i++) g[i] = ((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0);
  return rfc5952(g);
}

export function cidrContains(net: Cidr, addr: Address): boolean {
  if (net.family !== addr.family) return false;
  // byte by byte under the prefix, without a masked copy: this runs for every new offender
  // against every ignoreip entry
  const full = net.prefix >> 3;
  for (let i = 0; i < full; i++) if (addr.bytes[i] !== net.bytes[i]) return false;
  const bits = net.prefix & 7;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return ((addr.bytes[full] ?? 0) & mask) === net.bytes[full];
}

/** Does `outer` cover all of `inner`? */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  const m = maskBytes(inner.bytes, outer.prefix);
  for (let i = 0; i < m.length; i++) if (m[i] !== outer.bytes[i]) return false;
  return true;
}

/** Do two prefixes share any address? (one covers the other) */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return cidrCovers(a, b) || cidrCovers(b, a);
}

export const LOOPBACK: readonly Cidr[] = [parseCidr('127.0.0.0/8')!, parseCidr('::1/128')!];

/** A small set of prefixes (ignoreip, allow lists). Linear: these lists are short. */
export class CidrSet {
  readonly #items: Cidr[];
  constructor(items: readonly Cidr[] = []) {
    this.#items = [...items];
  }
  get items(): readonly Cidr[] {
    return this.#items;
  }
  add(c: Cidr): void {
    this.#items.push(c);
  }
  contains(addr: Address): boolean {
    for (const c of this.#items) if (cidrContains(c, addr)) return true;
    return false;
  }
  /** the first member overlapping `c` (a ban prefix that would cover an allowed address) */
  overlapping(c: Cidr): Cidr | undefined {
    return this.#items.find((i) => cidrOverlaps(i, c));
  }
}
