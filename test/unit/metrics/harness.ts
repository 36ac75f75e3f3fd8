/**
 * Harness for the operations end-to-end tests and the scrape benchmark's test twin: a temp
 * config dir, the built `aegisd` as a child process, a metrics endpoint with token and TLS,
 * and a real Prometheus scraping it. Everything started here is stopped by pid in `stop()`.
 */
import { afterAll } from 'vitest';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, copyFileSync, cpSync, existsSync, readFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Other engineers rebuild dist/ while tests run; a half-written file makes a child fail to load.
 * So each test process runs a private copy of dist/ (with package.json for "type": "module" and
 * a node_modules link for package resolution), taken once, removed at exit.
 */
function snapshotDist(): string {
  const src = resolve('dist');
  if (!existsSync(join(src, 'cli', 'aegisd.js'))) return src;
  const root = mkdtempSync(join(tmpdir(), `aegis-dist-${process.pid}-`));
  cpSync(src, join(root, 'dist'), { recursive: true });
  copyFileSync(resolve('package.json'), join(root, 'package.json'));
  symlinkSync(resolve('node_modules'), join(root, 'node_modules'));
  // Registered on the importing test file's root suite.
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  return join(root, 'dist');
}
const DIST = snapshotDist();
export const AEGISD = join(DIST, 'cli/aegisd.js');
export const AEGIS_BAN = join(DIST, 'cli/aegis-ban.js');

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

/** Thrown inside a waitFor callback to stop waiting at once (the process died). */
export class Fatal extends Error {}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      if (e instanceof Fatal) throw e;
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export interface AegisInstance {
  readonly dir: string;
  readonly socket: string;
  readonly metricsPort: number;
  readonly token: string;
  readonly cert: string;
  readonly logPath: (jail: string) => string;
  readonly proc: ChildProcess;
  stderrTail(): string;
  stdoutTail(): string;
  append(jail: string, lines: string[]): void;
  scrape(path?: string): Promise<{ status: number; body: string }>;
  ctl(args: string[]): { status: number | null; stdout: string; stderr: string };
  stop(): Promise<void>;
}

export interface AegisOptions {
  /** jail names; each gets filter `x` (JSON: jsonhost=ip, jsonfail=event=auth.login.failed) */
  readonly jails?: readonly string[];
  readonly maxretry?: number;
  readonly rateLimit?: number;
  readonly extraArgs?: readonly string[];
  /** mode of the token file (default 0600) */
  readonly tokenMode?: number;
  /** the daemon's stdout (default a pipe the harness reads) and extra environment */
  readonly stdout?: import('node:net').Socket;
  readonly env?: Record<string, string>;
}

