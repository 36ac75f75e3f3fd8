/**
 * The composition root: the only module that imports every stage.
 *
 * Start order: config → logger → state → jails (filters compiled, ignore lists resolved) →
 * enforcer (+ restore bans with their remaining time) → engine → control socket → metrics →
 * sources → READY. Reload = build the next jail set, validate, swap; the old one stays live
 * when anything is wrong. Stop = sources first (in-flight batches finish and their positions
 * are saved), then the rest in reverse.
 */
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import type { Logger } from 'pino';
import { resolveConfig } from '../config/resolve.js';
import { formatDiagnostic, type Diagnostic, type ResolvedConfig } from '../config/types.js';
import { createLogger } from '../log.js';
import { createMetrics, syncCounter, type Metrics } from '../metrics/catalog.js';
import { startMetricsServer, type MetricsServer } from '../metrics/server.js';
import { StateStore } from '../state/store.js';
import { BanManager } from '../bans/manager.js';
import { MatchEngine } from '../engine/pool.js';
import { Events } from '../events.js';
import { startEnforcer } from '../enforce/select.js';
import type { Enforcer, EnforcerContext } from '../enforce/enforcer.js';
import { startControlServer, type ControlServer } from '../control/server.js';
import { ErrorCode, errorMessage } from '../errors.js';
import { buildJails, type JailRuntime } from './jails.js';
import { createHandlers } from './handlers.js';
import { processBatch } from './pipeline.js';
import { SourceSet } from './source-set.js';
import { applyOverrides, type DaemonOverrides } from './overrides.js';
import { notifyReady, notifyStopping } from '../systemd-notify.js';
import { LOOPBACK } from '../net/address.js';

export type { DaemonOverrides };

export const VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

/** Thrown by start() for configuration problems: aegisd exits 2 after printing them. */
export class ConfigRejected extends Error {
  readonly diagnostics: readonly Diagnostic[];
  constructor(diagnostics: readonly Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
    this.diagnostics = diagnostics;
  }
}

const RECONCILE_MS = 30_000;
const SWEEP_MS = 60_000;

export class Daemon {
  readonly #configDir: string;
  readonly #overrides: DaemonOverrides;
  #config!: ResolvedConfig;
  #log!: Logger;
  #metrics!: Metrics;
  #registry!: Registry;
  #events!: Events;
  #store!: StateStore;
  #manager!: BanManager;
  #enforcer!: Enforcer;
  #engine!: MatchEngine;
  #control: ControlServer | null = null;
  #metricsServer: MetricsServer | null = null;
  #sources!: SourceSet;
  #jails: JailRuntime[] = [];
  #timers: NodeJS.Timeout[] = [];
  #running = false;
  #reloading: Promise<unknown> = Promise.resolve();
  readonly #startedAt = Date.now() / 1000;
  readonly #counterSnapshot = new Map<string, number>();
  readonly #inflight = new Set<Promise<unknown>>();

  constructor(configDir: string, overrides: DaemonOverrides) {
    this.#configDir = configDir;
    this.#overrides = overrides;
  }

  get log(): Logger {
    return this.#log;
  }

