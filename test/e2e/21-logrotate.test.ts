/**
 * The file source against the real logrotate (Debian package `logrotate`), with a writer process
 * appending ~10 000 lines/s: `create` + SIGHUP reopen (the usual daemon set-up), the same with a
 * logpath glob that also matches the rotated files, and `copytruncate`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createFileSource } from '../../src/sources/file-source.js';
import { MemoryPositionStore } from '../../src/sources/memory-positions.js';
import { collect, duplicates, sleep, tempDir, waitFor } from '../unit/sources/harness.js';

const hasLogrotate = spawnSync('sh', ['-c', 'command -v logrotate']).status === 0;
if (!hasLogrotate) console.log('skipping logrotate e2e: logrotate is not installed (apt-get install logrotate)');

const WRITER = `
const fs = require('fs');
const [file, total] = [process.argv[1], Number(process.argv[2])];
let fd = fs.openSync(file, 'a');
process.on('SIGHUP', () => { const old = fd; fd = fs.openSync(file, 'a'); fs.closeSync(old); });
let i = 0;
const t = setInterval(() => {
  for (let k = 0; k < 10 && i < total; k++) fs.writeSync(fd, 'line-' + (i++) + ' from 198.18.0.' + (i % 250) + '\\n');
  if (i >= total) { clearInterval(t); fs.closeSync(fd); process.exit(0); }
}, 1);
`;

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function run(kind: 'create' | 'copytruncate', glob: 'exact' | 'star') {
  const t = tempDir(`lr-${kind}`);
  cleanups.push(t.cleanup);
  const log = path.join(t.dir, 'app.log');
  writeFileSync(log, '');
  const total = 20_000;
  const writer: ChildProcess = spawn(process.execPath, ['-e', WRITER, log, String(total)], { stdio: 'ignore' });
  cleanups.push(() => {
    if (writer.exitCode === null) writer.kill('SIGKILL');
  });
  const conf = path.join(t.dir, 'logrotate.conf');
  writeFileSync(
    conf,
    `${log} {\n  rotate 100\n  ${kind}\n  nocompress\n  missingok\n` +
      (kind === 'create' ? `  postrotate\n    kill -HUP ${writer.pid} || true\n  endscript\n` : '') +
      '}\n',
  );
  const c = collect();
  const src = createFileSource({
    globs: [glob === 'exact' ? log : log + '*'],
    mode: 'head',
    positions: new MemoryPositionStore(),
    hooks: c.hooks,
    pollIntervalMs: 100,
  });
  cleanups.push(() => src.close());
  await src.start();
  const exited = new Promise<void>((r) => writer.once('exit', () => r()));
  // its SIGHUP handler is installed before the first line: rotate only after that
  await waitFor(() => c.lines.length > 0, 'the writer to start', 10_000);
  let rotations = 0;
  while (writer.exitCode === null && writer.signalCode === null) {
    await sleep(120);
    const r = spawnSync('logrotate', ['-f', '-s', path.join(t.dir, 'state'), conf]);
    if (r.status !== 0) throw new Error(`logrotate failed: ${r.stderr.toString()}`);
    rotations++;
  }
  await exited;
  if (writer.exitCode !== 0) throw new Error(`writer ended with ${writer.exitCode ?? writer.signalCode}`);
  const written = Array.from({ length: total }, (_, i) => `line-${i} from 198.18.0.${(i + 1) % 250}`);
  const rotated = readdirSync(t.dir)
    .filter((f) => f.startsWith('app.log.'))
    .flatMap((f) => readFileSync(path.join(t.dir, f), 'utf8').split('\n'));
  return { c, written, rotated: new Set(rotated), rotations };
}

describe.skipIf(!hasLogrotate)('file source under real logrotate', () => {
  it('create + reopen on SIGHUP: every line exactly once', async () => {
    const { c, written, rotations } = await run('create', 'exact');
    await waitFor(() => c.lines.length >= written.length, 'all lines', 10_000);
    await sleep(300);
    expect(rotations).toBeGreaterThan(3);
    expect(duplicates(c.lines)).toEqual([]);
    expect(c.lines).toEqual(written);
  });

  it('create with logpath app.log* (rotated files matched too): every line exactly once', async () => {
    const { c, written } = await run('create', 'star');
    await waitFor(() => c.lines.length >= written.length, 'all lines', 10_000).catch(() => undefined);
    await sleep(500);
    expect(duplicates(c.lines)).toEqual([]);
    const got = new Set(c.lines);
    expect(written.filter((l) => !got.has(l))).toEqual([]);
  });

  it('copytruncate: no line twice, and none lost that logrotate kept (in the copy or the file)', async () => {
    const { c, written, rotated, rotations } = await run('copytruncate', 'exact');
    await sleep(500);
    const got = new Set(c.lines);
    const lost = written.filter((l) => !got.has(l));
    // logrotate's own window: lines written between its copy and its truncate are in no file
    console.log(`copytruncate: ${rotations} rotations; ${lost.length} of ${written.length} lines were in no file (logrotate's copy/truncate window)`);
    expect(duplicates(c.lines)).toEqual([]);
    const ws = new Set(written);
    expect(c.lines.filter((l) => !ws.has(l))).toEqual([]);
    // every line that logrotate kept in a copy was read (from the copy, after the truncation)
    expect(lost.filter((l) => rotated.has(l))).toEqual([]);
  });

  it('copytruncate with logpath app.log* (the copies matched too): no line twice, none lost that logrotate kept', async () => {
    const { c, written, rotated } = await run('copytruncate', 'star');
    await sleep(2500); // a copy waits up to 2 s for the truncation of its original
    const got = new Set(c.lines);
    const lost = written.filter((l) => !got.has(l));
    expect(duplicates(c.lines)).toEqual([]);
    expect(lost.filter((l) => rotated.has(l))).toEqual([]);
  });
});
