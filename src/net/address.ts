/**
 * Address handling shared by every stage. One rule holds everywhere (SPEC "Addresses"):
 * an IPv4-mapped IPv6 address is the IPv4 address; IPv6 is shown in RFC 5952 form.
 */
import ipaddr from 'ipaddr.js';

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

function fromParsed(parsed: ipaddr.IPv4 | ipaddr.IPv6): Address {
  if (parsed.kind() === 'ipv6') {
    const v6 = parsed as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) return fromParsed(v6.toIPv4Address());
    return { text: v6.toRFC5952String(), family: 6, bytes: Uint8Array.from(v6.toByteArray()) };
  }
  const v4 = parsed as ipaddr.IPv4;
  return { text: v4.toString(), family: 4, bytes: Uint8Array.from(v4.toByteArray()) };
}

const DOTTED_QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/**
 * Strict parse (no shorthand IPv4 like `127.1`, no leading zeros, no zone ids); null when not
 * an address. This runs once per failure found, so IPv4 — most failures — takes a regex fast
 * path; ipaddr.js validates by throwing, which costs microseconds per call.
 */
export function parseAddress(input: string): Address | null {
  let s = input.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (s.length === 0 || s.length > 45) return null;
  const q = DOTTED_QUAD.exec(s);
  if (q) {
    const bytes = Uint8Array.of(Number(q[1]), Number(q[2]), Number(q[3]), Number(q[4]));
    return { text: s, family: 4, bytes };
  }
  if (!s.includes(':') || s.includes('%')) return null;
  const cached = v6Cache.get(s);
  if (cached !== undefined) return cached;
  const parsed = ipaddr.IPv6.isValid(s) ? fromParsed(ipaddr.IPv6.parse(s)) : null;
  if (v6Cache.size >= 4096) v6Cache.clear();
  v6Cache.set(s, parsed);
  return parsed;
}

/** IPv6 parsing is the slow path; a small bounded cache serves repeat offenders. */
const v6Cache = new Map<string, Address | null>();

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
  if (family === 4) return Array.from(bytes).join('.');
  return ipaddr.fromByteArray(Array.from(bytes)).toString().length > 0
    ? (ipaddr.fromByteArray(Array.from(bytes)) as ipaddr.IPv6).toRFC5952String()
    : '';
}

export function cidrContains(net: Cidr, addr: Address): boolean {
  if (net.family !== addr.family) return false;
  const m = maskBytes(addr.bytes, net.prefix);
  for (let i = 0; i < m.length; i++) if (m[i] !== net.bytes[i]) return false;
  return true;
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
