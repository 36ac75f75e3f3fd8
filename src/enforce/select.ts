/**
 * Which enforcer runs. An explicit `--enforcer` (or `[daemon] enforcer`) must start or the
 * daemon exits 1 with what failed and how to fix it; the default tries XDP and falls back to
 * `log` with a loud warning (SPEC "Enforcement"). --dry-run never enforces.
 */
import type { Logger } from 'pino';
import type { EnforcerKind, ResolvedConfig } from '../config/types.js';
import { AegisError, errorMessage } from '../errors.js';
import type { Enforcer, EnforcerContext } from './enforcer.js';
import { createLogEnforcer } from './log.js';
import { createXdpEnforcer } from './xdp.js';
import { createNftablesEnforcer } from './nftables.js';
import { createActionEnforcer } from './action.js';
import { withCommandActions } from './action-compose.js';

export interface SelectedEnforcer {
  readonly enforcer: Enforcer;
  /** set when the default fell back to log */
  readonly fallback: string | null;
}

/**
 * Kernel enforcers are wrapped so that a jail's non-firewall actions (mail, reporting scripts)
 * still run beside them, as action-plan.ts maps a fail2ban `action` list.
 */
function create(kind: EnforcerKind, config: ResolvedConfig): Enforcer {
  switch (kind) {
    case 'xdp':
      return withCommandActions(createXdpEnforcer({ xdp: config.xdp, interfaces: config.daemon.interfaces }), { configDir: config.configDir });
    case 'nftables':
      return withCommandActions(createNftablesEnforcer({}), { configDir: config.configDir });
    case 'action':
      return createActionEnforcer({ configDir: config.configDir });
    case 'log':
      return createLogEnforcer();
  }
}

/** Start the configured enforcer; throws AegisError only for an explicit choice that fails. */
export async function startEnforcer(config: ResolvedConfig, ctx: EnforcerContext, log: Logger): Promise<SelectedEnforcer> {
  if (config.daemon.dryRun) {
    const e = createLogEnforcer({ reason: 'dry-run' });
    await e.start(ctx);
    return { enforcer: e, fallback: null };
  }
  const explicit = config.daemon.enforcer;
  if (explicit !== null) {
    const e = create(explicit, config);
    await e.start(ctx); // AegisError propagates: exit 1 with its message and hint
    return { enforcer: e, fallback: null };
  }
  const xdp = create('xdp', config);
  try {
    await xdp.start(ctx);
    return { enforcer: xdp, fallback: null };
  } catch (e) {
    const hint = e instanceof AegisError && e.hint ? ` (${e.hint})` : '';
    const reason = `${errorMessage(e)}${hint}`;
    log.warn(
      { event: 'enforcer_fallback', from: 'xdp', to: 'log', reason },
      `XDP enforcement could not start: ${reason}. FALLING BACK TO THE LOG ENFORCER: bans are decided and recorded but NOT enforced. Pass --enforcer nftables or fix XDP.`,
    );
    const fallback = createLogEnforcer({ reason });
    await fallback.start(ctx);
    return { enforcer: fallback, fallback: reason };
  }
}
