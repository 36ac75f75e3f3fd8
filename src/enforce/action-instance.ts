/**
 * One action.d command action of one jail, with fail2ban's lifecycle (server/action.py,
 * CommandAction, fail2ban 1.0):
 * - an action with `[Init?family=inet6]` overrides (or `actionstart_on_demand = true`) starts
 *   per family on its first ban of that family; any other starts when the jail starts;
 * - `actionban`/`actionunban` run; when one fails and `actioncheck` is set, the check runs, a
 *   failed check is repaired (`actionrepair`, else `actionstop` + `actionstart`) and the command
 *   is tried once more. An unban is not repaired unless `actionrepair_on_unban` is set;
 * - unban runs only for a family that holds bans; stop flushes (`actionflush` once, else one
 *   unban per ban still held) and then runs `actionstop` for every started family.
 * Failures are logged and counted, never thrown: an action is an outside program.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { ActionCommand, ActionDefinition, ActionSpec, ResolvedJail } from '../config/types.js';
import { parseDuration } from '../config/time-units.js';
import type { EnforcedBan } from './enforcer.js';
import { renderCommand } from './action-template.js';
import type { CommandRunner } from './action-runner.js';

export type FamilyKey = '' | 'inet4' | 'inet6';
type Op = ActionCommand | 'actionrepair';

export interface ActionStats {
  commands: number;
  failures: number;
  timeouts: number;
  refused: number;
}

const STARTED = 1;
const HAS_ITEMS = 2;
const DEFAULT_TIMEOUT_S = 60;

export class ActionInstance {
  readonly jail: ResolvedJail;
  readonly spec: ActionSpec;
  readonly def: ActionDefinition;
  readonly #runner: CommandRunner;
  readonly #log: Logger;
  readonly #stats: ActionStats;
  readonly #onDemand: boolean;
  readonly #conditional: boolean;
  readonly #timeoutMs: number;
  readonly #state = new Map<FamilyKey, number>();
  /** bans this action holds, by `network/prefix` */
  readonly held = new Map<string, EnforcedBan>();
  /** serialises operations of this action: a ban and a later unban of it never overtake */
  #queue: Promise<unknown> = Promise.resolve();
  #repairLock: Promise<unknown> = Promise.resolve();

  constructor(jail: ResolvedJail, spec: ActionSpec, def: ActionDefinition, runner: CommandRunner, log: Logger, stats: ActionStats) {
    this.jail = jail;
    this.spec = spec;
    this.def = def;
    this.#runner = runner;
    this.#log = log.child({ jail: jail.name, action: def.name });
    this.#stats = stats;
    this.#conditional =
      Object.keys(def.tagsInet6).length > 0 || Object.keys(def.tags).some((k) => k.includes('?family='));
    const od = def.tags['actionstart_on_demand']?.trim().toLowerCase();
    this.#onDemand = od === undefined || od === '' ? this.#conditional : ['true', 'yes', '1', 'on'].includes(od);
    const t = parseDuration(def.tags['timeout'] ?? '');
    this.#timeoutMs = (t !== null && t > 0 ? t : DEFAULT_TIMEOUT_S) * 1000;
  }

  /** Run `fn` after every operation queued before it. */
  enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(fn, fn);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  familyOf(ban: EnforcedBan): FamilyKey {
    if (!this.#conditional) return '';
    return ban.family === 6 ? 'inet6' : 'inet4';
  }

  /** actionstart at jail start, unless this action starts on demand */
  async start(): Promise<void> {
    if (this.#onDemand) return;
    await this.#startFamily('');
  }

  async ban(bans: readonly EnforcedBan[]): Promise<void> {
    for (const fam of new Set(bans.map((b) => this.familyOf(b)))) {
      if (this.#onDemand && !((this.#state.get(fam) ?? 0) & STARTED)) await this.#startFamily(fam);
    }
    await Promise.all(
      bans.map(async (b) => {
        const fam = this.familyOf(b);
        const ok = await this.#process('actionban', fam, b);
        if (ok) {
          this.#state.set(fam, (this.#state.get(fam) ?? 0) | STARTED | HAS_ITEMS);
          this.held.set(keyOf(b), b);
        }
      }),
    );
  }

  async unban(bans: readonly EnforcedBan[]): Promise<void> {
    await Promise.all(
      bans.map(async (b) => {
        const fam = this.familyOf(b);
        this.held.delete(keyOf(b));
        if (!((this.#state.get(fam) ?? 0) & HAS_ITEMS)) return;
        await this.#process('actionunban', fam, b);
      }),
    );
  }

  /** flush (or unban each), then actionstop, for every started family */
  async stop(): Promise<void> {
    const families = [...this.#state.entries()].filter(([, v]) => v & STARTED).map(([f]) => f);
    const hasFlush = (this.def.commands.actionflush ?? '').trim() !== '';
    for (const fam of families) {
      if (!((this.#state.get(fam) ?? 0) & HAS_ITEMS)) continue;
      if (hasFlush) await this.#exec('actionflush', fam, null);
      else {
        const mine = [...this.held.values()].filter((b) => this.familyOf(b) === fam);
        await Promise.all(mine.map((b) => this.#process('actionunban', fam, b)));
      }
    }
    for (const fam of families) await this.#exec('actionstop', fam, null);
    this.#state.clear();
    this.held.clear();
  }

  async #startFamily(fam: FamilyKey): Promise<boolean> {
    const ok = await this.#exec('actionstart', fam, null);
    if (ok) this.#state.set(fam, (this.#state.get(fam) ?? 0) | STARTED);
    return ok;
  }

  /** fail2ban's _processCmd: run, and on failure check / repair / retry once */
  async #process(op: 'actionban' | 'actionunban', fam: FamilyKey, ban: EnforcedBan): Promise<boolean> {
    if (await this.#exec(op, fam, ban)) return true;
    if (this.#command('actioncheck', fam).trim() === '') return false;
    // bans of one burst run side by side; one check-and-repair at a time, as fail2ban's lock
    // does, so five failed bans do not restart the action five times over
    const run = this.#repairLock.then(() => this.#checkAndRepair(op, fam, ban));
    this.#repairLock = run.catch(() => undefined);
    if (!(await run)) return false;
    return this.#exec(op, fam, ban);
  }

  async #checkAndRepair(op: 'actionban' | 'actionunban', fam: FamilyKey, ban: EnforcedBan): Promise<boolean> {
    if (!(await this.#exec('actioncheck', fam, null))) {
      if (op === 'actionunban' && !truthy(this.def.tags['actionrepair_on_unban'])) {
        this.#log.error({ ip: ban.ip }, 'action check failed; unban is impossible');
        return false;
      }
      this.#log.error('action check failed; trying to restore a sane environment');
      if (this.#command('actionrepair', fam).trim() !== '') {
        if (!(await this.#exec('actionrepair', fam, null))) {
          this.#state.set(fam, 0);
          this.#log.error('unable to restore the environment');
          return false;
        }
      } else {
        await this.#exec('actionstop', fam, null);
        this.#state.set(fam, 0);
        await this.#startFamily(fam);
      }
      if (!(await this.#exec('actioncheck', fam, null))) {
        this.#log.error('unable to restore the environment');
        return false;
      }
    }
    return true;
  }

  #statics(fam: FamilyKey): Record<string, string> {
    const s: Record<string, string> = { name: this.jail.name };
    for (const [k, v] of Object.entries(this.def.commands)) if (v !== undefined) s[k] = v;
    for (const [k, v] of Object.entries(this.def.tags)) if (!k.includes('?family=')) s[k] = v;
    // conditional keys as fail2ban stores them (`blocktype?family=inet6`), then the [Init?family=] block
    const cond = fam === '' ? 'inet4' : fam;
    for (const [k, v] of Object.entries(this.def.tags)) {
      const m = /^(.+)\?family=(.+)$/.exec(k);
      if (m && m[2] === cond && m[1] !== undefined) s[m[1]] = v;
    }
    if (cond === 'inet6') Object.assign(s, this.def.tagsInet6);
    return s;
  }

  #command(op: Op, fam: FamilyKey): string {
    return this.#statics(fam)[op] ?? '';
  }

  async #exec(op: Op, fam: FamilyKey, ban: EnforcedBan | null): Promise<boolean> {
    const command = this.#command(op, fam);
    if (command.trim() === '') return true;
    const rendered = renderCommand({ command: `<${op}>`, statics: this.#statics(fam), dynamic: { ...hostTags(), ...(ban ? dynamicTags(ban) : fam === '' ? {} : { family: fam }) } });
    if (!rendered.ok) {
      this.#stats.refused++;
      this.#stats.failures++;
      this.#log.error({ op, ip: ban?.ip, reason: rendered.error }, 'action command refused');
      return false;
    }
    this.#stats.commands++;
    const r = await this.#runner.run(rendered.value, this.#timeoutMs);
    const info = { op, family: fam || undefined, ip: ban?.ip, code: r.code, signal: r.signal ?? undefined, ms: r.ms, stdout: r.stdout || undefined, stderr: r.stderr || undefined };
    if (r.ok) {
      this.#log.debug(info, 'action command done');
      return true;
    }
    this.#stats.failures++;
    if (r.timedOut) {
      this.#stats.timeouts++;
      this.#log.error({ ...info, timeoutMs: this.#timeoutMs }, 'action command timed out and was killed');
    } else this.#log.error({ ...info, error: r.error }, 'action command failed');
    return false;
  }
}

let hosts: Record<string, string> | null = null;
/** `<fq-hostname>` / `<sh-hostname>`: the host name as the kernel has it (no DNS look-up) */
function hostTags(): Record<string, string> {
  if (hosts === null) {
    const h = hostname();
    hosts = { 'fq-hostname': h, 'sh-hostname': h.split('.')[0] ?? h };
  }
  return hosts;
}

export function keyOf(b: EnforcedBan): string {
  return `${b.network}/${b.prefix}`;
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && ['true', 'yes', '1', 'on'].includes(v.trim().toLowerCase());
}

/** The per-ban tags of fail2ban's ActionInfo, from what the ban manager hands over. */
export function dynamicTags(b: EnforcedBan): Record<string, string> {
  const full = b.family === 4 ? 32 : 128;
  const ip = b.prefix >= full ? b.network : `${b.network}/${b.prefix}`;
  const matches = (b.matches ?? []).join('\n');
  const failures = String(b.failures ?? b.matches?.length ?? 0);
  const t: Record<string, string> = {
    ip,
    family: b.family === 6 ? 'inet6' : 'inet4',
    'ip-rev': reversePtr(b.ip),
    'ip-host': '',
    fid: b.ip,
    failures,
    time: String(b.since),
    bantime: String(b.bantime),
    bancount: String(b.banCount),
    matches,
    ipmatches: matches,
    ipjailmatches: matches,
    ipfailures: failures,
    ipjailfailures: failures,
    restored: '0',
  };
  for (const [k, v] of Object.entries(b.fields)) {
    t[`F-${k.replace(/^F-/i, '').toUpperCase()}`] = v;
  }
  return t;
}

/** `4.3.2.1.` / nibble form, as fail2ban's IPAddr.getPTR('') */
function reversePtr(ip: string): string {
  if (!ip.includes(':')) return `${ip.split('.').reverse().join('.')}.`;
  const groups = expandV6(ip);
  if (groups === null) return '';
  const hex = groups.map((g) => g.padStart(4, '0')).join('');
  return `${[...hex].reverse().join('.')}.`;
}

function expandV6(ip: string): string[] | null {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  if (tail === undefined) return h.length === 8 ? h : null;
  const fill = 8 - h.length - t.length;
  if (fill < 0) return null;
  return [...h, ...Array<string>(fill).fill('0'), ...t];
}
