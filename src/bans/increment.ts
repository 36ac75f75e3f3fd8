/**
 * bantime.increment, as fail2ban's observer (observer.py, jail.py) computes it: the n-th ban of an address (n counted
 * from the ban history, per jail or over all jails) lasts longer. The first ban uses bantime.
 */
import type { BantimeIncrement } from '../config/types.js';
import { compileFormula, type CompiledFormula } from './formula.js';

export interface BantimeCalculator {
  /** seconds (-1 permanent) for a ban of an address already banned `priorBans` times */
  bantime(priorBans: number): number;
}

/** fail2ban's default formula when `bantime.formula` is not set */
const DEFAULT_FORMULA = 'ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor';

export function createBantimeCalculator(
  bantime: number,
  inc: BantimeIncrement,
  random: () => number = Math.random,
): { ok: true; calculator: BantimeCalculator } | { ok: false; message: string } {
  let formula: CompiledFormula | null = null;
  if (inc.enabled && inc.multipliers.length === 0) {
    const compiled = compileFormula(inc.formula ?? DEFAULT_FORMULA);
    if (!compiled.ok) return compiled;
    formula = compiled.formula;
  }
  return {
    ok: true,
    calculator: {
      bantime(priorBans: number): number {
        if (bantime < 0 || !inc.enabled || priorBans <= 0) return bantime;
        let t: number;
        if (inc.multipliers.length > 0) {
          const m = inc.multipliers[Math.min(priorBans, inc.multipliers.length - 1)] ?? 1;
          t = bantime * inc.factor * m;
        } else {
          t = Math.max(bantime, (formula as CompiledFormula)({
            'ban.Time': bantime,
            'ban.Count': priorBans,
            'ban.Factor': inc.factor,
            banFactor: inc.factor,
          }));
        }
        // fail2ban caps with maxtime first, then adds the random part
        if (inc.maxtime !== null && inc.maxtime > 0 && t > inc.maxtime) t = inc.maxtime;
        if (inc.rndtime !== null && inc.rndtime > 0) t += random() * inc.rndtime;
        return Math.max(1, Math.round(t));
      },
    },
  };
}
