/**
 * The metrics endpoint: `/metrics` (Prometheus text format) and `/health`, over HTTP or HTTPS,
 * hardened the way operators of an exposed exporter expect (SPEC "Metrics endpoint"):
 *
 *   allowlist (403) → per-client rate limit (429) → GET/HEAD only (405) → known path (404)
 *   → bearer token (401) → answer
 *
 * The rate limit comes before the token check so a token cannot be guessed at line speed.
 * Slow or flooding clients are bounded by header/request/idle/handshake timeouts and a
 * connection cap; the per-client table is an LRU of fixed size. No label ever carries a client
 * address: refusals are counted in `aegis_ratelimited_total{scope="metrics_endpoint"}` and logged.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { AegisError, ErrorCode, errorMessage } from '../errors.js';
import type { MetricsSettings } from '../config/types.js';
import type { Metrics } from './catalog.js';
import type { Logger } from '../log.js';
import { CidrSet, LOOPBACK, parseAddress, parseCidr } from '../net/address.js';
import { ClientLimiter } from './client-limiter.js';
import { loadTls, loadToken, tokenMatches, type TlsMaterial, type Token } from './secrets.js';

/** Bounds for slow or flooding clients. Defaults suit one Prometheus and a few humans. */
export interface MetricsLimits {
  /** whole request headers must arrive within this (slowloris) */
  readonly headersTimeoutMs: number;
  /** whole request within this */
  readonly requestTimeoutMs: number;
  /** an idle keep-alive connection is closed after this */
  readonly keepAliveTimeoutMs: number;
  /** a TLS handshake must finish within this */
  readonly handshakeTimeoutMs: number;
  /** concurrent connections; more are closed at once */
  readonly maxConnections: number;
  /** clients remembered by the rate limiter */
  readonly maxTrackedClients: number;
  /** a beforeScrape() still running after this is left behind and the last values are served */
  readonly refreshTimeoutMs: number;
}

export const DEFAULT_METRICS_LIMITS: MetricsLimits = Object.freeze({
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  handshakeTimeoutMs: 5_000,
  maxConnections: 64,
  maxTrackedClients: 4096,
  refreshTimeoutMs: 5_000,
});

export interface MetricsServerOptions {
  readonly settings: MetricsSettings;
  readonly registry: Registry;
  readonly metrics: Metrics;
  /** refreshes values read from elsewhere (XDP maps, ban table) before each scrape */
  readonly beforeScrape: () => Promise<void>;
  readonly isHealthy: () => boolean;
  readonly log: Logger;
  readonly limits?: Partial<MetricsLimits>;
}

export type ReloadResult = { ok: true } | { ok: false; message: string };

export interface MetricsServer {
  /** Applies new settings. TLS material is swapped in place; a bind/port change re-listens. */
  reload(settings: MetricsSettings): Promise<ReloadResult>;
  address(): { address: string; port: number };
  close(): Promise<void>;
}

/** What a request is checked against; replaced whole on reload. */
interface Policy {
  readonly settings: MetricsSettings;
  readonly token: Token | null;
  readonly allow: CidrSet | null;
  readonly tls: TlsMaterial | null;
}

type Built = { ok: true; policy: Policy; warnings: string[] } | { ok: false; code: ErrorCode; message: string };

function buildPolicy(settings: MetricsSettings): Built {
  const warnings: string[] = [];
  let token: Token | null = null;
  if (settings.tokenFile !== null) {
    const t = loadToken(settings.tokenFile);
    if (!t.ok) return { ok: false, code: ErrorCode.CONFIG_VALUE, message: t.message };
    if (t.warning !== undefined) warnings.push(t.warning);
    token = t.value;
  }
  let allow: CidrSet | null = null;
  if (settings.allow.length > 0) {
    allow = new CidrSet();
    for (const a of settings.allow) {
      const c = parseCidr(a);
      if (!c) return { ok: false, code: ErrorCode.CONFIG_VALUE, message: `metrics allow: "${a}" is not an IP address or CIDR prefix` };
      allow.add(c);
    }
  }
  let tls: TlsMaterial | null = null;
  if (settings.tlsCert !== null || settings.tlsKey !== null) {
    if (settings.tlsCert === null || settings.tlsKey === null) {
      return { ok: false, code: ErrorCode.CONFIG_VALUE, message: 'metrics tls_cert and tls_key must be set together' };
    }
    const m = loadTls(settings.tlsCert, settings.tlsKey);
    if (!m.ok) return { ok: false, code: ErrorCode.TLS, message: m.message };
    tls = m.value;
  }
  if (settings.rateLimit !== null && !(Number.isInteger(settings.rateLimit) && settings.rateLimit > 0)) {
    return { ok: false, code: ErrorCode.CONFIG_VALUE, message: `metrics rate_limit: expected a positive integer, got ${settings.rateLimit}` };
  }
  if (!isLoopbackBind(settings.bind)) {
    warnings.push(
      `metrics endpoint bound to ${settings.bind}, which is reachable from other hosts: anyone who can connect ` +
        `can read jail names, ban and failure rates and process details` +
        (token === null ? ', and no token_file is set' : '') +
        (allow === null ? ', and no allow list is set' : '') +
        (tls === null ? ', and traffic is not encrypted (no tls_cert)' : '') +
        '; prefer bind = 127.0.0.1 or set token_file, allow and tls_cert/tls_key',
    );
  }
  return { ok: true, policy: { settings, token, allow, tls }, warnings };
}

