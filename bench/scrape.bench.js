// Metrics endpoint cost: scrape latency and daemon CPU per scrape of the built aegisd with 10
// jails and many bans held (restored from a state snapshot written here, as after a restart),
// and the line rate the daemon sustains while Prometheus-style scrapes hit it once a second,
// against the same run without scraping. AEGIS_BENCH_BANS sets the number of bans (default 1 M).
import { appendFileSync, mkdirSync, writeFileSync, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { AEGISD, freePort, tmp, writeConfig } from './lib/daemon.js';

const BANS = Number(process.env.AEGIS_BENCH_BANS ?? 1_000_000);
const JAILS = 10;
const RATE_LINES = 300_000;
const SCRAPES = 40;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One persistent control connection: `status JAIL` without spawning the CLI. */
function control(socket) {
  const sock = net.connect(socket);
  let buf = '';
  const waiting = [];
  sock.setEncoding('utf8').on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      waiting.shift()?.(JSON.parse(line));
    }
  });
  return {
    ready: new Promise((r) => sock.once('connect', r)),
    ask(req) {
      return new Promise((r) => {
        waiting.push(r);
        sock.write(`${JSON.stringify(req)}\n`);
      });
    },
    close: () => sock.destroy(),
  };
}

function ip(i) {
  // 198.18.0.0/15 then 2001:db8::/32 beyond 131 072
  if (i < 131_072) return `198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
  return `2001:db8::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`;
}

/** state.json in the store's snapshot layout (src/state/store.ts), streamed: 1 M bans ≈ 200 MB. */
async function writeSnapshot(stateDir, bans, jails) {
  mkdirSync(stateDir, { recursive: true });
  const out = createWriteStream(join(stateDir, 'state.json'));
  const now = Math.floor(Date.now() / 1000);
  out.write('{"version":1,"bans":[');
  for (let i = 0; i < bans; i++) {
    const a = ip(i);
    const v6 = a.includes(':');
    const b = { jail: `j${i % jails}`, ip: a, network: a, prefix: v6 ? 128 : 32, family: v6 ? 6 : 4, since: now, expires: now + 86_400, bantime: 86_400, banCount: 1, source: 'auto', fields: {} };
    if (!out.write(`${i === 0 ? '' : ','}${JSON.stringify(b)}`)) await new Promise((r) => out.once('drain', r));
  }
  out.write('],"history":[],"files":[],"cursors":[]}');
  await new Promise((r) => out.end(r));
}

function failLines(from, count, ipOf) {
  const now = Math.floor(Date.now() / 1000);
  const out = [];
  for (let i = from; i < from + count; i++) out.push(`{"time":${now},"event":"auth.login.failed","ip":"${ipOf(i)}","user":"u${i}"}\n`);
  return out.join('');
}

/** Like lib/daemon.js startDaemon, but without its 20 s start limit: restoring 1 M bans takes longer. */
async function startDaemon(dir, etc) {
  const port = await freePort();
  const socket = join(dir, 'aegis.sock');
  const child = spawn(process.execPath, [AEGISD, '--config-dir', etc, '--socket', socket, '--state-dir', join(dir, 'state'), '--metrics-port', String(port), '--enforcer', 'log', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  return {
    child,
    port,
    socket,
    stderr: () => stderr,
    cpuSeconds() {
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;
    },
    rssKb() {
      return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

async function until(what, fn, timeoutMs) {
  const t = Date.now() + timeoutMs;
  while (Date.now() < t) {
    if (await fn()) return;
    await sleep(100);
  }
  throw new Error(`timed out: ${what}`);
}

function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** Latency of SCRAPES keep-alive scrapes and the daemon CPU they cost above its idle rate. */
async function measureScrapes(d) {
  // Let start-up work (restore, snapshot compaction, GC) settle: wait for a quiet second.
  for (let i = 0; i < 60; i++) {
    const c = d.cpuSeconds();
    await sleep(1000);
    if (d.cpuSeconds() - c < 0.05) break;
  }
  const idle0 = d.cpuSeconds();
  await sleep(3000);
  const idleRate = (d.cpuSeconds() - idle0) / 3;
  const lat = [];
  let bytes = 0;
  const c0 = d.cpuSeconds();
  const w0 = performance.now();
  for (let i = 0; i < SCRAPES; i++) {
    const s = performance.now();
    const body = await (await fetch(`http://127.0.0.1:${d.port}/metrics`)).text();
    lat.push(performance.now() - s);
    bytes = body.length;
    await sleep(100);
  }
  const wall = (performance.now() - w0) / 1000;
  // /proc CPU ticks are 10 ms: over 40 scrapes that is 0.25 ms resolution per scrape.
  const cpuMs = (Math.max(0, d.cpuSeconds() - c0 - idleRate * wall) / SCRAPES) * 1000;
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), cpuMs, bytes };
}

export default async function run() {
  const { dir, cleanup } = tmp(`aegis-bench-scrape-${process.pid}-`);
  try {
    return await measure(dir);
  } finally {
    cleanup();
  }
}

