// Start the built aegisd on a temporary config for a benchmark, and read figures off it.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import http from 'node:http';
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
    /**
     * Sum of a metric's series whose labels include `labels`. Benchmarks poll this every 50 ms
     * while the daemon drains a log, on the same two cores: one kept-alive connection and a
     * scan for the metric's own lines keep the poller's CPU small (fetch() and a regex over
     * every line cost it ~6 ms a poll).
     */
    async metric(name, labels = {}) {
      const text = await scrape(port);
      const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
      let sum = 0;
      for (let i = text.startsWith(name) ? 0 : text.indexOf(`\n${name}`); i >= 0; i = text.indexOf(`\n${name}`, i + 1)) {
        const from = text.charCodeAt(i) === 10 ? i + 1 : i;
        const end = text.indexOf('\n', from);
        const line = text.slice(from, end < 0 ? text.length : end);
        const after = line.charCodeAt(name.length);
        if (after !== 123 /* { */ && after !== 32) continue; // a longer name sharing the prefix
        const close = after === 123 ? line.indexOf('} ') : name.length;
        const labelText = after === 123 ? line.slice(name.length, close + 1) : '';
        if (wanted.every((w) => labelText.includes(w))) sum += Number(line.slice(close + 1).trim().split(' ')[0]);
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

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** GET /metrics over a kept-alive connection */
function scrape(port) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(body));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

export async function waitUntil(check, what, timeoutMs = 600_000, everyMs = 50) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Wait until `count()` reaches `target`, polling every `everyMs` while far from it and sooner
 * near the end: from the rate seen between polls, the next poll comes when the target should
 * be reached (at least 2 ms later). A fixed 50 ms poll adds 25 ms on average to a drain of
 * half a second; polling every few ms all along would cost the daemon (a scrape is ~1 ms of
 * its CPU) more than that.
 */
export async function waitForCount(count, target, what, timeoutMs = 600_000, everyMs = 50) {
  const until = Date.now() + timeoutMs;
  let last = null;
  for (;;) {
    const n = await count();
    if (n >= target) return;
    if (Date.now() > until) throw new Error(`timed out: ${what}`);
    const now = performance.now();
    let delay = everyMs;
    if (last !== null && n > last.n) {
      const perMs = (n - last.n) / (now - last.t);
      delay = Math.max(2, Math.min(everyMs, (target - n) / perMs));
    }
    last = { n, t: now };
    await new Promise((r) => setTimeout(r, delay));
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
