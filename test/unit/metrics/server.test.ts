import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createMetrics, PROCESS_METRICS_MAX_AGE_MS, type Metrics } from '../../../src/metrics/catalog.js';
import { startMetricsServer, type MetricsServer, type MetricsLimits } from '../../../src/metrics/server.js';
import type { MetricsSettings } from '../../../src/config/types.js';

const dir = mkdtempSync(join(tmpdir(), `aegis-metrics-${process.pid}-`));
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

const base: MetricsSettings = {
  enabled: true,
  bind: '127.0.0.1',
  port: 0,
  tokenFile: null,
  allow: [],
  tlsCert: null,
  tlsKey: null,
  rateLimit: null,
};

interface Started {
  server: MetricsServer;
  metrics: Metrics;
  registry: Registry;
  logs: Array<{ level: number; msg: string }>;
  url: (path: string) => string;
}

const running: MetricsServer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

function makeLog(logs: Array<{ level: number; msg: string }>) {
  return pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s) as { level: number; msg: string }) });
}

async function start(
  settings: Partial<MetricsSettings> = {},
  extra: { healthy?: () => boolean; beforeScrape?: (m: Metrics) => Promise<void>; limits?: Partial<MetricsLimits> } = {},
): Promise<Started> {
  const registry = new Registry();
  const metrics = createMetrics(registry, { version: '0.0.0-test' });
  const logs: Array<{ level: number; msg: string }> = [];
  const s = { ...base, ...settings };
  const server = await startMetricsServer({
    settings: s,
    registry,
    metrics,
    beforeScrape: () => (extra.beforeScrape ? extra.beforeScrape(metrics) : Promise.resolve()),
    isHealthy: extra.healthy ?? (() => true),
    log: makeLog(logs),
    ...(extra.limits ? { limits: extra.limits } : {}),
  });
  running.push(server);
  const scheme = s.tlsCert ? 'https' : 'http';
  const { port } = server.address();
  return { server, metrics, registry, logs, url: (p) => `${scheme}://127.0.0.1:${port}${p}` };
}

interface Resp {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  peerCN?: string;
}

function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; ca?: Buffer; localAddress?: string } = {},
): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      {
        hostname: u.hostname,
        port: u.port,
        path: u.pathname,
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: false,
        ...(opts.ca ? { ca: opts.ca } : {}),
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          const sock = res.socket as tls.TLSSocket;
          const cn = typeof sock.getPeerCertificate === 'function' ? sock.getPeerCertificate().subject?.CN : undefined;
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ...(cn !== undefined ? { peerCN: String(cn) } : {}) });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function makeCert(name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  return { cert, key };
}

/** Sample lines of the exposition, as `name{labels}` without values. */
function series(body: string): string[] {
  return body
    .split('\n')
    .filter((l) => l.length > 0 && !l.startsWith('#'))
    .map((l) => l.slice(0, l.lastIndexOf(' ')));
}

