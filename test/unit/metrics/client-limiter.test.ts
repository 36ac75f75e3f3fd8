import { describe, expect, it } from 'vitest';
import { ClientLimiter } from '../../../src/metrics/client-limiter.js';

describe('ClientLimiter', () => {
  it('allows a burst up to the per-minute limit, then refuses with the seconds until the next slot', () => {
    let now = 0;
    const l = new ClientLimiter(6, 100, () => now);
    for (let i = 0; i < 6; i++) expect(l.take('a').allowed).toBe(true);
    expect(l.take('a')).toEqual({ allowed: false, retryAfterSeconds: 10 });
    now += 4_000;
    expect(l.take('a')).toEqual({ allowed: false, retryAfterSeconds: 6 });
    now += 6_000;
    expect(l.take('a').allowed).toBe(true);
    expect(l.take('b').allowed).toBe(true);
  });

  it('never remembers more clients than its bound', () => {
    const l = new ClientLimiter(1, 50, () => 0);
    for (let i = 0; i < 10_000; i++) l.take(`198.18.${i >> 8}.${i & 255}`);
    expect(l.size).toBe(50);
  });

  it('applies a new limit at once', () => {
    let now = 0;
    const l = new ClientLimiter(60, 10, () => now);
    l.setLimit(1);
    expect(l.take('a').allowed).toBe(true);
    expect(l.take('a').allowed).toBe(false);
    now += 60_000;
    expect(l.take('a').allowed).toBe(true);
  });
});
