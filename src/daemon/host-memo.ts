/**
 * What the pipeline needs about a failing host string — the parsed address, whether the jail
 * ignores it, its ban-history key — worked out once and reused: a busy log repeats the same few
 * thousand offenders, and parsing, matching the ignore list and building the key cost more
 * than the rest of a failure's path. Bounded: a spray of distinct addresses only refills it.
 */
import { parseAddress, type Address } from '../net/address.js';
import type { IgnoreList } from '../bans/ignore.js';
import { historyKey } from '../bans/manager.js';

export interface HostInfo {
  readonly addr: Address;
  /** why the jail never bans it, or null */
  readonly ignored: string | null;
  /** the key of its ban history in this jail (one string object: its hash is computed once) */
  readonly historyKey: string;
}

/** ~200 bytes each: a few MiB per jail at most */
const MAX_HOSTS = 16_384;

export class HostMemo {
  readonly #jail: string;
  readonly #ignore: IgnoreList;
  readonly #hosts = new Map<string, HostInfo | null>();

  constructor(jail: string, ignore: IgnoreList) {
    this.#jail = jail;
    this.#ignore = ignore;
  }

  get size(): number {
    return this.#hosts.size;
  }

  /** null when `host` is not an IP address */
  get(host: string): HostInfo | null {
    let info = this.#hosts.get(host);
    if (info === undefined) {
      const addr = parseAddress(host);
      info = addr === null ? null : { addr, ignored: this.#ignore.reason(addr), historyKey: historyKey(this.#jail, addr.text) };
      if (this.#hosts.size >= MAX_HOSTS) this.#hosts.clear();
      this.#hosts.set(host, info);
    }
    return info;
  }
}
