/**
 * The journal source's supervision and cursor handling against a stand-in `journalctl` (a real
 * child process that prints JSON entries after the cursor it is given, then waits like -f).
 * The real journald is in test/e2e/20-journal-source.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createJournalSource } from '../../../src/sources/journal-source.js';
import { MemoryPositionStore } from '../../../src/sources/memory-positions.js';
import type { LogSource } from '../../../src/sources/source.js';
import { collect, sleep, tempDir, waitFor } from './harness.js';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** entries i=0..n-1 with cursor c<i>; the fake appends its argv to args.log */
function fakeJournalctl(dir: string, n: number, exitAfter: number | null): string {
  const script = path.join(dir, 'journalctl');
  writeFileSync(
    script,
    `#!/usr/bin/env node
const fs = require('fs');
fs.appendFileSync(${JSON.stringify(path.join(dir, 'args.log'))}, JSON.stringify(process.argv.slice(2)) + '\\n');
const after = process.argv.find((a) => a.startsWith('--after-cursor='));
if (after === '--after-cursor=garbage') { process.stderr.write('Failed to seek to cursor: Invalid argument\\n'); process.exit(1); }
let i = after ? Number(after.slice('--after-cursor=c'.length)) + 1 : 0;
const out = [];
const stop = ${exitAfter === null ? 'Infinity' : 'i + ' + exitAfter};
for (; i < ${n} && i < stop; i++) {
  out.push(JSON.stringify({ __CURSOR: 'c' + i, __REALTIME_TIMESTAMP: String(1795432686000000 + i), _HOSTNAME: 'h',
    SYSLOG_IDENTIFIER: 'sshd', _PID: '7', MESSAGE: i === 3 ? 'x'.repeat(300) : 'entry ' + i }));
}
process.stdout.write(out.join('\\n') + (out.length ? '\\n' : ''), () => {
  if (i < ${n}) process.exit(3);
  setInterval(() => {}, 1000);
});
`,
  );
  chmodSync(script, 0o755);
  return script;
}

function start(opts: Parameters<typeof createJournalSource>[0]): LogSource {
  const s = createJournalSource(opts);
  cleanups.push(() => s.close());
  return s;
}

describe('journal source (stand-in journalctl)', () => {
  it('restarts journalctl after it exits, from the last processed cursor: nothing lost or doubled', async () => {
    const t = tempDir('jfake');
    cleanups.push(t.cleanup);
    const journalctl = fakeJournalctl(t.dir, 10, 4); // each run prints 4 entries, then dies
    const positions = new MemoryPositionStore();
    const c = collect();
    const s = start({ id: 'journal:sshd', matches: ['_SYSTEMD_UNIT=ssh.service', '+', '_COMM=sshd'], positions, hooks: c.hooks, journalctl, restartMinMs: 10, maxLineBytes: 100 });
    await s.start();
    await waitFor(() => c.lines.length === 10, 'all entries');
    await sleep(100);
    expect(c.lines.map((l) => l.split(': ')[1])).toEqual(
      ['entry 0', 'entry 1', 'entry 2', 'x'.repeat(100 - 'YYYY-MM-DDTHH:MM:SS.ffffff h sshd[7]: '.length), ...[4, 5, 6, 7, 8, 9].map((i) => `entry ${i}`)],
    );
    expect(c.lines[3]).toHaveLength(100);
    expect(c.errors.filter((e) => e.kind === 'line_too_long')).toHaveLength(1);
    expect(c.errors.filter((e) => e.kind === 'journal').length).toBe(2);
    const runs = readFileSync(path.join(t.dir, 'args.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);
    expect(runs).toHaveLength(3);
    expect(runs[0]).toContain('--lines=0');
    expect(runs[0]?.slice(-3)).toEqual(['_SYSTEMD_UNIT=ssh.service', '+', '_COMM=sshd']);
    expect(runs[1]).toContain('--after-cursor=c3');
    expect(runs[2]).toContain('--after-cursor=c7');
    expect(positions.getCursor('journal:sshd')).toBe('c9');
    expect(c.batches.every((b) => b.sourceId === 'journal:sshd')).toBe(true);
  });

  it('starts after a saved cursor, or at `since` without one', async () => {
    const t = tempDir('jfake2');
    cleanups.push(t.cleanup);
    const journalctl = fakeJournalctl(t.dir, 6, null);
    const positions = new MemoryPositionStore();
    positions.setCursor('journal:a', 'c2');
    const c = collect();
    await start({ id: 'journal:a', matches: [], positions, hooks: c.hooks, journalctl }).start();
    await waitFor(() => c.lines.length === 3, 'entries after c2');
    expect(c.lines.map((l) => l.split(': ')[1]?.slice(0, 7))).toEqual(['xxxxxxx', 'entry 4', 'entry 5']);
    const c2 = collect();
    await start({ id: 'journal:b', matches: [], positions, hooks: c2.hooks, journalctl, since: 1795432000 }).start();
    await waitFor(() => c2.lines.length === 6, 'all entries');
    const runs = readFileSync(path.join(t.dir, 'args.log'), 'utf8').trim().split('\n');
    expect(runs[1]).toContain('--since=@1795432000');
  });

  it('drops a saved cursor that journalctl rejects instead of failing forever', async () => {
    const t = tempDir('jfake3');
    cleanups.push(t.cleanup);
    const journalctl = fakeJournalctl(t.dir, 3, null);
    const positions = new MemoryPositionStore();
    positions.setCursor('journal:bad', 'garbage');
    const c = collect();
    await start({ id: 'journal:bad', matches: [], positions, hooks: c.hooks, journalctl, since: 1795432000, restartMinMs: 10 }).start();
    await waitFor(() => c.lines.length === 3, 'entries after dropping the cursor');
    expect(c.errors.some((e) => /cursor rejected/.test(e.message))).toBe(true);
    expect(positions.getCursor('journal:bad')).toBe('c2');
  });

  it('reports a missing journalctl as a journal error and keeps trying', async () => {
    const c = collect();
    const s = start({ id: 'journal:x', matches: [], positions: new MemoryPositionStore(), hooks: c.hooks, journalctl: '/nonexistent/journalctl', restartMinMs: 10, restartMaxMs: 20 });
    await s.start();
    await waitFor(() => c.errors.filter((e) => e.kind === 'journal').length >= 4, 'retries');
    expect(c.errors[0]?.message).toMatch(/cannot run journalctl/);
  });
});
