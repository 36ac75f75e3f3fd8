/**
 * The work of `aegis-ban check` (commands/check.ts), loaded only when that command runs: the
 * config resolver and the jail compiler are most of the CLI's code, which `aegis-ban status`
 * and the other control commands have no use for.
 */
import { loadAction } from '../config/actions.js';
import { dumpConfig } from '../config/dump.js';
import { resolveConfig } from '../config/resolve.js';
import { formatDiagnostic, type Diagnostic, type ResolvedConfig } from '../config/types.js';
import { compileJail } from '../daemon/jails.js';
import type { CheckArgs } from './commands/check.js';
import { ExitCode } from './exit-codes.js';
import { fail, printJson } from './output.js';

/**
 * What aegisd checks beyond resolving, so that `check` passes exactly when the daemon would
 * start: every enabled jail's regexes translate, its bantime formula compiles, and under the
 * `action` enforcer every action.d action loads. (Host names in ignoreip are not looked up.)
 */
function validateLikeTheDaemon(config: ResolvedConfig): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const jail of config.jails) {
    if (!jail.enabled) continue;
    out.push(...compileJail(jail).diagnostics);
    if (config.daemon.enforcer === 'action') {
      for (const spec of jail.actions) {
        if (spec.name.endsWith('.py')) continue;
        out.push(...loadAction(config.configDir, jail, spec).diagnostics);
      }
    }
  }
  return out;
}

export function runCheck(argv: CheckArgs): void {
  const resolved = resolveConfig(argv['config-dir']);
  let config = resolved.config;
  const diagnostics = [...resolved.diagnostics];
  if (config !== null) {
    const more = validateLikeTheDaemon(config);
    diagnostics.push(...more);
    if (more.some((d) => d.severity === 'error')) config = null;
  }
  const errors = diagnostics.filter((d) => d.severity === 'error');
  const warnings = diagnostics.filter((d) => d.severity === 'warning');
  for (const w of warnings) process.stderr.write(`aegis-ban: warning: ${formatDiagnostic(w)}\n`);
  if (config === null || errors.length > 0) {
    // every error one line on stderr, in order; under --json the first one is also on stdout
    const first = errors[0];
    fail({ json: argv.json }, ExitCode.USAGE, first?.code ?? 'AEGIS_ERR_CONFIG_VALUE', first ? formatDiagnostic(first) : 'configuration rejected');
    for (const e of errors.slice(1)) process.stderr.write(`aegis-ban: ${formatDiagnostic(e)}\n`);
    return;
  }
  if (argv.dump) printJson(dumpConfig(config));
  else if (argv.json) {
    printJson({
      ok: true,
      configDir: config.configDir,
      jails: config.jails.filter((j) => j.enabled).map((j) => j.name),
      warnings: warnings.map(formatDiagnostic),
    });
  } else {
    const enabled = config.jails.filter((j) => j.enabled).map((j) => j.name);
    process.stdout.write(`OK: ${config.configDir}: ${enabled.length} jail(s) enabled${enabled.length ? `: ${enabled.join(', ')}` : ''}${warnings.length ? `, ${warnings.length} warning(s)` : ''}\n`);
  }
  process.exitCode = ExitCode.OK;
}