function isLoopbackBind(bind: string): boolean {
  if (bind === 'localhost') return true;
  const a = parseAddress(bind);
  return a !== null && new CidrSet(LOOPBACK).contains(a);
}

export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const limits: MetricsLimits = { ...DEFAULT_METRICS_LIMITS, ...opts.limits };
  const built = buildPolicy(opts.settings);
  if (!built.ok) throw new AegisError(built.code, built.message, { hint: 'fix [metrics] in aegis.conf' });
  for (const w of built.warnings) opts.log.warn({ component: 'metrics' }, w);

  let policy = built.policy;
  const limiter = new ClientLimiter(policy.settings.rateLimit ?? 1, limits.maxTrackedClients);
  const denials = new DenialLog(opts.log);
  setModules(opts.metrics, policy);

  const refresh = singleFlight(opts.beforeScrape, limits.refreshTimeoutMs);
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    void handle(req, res, policy, limiter, denials, refresh, opts);
  };
  let server = await listen(policy, limits, handler);
  opts.log.info({ component: 'metrics', ...addressOf(server), tls: policy.tls !== null, auth: policy.token !== null }, 'metrics endpoint listening');

  return {
    async reload(settings: MetricsSettings): Promise<ReloadResult> {
      const next = buildPolicy(settings);
      if (!next.ok) {
        opts.log.error({ component: 'metrics' }, `metrics reload failed, keeping the previous settings: ${next.message}`);
        return { ok: false, message: next.message };
      }
      for (const w of next.warnings) opts.log.warn({ component: 'metrics' }, w);
      const old = policy.settings;
      const relisten = old.bind !== settings.bind || old.port !== settings.port || (policy.tls === null) !== (next.policy.tls === null);
      if (relisten) {
        let fresh: http.Server;
        try {
          fresh = await listen(next.policy, limits, handler);
        } catch (e) {
          const message = errorMessage(e);
          opts.log.error({ component: 'metrics' }, `metrics reload failed, keeping the previous listener: ${message}`);
          return { ok: false, message };
        }
        const previous = server;
        server = fresh;
        await closeServer(previous);
      } else if (next.policy.tls !== null && server instanceof https.Server) {
        // Swap the certificate for new handshakes; open connections keep theirs.
        server.setSecureContext({ cert: next.policy.tls.cert, key: next.policy.tls.key });
      }
      policy = next.policy;
      limiter.setLimit(settings.rateLimit ?? 1);
      setModules(opts.metrics, policy);
      opts.log.info({ component: 'metrics', ...addressOf(server), tls: policy.tls !== null, auth: policy.token !== null }, 'metrics endpoint reloaded');
      return { ok: true };
    },
    address: () => addressOf(server),
    close: () => closeServer(server),
  };
}

function setModules(metrics: Metrics, policy: Policy): void {
  metrics.moduleEnabled.set({ module: 'metrics_auth' }, policy.token === null ? 0 : 1);
  metrics.moduleEnabled.set({ module: 'metrics_tls' }, policy.tls === null ? 0 : 1);
}

function addressOf(server: http.Server): { address: string; port: number } {
  const a = server.address() as AddressInfo | null;
  return { address: a?.address ?? '', port: a?.port ?? 0 };
}

