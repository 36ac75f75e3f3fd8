/**
 * Byte layouts of the XDP maps (mirror of bpf/aegis_common.h) and the clock conversion.
 *
 * Keys: exact maps take the address bytes as they appear in the packet; LPM maps take a
 * little-endian u32 prefix length (host order, x86/arm64) followed by the address bytes.
 * Values: u64 CLOCK_BOOTTIME ns after which the entry stops dropping, 0 = permanent.
 */
import type { Family } from '../../net/address.js';
import { makeCidr, parseCidr, type Cidr } from '../../net/address.js';

export const MAP = {
  banV4: 'aegis_ban_v4',
  banV6: 'aegis_ban_v6',
  cidrV4: 'aegis_cidr_v4',
  cidrV6: 'aegis_cidr_v6',
  allowV4: 'aegis_allow_v4',
  allowV6: 'aegis_allow_v6',
  rate: 'aegis_rate',
  stats: 'aegis_stats',
} as const;
export type BanMapName = (typeof MAP)['banV4' | 'banV6' | 'cidrV4' | 'cidrV6'];
export const BAN_MAPS: readonly BanMapName[] = [MAP.banV4, MAP.banV6, MAP.cidrV4, MAP.cidrV6];

export const VALUE_SIZE = 8;

export function fullLength(family: Family): number {
  return family === 4 ? 32 : 128;
}

/** Which map holds a prefix: full-length → exact hash, shorter → LPM trie. */
export function banMapFor(c: Cidr): BanMapName {
  if (c.prefix === fullLength(c.family)) return c.family === 4 ? MAP.banV4 : MAP.banV6;
  return c.family === 4 ? MAP.cidrV4 : MAP.cidrV6;
}

export function isLpm(map: string): boolean {
  return map === MAP.cidrV4 || map === MAP.cidrV6 || map === MAP.allowV4 || map === MAP.allowV6;
}

export function keySize(map: string): number {
  const v6 = map.endsWith('v6');
  return (isLpm(map) ? 4 : 0) + (v6 ? 16 : 4);
}

/** Writes the key of `c` for `map` into `out` at `offset`. */
export function writeKey(map: string, c: Cidr, out: Buffer, offset: number): void {
  if (isLpm(map)) {
    out.writeUInt32LE(c.prefix, offset);
    out.set(c.bytes, offset + 4);
  } else {
    out.set(c.bytes, offset);
  }
}

export function encodeKeys(map: string, cidrs: readonly Cidr[]): Buffer {
  const size = keySize(map);
  const out = Buffer.alloc(size * cidrs.length);
  cidrs.forEach((c, i) => writeKey(map, c, out, i * size));
  return out;
}

/** Key bytes back to a prefix (for dumps). */
export function decodeKey(map: string, keys: Buffer, index: number): Cidr {
  const size = keySize(map);
  const family: Family = map.endsWith('v6') ? 6 : 4;
  const off = index * size;
  if (isLpm(map)) {
    const prefix = keys.readUInt32LE(off);
    return makeCidr(Uint8Array.from(keys.subarray(off + 4, off + size)), family, prefix);
  }
  return makeCidr(Uint8Array.from(keys.subarray(off, off + size)), family, fullLength(family));
}

/** Identity of a kernel entry, independent of jail: `4:198.51.100.0/24`. */
export function entryId(c: Cidr): string {
  return `${c.family}:${c.network}/${c.prefix}`;
}

/**
 * The identity of a kernel entry as a Map key that is cheap to hash, IPv6 as v6Key() makes it.
 * A million text keys cost more than the kernel write, and even heap-number keys are 2-3×
 * slower than small integers, so a single IPv4 address is its 32 bits as a signed int32 (a V8
 * small integer) and an IPv4 prefix a negative number below -2³², disjoint per prefix length.
 */
export type EntryKey = number | string;

export function v4Key(prefix: number, u32: number): number {
  return prefix === 32 ? u32 | 0 : -(prefix + 1) * 4294967296 - u32 - 1;
}

/**
 * An IPv6 entry's key: its 16 bytes as a 16-character latin1 string, then the prefix length.
 * Half the length of hex, and made in one native call: a million IPv6 bans spent more time
 * building and hashing hex keys than writing the kernel map.
 */
export function v6Key(bytes: Uint8Array, offset: number, prefix: number): string {
  return `${Buffer.from(bytes.buffer, bytes.byteOffset + offset, 16).toString('latin1')}/${prefix}`;
}

