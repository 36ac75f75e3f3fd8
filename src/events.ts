/**
 * Log and count in one place: one function per internal event = one log line + one counter.
 * Repeated error lines (a bad log line per second, a flapping source) are rate-limited per
 * kind so a hostile input cannot flood the journal; the counters still count every one.
 */
import type { Logger } from 'pino';
import type { Metrics } from './metrics/catalog.js';
import type { SourceErrorKind } from './sources/source.js';
import { inOneWrite, logRendered } from './log.js';
import { jsonNumber, jsonString } from './json-text.js';
import type { Family } from './net/address.js';

export interface BanEventData {
  readonly jail: string;
  readonly ip: string;
  readonly network: string;
  readonly prefix: number;
  readonly family: Family;
  readonly since: number;
  readonly expires: number | null;
  readonly bantime: number;
  readonly banCount: number;
  readonly source: 'auto' | 'manual';
  readonly failures?: number;
}

export type UnbanReason = 'expired' | 'manual' | 'reload';

/** at most `burst` lines per kind per `windowMs`, then one "suppressed N" line */
class LogLimiter {
  readonly #state = new Map<string, { start: number; n: number; suppressed: number }>();
  constructor(
    readonly burst = 10,
    readonly windowMs = 60_000,
  ) {}
  allow(kind: string, now = Date.now()): { ok: boolean; suppressed: number } {
    let s = this.#state.get(kind);
    if (!s || now - s.start >= this.windowMs) {
      const suppressed = s?.suppressed ?? 0;
      s = { start: now, n: 0, suppressed: 0 };
      this.#state.set(kind, s);
      s.n++;
      return { ok: true, suppressed };
    }
    s.n++;
    if (s.n <= this.burst) return { ok: true, suppressed: 0 };
    s.suppressed++;
    return { ok: false, suppressed: 0 };
  }
}

let isoFor = NaN;
let isoText = '';
/** an expiry (epoch s) as ISO 8601; the bans of one burst mostly share theirs */
function isoSeconds(epochSeconds: number | null): string | null {
  if (epochSeconds === null) return null;
  if (epochSeconds !== isoFor) {
    isoFor = epochSeconds;
    isoText = new Date(epochSeconds * 1000).toISOString();
  }
  return isoText;
}

/** what a ban covers, as logged: the address, or the network when the ban is a prefix */
function targetText(b: BanEventData): string {
  return b.prefix === (b.family === 4 ? 32 : 128) ? b.ip : `${b.network}/${b.prefix}`;
}

/** `,"expires":…` as pino writes it: ISO text, or null for a permanent ban */
function expiresMember(expires: number | null): string {
  const iso = isoSeconds(expires);
  return iso === null ? ',"expires":null' : `,"expires":"${iso}"`;
}

export class Events {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly #limiter = new LogLimiter();

  constructor(log: Logger, metrics: Metrics) {
    this.log = log;
    this.metrics = metrics;
  }

  /**
   * Every ban of one burst: its lines in one write, its counters added once per label set.
   * `latencySeconds[i]`: from the line that triggered bans[i] to the ban applied, if known.
   */
  bannedAll(bans: readonly BanEventData[], latencySeconds: readonly (number | null)[]): void {
    const perLabels = new Map<string, { jail: string; source: 'auto' | 'manual'; n: number }>();
    let auto = 0;
    for (const b of bans) {
      const k = `${b.source}|${b.jail}`;
      const c = perLabels.get(k);
      if (c) c.n++;
      else perLabels.set(k, { jail: b.jail, source: b.source, n: 1 });
      if (b.source === 'auto') auto++;
    }
    for (const l of latencySeconds) if (l !== null) this.metrics.banLatency.observe(l);
    for (const c of perLabels.values()) this.metrics.bans.inc({ jail: c.jail, source: c.source }, c.n);
    if (auto > 0) this.metrics.autobans.inc({ reason: 'log' }, auto);
    inOneWrite(this.log, () => {
      bans.forEach((b, i) => this.#logBan(b, latencySeconds[i] ?? null));
    });
  }

  /**
   * The audit line of a ban, rendered here (logRendered): fields in this order, `failures` and
   * `latency_ms` left out when unknown — what `log.warn({event: 'ban', …}, msg)` writes, which
   * test/unit/events.test.ts checks.
   */
  #logBan(b: BanEventData, latencySeconds: number | null): void {
    const target = targetText(b);
    const jail = jsonString(b.jail);
    let body = `,"event":"ban","jail":${jail},"ip":${jsonString(b.ip)},"target":${jsonString(target)},"reason":${b.source === 'auto' ? '"maxretry"' : '"manual"'}`;
    if (b.failures !== undefined) body += `,"failures":${jsonNumber(b.failures)}`;
    body += `,"count":${jsonNumber(b.banCount)},"bantime":${jsonNumber(b.bantime)}${expiresMember(b.expires)}`;
    if (latencySeconds !== null) body += `,"latency_ms":${jsonNumber(Math.round(latencySeconds * 1e4) / 10)}`;
    logRendered(this.log, 'warn', body, jsonString(`[${b.jail}] Ban ${target}`));
  }

