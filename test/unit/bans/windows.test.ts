import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { FailureWindows } from '../../../src/bans/windows.js';

interface Case {
  name: string;
  maxretry: number;
  findtime: number;
  events: Array<[number, string]>;
  bans: Array<[number, string, number]>;
}
const cases = JSON.parse(readFileSync(new URL('../../fixtures/bans/cases.json', import.meta.url), 'utf8')) as Case[];

describe('sliding windows (decisions as data: test/fixtures/bans/cases.json)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const w = new FailureWindows({ maxretry: c.maxretry, findtime: c.findtime });
      const bans: Array<[number, string, number]> = [];
      for (const [t, ip] of c.events) {
        const r = w.record(ip, t);
        if (r.isDue) bans.push([t, ip, r.count]);
      }
      expect(bans).toEqual(c.bans);
    });
  }
});

describe('window memory', () => {
  it('a spray of distinct addresses stays within the entry bound', () => {
    const w = new FailureWindows({ maxretry: 5, findtime: 600, maxEntries: 1000 });
    for (let i = 0; i < 50_000; i++) w.record(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 1000 + i / 1000);
    expect(w.size).toBe(1000);
    expect(w.evicted).toBe(49_000);
  });

  it('an attacker who fails again before maxEntries other addresses do is not evicted by a spray', () => {
    const w = new FailureWindows({ maxretry: 5, findtime: 600, maxEntries: 100 });
    let banned = false;
    for (let i = 0; i < 1000; i++) {
      w.record(`198.18.${(i >> 8) & 255}.${i & 255}`, 1000);
      if (i % 50 === 0) banned = w.record('203.0.113.66', 1000 + i / 100).isDue || banned;
    }
    expect(banned).toBe(true);
  });

  it('forget() clears an address (manual unban) and sweep() drops windows older than findtime', () => {
    const w = new FailureWindows({ maxretry: 3, findtime: 60 });
    w.record('198.51.100.1', 0);
    w.record('198.51.100.1', 1);
    w.forget('198.51.100.1');
    expect(w.record('198.51.100.1', 2).count).toBe(1);
    w.record('198.51.100.2', 100);
    expect(w.currentlyFailed(120)).toBe(1);
    expect(w.sweep(120)).toBe(1);
    expect(w.size).toBe(1);
  });
});