/** canonical dotted quad → u32, or -1 (leading zeros, out of range, anything else) */
export function dottedToU32(s: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1; // leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}

/**
 * What the kernel keys on, without the general parser: bans arrive by the hundred thousand
 * at start (state restore), and for IPv4 a number is all we need (5 µs → 0.1 µs a ban).
 */
export interface Target {
  readonly key: EntryKey;
  readonly family: Family;
  readonly prefix: number;
  /** IPv4 address as an unsigned 32-bit number (first byte most significant) */
  readonly v4: number;
  /** IPv6 bytes; null for IPv4 */
  readonly v6: Uint8Array | null;
}

function maskV4(u32: number, prefix: number): number {
  return prefix === 0 ? 0 : (u32 & (0xffffffff << (32 - prefix))) >>> 0;
}

export function targetOfCidr(c: Cidr): Target {
  if (c.family === 4) {
    const b = c.bytes;
    const v4 = ((b[0] ?? 0) * 16777216 + (b[1] ?? 0) * 65536 + (b[2] ?? 0) * 256 + (b[3] ?? 0)) >>> 0;
    return { key: v4Key(c.prefix, v4), family: 4, prefix: c.prefix, v4, v6: null };
  }
  return { key: v6Key(c.bytes, 0, c.prefix), family: 6, prefix: c.prefix, v4: 0, v6: c.bytes };
}

/** the EntryKey of entry `index` of a dump, straight from the key bytes (no objects) */
export function rawEntryKey(map: string, keys: Buffer, index: number): EntryKey {
  const size = keySize(map);
  const off = index * size;
  const lpm = isLpm(map);
  const prefix = lpm ? keys.readUInt32LE(off) : map.endsWith('v6') ? 128 : 32;
  if (map.endsWith('v6')) return v6Key(keys, off + (lpm ? 4 : 0), prefix);
  return v4Key(prefix, keys.readUInt32BE(off + (lpm ? 4 : 0)));
}

/**
 * Plain hex-and-colons IPv6 text (what RFC 5952 output looks like) → 16 bytes, or null for
 * anything else (embedded IPv4, zone ids, …), which then takes the general parser.
 */
export function hexIpv6ToBytes(s: string): Uint8Array | null {
  const n = s.length;
  if (n < 2 || n > 39) return null;
  // one pass, no split(): groups into `g` (scratch, reused: this runs a million times on a
  // restore), `gap` = group index where `::` stands
  const g = GROUPS;
  let count = 0;
  let gap = -1;
  let v = 0;
  let digits = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 58) {
      if (i + 1 < n && s.charCodeAt(i + 1) === 58) {
        if (gap >= 0) return null; // a second '::'
        if (digits > 0) {
          if (count === 8) return null;
          g[count++] = v;
        } else if (i !== 0) {
          return null; // ':::' or ':' then '::'
        }
        gap = count;
        v = 0;
        digits = 0;
        i++;
        if (i + 1 < n && s.charCodeAt(i + 1) === 58) return null; // ':::'
        continue;
      }
      if (digits === 0 || count === 8) return null; // empty group, leading ':' or too many
      g[count++] = v;
      v = 0;
      digits = 0;
      if (i + 1 === n) return null; // trailing single ':'
      continue;
    }
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    if (d < 0 || ++digits > 4) return null;
    v = v * 16 + d;
  }
  if (digits > 0) {
    if (count === 8) return null;
    g[count++] = v;
  }
  if (gap < 0 ? count !== 8 : count > 7) return null;
  const out = new Uint8Array(16);
  const tail = gap < 0 ? 0 : count - gap;
  for (let k = 0; k < count; k++) {
    const at = gap >= 0 && k >= gap ? 8 - tail + (k - gap) : k;
    out[at * 2] = g[k]! >> 8;
    out[at * 2 + 1] = g[k]! & 255;
  }
  // IPv4-mapped is IPv4 everywhere (SPEC "Addresses"): leave it to the general parser
  if (out[10] === 0xff && out[11] === 0xff) {
    let zero = true;
    for (let k = 0; k < 10 && zero; k++) zero = out[k] === 0;
    if (zero) return null;
  }
  return out;
}

const GROUPS = new Uint16Array(8);

function maskV6(bytes: Uint8Array, prefix: number): Uint8Array {
  if (prefix >= 128) return bytes;
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i] = bytes[i]! & ((0xff << (8 - bits)) & 0xff);
  }
  return bytes;
}

export function targetOfBan(b: { network: string; prefix: number; family?: Family }): Target | null {
  if (b.family !== 6 && b.prefix >= 0 && b.prefix <= 32) {
    const u = dottedToU32(b.network);
    if (u >= 0) {
      const v4 = maskV4(u, b.prefix);
      return { key: v4Key(b.prefix, v4), family: 4, prefix: b.prefix, v4, v6: null };
    }
  }
  if (b.family !== 4 && b.prefix >= 0 && b.prefix <= 128) {
    const raw = hexIpv6ToBytes(b.network);
    if (raw) {
      const v6 = maskV6(raw, b.prefix);
      return { key: v6Key(v6, 0, b.prefix), family: 6, prefix: b.prefix, v4: 0, v6 };
    }
  }
  const c = parseCidr(`${b.network}/${b.prefix}`);
  return c ? targetOfCidr(c) : null;
}