/** Starts `aegisd --enforcer log` on a temp config dir with a token + TLS metrics endpoint. */
export async function startAegis(options: AegisOptions = {}): Promise<AegisInstance> {
  const dir = mkdtempSync(join(tmpdir(), `aegis-e2e-${process.pid}-`));
  const jails = options.jails ?? ['x'];
  mkdirSync(join(dir, 'filter.d'));
  mkdirSync(join(dir, 'state'));
  mkdirSync(join(dir, 'logs'));
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=aegis-e2e', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  const token = `tok-${process.pid}-${Math.random().toString(36).slice(2)}`;
  writeFileSync(join(dir, 'metrics.token'), `${token}\n`, { mode: options.tokenMode ?? 0o600 });
  chmodSync(join(dir, 'metrics.token'), options.tokenMode ?? 0o600);
  const metricsPort = await freePort();
  writeFileSync(
    join(dir, 'aegis.conf'),
    [
      '[metrics]',
      'bind = 127.0.0.1',
      `port = ${metricsPort}`,
      `token_file = ${join(dir, 'metrics.token')}`,
      `tls_cert = ${cert}`,
      `tls_key = ${key}`,
      ...(options.rateLimit === undefined ? [] : [`rate_limit = ${options.rateLimit}`]),
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'filter.d', 'x.conf'), '[Definition]\njsonhost = ip\njsonfail = event=auth.login.failed\n');
  const logPath = (jail: string): string => join(dir, 'logs', `${jail}.log`);
  const jailConf: string[] = [];
  for (const j of jails) {
    writeFileSync(logPath(j), '');
    jailConf.push(`[${j}]`, 'enabled = true', 'filter = x', `logpath = ${logPath(j)}`, `maxretry = ${options.maxretry ?? 5}`, 'findtime = 5m', 'bantime = 15m', '');
  }
  writeFileSync(join(dir, 'jail.local'), jailConf.join('\n'));
  const socket = join(dir, 'aegis.sock');
  const proc = spawn(
    process.execPath,
    [AEGISD, '--config-dir', dir, '--socket', socket, '--state-dir', join(dir, 'state'), '--enforcer', 'log', '--metrics-port', String(metricsPort), '--log-level', 'info', ...(options.extraArgs ?? [])],
    { stdio: ['ignore', options.stdout ?? 'pipe', 'pipe'], env: { ...process.env, JOURNAL_STREAM: '', ...options.env } },
  );
  let stderr = '';
  let stdout = '';
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-8000)));
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout = (stdout + d).slice(-8000)));

  const scrape = (path = '/metrics'): Promise<{ status: number; body: string }> =>
    new Promise((res, rej) => {
      const req = https.request(
        { host: '127.0.0.1', port: metricsPort, path, ca: readCert(cert), headers: { Authorization: `Bearer ${token}` }, agent: false, timeout: 5000 },
        (r) => {
          let body = '';
          r.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => res({ status: r.statusCode ?? 0, body }));
        },
      );
      req.on('error', rej);
      req.end();
    });
  const ctl = (args: string[]) => {
    const r = spawnSync(process.execPath, [AEGIS_BAN, '--socket', socket, ...args], { encoding: 'utf8', timeout: 15_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const instance: AegisInstance = {
    dir,
    socket,
    metricsPort,
    token,
    cert,
    logPath,
    proc,
    stderrTail: () => stderr,
    stdoutTail: () => stdout,
    append: (jail, lines) => appendFileSync(logPath(jail), lines.map((l) => `${l}\n`).join('')),
    scrape,
    ctl,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
        const gone = new Promise((r) => proc.once('exit', r));
        process.kill(proc.pid, 'SIGTERM');
        const t = setTimeout(() => proc.pid !== undefined && proc.exitCode === null && process.kill(proc.pid, 'SIGKILL'), 10_000);
        await gone;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor('aegisd to answer ping and serve /health', async () => {
      if (proc.exitCode !== null) throw new Fatal(`aegisd exited ${proc.exitCode}: ${stderr}${stdout}`);
      if (ctl(['ping']).status !== 0) return false;
      return (await scrape('/health')).status === 200;
    }, 30_000, 250);
  } catch (e) {
    await instance.stop();
    throw new Error(`${String(e)}\n--- aegisd stderr ---\n${stderr}\n--- stdout ---\n${stdout}`);
  }
  return instance;
}

function readCert(path: string): Buffer {
  return readFileSync(path);
}

export interface PrometheusInstance {
  readonly url: string;
  query(expr: string): Promise<{ status: string; error?: string; data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> } }>;
  get(path: string): Promise<unknown>;
  stop(): Promise<void>;
  logTail(): string;
}

export const hasPrometheus = spawnSync('prometheus', ['--version']).status === 0;

/** A real Prometheus on loopback scraping `aegis` every second with its bearer token over TLS. */
export async function startPrometheus(aegis: AegisInstance, ruleFiles: readonly string[] = []): Promise<PrometheusInstance> {
  const dir = mkdtempSync(join(tmpdir(), `aegis-prom-${process.pid}-`));
  const port = await freePort();
  writeFileSync(join(dir, 'token'), `${aegis.token}\n`, { mode: 0o600 });
  const cfg = [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    ...(ruleFiles.length > 0 ? ['rule_files:', ...ruleFiles.map((f) => `  - ${f}`)] : []),
    'scrape_configs:',
    '  - job_name: aegis',
    '    scheme: https',
    '    scrape_interval: 1s',
    '    scrape_timeout: 900ms',
    '    authorization:',
    '      type: Bearer',
    `      credentials_file: ${join(dir, 'token')}`,
    '    tls_config:',
    `      ca_file: ${aegis.cert}`,
    '    static_configs:',
    `      - targets: ['127.0.0.1:${aegis.metricsPort}']`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'prometheus.yml'), cfg);
  const proc = spawn(
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-8000)));
  proc.stdout?.resume();
  const url = `http://127.0.0.1:${port}`;
  const get = async (path: string): Promise<unknown> => (await fetch(`${url}${path}`)).json();
  const inst: PrometheusInstance = {
    url,
    get,
    query: async (expr) => (await get(`/api/v1/query?query=${encodeURIComponent(expr)}`)) as Awaited<ReturnType<PrometheusInstance['query']>>,
    logTail: () => log,
    stop: async () => {
      if (proc.exitCode === null && proc.pid !== undefined) {
        const gone = new Promise((r) => proc.once('exit', r));
        process.kill(proc.pid, 'SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor('prometheus ready', async () => {
      if (proc.exitCode !== null) throw new Fatal(`prometheus exited ${proc.exitCode}: ${log}`);
      return (await fetch(`${url}/-/ready`)).status === 200;
    }, 30_000, 250);
  } catch (e) {
    await inst.stop();
    throw e;
  }
  return inst;
}

export const hasDaemon = existsSync(AEGISD) && existsSync(AEGIS_BAN);
