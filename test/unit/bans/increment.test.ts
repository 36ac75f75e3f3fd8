import { describe, expect, it } from 'vitest';
import { createBantimeCalculator } from '../../../src/bans/increment.js';
import { compileFormula } from '../../../src/bans/formula.js';
import type { BantimeIncrement } from '../../../src/config/types.js';

const base: BantimeIncrement = {
  enabled: true,
  factor: 1,
  formula: null,
  multipliers: [],
  maxtime: null,
  rndtime: null,
  overalljails: false,
};

function calc(inc: Partial<BantimeIncrement>, bantime = 600) {
  const r = createBantimeCalculator(bantime, { ...base, ...inc }, () => 0.5);
  if (!r.ok) throw new Error(r.message);
  return r.calculator;
}

describe('bantime.increment', () => {
  it('the first ban uses bantime; later ones double with fail2ban\'s default formula', () => {
    const c = calc({});
    expect([0, 1, 2, 3].map((n) => c.bantime(n))).toEqual([600, 1200, 2400, 4800]);
  });

  it('off means bantime every time, and a permanent ban stays permanent', () => {
    expect(calc({ enabled: false }).bantime(5)).toBe(600);
    expect(calc({}, -1).bantime(5)).toBe(-1);
  });

  it('multipliers pick by ban count, the last one repeating, times factor', () => {
    const c = calc({ multipliers: [1, 5, 30], factor: 2 });
    expect([1, 2, 3, 9].map((n) => c.bantime(n))).toEqual([600 * 2 * 5, 600 * 2 * 30, 600 * 2 * 30, 600 * 2 * 30]);
  });

  it('maxtime caps, then rndtime adds its random part (as fail2ban orders them)', () => {
    const c = calc({ maxtime: 3600, rndtime: 100 });
    expect(c.bantime(10)).toBe(3650);
  });

  it('the formula from fail2ban\'s jail.conf evaluates like Python', () => {
    const c = calc({ formula: 'ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)', factor: 1 });
    expect(c.bantime(1)).toBe(Math.round(600 * Math.exp(2) / Math.exp(1)));
  });

  it('a formula that is not arithmetic is refused at load, naming what is wrong', () => {
    const r = compileFormula('__import__("os").system("id")');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/unsupported bantime.formula/);
    expect(createBantimeCalculator(600, { ...base, formula: 'ban.Tme * 2' }).ok).toBe(false);
  });

  it('Python operator rules: ** binds tighter than unary minus, // floors, conditional expressions', () => {
    const f = (s: string) => {
      const r = compileFormula(s);
      if (!r.ok) throw new Error(r.message);
      return r.formula({ 'ban.Time': 10, 'ban.Count': 3, 'ban.Factor': 1, banFactor: 1 });
    };
    expect(f('-2 ** 2')).toBe(-4);
    expect(f('-7 // 2')).toBe(-4);
    expect(f('1 << 3')).toBe(8);
    expect(f('ban.Time if ban.Count < 2 else ban.Time * 100')).toBe(1000);
    expect(f('max(1, min(5, ban.Count))')).toBe(3);
  });
});