export function mapOfTarget(t: Pick<Target, 'family' | 'prefix'>): BanMapName {
  if (t.prefix === fullLength(t.family)) return t.family === 4 ? MAP.banV4 : MAP.banV6;
  return t.family === 4 ? MAP.cidrV4 : MAP.cidrV6;
}

export function encodeTargets(map: string, targets: ReadonlyArray<Pick<Target, 'prefix' | 'v4' | 'v6'>>): Buffer {
  const size = keySize(map);
  const lpm = isLpm(map);
  const out = Buffer.alloc(size * targets.length);
  let off = 0;
  for (const t of targets) {
    let at = off;
    if (lpm) {
      out.writeUInt32LE(t.prefix, at);
      at += 4;
    }
    if (t.v6) out.set(t.v6, at);
    else out.writeUInt32BE(t.v4, at);
    off += size;
  }
  return out;
}

export function decodeTarget(map: string, keys: Buffer, index: number): Target {
  const size = keySize(map);
  const off = index * size;
  const lpm = isLpm(map);
  const prefix = lpm ? keys.readUInt32LE(off) : map.endsWith('v6') ? 128 : 32;
  if (!map.endsWith('v6')) {
    const v4 = keys.readUInt32BE(off + (lpm ? 4 : 0));
    return { key: v4Key(prefix, v4), family: 4, prefix, v4, v6: null };
  }
  return targetOfCidr(decodeKey(map, keys, index));
}

/**
 * Epoch seconds ↔ kernel boot-time ns. Both clocks are read together (one native call), so
 * the mapping is exact to the microsecond at write time; see bpf/aegis_common.h for why
 * BOOTTIME.
 */
export class KernelClock {
  readonly #read: () => [bigint, bigint];
  constructor(read: () => [bigint, bigint]) {
    this.#read = read;
  }
  /** boot ns now */
  now(): bigint {
    return this.#read()[0];
  }
  /** null (permanent) → 0; an expiry already past → 1 (an entry that no longer drops) */
  toKernel(expires: number | null): bigint {
    return this.converter()(expires);
  }
  /** one clock reading for a whole batch */
  converter(): (expires: number | null) => bigint {
    const [boot, real] = this.#read();
    const offset = boot - real;
    return (expires) => {
      if (expires === null) return 0n;
      const v = BigInt(Math.round(expires * 1e9)) + offset;
      return v > 0n ? v : 1n;
    };
  }
  /**
   * The same in float ns, for bulk writes: offsets are small, so doubles stay exact to well
   * under a microsecond and a million conversions need no BigInt.
   */
  converterNs(): (expires: number | null) => number {
    const [boot, real] = this.#read();
    const realS = Number(real) / 1e9;
    const bootNs = Number(boot);
    return (expires) => {
      if (expires === null) return 0;
      const v = Math.round((expires - realS) * 1e9 + bootNs);
      return v > 0 ? v : 1;
    };
  }
  nowNs(): number {
    return Number(this.#read()[0]);
  }
  /** 0 → null; else epoch seconds */
  toEpoch(value: bigint): number | null {
    if (value === 0n) return null;
    const [boot, real] = this.#read();
    return Number(real + value - boot) / 1e9;
  }
}

/** `values` in epoch seconds (null = permanent), converted with one clock reading */
export function encodeExpiries(clock: KernelClock, expires: readonly (number | null)[]): Buffer {
  const conv = clock.converterNs();
  const out = Buffer.alloc(VALUE_SIZE * expires.length);
  for (let i = 0; i < expires.length; i++) {
    const v = conv(expires[i] ?? null);
    if (v === 0) continue; // permanent: already zero
    out.writeUInt32LE(v % 4294967296, i * VALUE_SIZE);
    out.writeUInt32LE(Math.floor(v / 4294967296), i * VALUE_SIZE + 4);
  }
  return out;
}

/** value `index` of a dump as float ns */
export function readValueNs(values: Buffer, index: number): number {
  return values.readUInt32LE(index * VALUE_SIZE) + values.readUInt32LE(index * VALUE_SIZE + 4) * 4294967296;
}

export function encodeValues(values: readonly bigint[]): Buffer {
  const out = Buffer.alloc(VALUE_SIZE * values.length);
  values.forEach((v, i) => out.writeBigUInt64LE(v, i * VALUE_SIZE));
  return out;
}
