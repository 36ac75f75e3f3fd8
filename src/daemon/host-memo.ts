/**
 * What the pipeline needs about a failing host string — the parsed address, whether the jail
 * ignores it, its ban-history key, and at its first ban what the ban covers and is filed
 * under — worked out once and reused: a busy log repeats the same few thousand offenders, and
 * parsing, matching the ignore list and building keys cost more than the rest of a failure's
 * path. Bounded: a spray of distinct addresses only refills it.
 */
import { addressCidr, parseAddress, type Address, type Cidr } from '../net/address.js';
import type { IgnoreList } from '../bans/ignore.js';
import { banKeys, historyKey, type BanKeys } from '../bans/manager.js';

export class HostInfo {
  readonly addr: Address;
  /** why the jail never bans it, or null */
  readonly ignored: string | null;
  /**
   * the key of its ban history in this jail, looked up for every failure (one string object:
   * its hash is computed once)
   */
  readonly historyKey: string;
  readonly #jail: string;
  readonly #prefix: number;
  #target: BanTarget | null = null;

  constructor(jail: string, addr: Address, ignored: string | null, prefix: number) {
    this.addr = addr;
    this.ignored = ignored;
    this.historyKey = historyKey(jail, addr.text);
    this.#jail = jail;
    this.#prefix = prefix;
  }

  /**
   * what a ban of it covers and the keys the ban is filed under, worked out at its first ban: a
   * spray of one-off addresses never needs them
   */
  get target(): BanTarget {
    if (this.#target === null) {
      const cidr = addressCidr(this.addr, this.#prefix);
      this.#target = { cidr, keys: banKeys(this.#jail, this.addr.text, cidr, this.historyKey) };
    }
    return this.#target;
  }
}

export interface BanTarget {
  /** the address, or its network under the jail's ban prefix */
  readonly cidr: Cidr;
  readonly keys: BanKeys;
}

export interface BanPrefixes {
  readonly v4: number;
  readonly v6: number;
}

/** a few hundred bytes each: a few MiB per jail at most */
const MAX_HOSTS = 16_384;

export class HostMemo {
  readonly #jail: string;
  readonly #ignore: IgnoreList;
  readonly #prefixes: BanPrefixes;
  readonly #hosts = new Map<string, HostInfo | null>();

  constructor(jail: string, ignore: IgnoreList, prefixes: BanPrefixes) {
    this.#jail = jail;
    this.#ignore = ignore;
    this.#prefixes = prefixes;
  }

  get size(): number {
    return this.#hosts.size;
  }

  /** null when `host` is not an IP address */
  get(host: string): HostInfo | null {
    let info = this.#hosts.get(host);
    if (info === undefined) {
      const addr = parseAddress(host);
      const prefix = addr?.family === 4 ? this.#prefixes.v4 : this.#prefixes.v6;
      info = addr === null ? null : new HostInfo(this.#jail, addr, this.#ignore.reason(addr), prefix);
      if (this.#hosts.size >= MAX_HOSTS) this.#hosts.clear();
      this.#hosts.set(host, info);
    }
    return info;
  }
}
