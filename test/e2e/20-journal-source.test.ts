/**
 * journald in, end to end: a real systemd-journald (ours, started as a child, unless one is
 * already running), entries written with systemd-cat and logger, read through the journal
 * source; a stop / write / restart cycle and a killed journalctl lose nothing and repeat nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createJournalSource } from '../../src/sources/journal-source.js';
import { MemoryPositionStore } from '../../src/sources/memory-positions.js';
import type { LogSource } from '../../src/sources/source.js';
import { collect, duplicates, sleep, waitFor } from '../unit/sources/harness.js';

const JOURNALD = '/lib/systemd/systemd-journald';
const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const isRoot = process.getuid?.() === 0;
const missing = [
  !existsSync(JOURNALD) && JOURNALD,
  !have('journalctl') && 'journalctl',
  !have('systemd-cat') && 'systemd-cat',
  !have('logger') && 'logger',
  !isRoot && 'root',
].filter((x): x is string => typeof x === 'string');
if (missing.length > 0) console.log(`skipping journald source e2e: missing ${missing.join(', ')}`);

const ident = `aegis-e2e-${process.pid}-${Date.now() % 100000}`;
let journald: ChildProcess | null = null;
const created: string[] = [];
const sources: LogSource[] = [];

function journaldRunning(): boolean {
  return spawnSync('pgrep', ['-x', 'systemd-journal']).status === 0 && existsSync('/run/systemd/journal/stdout');
}

function writeCat(lines: readonly string[]): void {
  execFileSync('systemd-cat', ['-t', ident], { input: lines.map((l) => l + '\n').join('') });
}
function writeLogger(msg: string): void {
  // no /dev/log symlink without systemd's socket units: talk to journald's syslog socket directly
  execFileSync('logger', ['-u', '/run/systemd/journal/dev-log', '-t', ident, msg]);
}

describe.skipIf(missing.length > 0)('journal source against a real systemd-journald', () => {
  beforeAll(async () => {
    if (journaldRunning()) {
      console.log('using the systemd-journald already running');
      return;
    }
    for (const d of ['/run/systemd/journal', '/run/log/journal']) if (!existsSync(d)) created.push(d);
    journald = spawn(JOURNALD, [], { stdio: 'ignore' });
    await waitFor(() => existsSync('/run/systemd/journal/stdout') && existsSync('/run/systemd/journal/dev-log'), 'journald sockets', 10_000);
  });

  afterAll(async () => {
    for (const s of sources) await s.close();
    const j = journald;
    if (j !== null && j.exitCode === null) {
      const gone = new Promise<void>((r) => j.once('exit', () => r()));
      j.kill('SIGTERM');
      await gone;
    }
    for (const d of created) rmSync(d, { recursive: true, force: true });
  });

  async function start(positions: MemoryPositionStore, c: ReturnType<typeof collect>, since?: number): Promise<LogSource> {
    const s = createJournalSource({
      id: `journal:test-${ident}`,
      matches: [`SYSLOG_IDENTIFIER=${ident}`],
      positions,
      hooks: c.hooks,
      restartMinMs: 50,
      ...(since !== undefined ? { since } : {}),
    });
    sources.push(s);
    await s.start();
    return s;
  }

  it('reads entries as fail2ban-style lines and resumes from the saved cursor: none lost, none twice', async () => {
    const positions = new MemoryPositionStore();
    const c1 = collect();
    writeCat(['before start 1', 'before start 2']);
    // systemd-cat returns before journald has stored the entries
    await waitFor(() => execFileSync('journalctl', ['-q', '-o', 'cat', `SYSLOG_IDENTIFIER=${ident}`]).toString().split('\n').length > 2, 'stored');
    const s1 = await start(positions, c1, Date.now() / 1000 - 60);
    await waitFor(() => c1.lines.length === 2, 'entries written before start');
    expect(c1.backlogLines).toHaveLength(2);
    writeCat(['Failed password for root from 198.18.0.7 port 22 ssh2', 'multi\nline']);
    writeLogger('Invalid user bob from 198.18.0.8');
    await waitFor(() => c1.lines.length >= 6, 'live entries');
    const host = execFileSync('hostname').toString().trim();
    const re = new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(?:\\.\\d{6})? ${host} ${ident}\\[\\d+\\]: (.*)$`);
    const msgs = c1.lines.map((l) => re.exec(l)?.[1]);
    expect(msgs.slice(0, 2)).toEqual(['before start 1', 'before start 2']);
    // systemd-cat makes an entry per stdin line, so "multi\nline" arrives as two entries;
    // logger's entry comes through another socket and may be ordered anywhere among them
    expect(msgs.slice(2).sort()).toEqual(
      ['Failed password for root from 198.18.0.7 port 22 ssh2', 'Invalid user bob from 198.18.0.8', 'line', 'multi'],
    );
    expect(c1.batches.slice(-1)[0]?.isBacklog).toBe(false);
    expect(positions.getCursor(`journal:test-${ident}`)).toMatch(/^s=/);
    await s1.close();

    writeCat(['while stopped 1', 'while stopped 2', 'while stopped 3']);
    const c2 = collect();
    await start(positions, c2);
    await waitFor(() => c2.lines.length === 3, 'entries written while stopped');
    writeCat(['after restart']);
    await waitFor(() => c2.lines.length === 4, 'entry after restart');
    await sleep(200);
    const all = [...c1.lines, ...c2.lines].map((l) => re.exec(l)?.[1] ?? l);
    expect(duplicates(all)).toEqual([]);
    expect(c2.lines.map((l) => re.exec(l)?.[1])).toEqual(['while stopped 1', 'while stopped 2', 'while stopped 3', 'after restart']);
  });

  it('restarts a journalctl that died, counts it as a journal error, and resumes after its cursor', async () => {
    const positions = new MemoryPositionStore();
    const c = collect();
    await start(positions, c);
    await sleep(300); // journalctl --lines=0 must have opened the journal before we write
    writeCat(['k1', 'k2']);
    await waitFor(() => c.lines.length === 2, 'first entries');
    // the journalctl our source spawned: found by the unique match in its arguments
    const pids = execFileSync('pgrep', ['-f', `SYSLOG_IDENTIFIER=${ident}`]).toString().trim().split('\n').map(Number);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    writeCat(['k3', 'k4']);
    await waitFor(() => c.lines.length === 4, 'entries after the restart');
    writeCat(['k5']);
    await waitFor(() => c.lines.length === 5, 'live again');
    await sleep(200);
    expect(c.lines.map((l) => l.split(': ').at(-1))).toEqual(['k1', 'k2', 'k3', 'k4', 'k5']);
    expect(c.errors.some((e) => e.kind === 'journal' && /exited/.test(e.message))).toBe(true);
  });

  it('applies journalmatch as journalctl does: `+` between alternatives', async () => {
    const c = collect();
    const s = createJournalSource({
      id: `journal:or-${ident}`,
      matches: [`SYSLOG_IDENTIFIER=${ident}-a`, '+', `SYSLOG_IDENTIFIER=${ident}-b`],
      positions: new MemoryPositionStore(),
      hooks: c.hooks,
      since: Date.now() / 1000 - 5,
    });
    sources.push(s);
    await s.start();
    for (const t of ['a', 'c', 'b']) execFileSync('systemd-cat', ['-t', `${ident}-${t}`], { input: `from ${t}\n` });
    await waitFor(() => c.lines.length >= 2, 'matching entries');
    await sleep(300);
    expect(c.lines.map((l) => l.split(': ').at(-1)).sort()).toEqual(['from a', 'from b']);
    expect(c.batches.every((b) => b.sourceId === `journal:or-${ident}`)).toBe(true);
  });
});
