// File source throughput: a 1 M-line JSON log read from its start to EOF through
// createFileSource (discovery, fd reads, line splitting, Batch hand-off with back-pressure),
// with `wc -l` and `cat > /dev/null` on the same (page-cached) file as peers for context.
// Also the `tail-file` 1.4 package (per-line string events) on the same file, which is why the
// source reads file descriptors itself.
import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createFileSource } from '../dist/sources/file-source.js';
import { MemoryPositionStore } from '../dist/sources/memory-positions.js';
import { countLines } from '../dist/engine/scan.js';

// the file source leaves counting lines to the engine; the consumer here counts them itself
const countNewlines = (data) => countLines(Buffer.from(data.buffer, data.byteOffset, data.byteLength));

const LINES = 1_000_000;

function makeLog(file) {
  const parts = [];
  const t0 = Date.parse('2026-11-22T10:00:00Z');
  for (let i = 0; i < LINES; i++) {
    const ip = i % 7 === 0 ? `2001:db8::${(i % 4093).toString(16)}` : `198.18.${(i >> 8) & 255}.${i & 255}`;
    const ev = i % 33 === 0 ? 'auth.login.failed' : 'http.request';
    parts.push(`{"level":30,"time":${t0 + i * 3},"event":"${ev}","ip":"${ip}","path":"/api/v1/items/${i % 977}","status":200}\n`);
  }
  writeFileSync(file, parts.join(''));
}

function timeCmd(cmd, args) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} failed`);
  return Number(process.hrtime.bigint() - t) / 1e9;
}

async function timeSource(file) {
  let lines = 0;
  let done;
  const finished = new Promise((r) => (done = r));
  const t = process.hrtime.bigint();
  const src = createFileSource({
    globs: [file],
    mode: 'head',
    positions: new MemoryPositionStore(),
    hooks: {
      async onBatch(b) {
        lines += b.lineCount ?? countNewlines(b.data);
        if (lines >= LINES) done();
      },
      onError(kind, msg) {
        throw new Error(`${kind}: ${msg}`);
      },
    },
  });
  await src.start();
  await finished;
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  await src.close();
  return s;
}

async function timeTailFile(file) {
  const require = createRequire(import.meta.url);
  let Tail;
  try {
    Tail = require('tail-file');
  } catch {
    return null;
  }
  let lines = 0;
  const t = process.hrtime.bigint();
  const tail = new Tail(file, { startPos: 'start', force: true });
  await new Promise((resolve) => {
    tail.on('line', () => {
      if (++lines >= LINES) resolve();
    });
    tail.on('error', () => undefined);
    tail.start();
  });
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  await tail.stop();
  return s;
}

/** a live tailed file: one line appended every 2 ms, time from write() to onBatch */
async function liveLatency(dir) {
  const file = path.join(dir, 'live.log');
  writeFileSync(file, '');
  const N = 1000;
  const sentAt = new Map();
  const lat = [];
  let done;
  const finished = new Promise((r) => (done = r));
  const src = createFileSource({
    globs: [file],
    mode: 'tail',
    positions: new MemoryPositionStore(),
    hooks: {
      async onBatch(b) {
        const now = performance.now();
        const text = Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength).toString();
        for (const l of text.split('\n')) {
          const t = sentAt.get(l);
          if (t !== undefined) lat.push(now - t);
        }
        if (lat.length >= N) done();
      },
      onError() {},
    },
  });
  await src.start();
  await new Promise((r) => setTimeout(r, 100));
  const { appendFileSync } = await import('node:fs');
  for (let i = 0; i < N; i++) {
    const l = `{"time":${Date.now()},"event":"auth.login.failed","ip":"198.18.0.${i % 250}","n":${i}}`;
    sentAt.set(l, performance.now());
    appendFileSync(file, l + '\n');
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.race([finished, new Promise((r) => setTimeout(r, 5000))]);
  await src.close();
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  return { p50: q(0.5), p99: q(0.99), n: lat.length };
}

/** journald in: 200 000 JSON entries through a stand-in journalctl (cat of a file) */
async function journalRate(dir) {
  const { createJournalSource } = await import('../dist/sources/journal-source.js');
  const { chmodSync } = await import('node:fs');
  const N = 200_000;
  const entries = path.join(dir, 'entries.json');
  const parts = [];
  for (let i = 0; i < N; i++) {
    parts.push(JSON.stringify({ __CURSOR: `s=x;i=${i}`, __REALTIME_TIMESTAMP: String(1795432686000000 + i), _HOSTNAME: 'web1',
      SYSLOG_IDENTIFIER: 'sshd', _PID: '812', MESSAGE: `Failed password for invalid user u${i % 97} from 198.18.${(i >> 8) & 255}.${i & 255} port 22 ssh2` }));
  }
  writeFileSync(entries, parts.join('\n') + '\n');
  const fake = path.join(dir, 'journalctl');
  writeFileSync(fake, `#!/bin/sh\ncat '${entries}'\nexec sleep 3600\n`);
  chmodSync(fake, 0o755);
  let lines = 0;
  let done;
  const finished = new Promise((r) => (done = r));
  const t = process.hrtime.bigint();
  const src = createJournalSource({
    id: 'journal:bench', matches: [], positions: new MemoryPositionStore(), journalctl: fake,
    hooks: { async onBatch(b) { lines += b.lineCount ?? countNewlines(b.data); if (lines >= N) done(); }, onError() {} },
  });
  await src.start();
  await finished;
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  await src.close();
  return N / s;
}