describe('metrics endpoint: paths and methods', () => {
  it('serves /metrics with every aegis metric family, after awaiting beforeScrape', async () => {
    const s = await start({}, {
      beforeScrape: async (m) => {
        await new Promise((r) => setTimeout(r, 20));
        m.blocklistEntries.set({ family: 'ipv4' }, 42);
      },
    });
    const r = await request(s.url('/metrics'));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toContain('text/plain');
    expect(r.body).toContain('aegis_build_info{version="0.0.0-test"');
    expect(r.body).toContain('aegis_blocklist_entries{family="ipv4"} 42');
    expect(r.body).toContain('process_cpu_seconds_total');
    expect(r.body).toMatch(/aegis_module_enabled\{module="metrics_auth"\} 0/);
    expect(r.body).toMatch(/aegis_module_enabled\{module="metrics_tls"\} 0/);
  });

  it('shares one refresh between concurrent scrapes and serves the last values when a refresh hangs', async () => {
    let calls = 0;
    let hang = false;
    const s = await start({}, {
      limits: { refreshTimeoutMs: 200 },
      beforeScrape: async (m) => {
        calls++;
        m.blocklistEntries.set({ family: 'ipv6' }, calls);
        await new Promise((r) => setTimeout(r, hang ? 60_000 : 50));
      },
    });
    const rs = await Promise.all(Array.from({ length: 10 }, () => request(s.url('/metrics'))));
    expect(rs.every((r) => r.status === 200)).toBe(true);
    expect(calls).toBe(1);
    hang = true;
    const t0 = Date.now();
    const r = await request(s.url('/metrics'));
    expect(r.status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.body).toContain('aegis_blocklist_entries{family="ipv6"} 2');
    expect(s.logs.some((l) => l.level === 40 && l.msg.includes('serving the last values'))).toBe(true);
  });

  it('collects the process metrics at most once a second; the aegis metrics on every scrape', async () => {
    const s = await start();
    const cpuLine = (body: string) => /^process_cpu_user_seconds_total \S+$/m.exec(body)?.[0];
    const first = await request(s.url('/metrics'));
    s.metrics.logLines.inc({ jail: 'j' }, 7);
    // CPU spent between the two scrapes: a fresh collection would show more
    const until = performance.now() + 30;
    while (performance.now() < until);
    const second = await request(s.url('/metrics'));
    expect(second.body).toContain('aegis_log_lines_total{jail="j"} 7');
    expect(cpuLine(second.body)).toBe(cpuLine(first.body));
    await new Promise((r) => setTimeout(r, PROCESS_METRICS_MAX_AGE_MS + 100));
    const third = await request(s.url('/metrics'));
    expect(cpuLine(third.body)).toBeDefined();
    expect(cpuLine(third.body)).not.toBe(cpuLine(first.body));
  });

  it('answers HEAD without a body, other methods with 405 and unknown paths with 404', async () => {
    const s = await start();
    const head = await request(s.url('/metrics'), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
      const r = await request(s.url('/metrics'), { method });
      expect(r.status, method).toBe(405);
      expect(r.headers.allow).toBe('GET, HEAD');
    }
    for (const p of ['/', '/metrics/', '/metricsx', '/debug/pprof', '/../etc/passwd']) {
      expect((await request(s.url(p))).status, p).toBe(404);
    }
    expect((await request(s.url('/metrics?x=1'))).status).toBe(200);
  });

  it('reports health as 200 ok or 503', async () => {
    let healthy = true;
    const s = await start({}, { healthy: () => healthy });
    const ok = await request(s.url('/health'));
    expect([ok.status, ok.body]).toEqual([200, 'ok\n']);
    healthy = false;
    expect((await request(s.url('/health'))).status).toBe(503);
  });

  it('refuses to start on a port already in use with AEGIS_ERR_LISTEN', async () => {
    const s = await start();
    await expect(start({ port: s.server.address().port })).rejects.toMatchObject({ code: 'AEGIS_ERR_LISTEN' });
  });

  it('warns, naming the risk, when bound to a non-loopback address', async () => {
    // Bound with an allowlist that only admits loopback, so nothing else can use it meanwhile.
    const s = await start({ bind: '::', allow: ['127.0.0.1', '::1'] });
    const warn = s.logs.find((l) => l.level === 40 && l.msg.includes('reachable from other hosts'));
    expect(warn?.msg).toContain('no token_file');
    // An IPv4 client of a dual-stack socket arrives as ::ffff:127.0.0.1 and matches 127.0.0.1.
    expect((await request(`http://127.0.0.1:${s.server.address().port}/health`)).status).toBe(200);
    const quiet = await start();
    expect(quiet.logs.some((l) => l.level === 40)).toBe(false);
  });
});

describe('metrics endpoint: bearer token', () => {
  it('requires the token, compares it and answers 401 with WWW-Authenticate', async () => {
    const tf = join(dir, 'token');
    writeFileSync(tf, 's3cret-token\n', { mode: 0o600 });
    chmodSync(tf, 0o600);
    const s = await start({ tokenFile: tf });
    const none = await request(s.url('/metrics'));
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="aegis"');
    for (const h of ['Bearer wrong', 'Bearer s3cret-token2', 'Bearer s3cret-toke', 'Basic s3cret-token', 's3cret-token', 'Bearer ']) {
      expect((await request(s.url('/metrics'), { headers: { Authorization: h } })).status, h).toBe(401);
    }
    const good = await request(s.url('/metrics'), { headers: { Authorization: 'Bearer s3cret-token' } });
    expect(good.status).toBe(200);
    expect(good.body).toMatch(/aegis_module_enabled\{module="metrics_auth"\} 1/);
    expect(s.logs.some((l) => l.level === 40 && l.msg.includes('readable by group'))).toBe(false);
  });

  it('refuses to start when the token file is missing or empty, and warns when others can read it', async () => {
    await expect(start({ tokenFile: join(dir, 'nope') })).rejects.toMatchObject({ code: 'AEGIS_ERR_CONFIG_VALUE' });
    const empty = join(dir, 'empty-token');
    writeFileSync(empty, '\n');
    await expect(start({ tokenFile: empty })).rejects.toThrow(/is empty/);
    const open = join(dir, 'open-token');
    writeFileSync(open, 'tok');
    chmodSync(open, 0o644);
    const s = await start({ tokenFile: open });
    expect(s.logs.find((l) => l.level === 40 && l.msg.includes('readable by group or others'))?.msg).toContain('chmod 600');
  });
});

