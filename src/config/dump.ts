/**
 * `aegis-ban check --dump`: the resolved jails in the SPEC's shape. Regexes are in fail2ban's
 * own form (as `fail2ban-client -d` prints them); logpath globs are expanded now.
 */
import { expandGlob } from './glob.js';
import type { ResolvedConfig, ResolvedJail } from './types.js';

export function dumpJail(j: ResolvedJail): Record<string, unknown> {
  const logpath: string[] = [];
  for (const g of j.logpath) for (const f of expandGlob(g)) if (!logpath.includes(f)) logpath.push(f);
  return {
    name: j.name,
    enabled: j.enabled,
    maxretry: j.maxretry,
    findtime: j.findtime,
    bantime: j.bantime,
    logpath,
    failregex: [...j.filter.failregex],
    ignoreregex: [...j.filter.ignoreregex],
    prefregex: j.filter.prefregex,
    actions: j.actions.map((a) => ({ name: a.name, params: { ...a.params } })),
    'bantime.increment': {
      enabled: j.increment.enabled,
      factor: j.increment.factor,
      formula: j.increment.formula,
      multipliers: [...j.increment.multipliers],
      maxtime: j.increment.maxtime,
      rndtime: j.increment.rndtime,
      overalljails: j.increment.overalljails,
    },
    filter: j.filter.name,
    datepattern: j.filter.datepattern,
    maxlines: j.filter.maxlines,
    journalmatch: [...j.filter.journalmatch],
    json: j.filter.json,
    backend: j.backend,
    logpath_globs: [...j.logpath],
    ignoreip: [...j.ignoreip, ...j.ignoreHostnames],
    ignoreself: j.ignoreself,
    ignorecommand: j.ignorecommand,
    maxmatches: j.maxmatches,
    usedns: j.usedns,
    ban_prefix_v4: j.banPrefixV4,
    ban_prefix_v6: j.banPrefixV6,
  };
}

/** SPEC "Offline tools": `{"jails": [...]}`; fields beyond the SPEC's are extra, never fewer. */
export function dumpConfig(config: ResolvedConfig): { jails: Array<Record<string, unknown>> } {
  return { jails: config.jails.map(dumpJail) };
}
