/**
 * Runs the BUILT daemon (dist/cli/aegisd.js) as a child process on a temporary config dir, the
 * way a user would, and the built aegis-ban against it. Failures carry the tail of the
 * daemon's output so a broken start explains itself.
 */
import { spawn, type ChildProcess, execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(new URL('../..', import.meta.url).pathname);
export const AEGISD = join(ROOT, 'dist/cli/aegisd.js');
export const AEGIS_BAN = join(ROOT, 'dist/cli/aegis-ban.js');

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

export interface ConfigFiles {
  /** body of aegis.conf (the helper adds nothing) */
  readonly aegisConf?: string;
  /** jails.d/<name>.conf bodies */
  readonly jails?: Readonly<Record<string, string>>;
  /** filter.d/<name>.conf bodies */
  readonly filters?: Readonly<Record<string, string>>;
  readonly jailLocal?: string;
}

export function writeConfig(dir: string, files: ConfigFiles): void {
  mkdirSync(join(dir, 'jails.d'), { recursive: true });
  mkdirSync(join(dir, 'filter.d'), { recursive: true });
  if (files.aegisConf !== undefined) writeFileSync(join(dir, 'aegis.conf'), files.aegisConf);
  if (files.jailLocal !== undefined) writeFileSync(join(dir, 'jail.local'), files.jailLocal);
  for (const [n, body] of Object.entries(files.jails ?? {})) writeFileSync(join(dir, 'jails.d', `${n}.conf`), body);
  for (const [n, body] of Object.entries(files.filters ?? {})) writeFileSync(join(dir, 'filter.d', `${n}.conf`), body);
}

/** The JSON filter most tests use: pino-style failed logins. */
export const AUTH_FILTER = `[Definition]
jsonhost = ip
jsontime = time
jsonfail = event=auth.login.failed
jsonfields = user
`;

export function authLine(ip: string, extra: Record<string, unknown> = {}, time = Date.now()): string {
  return `${JSON.stringify({ level: 40, time, event: 'auth.login.failed', ip, user: 'bob', ...extra })}\n`;
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((res) => {
    execFile(process.execPath, [AEGIS_BAN, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      res({ code, stdout, stderr });
    });
  });
}

export interface DaemonOptions {
  readonly configDir: string;
  /** default: <configDir>/../state (kept across restarts of the same test) */
  readonly stateDir?: string;
  readonly socket?: string;
  readonly metricsPort?: number;
  readonly enforcer?: 'xdp' | 'nftables' | 'action' | 'log';
  readonly args?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** wait for the control socket to answer ping (default true) */
  readonly waitReady?: boolean;
}

export class DaemonHandle {
  readonly child: ChildProcess;
  readonly socket: string;
  readonly stateDir: string;
  readonly metricsPort: number;
  readonly configDir: string;
  readonly lines: string[] = [];
  #exit: Promise<number | null>;
  exitCode: number | null = null;

  constructor(child: ChildProcess, o: { socket: string; stateDir: string; metricsPort: number; configDir: string }) {
    this.child = child;
    this.socket = o.socket;
    this.stateDir = o.stateDir;
    this.metricsPort = o.metricsPort;
    this.configDir = o.configDir;
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      this.lines.push(...parts);
      if (this.lines.length > 20_000) this.lines.splice(0, this.lines.length - 20_000);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.#exit = new Promise((res) => child.once('exit', (code, signal) => {
      this.exitCode = code ?? (signal ? 128 : null);
      res(this.exitCode);
    }));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  tail(n = 40): string {
    return this.lines.slice(-n).join('\n');
  }

  /** parsed JSON log lines (pino) */
  events(): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const l of this.lines) {
      const i = l.indexOf('{');
      if (i < 0) continue;
      try {
        out.push(JSON.parse(l.slice(i)) as Record<string, unknown>);
      } catch {
        /* not a log line */
      }
    }
    return out;
  }

  cli(args: readonly string[]): Promise<CliResult> {
    return runCli(['--socket', this.socket, ...args]);
  }

  async metrics(): Promise<string> {
    const r = await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`);
    return r.text();
  }

  /** value of one sample in /metrics, 0 when absent */
  async metric(name: string, labels: Readonly<Record<string, string>> = {}): Promise<number> {
    const text = await this.metrics();
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!m || m[1] !== name) continue;
      const ls = m[2] ?? '';
      if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) return Number(m[3]);
    }
    return 0;
  }

  async waitFor<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const v = await check();
      if (v) return v;
      if (this.exitCode !== null) throw new Error(`daemon exited (${this.exitCode}) while waiting for ${what}\n${this.tail()}`);
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}\n--- daemon output ---\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async waitForBan(ip: string, timeoutMs = 15_000): Promise<void> {
    await this.waitFor(async () => {
      const r = await this.cli(['banned', ip, '--json']);
      if (r.code !== 0) return false;
      return (JSON.parse(r.stdout) as unknown[]).length > 0;
    }, `a ban of ${ip}`, timeoutMs);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.exitCode === null) this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    const code = await this.#exit;
    clearTimeout(t);
    return code;
  }

  kill9(): Promise<number | null> {
    return this.stop('SIGKILL');
  }

  exited(): Promise<number | null> {
    return this.#exit;
  }
}

export async function startDaemon(o: DaemonOptions): Promise<DaemonHandle> {
  if (!existsSync(AEGISD)) throw new Error(`${AEGISD} is missing: run \`npm run build\` first`);
  const stateDir = o.stateDir ?? join(o.configDir, '..', 'state');
  const socket = o.socket ?? join(o.configDir, '..', 'aegis.sock');
  const metricsPort = o.metricsPort ?? (await freePort());
  const args = [
    AEGISD,
    '--config-dir', o.configDir,
    '--socket', socket,
    '--state-dir', stateDir,
    '--metrics-port', String(metricsPort),
    '--enforcer', o.enforcer ?? 'log',
    '--log-level', 'debug',
    ...(o.args ?? []),
  ];
  const child = spawn(process.execPath, args, { env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const d = new DaemonHandle(child, { socket, stateDir, metricsPort, configDir: o.configDir });
  if (o.waitReady !== false) {
    await d.waitFor(async () => (await d.cli(['ping'])).code === 0, 'the control socket', 20_000);
  }
  return d;
}