describe('metrics endpoint: allowlist', () => {
  it('answers 403 to clients outside the allowlist, IPv4-mapped addresses normalised', async () => {
    const denied = await start({ allow: ['198.18.0.0/15', '2001:db8::/32'] });
    expect((await request(denied.url('/metrics'))).status).toBe(403);
    expect((await request(denied.url('/health'))).status).toBe(403);
    const mapped = await start({ allow: ['::ffff:127.0.0.0/104'] });
    expect((await request(mapped.url('/metrics'))).status).toBe(200);
    await expect(start({ allow: ['not-an-ip'] })).rejects.toMatchObject({ code: 'AEGIS_ERR_CONFIG_VALUE' });
  });
});

describe('metrics endpoint: rate limit', () => {
  it('answers 429 with Retry-After over the per-client limit and counts it', async () => {
    const s = await start({ rateLimit: 3 });
    for (let i = 0; i < 3; i++) expect((await request(s.url('/metrics'))).status).toBe(200);
    // Oversized headers are refused without reaching the handler.
    expect((await request(s.url('/metrics'), { headers: { 'X-Big': 'a'.repeat(20_000) } })).status).toBe(431);
    const r = await request(s.url('/metrics'));
    expect(r.status).toBe(429);
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(r.headers['retry-after'])).toBeLessThanOrEqual(20);
    await request(s.url('/health'));
    // Another client address has its own budget.
    expect((await request(s.url('/metrics'), { localAddress: '127.0.0.2' })).status).toBe(200);
    const body = await s.registry.metrics();
    expect(body).toContain('aegis_ratelimited_total{scope="metrics_endpoint"} 2');
  });

  it('keeps the client table and the series count bounded under a spray of distinct clients', async () => {
    const s = await start({ rateLimit: 1 }, { limits: { maxTrackedClients: 64 } });
    // One refusal first, so the counter's series exists before the spray.
    await request(s.url('/metrics'), { localAddress: '127.9.0.1' });
    await request(s.url('/metrics'), { localAddress: '127.9.0.1' });
    // Node's own handle/resource gauges and GC kinds come and go with activity; all else is fixed.
    const stable = (x: string): boolean => !x.startsWith('nodejs_gc') && !x.startsWith('nodejs_active');
    const before = series(await s.registry.metrics()).filter(stable);
    // 1 000 distinct loopback source addresses, each over its limit on the second request.
    for (let i = 0; i < 1000; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, j) => {
          const n = i + j;
          const local = `127.${10 + (n >> 8)}.${n & 255}.1`;
          expect((await request(s.url('/metrics'), { localAddress: local })).status).toBe(200);
          expect((await request(s.url('/metrics'), { localAddress: local })).status).toBe(429);
        }),
      );
    }
    const after = series(await s.registry.metrics()).filter(stable);
    expect(after.sort()).toEqual(before.sort());
    expect(await s.registry.metrics()).toContain('aegis_ratelimited_total{scope="metrics_endpoint"} 1001');
  }, 90_000);
});

describe('metrics endpoint: slow and flooding clients', () => {
  it('closes a connection whose headers never finish (slowloris)', async () => {
    const s = await start({}, { limits: { headersTimeoutMs: 300, requestTimeoutMs: 600 } });
    const { port } = s.server.address();
    const t0 = Date.now();
    const got = await new Promise<string>((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: '));
      let data = '';
      sock.on('data', (d) => (data += d.toString()));
      sock.on('close', () => resolve(data));
      const drip = setInterval(() => sock.writable && sock.write('a'), 100);
      sock.on('close', () => clearInterval(drip));
    });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(got).toMatch(/^HTTP\/1.1 408 /);
  });

  it('closes an idle connection that never sends anything', async () => {
    const s = await start({}, { limits: { headersTimeoutMs: 300, requestTimeoutMs: 500 } });
    const { port } = s.server.address();
    const t0 = Date.now();
    // The client reads (like any real one): the server may answer 408 before closing, and an
    // unread answer would keep the client's end of the socket from seeing the close.
    await new Promise<void>((resolve) => net.connect(port, '127.0.0.1').on('error', () => undefined).on('close', () => resolve()).resume());
    expect(Date.now() - t0).toBeLessThan(4000);
  });

  it('caps concurrent connections and recovers once they go away', async () => {
    const s = await start({}, { limits: { maxConnections: 4 } });
    const { port } = s.server.address();
    const idle = await Promise.all(
      Array.from({ length: 4 }, () => new Promise<net.Socket>((res) => { const c = net.connect(port, '127.0.0.1', () => res(c)); })),
    );
    await new Promise((r) => setTimeout(r, 50));
    const extra = await new Promise<string>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => c.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'));
      let data = '';
      c.on('data', (d) => (data += d.toString()));
      c.on('close', () => resolve(data));
      c.on('error', () => undefined);
    });
    expect(extra).toBe('');
    for (const c of idle) c.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect((await request(s.url('/health'))).status).toBe(200);
  });
});

