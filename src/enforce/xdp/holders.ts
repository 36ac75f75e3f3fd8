/**
 * Which jails hold each kernel entry. The kernel keys by prefix only; several jails may ban the
 * same prefix, so the kernel value is the longest expiry of its holders and the key goes when
 * the last holder lets go (Enforcer contract).
 *
 * Sized for a million bans: one flat object per entry (the first jail inline, further jails in
 * a rarely used array) keyed by a number for IPv4, so a state restore does not drown in
 * allocations.
 */
import type { EnforcedBan } from '../enforcer.js';
import { MAP, dottedToU32, mapOfTarget, targetOfBan, type BanMapName, type EntryKey, type Target } from './codec.js';

export interface Holder {
  readonly key: EntryKey;
  readonly map: BanMapName;
  readonly prefix: number;
  readonly v4: number;
  readonly v6: Uint8Array | null;
  jail: string;
  /** epoch seconds; null = permanent */
  expires: number | null;
  /** further jails holding the same entry */
  more: Array<[string, number | null]> | null;
  /** generation mark, to dedupe and sweep without extra Sets */
  stamp: number;
  /** generation mark of the last kernel walk that found this entry (reconcile) */
  seen: number;
}

export function longest(h: Holder): number | null {
  if (h.expires === null) return null;
  let best = h.expires;
  if (h.more) {
    for (const [, e] of h.more) {
      if (e === null) return null;
      if (e > best) best = e;
    }
  }
  return best;
}

export type Release =
  | { readonly kind: 'removed'; readonly holder: Holder }
  | { readonly kind: 'changed'; readonly holder: Holder }
  | { readonly kind: 'unchanged' }
  /** not held: an entry adopted from the kernel before the first reconcile */
  | { readonly kind: 'unknown'; readonly target: Target }
  | { readonly kind: 'invalid' };

export class HolderTable {
  readonly #byKey = new Map<EntryKey, Holder>();
  /** entries first seen in the generation of the last holdAt (lets sweep skip a full walk) */
  #genStamp = 0;
  #genCount = 0;

  get size(): number {
    return this.#byKey.size;
  }

  get(key: EntryKey): Holder | undefined {
    return this.#byKey.get(key);
  }

  values(): IterableIterator<Holder> {
    return this.#byKey.values();
  }

  clear(): void {
    this.#byKey.clear();
  }

  /** record `b`; null when the ban's prefix does not parse. `created` for a new entry. */
  hold(b: EnforcedBan): { holder: Holder; created: boolean } | null {
    // the common case, a single IPv4 address, without the Target object in between
    const u = b.family === 4 && b.prefix === 32 ? dottedToU32(b.network) : -1;
    const key = u >= 0 ? u | 0 : undefined;
    let h = key === undefined ? undefined : this.#byKey.get(key);
    if (!h && key !== undefined) {
      const holder: Holder = { key, map: MAP.banV4, prefix: 32, v4: u, v6: null, jail: b.jail, expires: b.expires, more: null, stamp: 0, seen: 0 };
      this.#byKey.set(key, holder);
      return { holder, created: true };
    }
    if (!h) {
      const t = targetOfBan(b);
      if (!t) return null;
      h = this.#byKey.get(t.key);
      if (!h) {
        const holder: Holder = { key: t.key, map: mapOfTarget(t), prefix: t.prefix, v4: t.v4, v6: t.v6, jail: b.jail, expires: b.expires, more: null, stamp: 0, seen: 0 };
        this.#byKey.set(t.key, holder);
        return { holder, created: true };
      }
    }
    if (h.jail === b.jail) {
      h.expires = b.expires;
    } else {
      h.more ??= [];
      const pair = h.more.find((p) => p[0] === b.jail);
      if (pair) pair[1] = b.expires;
      else h.more.push([b.jail, b.expires]);
    }
    return { holder: h, created: false };
  }

  /**
   * Reconcile: the first sighting of an entry in generation `stamp` replaces its jails, later
   * ones add to them. Entries already held are updated in place, so a periodic reconcile of a
   * million bans allocates next to nothing. Follow with sweep(stamp).
   */
  holdAt(b: EnforcedBan, stamp: number): Holder | null {
    const r = this.hold(b);
    if (!r) return null;
    const h = r.holder;
    if (stamp !== this.#genStamp) {
      this.#genStamp = stamp;
      this.#genCount = 0;
    }
    if (h.stamp !== stamp) {
      h.jail = b.jail;
      h.expires = b.expires;
      h.more = null;
      h.stamp = stamp;
      this.#genCount++;
    }
    return h;
  }

  /** drop every entry not held in generation `stamp`; returns them */
  sweep(stamp: number): Holder[] {
    const gone: Holder[] = [];
    if (stamp === this.#genStamp && this.#genCount === this.#byKey.size) return gone; // all held
    for (const [k, h] of this.#byKey) {
      if (h.stamp !== stamp) {
        gone.push(h);
        this.#byKey.delete(k);
      }
    }
    return gone;
  }

  release(b: EnforcedBan): Release {
    const t = targetOfBan(b);
    if (!t) return { kind: 'invalid' };
    const h = this.#byKey.get(t.key);
    if (!h) return { kind: 'unknown', target: t };
    const before = longest(h);
    if (h.jail === b.jail) {
      const next = h.more?.shift();
      if (!next) {
        this.#byKey.delete(t.key);
        return { kind: 'removed', holder: h };
      }
      h.jail = next[0];
      h.expires = next[1];
      if (h.more?.length === 0) h.more = null;
    } else {
      const i = h.more?.findIndex((p) => p[0] === b.jail) ?? -1;
      if (i < 0) return { kind: 'unchanged' };
      h.more!.splice(i, 1);
      if (h.more!.length === 0) h.more = null;
    }
    return longest(h) === before ? { kind: 'unchanged' } : { kind: 'changed', holder: h };
  }
}
