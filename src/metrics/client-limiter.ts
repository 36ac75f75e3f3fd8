/**
 * Per-client scrape limiter for the metrics endpoint: a token bucket per client address
 * (capacity = the per-minute limit, refilled continuously), held in an LRU of bounded size so an
 * address spray costs a fixed amount of memory. An evicted client simply starts with a full
 * bucket again: under a spray large enough to evict, the allowlist and the connection cap are
 * what protect the daemon, not this table.
 */
import { LRUCache } from 'lru-cache';

export const DEFAULT_LIMITER_CLIENTS = 4096;

interface Bucket {
  tokens: number;
  /** ms, monotonic */
  at: number;
}

export type LimitDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export class ClientLimiter {
  #perMinute: number;
  readonly #buckets: LRUCache<string, Bucket>;
  readonly #now: () => number;

  constructor(perMinute: number, maxClients = DEFAULT_LIMITER_CLIENTS, now: () => number = () => performance.now()) {
    this.#perMinute = perMinute;
    this.#buckets = new LRUCache<string, Bucket>({ max: maxClients });
    this.#now = now;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** A reload may change the limit; buckets are kept but capped to the new capacity. */
  setLimit(perMinute: number): void {
    this.#perMinute = perMinute;
  }

  take(client: string): LimitDecision {
    const now = this.#now();
    const cap = this.#perMinute;
    const ratePerMs = cap / 60_000;
    const b = this.#buckets.get(client) ?? { tokens: cap, at: now };
    b.tokens = Math.min(cap, b.tokens + (now - b.at) * ratePerMs);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      this.#buckets.set(client, b);
      return { allowed: true };
    }
    this.#buckets.set(client, b);
    const waitMs = (1 - b.tokens) / ratePerMs;
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
  }
}