async function measure(dir) {
  const etc = join(dir, 'etc');
  const jails = {};
  for (let j = 0; j < JAILS; j++) {
    const log = join(dir, `j${j}.log`);
    writeFileSync(log, '');
    // j0..j8 hold bans (maxretry 1); j9 measures the line rate (failures that never ban).
    const maxretry = j === JAILS - 1 ? 1_000_000 : 1;
    jails[`j${j}`] = `[j${j}]\nenabled = true\nfilter = x\nlogpath = ${log}\nmaxretry = ${maxretry}\nfindtime = 1h\nbantime = 1d\n`;
  }
  writeConfig(etc, { jails, filters: { x: '[Definition]\njsonhost = ip\njsonfail = event=auth.login.failed\n' } });
  // The same config with no bans first: the baseline cost of a scrape.
  const emptyDir = join(dir, 'empty');
  mkdirSync(emptyDir);
  const e = await startDaemon(emptyDir, etc);
  let empty;
  try {
    await until('empty daemon', async () => {
      if (e.child.exitCode !== null) throw new Error(`aegisd exited: ${e.stderr()}`);
      return new Promise((r) => {
        const c = net.connect(e.socket, () => (c.destroy(), r(true)));
        c.on('error', () => r(false));
      });
    }, 60_000);
    empty = await measureScrapes(e);
  } finally {
    await e.stop();
  }

  await writeSnapshot(join(dir, 'state'), BANS, JAILS - 1);
  const t0 = Date.now();
  const d = await startDaemon(dir, etc);
  const rows = [];
  try {
    await until('control socket', async () => {
      if (d.child.exitCode !== null) throw new Error(`aegisd exited: ${d.stderr()}`);
      return new Promise((r) => {
        const c = net.connect(d.socket, () => (c.destroy(), r(true)));
        c.on('error', () => r(false));
      });
    }, 600_000);
    const ctl = control(d.socket);
    await ctl.ready;
    let held = 0;
    await until(`${BANS} bans restored`, async () => {
      const s = await ctl.ask({ cmd: 'status' });
      held = s.data?.currently_banned ?? 0;
      return held >= BANS;
    }, 600_000);
    const loadSeconds = (Date.now() - t0) / 1000;
    const m = await measureScrapes(d);
    const note = `${JAILS} jails, ${held.toLocaleString('en-US')} bans held (restored in ${loadSeconds.toFixed(0)} s, RSS ${(d.rssKb() / 1024).toFixed(0)} MiB), ${(m.bytes / 1024).toFixed(1)} KiB per scrape, plain HTTP keep-alive; peer: same daemon config with no bans`;
    const peer = { peer: 'no bans held' };
    rows.push({ benchmark: 'metrics scrape latency p50', aegis: m.p50, unit: 'ms', ...peer, peerValue: empty.p50, ratio: m.p50 / empty.p50, note });
    rows.push({ benchmark: 'metrics scrape latency p99', aegis: m.p99, unit: 'ms', ...peer, peerValue: empty.p99, ratio: m.p99 / empty.p99 });
    rows.push({ benchmark: 'daemon CPU per scrape', aegis: m.cpuMs, unit: 'ms', ...peer, peerValue: empty.cpuMs, ratio: empty.cpuMs > 0 ? m.cpuMs / empty.cpuMs : undefined });

    // Line rate with and without a scrape every second, on jail j9 (failures, no bans).
    const rate = async (scrape, from) => {
      let stop = false;
      let scrapes = 0;
      const scraper = scrape
        ? (async () => {
            while (!stop) {
              await (await fetch(`http://127.0.0.1:${d.port}/metrics`)).text();
              scrapes++;
              await sleep(1000);
            }
          })()
        : Promise.resolve();
      const lines = failLines(from, RATE_LINES, (i) => ip(i % 131_072));
      const t = performance.now();
      appendFileSync(join(dir, 'j9.log'), lines);
      await until('j9 drained', async () => (await ctl.ask({ cmd: 'status', jail: 'j9' })).data?.total_failed >= from + RATE_LINES, 300_000);
      const s = (performance.now() - t) / 1000;
      stop = true;
      await scraper;
      return { lps: RATE_LINES / s, scrapes };
    };
    // A warm-up run first (JIT, worker pool), then quiet and scraped runs alternated so drift
    // on this shared machine hits both sides alike; the median of three runs each.
    await rate(false, 0);
    const runs = { quiet: [], scraped: [] };
    let scrapesDuring = 0;
    for (let k = 0; k < 3; k++) {
      runs.quiet.push((await rate(false, (1 + 2 * k) * RATE_LINES)).lps);
      const sr = await rate(true, (2 + 2 * k) * RATE_LINES);
      runs.scraped.push(sr.lps);
      scrapesDuring += sr.scrapes;
    }
    const quiet = { lps: percentile(runs.quiet, 50) };
    const scraped = { lps: percentile(runs.scraped, 50), scrapes: scrapesDuring };
    rows.push({
      benchmark: 'line rate while scraped 1/s',
      aegis: scraped.lps,
      unit: 'lines/s',
      peer: 'same, not scraped',
      peerValue: quiet.lps,
      ratio: scraped.lps / quiet.lps,
      note: `median of 3 runs of ${RATE_LINES.toLocaleString('en-US')} JSON failure lines into a live tailed file (runs: quiet ${runs.quiet.map((x) => Math.round(x / 1000)).join('/')}k, scraped ${runs.scraped.map((x) => Math.round(x / 1000)).join('/')}k lines/s; ${scraped.scrapes} scrapes), ${held.toLocaleString('en-US')} bans held`,
    });
    ctl.close();
  } finally {
    await d.stop();
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.table(await run());
}
