/**
 * The ban table: which jail bans which prefix until when. It is the truth that enforcers
 * mirror and that the state store makes durable.
 *
 * Order of a ban: record it in the store and hand it to the enforcer at the same time, then
 * wait for both (fsync and kernel confirmation) before logging it — a ban that was logged or
 * shown by aegis-ban survives a crash. Expiry runs on a min-heap with one timer.
 */
import type { Enforcer } from '../enforce/enforcer.js';
import type { Events, UnbanReason } from '../events.js';
import type { StateStore, StoredBan } from '../state/store.js';
import { banKey } from '../state/store.js';
import { ExpiryQueue } from './expiry-queue.js';
import type { Cidr } from '../net/address.js';
import { errorMessage } from '../errors.js';

/**
 * A ban in the table. The object is shared: the table, the state store, the enforcer and the
 * ban's log line all get this one (a burst of thousands of bans must not copy each one three
 * times), so it is never mutated; a change replaces it.
 */
export interface Ban extends StoredBan {
  /** failures counted for this ban (action.d `<failures>`, the log line); absent after a restart */
  readonly failures?: number | undefined;
}

/**
 * The keys a ban of an address in a jail is filed under: the ban table's (banKey of the jail
 * and what the ban covers) and the two ban histories', this jail's and all jails' ('*').
 */
export interface BanKeys {
  readonly ban: string;
  readonly jailHistory: string;
  readonly allHistory: string;
}

export interface BanDecision {
  readonly jail: string;
  /** offending address, canonical text */
  readonly ip: string;
  /** what to ban: the address, or its ban_prefix network */
  readonly cidr: Cidr;
  /** base bantime (s, -1 permanent); increment is applied here from history */
  readonly bantime: number;
  readonly bantimeFor?: (priorBans: number) => number;
  readonly overalljails?: boolean;
  readonly source: 'auto' | 'manual';
  readonly fields: Readonly<Record<string, string>>;
  readonly failures?: number;
  /** wall-clock ms the triggering line was read, for ban latency */
  readonly readAt?: number;
  /** banKeys(jail, ip, cidr), when the caller keeps them (the pipeline has them per host) */
  readonly keys?: BanKeys;
}

export interface BanManagerOptions {
  readonly store: StateStore;
  readonly enforcer: Enforcer;
  readonly events: Events;
  /** epoch seconds */
  readonly now?: () => number;
}

/** the ban-history key of an address in a jail ('*' for all jails) */
export function historyKey(jail: string, ip: string): string {
  return `${jail}|${ip}`;
}

/** `jailHistory`: historyKey(jail, ip) when the caller has it already */
export function banKeys(jail: string, ip: string, cidr: Cidr, jailHistory = historyKey(jail, ip)): BanKeys {
  return { ban: banKey(jail, cidr.network, cidr.prefix), jailHistory, allHistory: historyKey('*', ip) };
}

export class BanManager {
  readonly #store: StateStore;
  #enforcer: Enforcer;
  readonly #events: Events;
  readonly #now: () => number;
  readonly #bans = new Map<string, Ban>();
  readonly #perJail = new Map<string, number>();
  readonly #expiry = new ExpiryQueue();
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Infinity;
  readonly #totalBanned = new Map<string, number>();
  #closed = false;

  constructor(opts: BanManagerOptions) {
    this.#store = opts.store;
    this.#enforcer = opts.enforcer;
    this.#events = opts.events;
    this.#now = opts.now ?? (() => Date.now() / 1000);
  }

  get enforcer(): Enforcer {
    return this.#enforcer;
  }

  /** Load bans from state with their remaining time and re-apply them; expired ones end now. */
  async restore(): Promise<{ restored: number; expired: number }> {
    const now = this.#now();
    const live: Ban[] = [];
    let expired = 0;
    for (const b of this.#store.bans()) {
      if (b.expires !== null && b.expires <= now) {
        this.#store.deleteBan(b.jail, b.network, b.prefix);
        expired++;
        continue;
      }
      live.push(b);
      this.#index(banKey(b.jail, b.network, b.prefix), b);
    }
    await this.#store.flush();
    if (this.#enforcer.reconcile) {
      // One pass makes the kernel equal the table: adopted entries stay, missing ones are
      // written, stale ones removed. Not counted as drift: after a reboot everything is missing.
      await this.reconcile({ isRestore: true });
    } else if (live.length > 0) {
      try {
        await this.#enforcer.ban(live);
      } catch (e) {
        this.#events.enforcerFailed('restore', errorMessage(e));
      }
    }
    this.#arm();
    return { restored: live.length, expired };
  }