export default async function run() {
  const dir = mkdtempSync(path.join(tmpdir(), 'aegis-bench-src-'));
  try {
    const file = path.join(dir, 'api.log');
    makeLog(file);
    const mb = statSync(file).size / 1e6;
    execFileSync('cat', [file], { stdio: ['ignore', 'ignore', 'inherit'] }); // warm the page cache
    const best = async (f) => Math.min(await f(), await f(), await f());
    const src = await best(() => timeSource(file));
    const wc = await best(async () => timeCmd('wc', ['-l', file]));
    const cat = await best(async () => timeCmd('sh', ['-c', `cat '${file}' > /dev/null`]));
    const rows = [
      {
        benchmark: 'file source: 1M lines, start to EOF',
        aegis: Math.round(LINES / src),
        unit: 'lines/s',
        peer: 'wc -l',
        peerValue: Math.round(LINES / wc),
        ratio: Number((wc / src).toFixed(2)),
        note: `${mb.toFixed(0)} MB, best of 3`,
      },
      {
        benchmark: 'file source: bytes, start to EOF',
        aegis: Number((mb / src).toFixed(0)),
        unit: 'MB/s',
        peer: 'cat > /dev/null',
        peerValue: Number((mb / cat).toFixed(0)),
        ratio: Number((cat / src).toFixed(2)),
      },
    ];
    const live = await liveLatency(dir);
    rows.push(
      { benchmark: 'file source: append → batch latency p50', aegis: Number(live.p50.toFixed(2)), unit: 'ms', note: `${live.n} lines, one write every 2 ms` },
      { benchmark: 'file source: append → batch latency p99', aegis: Number(live.p99.toFixed(2)), unit: 'ms' },
    );
    const jr = await journalRate(dir);
    rows.push({ benchmark: 'journal source: JSON entries → lines', aegis: Math.round(jr), unit: 'entries/s', note: 'parse + format only: journalctl replaced by cat of its JSON' });
    const tf = await timeTailFile(file);
    if (tf !== null) {
      rows.push({
        benchmark: 'tail-file 1.4 line events, same file',
        aegis: Math.round(LINES / src),
        unit: 'lines/s',
        peer: 'tail-file',
        peerValue: Math.round(LINES / tf),
        ratio: Number((tf / src).toFixed(1)),
        note: 'why the source reads file descriptors itself',
      });
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.table(await run());
}
