/**
 * Values read from elsewhere (XDP maps, the ban table) are refreshed by the metrics server
 * calling the daemon's `beforeScrape()` before rendering (`render()`), so a scrape never shows
 * the previous scrape's kernel counters.
 *
 * Every metric of SPEC's table, in one Registry that is passed in (tests get a fresh one).
 * Names and labels are contract. No label ever carries an IP, user name, path or other
 * unbounded value: jail names come from config, the rest are small fixed sets.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const METRIC_NAMES = [
  'aegis_build_info',
  'aegis_log_lines_total',
  'aegis_failures_total',
  'aegis_bans_total',
  'aegis_autoban_total',
  'aegis_module_enabled',
  'aegis_unbans_total',
  'aegis_banned_ips',
  'aegis_blocklist_entries',
  'aegis_packets_total',
  'aegis_drops_total',
  'aegis_ratelimited_total',
  'aegis_ban_latency_seconds',
  'aegis_regex_timeouts_total',
  'aegis_source_errors_total',
  'aegis_enforcer_drift_total',
] as const;

export type Metrics = ReturnType<typeof createMetrics>;

export interface MetricsOptions {
  readonly version: string;
}

export function createMetrics(registry: Registry, options: MetricsOptions) {
  const buildInfo = new Gauge({
    name: 'aegis_build_info',
    help: 'Aegis build information (always 1).',
    labelNames: ['version', 'node'] as const,
    registers: [registry],
  });
  buildInfo.set({ version: options.version, node: process.versions.node }, 1);
  const m = {
    registry,
    buildInfo,
    logLines: new Counter({
      name: 'aegis_log_lines_total',
      help: 'Log lines read for a jail.',
      labelNames: ['jail'] as const,
      registers: [registry],
    }),
    failures: new Counter({
      name: 'aegis_failures_total',
      help: 'Failures found by a jail filter.',
      labelNames: ['jail'] as const,
      registers: [registry],
    }),
    bans: new Counter({
      name: 'aegis_bans_total',
      help: 'Bans applied, by jail and source (auto or manual).',
      labelNames: ['jail', 'source'] as const,
      registers: [registry],
    }),
    autobans: new Counter({
      name: 'aegis_autoban_total',
      help: 'Automatic bans, by what detected them (log, rate_limit).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    moduleEnabled: new Gauge({
      name: 'aegis_module_enabled',
      help: 'Whether an optional module is on (1) or off (0).',
      labelNames: ['module'] as const,
      registers: [registry],
    }),
    unbans: new Counter({
      name: 'aegis_unbans_total',
      help: 'Bans lifted, by jail and reason (expired, manual, reload).',
      labelNames: ['jail', 'reason'] as const,
      registers: [registry],
    }),
    bannedIps: new Gauge({
      name: 'aegis_banned_ips',
      help: 'Addresses or prefixes currently banned by a jail.',
      labelNames: ['jail'] as const,
      registers: [registry],
    }),
    blocklistEntries: new Gauge({
      name: 'aegis_blocklist_entries',
      help: 'Entries in the XDP blocklist maps, read from the kernel.',
      labelNames: ['family'] as const,
      registers: [registry],
    }),
    packets: new Counter({
      name: 'aegis_packets_total',
      help: 'Packets seen by the XDP program, by protocol and action.',
      labelNames: ['protocol', 'action'] as const,
      registers: [registry],
    }),
    drops: new Counter({
      name: 'aegis_drops_total',
      help: 'Packets dropped by the XDP program, by reason.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'aegis_ratelimited_total',
      help: 'Requests or packets refused by a rate limit, by scope.',
      labelNames: ['scope'] as const,
      registers: [registry],
    }),
    banLatency: new Histogram({
      name: 'aegis_ban_latency_seconds',
      help: 'Time from reading the line that triggered a ban to the enforcer confirming it.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    regexTimeouts: new Counter({
      name: 'aegis_regex_timeouts_total',
      help: 'Lines skipped because a jail filter ran past its time bound.',
      labelNames: ['jail'] as const,
      registers: [registry],
    }),
    sourceErrors: new Counter({
      name: 'aegis_source_errors_total',
      help: 'Problems reading log sources, by kind.',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    enforcerDrift: new Counter({
      name: 'aegis_enforcer_drift_total',
      help: 'Kernel enforcement state found differing from the ban table, then repaired.',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
  };
  const processRegistry = defaultMetricsRegistry();
  return { ...m, processRegistry, render: renderBeside(registry, processRegistry) };
}

/** how old the process metrics in a scrape may be */
export const PROCESS_METRICS_MAX_AGE_MS = 1000;

/** prom-client's default process and Node.js metrics, in a registry of their own */
function defaultMetricsRegistry(): Registry {
  const processRegistry = new Registry();
  collectDefaultMetrics({ register: processRegistry });
  // prom-client names these gauges `…_total`, which promtool's linter rejects (only counters
  // may end in _total); the per-type `nodejs_active_handles` etc. carry the same information.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    processRegistry.removeSingleMetric(name);
  }
  return processRegistry;
}

/**
 * The whole exposition text: `registry`'s metrics, then the process metrics. Collecting those
 * costs ~2 ms of the main thread (reading /proc, heap statistics, the event loop delay
 * histogram), ten times the aegis_* metrics; a scrape reuses them for up to a second, so
 * frequent scrapes (dashboards, HA Prometheus pairs, a benchmark polling the line counter)
 * cost the daemon little. The aegis_* metrics are always current.
 */
function renderBeside(registry: Registry, processRegistry: Registry): () => Promise<string> {
  let text: Promise<string> | null = null;
  let at = -Infinity;
  return async () => {
    const now = performance.now();
    if (text === null || now - at > PROCESS_METRICS_MAX_AGE_MS) {
      at = now;
      text = processRegistry.metrics();
      // a failed collection is not kept: the next scrape tries again
      text.catch(() => {
        text = null;
      });
    }
    const [own, process] = await Promise.all([registry.metrics(), text]);
    return own.endsWith('\n') || own === '' ? own + process : `${own}\n${process}`;
  };
}

/**
 * Set a counter that mirrors a cumulative value read elsewhere (XDP per-CPU counters):
 * prom-client counters only go up, so add the difference; a reset (program reloaded) adds the
 * new value.
 */
export function syncCounter<L extends string>(
  counter: Counter<L>,
  labels: Partial<Record<L, string>>,
  value: number,
  last: Map<string, number>,
): void {
  const key = JSON.stringify(labels);
  const prev = last.get(key) ?? 0;
  const delta = value >= prev ? value - prev : value;
  if (delta > 0) counter.inc(labels, delta);
  last.set(key, value);
}
