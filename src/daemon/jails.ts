/**
 * A jail at run time: its resolved config plus what the main thread keeps for it — windows,
 * ignore list, bantime calculator, counters. Built whole from a ResolvedConfig so a reload can
 * build the next set, validate it, and swap (keeping windows and counters of unchanged jails).
 */
import { createHash } from 'node:crypto';
import type { Diagnostic, ResolvedConfig, ResolvedJail } from '../config/types.js';
import { ErrorCode } from '../errors.js';
import { FailureWindows } from '../bans/windows.js';
import { IgnoreList, resolveHostnames } from '../bans/ignore.js';
import { HostMemo } from './host-memo.js';
import { createBantimeCalculator, type BantimeCalculator } from '../bans/increment.js';
import { compileFilter } from '../engine/match/filter.js';
import type { CompiledFilter, LineMatcher } from '../engine/types.js';
import type { JailFilter } from '../engine/pool.js';

export class JailRuntime {
  readonly jail: ResolvedJail;
  readonly filter: JailFilter;
  readonly compiled: CompiledFilter;
  readonly ignore: IgnoreList;
  /** parsed and checked failing hosts, by the text the filter found */
  readonly hosts: HostMemo;
  readonly bantime: BantimeCalculator;
  /** the bantime of a ban after `prior` bans (bantime.increment); one function for all decisions */
  readonly bantimeFor: (prior: number) => number;
  /** stable fingerprint of everything that defines the jail: unchanged on reload = keep state */
  readonly fingerprint: string;
  windows: FailureWindows;
  totalFailed = 0;
  /** multi-line filters keep their buffer per source, on the main thread */
  readonly multilineMatchers = new Map<string, LineMatcher>();
  /** "now" (epoch s) for the multi-line matchers, set per batch */
  clock = Date.now() / 1000;

  constructor(init: {
    jail: ResolvedJail;
    compiled: CompiledFilter;
    ignore: IgnoreList;
    bantime: BantimeCalculator;
    fingerprint: string;
  }) {
    this.jail = init.jail;
    this.compiled = init.compiled;
    this.ignore = init.ignore;
    this.hosts = new HostMemo(init.jail.name, init.ignore, { v4: init.jail.banPrefixV4, v6: init.jail.banPrefixV6 });
    this.bantime = init.bantime;
    this.bantimeFor = (prior) => init.bantime.bantime(prior);
    this.fingerprint = init.fingerprint;
    this.filter = { jail: init.jail.name, key: createHash('sha256').update(JSON.stringify(init.jail.filter)).digest('hex').slice(0, 24), spec: init.jail.filter };
    this.windows = new FailureWindows({ maxretry: init.jail.maxretry, findtime: init.jail.findtime });
  }

  get name(): string {
    return this.jail.name;
  }

  /** carry windows and counters over from the same jail before a reload */
  adoptState(prev: JailRuntime): void {
    if (prev.fingerprint === this.fingerprint) {
      this.windows = prev.windows;
    }
    this.totalFailed = prev.totalFailed;
  }
}

/**
 * What a jail needs beyond its resolved config: the filter compiled for this engine and the
 * bantime calculator. Shared with `aegis-ban check`, so that check passes exactly when the
 * daemon would start.
 */
export function compileJail(jail: ResolvedJail): {
  compiled: CompiledFilter | null;
  calculator: BantimeCalculator | null;
  diagnostics: Diagnostic[];
} {
  const { filter, diagnostics } = compileFilter(jail.filter);
  const calc = createBantimeCalculator(jail.bantime, jail.increment);
  if (!calc.ok) {
    diagnostics.push({
      severity: 'error',
      code: ErrorCode.CONFIG_VALUE,
      file: jail.origin.file,
      line: jail.origin.line,
      section: jail.name,
      key: 'bantime.formula',
      message: calc.message,
    });
  }
  return { compiled: filter, calculator: calc.ok ? calc.calculator : null, diagnostics };
}

/** Build runtimes for every enabled jail; every problem is a diagnostic, nothing throws. */
export async function buildJails(config: ResolvedConfig): Promise<{ jails: JailRuntime[]; diagnostics: Diagnostic[] }> {
  const diagnostics: Diagnostic[] = [];
  const jails: JailRuntime[] = [];
  for (const jail of config.jails) {
    if (!jail.enabled) continue;
    const { compiled, calculator, diagnostics: jd } = compileJail(jail);
    diagnostics.push(...jd);
    if (!compiled || !calculator) continue;
    const resolved = await resolveHostnames(jail.ignoreHostnames);
    for (const name of resolved.failed) {
      diagnostics.push({
        severity: 'warning',
        code: ErrorCode.CONFIG_VALUE,
        file: jail.origin.file,
        section: jail.name,
        key: 'ignoreip',
        message: `hostname "${name}" does not resolve; ignored until the next reload`,
      });
    }
    const ignore = new IgnoreList({
      ignoreip: jail.ignoreip,
      resolved: resolved.cidrs,
      ignoreself: jail.ignoreself,
      ignorecommand: jail.ignorecommand,
    });
    const fingerprint = createHash('sha256').update(JSON.stringify({ ...jail, origin: null })).digest('hex');
    jails.push(new JailRuntime({ jail, compiled, ignore, bantime: calculator, fingerprint }));
  }
  return { jails, diagnostics };
}