  #loadConfig(): { config: ResolvedConfig | null; diagnostics: readonly Diagnostic[] } {
    const { config, diagnostics } = resolveConfig(this.#configDir);
    return { config: config ? applyOverrides(config, this.#overrides) : null, diagnostics };
  }

  async start(): Promise<void> {
    const { config, diagnostics } = this.#loadConfig();
    if (!config) throw new ConfigRejected(diagnostics.filter((d) => d.severity === 'error'));
    this.#config = config;
    this.#log = createLogger({ level: config.daemon.logLevel });
    for (const d of diagnostics) this.#log.warn({ event: 'config_warning', file: d.file, key: d.key }, formatDiagnostic(d));

    const built = await buildJails(config);
    const errors = built.diagnostics.filter((d) => d.severity === 'error');
    if (errors.length > 0) throw new ConfigRejected(errors);
    for (const d of built.diagnostics) this.#log.warn({ event: 'config_warning' }, formatDiagnostic(d));
    this.#jails = built.jails;

    this.#registry = new Registry();
    this.#metrics = createMetrics(this.#registry, { version: VERSION });
    this.#events = new Events(this.#log, this.#metrics);

    this.#store = await StateStore.open(config.daemon.stateDir);
    for (const w of this.#store.loadWarnings) this.#log.warn({ event: 'state_warning' }, w);

    const selected = await startEnforcer(config, this.#enforcerContext(), this.#log);
    this.#enforcer = selected.enforcer;
    this.#setModules();

    this.#manager = new BanManager({ store: this.#store, enforcer: this.#enforcer, events: this.#events });
    const restored = await this.#manager.restore();
    if (restored.restored + restored.expired > 0) {
      this.#log.info({ event: 'restore', ...restored }, `restored ${restored.restored} bans from state (${restored.expired} had expired)`);
    }

    this.#engine = new MatchEngine({
      onTimeout: (jail, _offset, bytes) => this.#events.regexTimeout(jail, 'log', bytes),
    });

    this.#control = await startControlServer({
      path: config.daemon.socket,
      mode: config.daemon.socketMode,
      group: config.daemon.socketGroup,
      handlers: createHandlers({
        manager: this.#manager,
        settled: () => this.#settled(),
        jails: () => this.#jails,
        filesOf: (jail) => this.#sources.filesOf(jail),
        enforcerDescription: () => this.#enforcer.describe(),
        reload: (jail) => this.reload(jail),
        version: VERSION,
        startedAt: this.#startedAt,
        dryRun: config.daemon.dryRun,
      }),
      onRateLimited: () => this.#metrics.rateLimited.inc({ scope: 'control' }),
      log: this.#log,
    });

    if (config.metrics.enabled) {
      this.#metricsServer = await startMetricsServer({
        settings: config.metrics,
        registry: this.#registry,
        metrics: this.#metrics,
        beforeScrape: () => this.#beforeScrape(),
        isHealthy: () => this.#running,
        log: this.#log,
      });
    }

    this.#sources = new SourceSet({
      store: this.#store,
      events: this.#events,
      process: (jails, batch, after) =>
        processBatch({ engine: this.#engine, manager: this.#manager, events: this.#events, inflight: this.#inflight }, jails, batch, after),
    });
    await this.#sources.apply(this.#jails);
    this.#running = true;

    this.#timers.push(setInterval(() => void this.#manager.reconcile(), RECONCILE_MS));
    this.#timers.push(setInterval(() => this.#sweep(), SWEEP_MS));
    for (const t of this.#timers) t.unref();

    this.#log.info(
      {
        event: 'start',
        version: VERSION,
        jails: this.#jails.map((j) => j.name),
        enforcer: this.#enforcer.kind,
        dry_run: config.daemon.dryRun,
        socket: config.daemon.socket,
        metrics: this.#metricsServer ? this.#metricsServer.address() : null,
      },
      `aegisd ${VERSION} started: ${this.#jails.length} jails, enforcer ${this.#enforcer.kind}${selected.fallback ? ' (FALLBACK)' : ''}`,
    );
    void notifyReady(`${this.#jails.length} jails, enforcer ${this.#enforcer.kind}`);
  }

  /** what aegis-ban shows must be durable: wait for bans in flight and the journal */
  async #settled(): Promise<void> {
    await Promise.allSettled([...this.#inflight]);
    await this.#store.flush();
  }

  #enforcerContext(): EnforcerContext {
    const allow = new Set<string>(LOOPBACK.map((c) => c.text));
    for (const j of this.#jails) for (const c of j.ignore.prefixes) allow.add(c.text);
    return { config: this.#config, jails: this.#jails.map((j) => j.jail), allow: [...allow], log: this.#log };
  }

  #setModules(): void {
    const kind = this.#enforcer.kind;
    for (const m of ['xdp', 'nftables', 'action'] as const) this.#metrics.moduleEnabled.set({ module: m }, kind === m ? 1 : 0);
    this.#metrics.moduleEnabled.set({ module: 'xdp_rate_limit' }, kind === 'xdp' && this.#config.xdp.rateLimit.enabled ? 1 : 0);
  }

  #sweep(): void {
    const now = Date.now() / 1000;
    for (const j of this.#jails) j.windows.sweep(now);
  }

  async #beforeScrape(): Promise<void> {
    const counts = this.#manager.countByJail();
    this.#metrics.bannedIps.reset();
    for (const j of this.#jails) this.#metrics.bannedIps.set({ jail: j.name }, counts.get(j.name) ?? 0);
    for (const [jail, n] of counts) if (!this.#jails.some((j) => j.name === jail)) this.#metrics.bannedIps.set({ jail }, n);
    if (!this.#enforcer.counters) return;
    const c = await this.#enforcer.counters();
    if (c.blocklistEntries) {
      this.#metrics.blocklistEntries.set({ family: 'ipv4' }, c.blocklistEntries.ipv4);
      this.#metrics.blocklistEntries.set({ family: 'ipv6' }, c.blocklistEntries.ipv6);
    }
    for (const p of c.packets ?? []) syncCounter(this.#metrics.packets, { protocol: p.protocol, action: p.action }, p.value, this.#counterSnapshot);
    for (const d of c.drops ?? []) syncCounter(this.#metrics.drops, { reason: d.reason }, d.value, this.#counterSnapshot);
    if (c.rateLimited !== undefined) syncCounter(this.#metrics.rateLimited, { scope: 'xdp' }, c.rateLimited, this.#counterSnapshot);
  }

  /** Re-read the config; on any error the running config stays live. One reload at a time. */
  reload(only?: string): Promise<{ ok: true; jails: string[]; warnings: string[] } | { ok: false; error: { code: ErrorCode; message: string } }> {
    const run = this.#reloading.then(() => this.#reload(only));
    this.#reloading = run.catch(() => undefined);
    return run;
  }

  async #reload(only?: string): Promise<{ ok: true; jails: string[]; warnings: string[] } | { ok: false; error: { code: ErrorCode; message: string } }> {
    const { config, diagnostics } = this.#loadConfig();
    const reject = (ds: readonly Diagnostic[]) => {
      const message = `configuration rejected, the running configuration stays live: ${ds.map(formatDiagnostic).join('; ')}`;
      this.#log.error({ event: 'reload_rejected' }, message);
      return { ok: false as const, error: { code: ErrorCode.CONFIG_VALUE, message } };
    };
    if (!config) return reject(diagnostics.filter((d) => d.severity === 'error'));
    const built = await buildJails(config);
    const errors = built.diagnostics.filter((d) => d.severity === 'error');
    if (errors.length > 0) return reject(errors);
    if (only !== undefined && !built.jails.some((j) => j.name === only) && !this.#jails.some((j) => j.name === only)) {
      return { ok: false, error: { code: ErrorCode.UNKNOWN_JAIL, message: `no jail named "${only}"` } };
    }
    const warnings = [...diagnostics, ...built.diagnostics].map(formatDiagnostic);

    // Reloading one jail: every other jail keeps its running definition.
    let next: JailRuntime[] = built.jails;
    if (only !== undefined) {
      next = this.#jails.filter((j) => j.name !== only);
      const fresh = built.jails.find((j) => j.name === only);
      if (fresh) next.push(fresh);
    }
    const prev = new Map(this.#jails.map((j) => [j.name, j]));
    next = next.map((j) => {
      const old = prev.get(j.name);
      if (old && old.fingerprint === j.fingerprint) return old; // unchanged: keep it whole
      if (old) j.adoptState(old);
      return j;
    });
    const removed = this.#jails.filter((j) => !next.some((n) => n.name === j.name)).map((j) => j.name);

    // Batches in flight finish with the jail objects they started with; the next batch routes
    // to the new set. Sources are only re-created where logpaths changed.
    try {
      this.#jails = next;
      this.#config = only === undefined ? { ...config, daemon: this.#config.daemon } : this.#config;
      if (removed.length > 0) await this.#manager.unban((b) => removed.includes(b.jail), 'reload');
      if (this.#enforcer.reconfigure) await this.#enforcer.reconfigure(this.#enforcerContext());
      if (this.#metricsServer && only === undefined) {
        const r = await this.#metricsServer.reload(config.metrics);
        if (!r.ok) warnings.push(`metrics: ${r.message}`);
      }
    } finally {
      await this.#sources.apply(this.#jails);
    }
    this.#log.info({ event: 'reload', jails: next.map((j) => j.name), removed, warnings: warnings.length }, `configuration reloaded: ${next.length} jails`);
    return { ok: true, jails: next.map((j) => j.name), warnings };
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    void notifyStopping();
    for (const t of this.#timers) clearInterval(t);
    await this.#sources?.close();
    await Promise.allSettled([...this.#inflight]);
    await this.#control?.close();
    await this.#metricsServer?.close();
    await this.#engine?.close();
    this.#manager?.close();
    try {
      await this.#enforcer?.stop();
    } catch (e) {
      this.#log.error({ event: 'enforcer_error' }, `enforcer stop failed: ${errorMessage(e)}`);
    }
    await this.#store?.close();
    this.#log.info({ event: 'stop' }, 'aegisd stopped');
  }
}
