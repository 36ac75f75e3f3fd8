/**
 * The `action` enforcer: runs fail2ban action.d command actions for each jail, so existing
 * custom actions keep working. Lifecycle per action is in action-instance.ts; placing log data
 * into commands without a shell-injection path is in action-template.ts.
 *
 * Who owns what (enforcer.ts contract): the ban manager owns the truth; this enforcer keeps, per
 * action, the bans it has applied (to unban them at stop when the action has no actionflush, and
 * to compute drift in reconcile). Command failures are logged and counted and never reject:
 * `ban`/`unban` reject only when the action definitions cannot be loaded at all.
 */
import type { Logger } from 'pino';
import type { ActionDefinition, ActionSpec, Diagnostic, ResolvedJail } from '../config/types.js';
import { formatDiagnostic } from '../config/types.js';
import { AegisError, ErrorCode, errorMessage } from '../errors.js';
import type { DriftReport, EnforcedBan, Enforcer, EnforcerContext } from './enforcer.js';
import { CommandRunner } from './action-runner.js';
import { ActionInstance, keyOf, type ActionStats } from './action-instance.js';

export type LoadActionFn = (
  configDir: string,
  jail: ResolvedJail,
  spec: ActionSpec,
) => { readonly action: ActionDefinition | null; readonly diagnostics: readonly Diagnostic[] };

export interface ActionEnforcerOptions {
  readonly configDir: string;
  /**
   * Which of a jail's actions run here. Default: all of them (`--enforcer action`). With a kernel
   * enforcer the composition root passes `(j) => planJailActions(j, kind).commandActions`.
   */
  readonly select?: (jail: ResolvedJail) => readonly ActionSpec[];
  /** default: config/actions.ts loadAction */
  readonly loadAction?: LoadActionFn;
  /** default `/bin/sh` */
  readonly shell?: string;
  /** commands running at once across all actions; default 4 */
  readonly concurrency?: number;
}

export function createActionEnforcer(opts: ActionEnforcerOptions): Enforcer {
  return new ActionEnforcer(opts);
}

class ActionEnforcer implements Enforcer {
  readonly kind = 'action' as const;
  readonly #opts: ActionEnforcerOptions;
  readonly #runner: CommandRunner;
  readonly #stats: ActionStats = { commands: 0, failures: 0, timeouts: 0, refused: 0 };
  /** jail name → its actions, in config order */
  #jails = new Map<string, ActionInstance[]>();
  #log: Logger | null = null;
  #loader: LoadActionFn | null = null;