  /** every unban of one burst (thousands expire in the same second): one write, counted per jail */
  unbannedAll(bans: readonly BanEventData[], reason: UnbanReason): void {
    const perJail = new Map<string, number>();
    for (const b of bans) perJail.set(b.jail, (perJail.get(b.jail) ?? 0) + 1);
    for (const [jail, n] of perJail) this.metrics.unbans.inc({ jail, reason }, n);
    inOneWrite(this.log, () => {
      for (const b of bans) this.#logUnban(b, reason);
    });
  }

  unbanned(b: BanEventData, reason: UnbanReason): void {
    this.metrics.unbans.inc({ jail: b.jail, reason });
    this.#logUnban(b, reason);
  }

  #logUnban(b: BanEventData, reason: UnbanReason): void {
    const target = targetText(b);
    const body =
      `,"event":"unban","jail":${jsonString(b.jail)},"ip":${jsonString(b.ip)},"target":${jsonString(target)},"reason":${jsonString(reason)}` +
      `,"count":${jsonNumber(b.banCount)}${expiresMember(b.expires)}`;
    logRendered(this.log, 'info', body, jsonString(`[${b.jail}] Unban ${target}`));
  }

  enforcerFailed(operation: string, message: string): void {
    if (this.#limiter.allow(`enforcer:${operation}`).ok) {
      this.log.error({ event: 'enforcer_error', operation }, `enforcer ${operation} failed: ${message}`);
    }
  }

  drift(kind: 'missing' | 'stale', n: number): void {
    if (n <= 0) return;
    this.metrics.enforcerDrift.inc({ kind }, n);
    this.log.warn({ event: 'enforcer_drift', kind, entries: n }, `kernel state differed from the ban table: ${n} ${kind} entries repaired`);
  }

  sourceError(kind: SourceErrorKind | string, message: string): void {
    this.metrics.sourceErrors.inc({ kind });
    const gate = this.#limiter.allow(`source:${kind}`);
    if (gate.ok) this.log.warn({ event: 'source_error', kind, suppressed: gate.suppressed || undefined }, message);
  }

  regexTimeout(jail: string, source: string, lineBytes: number): void {
    this.metrics.regexTimeouts.inc({ jail });
    const gate = this.#limiter.allow(`regex-timeout:${jail}`);
    if (gate.ok) {
      this.log.error(
        { event: 'regex_timeout', jail, source, line_bytes: lineBytes, suppressed: gate.suppressed || undefined },
        `[${jail}] filter ran too long on a line of ${source}: line skipped, worker replaced`,
      );
    }
  }

  ignoredFailure(jail: string, ip: string, why: string): void {
    if (this.#limiter.allow(`ignore:${jail}`, Date.now()).ok) {
      this.log.info({ event: 'ignore', jail, ip, why }, `[${jail}] Ignore ${ip} by ${why}`);
    }
  }

  badHost(jail: string, host: string): void {
    this.metrics.sourceErrors.inc({ kind: 'bad_host' });
    if (this.#limiter.allow(`badhost:${jail}`).ok) {
      this.log.warn({ event: 'bad_host', jail, host: host.slice(0, 100) }, `[${jail}] failure id is not an IP address (no DNS look-ups): skipped`);
    }
  }
}