async function listen(policy: Policy, limits: MetricsLimits, handler: http.RequestListener): Promise<http.Server> {
  const common = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // How often Node checks the two timeouts above (default 30 s would let them overrun).
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    maxHeaderSize: 8192,
  };
  const server: http.Server =
    policy.tls === null
      ? http.createServer(common, handler)
      : https.createServer({ ...common, cert: policy.tls.cert, key: policy.tls.key, handshakeTimeout: limits.handshakeTimeoutMs }, handler);
  server.maxConnections = limits.maxConnections;
  // Idle sockets (no request at all) are closed too.
  server.timeout = limits.requestTimeoutMs;
  server.on('timeout', (socket: import('node:net').Socket) => socket.destroy());
  server.on('clientError', (e: NodeJS.ErrnoException, socket) => {
    const status =
      e.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : e.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
    socket.destroy();
  });
  const { bind, port } = policy.settings;
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      reject(
        new AegisError(ErrorCode.LISTEN, `metrics endpoint cannot listen on ${bind}:${port}: ${e.code ?? e.message}`, {
          hint: e.code === 'EADDRINUSE' ? 'another process uses this port; set [metrics] port or --metrics-port' : 'check [metrics] bind',
          cause: e,
        }),
      );
    };
    server.once('error', onError);
    server.listen({ host: bind, port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return server;
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

async function handle(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  policy: Policy,
  limiter: ClientLimiter,
  denials: DenialLog,
  refresh: () => Promise<void>,
  opts: MetricsServerOptions,
): Promise<void> {
  const peer = parseAddress(req.socket.remoteAddress ?? '');
  const client = peer?.text ?? 'unknown';
  if (policy.allow !== null && (peer === null || !policy.allow.contains(peer))) {
    denials.note('forbidden', client);
    return reply(res, 403, 'forbidden\n');
  }
  if (policy.settings.rateLimit !== null) {
    const d = limiter.take(client);
    if (!d.allowed) {
      opts.metrics.rateLimited.inc({ scope: 'metrics_endpoint' });
      denials.note('rate_limited', client);
      return reply(res, 429, 'too many requests\n', { 'Retry-After': String(d.retryAfterSeconds) });
    }
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return reply(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
  }
  const path = (req.url ?? '/').split('?', 1)[0];
  if (path !== '/metrics' && path !== '/health') return reply(res, 404, 'not found\n');
  if (policy.token !== null && !tokenMatches(policy.token, req.headers.authorization)) {
    denials.note('unauthorized', client);
    return reply(res, 401, 'unauthorized\n', { 'WWW-Authenticate': 'Bearer realm="aegis"' });
  }
  if (path === '/health') {
    return opts.isHealthy() ? reply(res, 200, 'ok\n') : reply(res, 503, 'unavailable\n');
  }
  if (req.method === 'HEAD') return reply(res, 200, '', { 'Content-Type': opts.registry.contentType });
  try {
    await refresh();
  } catch (e) {
    // Serve what we have: a failed refresh of kernel counters should not turn `up` to 0.
    denials.note('refresh_failed', errorMessage(e));
  }
  let body: string;
  try {
    body = await opts.metrics.render();
  } catch (e) {
    opts.log.error({ component: 'metrics', err: errorMessage(e) }, 'collecting metrics failed');
    return reply(res, 500, 'internal error\n');
  }
  reply(res, 200, body, { 'Content-Type': opts.registry.contentType });
}

/**
 * Concurrent scrapes share one refresh (its cost grows with the ban table), and a refresh that
 * hangs is abandoned after `timeoutMs` so scrapes still answer with the last values.
 */
function singleFlight(fn: () => Promise<void>, timeoutMs: number): () => Promise<void> {
  let inFlight: Promise<void> | null = null;
  return () => {
    if (inFlight === null) {
      inFlight = fn().finally(() => {
        inFlight = null;
      });
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`refresh still running after ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([inFlight, timeout]).finally(() => clearTimeout(timer));
  };
}

function reply(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...(res.req.method === 'HEAD' ? {} : { 'Content-Length': String(Buffer.byteLength(body)) }),
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * Refusals are logged at most once a minute per kind (with how many were suppressed), so a
 * flood cannot fill the journal. The client address appears in the log, never in a label.
 */
class DenialLog {
  readonly #log: Logger;
  readonly #last = new Map<string, { at: number; suppressed: number }>();
  constructor(log: Logger) {
    this.#log = log;
  }
  note(kind: string, detail: string): void {
    const now = Date.now();
    const prev = this.#last.get(kind);
    if (prev !== undefined && now - prev.at < 60_000) {
      prev.suppressed++;
      return;
    }
    const suppressed = prev?.suppressed ?? 0;
    this.#last.set(kind, { at: now, suppressed: 0 });
    const msg =
      kind === 'refresh_failed' ? 'refreshing metrics before a scrape failed; serving the last values' : `metrics request refused: ${kind}`;
    this.#log.warn({ component: 'metrics', kind, detail, suppressed }, msg);
  }
}
