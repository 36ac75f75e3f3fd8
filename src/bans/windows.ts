/**
 * Per jail × IP sliding windows of failure times, on log time (not wall time): an IP is due for
 * a ban when `maxretry` failures fall within `findtime` seconds of each other.
 *
 * Memory is bounded whatever the input: at most `maxEntries` IPs are tracked per jail (LRU, so
 * a spray of one-off addresses evicts other one-off addresses, not an attacker who keeps
 * failing), and each IP holds at most `maxretry` timestamps. Evictions are counted so an
 * operator can see a spray pushing the bound.
 */
import { LRUCache } from 'lru-cache';

/** Default cap on tracked IPs per jail: ~340 bytes each measured, so ~32 MiB per jail at most (README). */
export const DEFAULT_WINDOW_ENTRIES = 100_000;

export interface WindowSettings {
  readonly maxretry: number;
  /** seconds */
  readonly findtime: number;
  readonly maxEntries?: number;
}

export interface RecordResult {
  /** failures of this IP inside the window, after this one */
  readonly count: number;
  /** the window reached maxretry: the IP is due for a ban and its window was reset */
  readonly isDue: boolean;
}

export class FailureWindows {
  readonly #settings: WindowSettings;
  readonly #cache: LRUCache<string, number[]>;
  #evicted = 0;

  constructor(settings: WindowSettings) {
    this.#settings = settings;
    this.#cache = new LRUCache<string, number[]>({
      max: settings.maxEntries ?? DEFAULT_WINDOW_ENTRIES,
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') this.#evicted++;
      },
    });
  }

  get settings(): WindowSettings {
    return this.#settings;
  }

  /** Record `attempts` failures of `ip` at log time `time` (epoch s). */
  record(ip: string, time: number, attempts = 1): RecordResult {
    const { maxretry, findtime } = this.#settings;
    let times = this.#cache.get(ip);
    if (!times) {
      times = [];
      this.#cache.set(ip, times);
    }
    // Lines may arrive slightly out of order (several files): kept sorted by insertion from
    // the end (in order, the usual case, costs one comparison); keep the newest maxretry, then
    // drop what lies outside findtime of the newest.
    for (let i = 0; i < attempts; i++) {
      let at = times.length;
      times.push(time);
      while (at > 0 && (times[at - 1] as number) > time) {
        times[at] = times[at - 1] as number;
        at--;
      }
      times[at] = time;
    }
    if (times.length > maxretry) times.splice(0, times.length - maxretry);
    const newest = times[times.length - 1] ?? time;
    let drop = 0;
    while (drop < times.length && (times[drop] ?? 0) <= newest - findtime) drop++;
    if (drop > 0) times.splice(0, drop);
    const count = times.length;
    if (count >= maxretry) {
      this.#cache.delete(ip);
      return { count, isDue: true };
    }
    return { count, isDue: false };
  }

  /** Forget an IP (manual unban: old failures must not re-ban it at once). */
  forget(ip: string): void {
    this.#cache.delete(ip);
  }

  /** IPs with at least one failure inside findtime of `now` (fail2ban "Currently failed"). */
  currentlyFailed(now: number): number {
    const horizon = now - this.#settings.findtime;
    let n = 0;
    for (const times of this.#cache.values()) {
      const last = times[times.length - 1];
      if (last !== undefined && last > horizon) n++;
    }
    return n;
  }

  /** Drop windows whose newest failure is older than findtime; keeps the table lean. */
  sweep(now: number): number {
    const horizon = now - this.#settings.findtime;
    const stale: string[] = [];
    for (const [ip, times] of this.#cache.entries()) {
      const last = times[times.length - 1];
      if (last === undefined || last <= horizon) stale.push(ip);
    }
    for (const ip of stale) this.#cache.delete(ip);
    return stale.length;
  }

  get size(): number {
    return this.#cache.size;
  }

  get evicted(): number {
    return this.#evicted;
  }

  /** for reload: an unchanged jail keeps its windows */
  moveTo(other: FailureWindows): void {
    // least recent first, so the LRU order survives the move
    for (const ip of this.#cache.rkeys()) {
      const times = this.#cache.peek(ip);
      if (times) other.#cache.set(ip, times);
    }
  }
}
