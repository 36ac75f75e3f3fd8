/**
 * One batch through the pipeline: engine (worker threads) → windows → decisions → ban manager.
 * Runs on the main thread; everything here is per match, never per line, except the line
 * counter. Resolves when the bans decided from the batch are durable and enforced, which is
 * when the source may advance its saved position.
 */
import type { Batch } from '../engine/types.js';
import { shareBatch, type EngineResult, type MatchEngine } from '../engine/pool.js';
import { countLines, decodeLine } from '../engine/scan.js';
import { FailureCollector } from '../engine/task-result.js';
import { createLineScanner } from '../engine/match/prefilter.js';
import type { BanDecision, BanManager } from '../bans/manager.js';
import type { Events } from '../events.js';
import type { JailRuntime } from './jails.js';

export interface PipelineDeps {
  readonly engine: MatchEngine;
  readonly manager: BanManager;
  readonly events: Events;
  /** bans being made durable and enforced while the next batches are matched */
  readonly inflight: Set<Promise<unknown>>;
  /** epoch seconds */
  readonly now?: () => number;
}

const EVERY_LINE = createLineScanner(null);

/** Multi-line filters keep a buffer across lines, so they run here, in order, per source. */
function matchMultiline(jail: JailRuntime, batch: Batch, now: number): EngineResult {
  jail.clock = now;
  let matcher = jail.multilineMatchers.get(batch.sourceId);
  if (!matcher) {
    matcher = jail.compiled.createMatcher({ now: () => jail.clock });
    jail.multilineMatchers.set(batch.sourceId, matcher);
  }
  const buf = Buffer.from(batch.data.buffer, batch.data.byteOffset, batch.data.byteLength);
  const found = new FailureCollector();
  const m = matcher;
  EVERY_LINE.scan(buf, (start, end) => {
    const r = m.match(decodeLine(buf, start, end));
    if (r.kind === 'fail') found.add(r, start);
  });
  return { failures: found.columns(), lines: batch.lineCount ?? countLines(buf) };
}

const NO_FIELDS: Readonly<Record<string, string>> = Object.freeze({});

/** Bans of at most this many batches may be in flight (fsync + kernel) while matching goes on. */
const MAX_INFLIGHT_BANS = 8;

/**
 * Batches of one source are matched concurrently but applied in order: `after` is the previous
 * batch of the same source, whose failures must reach the windows first.
 *
 * Resolves with the number of bans decided. The bans themselves complete in the background
 * (fsync of the state journal, enforcer confirmation, then the log line): reading and matching
 * do not wait for the disk. Nothing is lost by that: the source's position for this batch is
 * written to the same journal after the ban records, by a later flush, so a crash can never
 * keep the position and lose the ban.
 */
export async function processBatch(
  deps: PipelineDeps,
  jails: readonly JailRuntime[],
  batch: Batch,
  after: Promise<unknown> = Promise.resolve(),
): Promise<number> {
  if (jails.length === 0 || batch.lineCount === 0 || batch.data.byteLength === 0) {
    await after;
    return 0;
  }
  const now = deps.now ? deps.now() : Date.now() / 1000;
  const metrics = deps.events.metrics;
  const shared = jails.some((j) => !j.compiled.isMultiline) ? shareBatch(batch.data) : null;
  const results = await Promise.all(
    jails.map((j) =>
      j.compiled.isMultiline || !shared ? Promise.resolve(matchMultiline(j, batch, now)) : deps.engine.match(j.filter, shared, now),
    ),
  );
  await after;
  // the file source leaves counting lines to the engine, which walks them anyway
  const lines = batch.lineCount ?? (results[0] as EngineResult).lines;
  for (const j of jails) metrics.logLines.inc({ jail: j.name }, lines);
  const decisions: BanDecision[] = [];
  for (let i = 0; i < jails.length; i++) {
    const jail = jails[i] as JailRuntime;
    const f = (results[i] as EngineResult).failures;
    const n = f.hosts.length;
    const cfg = jail.jail;
    // counted once per batch: a labelled inc per match costs more than the rest of the loop
    jail.totalFailed += n;
    if (n > 0) metrics.failures.inc({ jail: jail.name }, n);
    let nextFields = 0;
    for (let k = 0; k < n; k++) {
      let fields = NO_FIELDS;
      if (f.fieldRows[nextFields] === k) fields = f.fieldValues[nextFields++] as Readonly<Record<string, string>>;
      const hostText = f.hosts[k] as string;
      const host = jail.hosts.get(hostText);
      if (!host) {
        deps.events.badHost(jail.name, hostText);
        continue;
      }
      const addr = host.addr;
      const logTime = f.times[k] as number;
      const time = Number.isNaN(logTime) ? batch.readAt / 1000 : logTime;
      // fail2ban ignores failures older than findtime (backlog read at start, old rotated data)
      if (time < now - cfg.findtime) continue;
      // Lines read again after a crash (positions are flushed lazily) must not ban again: as
      // fail2ban does, a failure no newer than this address's last ban in the jail is old news.
      const lastBan = deps.manager.lastBanTime(host.historyKey);
      if (lastBan !== undefined && time <= lastBan) continue;
      if (host.ignored !== null) {
        deps.events.ignoredFailure(jail.name, addr.text, host.ignored);
        continue;
      }
      const r = jail.windows.record(addr.text, time, f.attempts[k]);
      if (!r.isDue) continue;
      if (jail.ignore.hasCommand && (await jail.ignore.commandSaysIgnore(addr.text))) {
        deps.events.ignoredFailure(jail.name, addr.text, 'ignorecommand');
        continue;
      }
      const target = host.target;
      decisions.push({
        jail: jail.name,
        ip: addr.text,
        cidr: target.cidr,
        bantime: cfg.bantime,
        bantimeFor: jail.bantimeFor,
        overalljails: cfg.increment.overalljails,
        source: 'auto',
        fields,
        failures: r.count,
        readAt: batch.readAt,
        keys: target.keys,
      });
    }
  }
  if (decisions.length === 0) return 0;
  const applying = deps.manager.ban(decisions).catch((e: unknown) => {
    deps.events.enforcerFailed('ban', e instanceof Error ? e.message : String(e));
  });
  deps.inflight.add(applying);
  void applying.finally(() => deps.inflight.delete(applying));
  if (deps.inflight.size > MAX_INFLIGHT_BANS) await Promise.race(deps.inflight);
  return decisions.length;
}