  #index(k: string, b: Ban): void {
    const replaced = this.#bans.get(k);
    if (replaced) this.#count(replaced.jail, -1);
    this.#bans.set(k, b);
    this.#count(b.jail, 1);
    if (b.expires !== null) this.#expiry.push(b.expires, k);
  }

  /** Apply decisions made in one burst; resolves with the bans applied (already-banned skipped). */
  async ban(decisions: readonly BanDecision[]): Promise<Ban[]> {
    if (this.#closed || decisions.length === 0) return [];
    const now = this.#now();
    const since = Math.floor(now);
    const applied: Ban[] = [];
    const readAts: Array<number | undefined> = [];
    for (const d of decisions) {
      // string objects the caller keeps have their hashes computed already
      const keys = d.keys ?? banKeys(d.jail, d.ip, d.cidr);
      const k = keys.ban;
      const existing = this.#bans.get(k);
      if (existing && (existing.expires === null || existing.expires > now)) continue;
      // history per jail and over all jails, so either overalljails setting finds it
      const jailCount = this.#store.history(keys.jailHistory)?.count ?? 0;
      const allCount = keys.allHistory === keys.jailHistory ? jailCount : (this.#store.history(keys.allHistory)?.count ?? 0);
      const prior = d.overalljails ? allCount : jailCount;
      const bantime = d.bantimeFor ? d.bantimeFor(prior) : d.bantime;
      const ban: Ban = {
        jail: d.jail,
        ip: d.ip,
        network: d.cidr.network,
        prefix: d.cidr.prefix,
        family: d.cidr.family,
        since,
        expires: bantime < 0 ? null : since + bantime,
        bantime,
        banCount: prior + 1,
        source: d.source,
        fields: d.fields,
        failures: d.failures,
      };
      this.#index(k, ban);
      // `now` exact, not floored: replayed lines compare against it
      this.#store.putBanWithHistory(k, ban, { jailKey: keys.jailHistory, jailCount: jailCount + 1, allKey: keys.allHistory, allCount: allCount + 1, at: now });
      this.#totalBanned.set(d.jail, (this.#totalBanned.get(d.jail) ?? 0) + 1);
      applied.push(ban);
      readAts.push(d.readAt);
    }
    if (applied.length === 0) return [];
    const durable = this.#store.flush();
    const enforced = this.#enforcer.ban(applied).then(
      () => Date.now(),
      (e: unknown) => {
        this.#events.enforcerFailed('ban', errorMessage(e));
        return null;
      },
    );
    const [, confirmedAt] = await Promise.all([durable, enforced]);
    this.#events.bannedAll(
      applied,
      readAts.map((readAt) => (readAt !== undefined && confirmedAt !== null ? Math.max(0, confirmedAt - readAt) / 1000 : null)),
    );
    this.#arm();
    return applied;
  }

  /** Lift every ban `select` picks. */
  async unban(select: (b: Ban) => boolean, reason: UnbanReason): Promise<Ban[]> {
    const gone: Ban[] = [];
    for (const [k, b] of this.#bans) {
      if (!select(b)) continue;
      this.#bans.delete(k);
      this.#count(b.jail, -1);
      this.#store.deleteBan(b.jail, b.network, b.prefix);
      gone.push(b);
    }
    if (gone.length === 0) return [];
    const durable = this.#store.flush();
    const enforced = this.#enforcer.unban(gone).catch((e: unknown) => {
      this.#events.enforcerFailed('unban', errorMessage(e));
    });
    await Promise.all([durable, enforced]);
    this.#events.unbannedAll(gone, reason);
    return gone;
  }

  #arm(): void {
    if (this.#closed) return;
    const next = this.#expiry.peek();
    if (!next) return;
    const at = next.at;
    if (this.#timer && at >= this.#timerAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    // setTimeout caps at ~24.8 days; re-arming on wake handles longer bans
    const delay = Math.min(Math.max(0, (at - this.#now()) * 1000), 2 ** 31 - 1);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#timerAt = Infinity;
      void this.#expire();
    }, delay);
    this.#timer.unref();
  }

  async #expire(): Promise<void> {
    const now = this.#now();
    const due = new Set<string>();
    for (let top = this.#expiry.peek(); top && top.at <= now; top = this.#expiry.peek()) {
      this.#expiry.pop();
      const b = this.#bans.get(top.key);
      // lazy deletion: the ban may have been lifted or replaced since it was queued
      if (b && b.expires !== null && b.expires <= now) due.add(top.key);
    }
    if (due.size > 0) {
      await this.unban((b) => due.has(banKey(b.jail, b.network, b.prefix)), 'expired');
    }
    this.#arm();
  }

  /** Make kernel state match the table; counts drift (except when restoring at start). */
  async reconcile(opts: { isRestore?: boolean } = {}): Promise<void> {
    if (!this.#enforcer.reconcile) return;
    try {
      const report = await this.#enforcer.reconcile([...this.#bans.values()]);
      if (opts.isRestore) {
        this.#events.log.info(
          { event: 'restore_reconcile', written: report.missing, removed: report.stale },
          `kernel state adopted: ${report.missing} bans written, ${report.stale} entries unknown to the ban table removed`,
        );
        return;
      }
      this.#events.drift('missing', report.missing);
      this.#events.drift('stale', report.stale);
    } catch (e) {
      this.#events.enforcerFailed('reconcile', errorMessage(e));
    }
  }

  list(): Ban[] {
    return [...this.#bans.values()];
  }

  byJail(jail: string): Ban[] {
    return this.list().filter((b) => b.jail === jail);
  }

  /** current bans per jail, kept as bans come and go: a scrape must not walk a million bans */
  countByJail(): ReadonlyMap<string, number> {
    return this.#perJail;
  }

  #count(jail: string, delta: number): void {
    const n = (this.#perJail.get(jail) ?? 0) + delta;
    if (n <= 0) this.#perJail.delete(jail);
    else this.#perJail.set(jail, n);
  }

  /** epoch s of the last ban of an address in a jail (durable history); `key` is historyKey(jail, ip) */
  lastBanTime(key: string): number | undefined {
    return this.#store.history(key)?.last;
  }

  totalBanned(jail: string): number {
    return this.#totalBanned.get(jail) ?? 0;
  }

  isBanned(jail: string, cidr: Cidr): boolean {
    return this.#bans.has(banKey(jail, cidr.network, cidr.prefix));
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