describe.skipIf(!hasOpenssl)('metrics endpoint: TLS', () => {
  let one: { cert: string; key: string };
  let two: { cert: string; key: string };
  beforeAll(() => {
    one = makeCert('aegis-test-one');
    two = makeCert('aegis-test-two');
  });

  it('serves HTTPS and swaps the certificate on reload without dropping the listener; a bad cert keeps the old one', async () => {
    const cert = join(dir, 'live.crt');
    const key = join(dir, 'live.key');
    copyFileSync(one.cert, cert);
    copyFileSync(one.key, key);
    const settings = { ...base, tlsCert: cert, tlsKey: key };
    const s = await start(settings);
    const { readFileSync } = await import('node:fs');
    const ca = Buffer.concat([readFileSync(one.cert), readFileSync(two.cert)]);
    const first = await request(s.url('/metrics'), { ca });
    expect([first.status, first.peerCN]).toEqual([200, 'aegis-test-one']);
    expect(first.body).toMatch(/aegis_module_enabled\{module="metrics_tls"\} 1/);
    // Plain HTTP to the TLS port does not get metrics.
    await expect(request(s.url('/metrics').replace('https:', 'http:'))).rejects.toThrow();

    // A connection opened before the reload survives it.
    const port = s.server.address().port;
    const early = tls.connect({ host: '127.0.0.1', port, ca });
    await new Promise((r) => early.once('secureConnect', r));

    copyFileSync(two.cert, cert);
    copyFileSync(two.key, key);
    expect(await s.server.reload(settings)).toEqual({ ok: true });
    expect(s.server.address().port).toBe(port);
    const second = await request(s.url('/metrics'), { ca });
    expect([second.status, second.peerCN]).toEqual([200, 'aegis-test-two']);
    const earlyAnswer = await new Promise<string>((resolve) => {
      let d = '';
      early.on('data', (b) => (d += b.toString()));
      early.on('end', () => resolve(d));
      early.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
    expect(earlyAnswer).toMatch(/^HTTP\/1.1 200/);

    writeFileSync(cert, '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n');
    const bad = await s.server.reload(settings);
    expect(bad.ok).toBe(false);
    expect(bad.ok ? '' : bad.message).toContain('tls_cert');
    const third = await request(s.url('/metrics'), { ca });
    expect([third.status, third.peerCN]).toEqual([200, 'aegis-test-two']);
    // A key that does not belong to the certificate is refused too.
    copyFileSync(one.cert, cert);
    copyFileSync(two.key, key);
    expect((await s.server.reload(settings)).ok).toBe(false);
  });

  it('refuses to start with an unreadable certificate (AEGIS_ERR_TLS)', async () => {
    await expect(start({ tlsCert: join(dir, 'missing.crt'), tlsKey: one.key })).rejects.toMatchObject({ code: 'AEGIS_ERR_TLS' });
    await expect(start({ tlsCert: one.cert, tlsKey: null })).rejects.toMatchObject({ code: 'AEGIS_ERR_CONFIG_VALUE' });
  });

  it('re-listens on a new port at reload and keeps the old listener when the new one cannot start', async () => {
    const s = await start();
    const blocker = await start();
    const oldPort = s.server.address().port;
    const r = await s.server.reload({ ...base, port: blocker.server.address().port });
    expect(r.ok).toBe(false);
    expect(s.server.address().port).toBe(oldPort);
    expect((await request(s.url('/health'))).status).toBe(200);
  });
});

describe.skipIf(!hasPromtool)('metrics output: promtool check metrics', () => {
  it('finds no problem in any aegis_ metric (prom-client default names aside)', async () => {
    const s = await start({ rateLimit: 100 });
    s.metrics.bans.inc({ jail: 'sshd', source: 'auto' });
    s.metrics.banLatency.observe(0.004);
    const body = (await request(s.url('/metrics'))).body;
    const full = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    const problems = (full.stdout + full.stderr).split('\n').filter((l) => l.trim().length > 0);
    // prom-client's default gauges nodejs_active_*_total break a promtool naming lint; they are
    // library names we do not choose. Anything else is ours and must be clean.
    for (const p of problems) expect(p).toMatch(/^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/);
    const ours = body
      .split('\n')
      .filter((l) => /^(# (HELP|TYPE) )?aegis_/.test(l))
      .join('\n') + '\n';
    const strict = spawnSync('promtool', ['check', 'metrics'], { input: ours, encoding: 'utf8' });
    expect(strict.stdout + strict.stderr).toBe('');
    expect(strict.status).toBe(0);
  });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));
