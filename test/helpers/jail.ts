import type { ResolvedJail } from '../../src/config/types.js';

/** A resolved jail with fail2ban's defaults, for tests that need one without a config dir. */
export function testJail(overrides: Partial<ResolvedJail> = {}): ResolvedJail {
  const name = overrides.name ?? 'sshd';
  return {
    name,
    enabled: true,
    filter: { name: '', file: null, options: {}, failregex: [], ignoreregex: [], prefregex: null, datepattern: null, maxlines: 1, journalmatch: [], json: null, origin: { file: 'x', section: name } },
    logpath: [],
    logpathMode: 'head',
    backend: 'auto',
    logencoding: 'auto',
    maxretry: 5,
    findtime: 600,
    bantime: 600,
    increment: { enabled: false, factor: 1, formula: null, multipliers: [], maxtime: null, rndtime: null, overalljails: false },
    ignoreip: [],
    ignoreHostnames: [],
    ignoreself: true,
    ignorecommand: null,
    maxmatches: 5,
    usedns: 'warn',
    banPrefixV4: 32,
    banPrefixV6: 128,
    actions: [],
    origin: { file: 'jail.local', line: 1 },
    ...overrides,
  };
}
