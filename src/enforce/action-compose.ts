/**
 * A kernel enforcer (xdp / nftables) plus the command actions that still run beside it — the
 * action mapping of action-plan.ts made into one Enforcer, so the composition root wraps the
 * enforcer it selected and is done:
 *
 *   const e = withCommandActions(createXdpEnforcer(…), { configDir: config.configDir });
 *
 * - bans of jails whose plan says `kernelBan` go to the kernel enforcer (and are awaited: that
 *   is the "enforcer confirmed" moment); bans of a jail without any firewall action (say, mail
 *   only) do not, as fail2ban would not block them either;
 * - every ban also goes to the jail's command actions (mail, reporting, custom scripts) in the
 *   background: a slow `whois | mail` must not hold up the kernel ban or the ban manager;
 * - reconcile concerns kernel state only; command actions are not replayed (a restart would
 *   otherwise mail every restored ban again).
 * A command action that fails to load or run is logged and counted (action enforcer), never
 * fatal: the kernel enforcer is what protects the host.
 */
import type { Logger } from 'pino';
import type { ActionSpec, ResolvedJail } from '../config/types.js';
import { errorMessage } from '../errors.js';
import type { DriftReport, EnforcedBan, Enforcer, EnforcerContext, EnforcerCounters } from './enforcer.js';
import { createActionEnforcer, type LoadActionFn } from './action.js';
import { planJailActions, type JailActionPlan } from './action-plan.js';

export interface CommandActionOptions {
  readonly configDir: string;
  readonly loadAction?: LoadActionFn;
  readonly concurrency?: number;
}

/** `primary` unchanged when it is itself the action or log enforcer. */
export function withCommandActions(primary: Enforcer, opts: CommandActionOptions): Enforcer {
  if (primary.kind === 'action' || primary.kind === 'log') return primary;
  return new CompositeEnforcer(primary, opts);
}

class CompositeEnforcer implements Enforcer {
  readonly kind: Enforcer['kind'];
  readonly #primary: Enforcer;
  readonly #opts: CommandActionOptions;
  #plans = new Map<string, JailActionPlan>();
  #actions: Enforcer | null = null;
  readonly #background = new Set<Promise<unknown>>();
  #log: Logger | null = null;

  constructor(primary: Enforcer, opts: CommandActionOptions) {
    this.kind = primary.kind;
    this.#primary = primary;
    this.#opts = opts;
  }

  async start(ctx: EnforcerContext): Promise<void> {
    this.#log = ctx.log.child({ enforcer: 'action' });
    await this.#primary.start(ctx);
    this.#plan(ctx.jails);
    await this.#startActions(ctx);
  }

  async ban(bans: readonly EnforcedBan[]): Promise<void> {
    this.#side((a) => a.ban(bans), 'ban');
    const kernel = this.#kernelOnly(bans);
    if (kernel.length > 0) await this.#primary.ban(kernel);
  }

  async unban(bans: readonly EnforcedBan[]): Promise<void> {
    this.#side((a) => a.unban(bans), 'unban');
    const kernel = this.#kernelOnly(bans);
    if (kernel.length > 0) await this.#primary.unban(kernel);
  }

  async reconfigure(ctx: EnforcerContext): Promise<void> {
    this.#log = ctx.log.child({ enforcer: 'action' });
    await this.#primary.reconfigure?.(ctx);
    this.#plan(ctx.jails);
    if (this.#actions) await this.#actions.reconfigure?.(ctx);
    else await this.#startActions(ctx);
  }

  async reconcile(desired: readonly EnforcedBan[]): Promise<DriftReport> {
    if (!this.#primary.reconcile) return { missing: 0, stale: 0 };
    return this.#primary.reconcile(this.#kernelOnly(desired));
  }

  async counters(): Promise<EnforcerCounters> {
    return this.#primary.counters ? this.#primary.counters() : {};
  }

  describe(): Readonly<Record<string, unknown>> {
    return { ...this.#primary.describe(), commandActions: this.#actions ? this.#actions.describe() : null };
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.#background]);
    if (this.#actions) await this.#actions.stop().catch((e: unknown) => this.#log?.error({ error: errorMessage(e) }, 'command actions did not stop cleanly'));
    this.#actions = null;
    await this.#primary.stop();
  }

  #plan(jails: readonly ResolvedJail[]): void {
    const plans = new Map<string, JailActionPlan>();
    for (const j of jails) {
      if (!j.enabled) continue;
      const p = planJailActions(j, this.kind);
      plans.set(j.name, p);
      for (const s of p.skipped) this.#log?.warn({ jail: j.name, action: s.spec.name }, s.reason);
    }
    this.#plans = plans;
  }

  async #startActions(ctx: EnforcerContext): Promise<void> {
    if (![...this.#plans.values()].some((p) => p.commandActions.length > 0)) return;
    const a = createActionEnforcer({
      configDir: this.#opts.configDir,
      select: (j): readonly ActionSpec[] => this.#plans.get(j.name)?.commandActions ?? [],
      ...(this.#opts.loadAction ? { loadAction: this.#opts.loadAction } : {}),
      ...(this.#opts.concurrency === undefined ? {} : { concurrency: this.#opts.concurrency }),
    });
    try {
      await a.start(ctx);
      this.#actions = a;
    } catch (e) {
      this.#log?.error({ error: errorMessage(e) }, 'command actions could not start; bans are enforced by the kernel only');
    }
  }

  /** bans of jails without a plan (manual bans into an unknown jail) are kernel-banned: safer */
  #kernelOnly(bans: readonly EnforcedBan[]): EnforcedBan[] {
    return bans.filter((b) => this.#plans.get(b.jail)?.kernelBan ?? true);
  }

  #side(fn: (a: Enforcer) => Promise<void>, what: string): void {
    const a = this.#actions;
    if (!a) return;
    const p = fn(a).catch((e: unknown) => this.#log?.error({ error: errorMessage(e), op: what }, 'command actions failed'));
    this.#background.add(p);
    void p.finally(() => this.#background.delete(p));
  }
}
