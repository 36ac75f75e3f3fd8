/**
 * What the pipeline needs about a failing host string — the parsed address, whether the jail
 * ignores it, its ban-history keys, what a ban of it covers — worked out once and reused: a
 * busy log repeats the same few thousand offenders, and parsing, matching the ignore list and
 * building keys cost more than the rest of a failure's path. Bounded: a spray of distinct
 * addresses only refills it.
 */
import { addressCidr, parseAddress, type Address, type Cidr } from '../net/address.js';
import type { IgnoreList } from '../bans/ignore.js';
import { banKeys, type BanKeys } from '../bans/manager.js';

export interface HostInfo {
  readonly addr: Address;
  /** why the jail never bans it, or null */
  readonly ignored: string | null;
  /** what a ban of it covers: the address, or its network under the jail's ban prefix */
  readonly cidr: Cidr;
  /** its ban's and ban histories' keys (string objects kept: their hashes are computed once) */
  readonly keys: BanKeys;
}

export interface BanPrefixes {
  readonly v4: number;
  readonly v6: number;
}

/** ~400 bytes each: a few MiB per jail at most */
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
      if (addr === null) info = null;
      else {
        const cidr = addressCidr(addr, addr.family === 4 ? this.#prefixes.v4 : this.#prefixes.v6);
        info = { addr, ignored: this.#ignore.reason(addr), cidr, keys: banKeys(this.#jail, addr.text, cidr) };
      }
      if (this.#hosts.size >= MAX_HOSTS) this.#hosts.clear();
      this.#hosts.set(host, info);
    }
    return info;
  }
}