  constructor(opts: ActionEnforcerOptions) {
    this.#opts = opts;
    this.#runner = new CommandRunner({
      ...(opts.shell === undefined ? {} : { shell: opts.shell }),
      ...(opts.concurrency === undefined ? {} : { concurrency: opts.concurrency }),
    });
  }

  async start(ctx: EnforcerContext): Promise<void> {
    this.#log = ctx.log.child({ enforcer: 'action' });
    this.#loader = this.#opts.loadAction ?? (await defaultLoader());
    this.#jails = this.#build(ctx.jails);
    await Promise.all([...this.#jails.values()].flat().map((a) => a.enqueue(() => a.start())));
  }

  async ban(bans: readonly EnforcedBan[]): Promise<void> {
    await Promise.all(this.#byAction(bans).map(([a, list]) => a.enqueue(() => a.ban(list))));
  }

  async unban(bans: readonly EnforcedBan[]): Promise<void> {
    await Promise.all(this.#byAction(bans).map(([a, list]) => a.enqueue(() => a.unban(list))));
  }

  /** Jails whose action list changed are stopped and started again; their bans are re-applied. */
  async reconfigure(ctx: EnforcerContext): Promise<void> {
    this.#log = ctx.log.child({ enforcer: 'action' });
    const old = this.#jails;
    const next = new Map<string, ActionInstance[]>();
    const fresh: ResolvedJail[] = [];
    for (const j of ctx.jails.filter((x) => x.enabled)) {
      const prev = old.get(j.name);
      if (prev && sameActions(prev, this.#selected(j))) next.set(j.name, prev);
      else fresh.push(j);
    }
    const carried: EnforcedBan[] = [];
    for (const [name, list] of old) {
      if (next.get(name) === list) continue;
      for (const a of list) carried.push(...a.held.values());
      await Promise.all(list.map((a) => a.enqueue(() => a.stop())));
    }
    const built = this.#build(fresh);
    for (const [k, v] of built) next.set(k, v);
    this.#jails = next;
    await Promise.all([...built.values()].flat().map((a) => a.enqueue(() => a.start())));
    const keep = carried.filter((b) => built.has(b.jail));
    if (keep.length > 0) await this.ban(dedupe(keep));
  }

  /** Bans the actions have not applied are banned; bans they hold that are not desired are unbanned. */
  async reconcile(desired: readonly EnforcedBan[]): Promise<DriftReport> {
    let missing = 0;
    let stale = 0;
    const want = new Map<string, EnforcedBan[]>();
    for (const b of desired) {
      const l = want.get(b.jail);
      if (l) l.push(b);
      else want.set(b.jail, [b]);
    }
    await Promise.all(
      [...this.#jails.entries()].flatMap(([jail, list]) =>
        list.map((a) =>
          a.enqueue(async () => {
            const w = want.get(jail) ?? [];
            const wantKeys = new Set(w.map(keyOf));
            const add = w.filter((b) => !a.held.has(keyOf(b)));
            const drop = [...a.held.entries()].filter(([k]) => !wantKeys.has(k)).map(([, b]) => b);
            missing += add.length;
            stale += drop.length;
            if (drop.length > 0) await a.unban(drop);
            if (add.length > 0) await a.ban(add);
          }),
        ),
      ),
    );
    return { missing, stale };
  }

  describe(): Readonly<Record<string, unknown>> {
    const jails: Record<string, string[]> = {};
    for (const [name, list] of this.#jails) jails[name] = list.map((a) => a.def.name);
    return {
      kind: this.kind,
      jails,
      commands: this.#stats.commands,
      failures: this.#stats.failures,
      timeouts: this.#stats.timeouts,
      refused: this.#stats.refused,
      running: this.#runner.running,
      queued: this.#runner.queued,
    };
  }

  async stop(): Promise<void> {
    const all = [...this.#jails.values()].flat();
    await Promise.all(all.map((a) => a.enqueue(() => a.stop())));
    this.#jails = new Map();
  }

  #selected(j: ResolvedJail): readonly ActionSpec[] {
    return this.#opts.select ? this.#opts.select(j) : j.actions;
  }

  #build(jails: readonly ResolvedJail[]): Map<string, ActionInstance[]> {
    const log = this.#log!;
    const load = this.#loader!;
    const out = new Map<string, ActionInstance[]>();
    for (const j of jails) {
      if (!j.enabled) continue;
      const list: ActionInstance[] = [];
      for (const spec of this.#selected(j)) {
        const { action, diagnostics } = load(this.#opts.configDir, j, spec);
        for (const d of diagnostics) log[d.severity === 'error' ? 'error' : 'warn']({ jail: j.name, action: spec.name, code: d.code }, formatDiagnostic(d));
        if (action === null) {
          log.error({ jail: j.name, action: spec.name }, 'action not loaded; the jail runs without it');
          continue;
        }
        list.push(new ActionInstance(j, spec, action, this.#runner, log, this.#stats));
      }
      out.set(j.name, list);
    }
    return out;
  }

  #byAction(bans: readonly EnforcedBan[]): Array<[ActionInstance, EnforcedBan[]]> {
    const byJail = new Map<string, EnforcedBan[]>();
    for (const b of bans) {
      const l = byJail.get(b.jail);
      if (l) l.push(b);
      else byJail.set(b.jail, [b]);
    }
    const out: Array<[ActionInstance, EnforcedBan[]]> = [];
    for (const [jail, list] of byJail) for (const a of this.#jails.get(jail) ?? []) out.push([a, list]);
    return out;
  }
}

function sameActions(list: readonly ActionInstance[], specs: readonly ActionSpec[]): boolean {
  const a = JSON.stringify(list.map((x) => x.spec));
  return a === JSON.stringify(specs);
}

function dedupe(bans: readonly EnforcedBan[]): EnforcedBan[] {
  const m = new Map<string, EnforcedBan>();
  for (const b of bans) m.set(`${b.jail} ${keyOf(b)}`, b);
  return [...m.values()];
}

/**
 * config/actions.ts is written alongside; importing it by computed name keeps this module
 * compiling before it lands, and a missing loader is an environment failure at start.
 */
async function defaultLoader(): Promise<LoadActionFn> {
  const path = '../config/actions.js';
  let mod: { loadAction?: LoadActionFn };
  try {
    mod = (await import(path)) as { loadAction?: LoadActionFn };
  } catch (e) {
    throw new AegisError(ErrorCode.INTERNAL, `cannot load the action.d reader: ${errorMessage(e)}`, { cause: e });
  }
  if (typeof mod.loadAction !== 'function') throw new AegisError(ErrorCode.INTERNAL, 'config/actions.js does not export loadAction');
  return mod.loadAction;
}
