/**
 * The contract every enforcer implements (xdp, nftables, action, log).
 *
 * - The ban manager owns the truth (which jail bans which prefix until when). Enforcers mirror
 *   it into the kernel or run commands; they never decide.
 * - Calls are batched: the manager hands over every ban decided in one engine burst at once.
 *   An enforcer must not spawn one process or syscall round-trip per entry when it can batch.
 * - `ban`/`unban` resolve when the kernel state is applied (that is "enforcer confirmed" for
 *   aegis_ban_latency_seconds). They reject only on environment failure (AegisError); the
 *   manager logs, counts and retries on the next reconcile.
 * - Several jails may ban the same prefix: entries are per jail; an enforcer keyed only by
 *   address keeps the longest expiry and removes the key when no jail holds it any more.
 * - `expires` is carried into the kernel where the mechanism can (XDP value, nft timeout), so
 *   a dead daemon still ends bans on time.
 */
import type { ResolvedConfig, ResolvedJail, EnforcerKind } from '../config/types.js';
import type { Family } from '../net/address.js';

export interface EnforcedBan {
  readonly jail: string;
  /** the banned address or network address, canonical text */
  readonly network: string;
  readonly prefix: number;
  readonly family: Family;
  /** the address that caused the ban (inside network/prefix) */
  readonly ip: string;
  /** epoch seconds */
  readonly since: number;
  /** epoch seconds; null = permanent */
  readonly expires: number | null;
  /** seconds as applied (after bantime.increment), -1 = permanent */
  readonly bantime: number;
  /** how many times this ip was banned (bantime.increment) */
  readonly banCount: number;
  /** last failure's captures (F-USER …), for action.d tags */
  readonly fields: Readonly<Record<string, string>>;
  /** log lines that led to the ban, oldest first (action.d `<matches>`); optional */
  readonly matches?: readonly string[];
  /** failures counted for this ban (action.d `<failures>`); optional */
  readonly failures?: number;
}

export interface DriftReport {
  /** entries the ban table has that the kernel lacked (re-added) */
  readonly missing: number;
  /** entries the kernel had that the ban table does not (removed) */
  readonly stale: number;
}

/** Read at scrape time from the kernel itself (XDP), absent for enforcers without counters. */
export interface EnforcerCounters {
  readonly blocklistEntries?: { readonly ipv4: number; readonly ipv6: number };
  /** cumulative since load */
  readonly packets?: ReadonlyArray<{ protocol: 'ipv4' | 'ipv6'; action: 'pass' | 'drop'; value: number }>;
  readonly drops?: ReadonlyArray<{ reason: 'blocklist' | 'cidr' | 'rate_limit'; value: number }>;
  readonly rateLimited?: number;
}

export interface EnforcerContext {
  readonly config: ResolvedConfig;
  readonly jails: readonly ResolvedJail[];
  /** addresses never to drop: ignoreip of every jail, loopback, own addresses */
  readonly allow: readonly string[];
  readonly log: import('pino').Logger;
}

export interface Enforcer {
  readonly kind: EnforcerKind;
  /** load / attach / create sets; adopt existing kernel state where the mechanism keeps it */
  start(ctx: EnforcerContext): Promise<void>;
  ban(bans: readonly EnforcedBan[]): Promise<void>;
  unban(bans: readonly EnforcedBan[]): Promise<void>;
  /** new config (reload): jails added/removed, new allowlist */
  reconfigure?(ctx: EnforcerContext): Promise<void>;
  /** make kernel state equal `desired`; report what differed */
  reconcile?(desired: readonly EnforcedBan[]): Promise<DriftReport>;
  counters?(): Promise<EnforcerCounters>;
  /** for `aegis-ban status`: interfaces, attach mode, map fill, set name … */
  describe(): Readonly<Record<string, unknown>>;
  /** clean stop: detach / remove what the config says to remove */
  stop(): Promise<void>;
}
