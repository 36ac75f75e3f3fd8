// Start the built aegisd on a temporary config for a benchmark, and read figures off it.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';

export const ROOT = resolve(new URL('../..', import.meta.url).pathname);
export const AEGISD = join(ROOT, 'dist/cli/aegisd.js');
export const AEGIS_BAN = join(ROOT, 'dist/cli/aegis-ban.js');

/** a temp dir; `prefix` may be absolute (bench/out/…: same filesystem as the logs, for link()) */
export function tmp(prefix) {
  const dir = mkdtempSync(prefix.startsWith('/') ? prefix : join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function freePort() {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
}

export function writeConfig(etc, { jails = {}, filters = {}, aegisConf = '' }) {
  mkdirSync(join(etc, 'jails.d'), { recursive: true });
  mkdirSync(join(etc, 'filter.d'), { recursive: true });
  writeFileSync(join(etc, 'aegis.conf'), aegisConf);
  for (const [n, b] of Object.entries(jails)) writeFileSync(join(etc, 'jails.d', `${n}.conf`), b);
  for (const [n, b] of Object.entries(filters)) writeFileSync(join(etc, 'filter.d', `${n}.conf`), b);
}

export async function startDaemon(dir, etc, extra = []) {
  const port = await freePort();
  const socket = join(dir, 'aegis.sock');
  const child = spawn(process.execPath, [...(process.env.AEGIS_NODE_FLAGS ? process.env.AEGIS_NODE_FLAGS.split(" ") : []), AEGISD, '--config-dir', etc, '--socket', socket, '--state-dir', join(dir, 'state'), '--metrics-port', String(port), '--enforcer', 'log', '--log-level', 'warn', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const d = {
    child,
    port,
    socket,
    lines: [],
    onLine: null,
    async metric(name, labels = {}) {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      let sum = 0;
      for (const line of text.split('\n')) {
        const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
        if (!m || m[1] !== name) continue;
        if (Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`))) sum += Number(m[3]);
      }
      return sum;
    },
    rssPeakKb() {
      const s = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0);
    },
    rssKb() {
      const s = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0);
    },
    cpuSeconds() {
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
  let buf = '';
  const onData = (b) => {
    buf += b.toString();
    const parts = buf.split('\n');
    buf = parts.pop();
    for (const p of parts) {
      if (d.onLine) d.onLine(p);
      if (d.lines.length < 1000) d.lines.push(p);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const until = Date.now() + 20_000;
  for (;;) {
    try {
      execFileSync(process.execPath, [AEGIS_BAN, '--socket', socket, 'ping'], { stdio: 'ignore' });
      break;
    } catch {
      if (Date.now() > until || child.exitCode !== null) throw new Error(`aegisd did not start:\n${d.lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return d;
}

export async function waitUntil(check, what, timeoutMs = 600_000, everyMs = 50) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function hasCommand(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
