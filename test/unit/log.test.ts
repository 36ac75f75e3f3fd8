import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, fstatSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';
import { createLogger, inOneWrite, isJournalStream, logRendered, syslogPriority } from '../../src/log.js';

const dir = mkdtempSync(join(tmpdir(), `aegis-log-${process.pid}-`));
const distLog = resolve('dist/log.js');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function devIno(fd: number): string {
  const st = fstatSync(fd, { bigint: true });
  return `${st.dev}:${st.ino}`;
}

/**
 * Run `fn` with a fresh file in `dir` open for writing and JOURNAL_STREAM naming it, as systemd
 * sets it for a service whose stdout is the journal; the variable is restored and the file
 * closed afterwards. Returns the file's path.
 */
function underJournal(name: string, fn: (fd: number, file: string) => void): string {
  const f = join(dir, name);
  const fd = openSync(f, 'w');
  const saved = process.env.JOURNAL_STREAM;
  try {
    process.env.JOURNAL_STREAM = devIno(fd);
    fn(fd, f);
  } finally {
    if (saved === undefined) delete process.env.JOURNAL_STREAM;
    else process.env.JOURNAL_STREAM = saved;
    closeSync(fd);
  }
  return f;
}

describe('log: bursts', () => {
  it('writes the lines of a burst together when it ends, in order, with their priorities; other lines at once', () => {
    const f = underJournal('burst', (fd, file) => {
      const log = createLogger({ level: 'info', destination: fd });
      log.info('before');
      expect(readFileSync(file, 'utf8').split('\n').length).toBe(2);
      inOneWrite(log, () => {
        for (let i = 0; i < 3000; i++) log.warn({ event: 'ban', n: i }, `ban ${i}`);
        // nested bursts end with the outer one; 3000 lines are past the 256 KiB flush point
        inOneWrite(log, () => log.error('inner'));
      });
      log.info('after');
    });
    const lines = readFileSync(f, 'utf8').trim().split('\n');
    expect(lines.length).toBe(3003);
    expect(lines[0]!.startsWith('<6>')).toBe(true);
    expect(lines.slice(1, 3001).map((l) => (JSON.parse(l.slice(3)) as { n: number }).n)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(lines.slice(1, 3001).every((l) => l.startsWith('<4>'))).toBe(true);
    expect(lines[3001]!.startsWith('<3>')).toBe(true);
    expect(JSON.parse(lines[3002]!.slice(3))).toMatchObject({ msg: 'after' });
  });

  it('a burst that throws still writes what it logged', () => {
    const f = join(dir, 'burst-throw');
    const fd = openSync(f, 'w');
    try {
      const log = createLogger({ level: 'info', destination: fd, journal: false });
      expect(() =>
        inOneWrite(log, () => {
          log.warn('logged');
          throw new Error('bug');
        }),
      ).toThrow('bug');
    } finally {
      closeSync(fd);
    }
    expect(JSON.parse(readFileSync(f, 'utf8').trim())).toMatchObject({ msg: 'logged' });
  });
});

describe('log: syslog priorities', () => {
  it('maps pino levels to syslog priorities', () => {
    expect([10, 20, 30, 40, 50, 60].map(syslogPriority)).toEqual([7, 7, 6, 4, 3, 2]);
  });

  it('detects the journal only when JOURNAL_STREAM names the destination fd', () => {
    const f = join(dir, 'a');
    const fd = openSync(f, 'w');
    try {
      expect(isJournalStream(fd, undefined)).toBe(false);
      expect(isJournalStream(fd, devIno(fd))).toBe(true);
      expect(isJournalStream(fd, '1:2')).toBe(false);
      expect(isJournalStream(fd, 'garbage')).toBe(false);
    } finally {
      closeSync(fd);
    }
  });

  it('prefixes each line with <N> under the journal and writes plain JSON otherwise', () => {
    const f = underJournal('b', (fd) => {
      const log = createLogger({ level: 'debug', destination: fd });
      log.debug('d');
      log.info('i');
      log.child({ jail: 'sshd' }).warn('w');
      log.error('e');
      process.env.JOURNAL_STREAM = '0:0';
      createLogger({ level: 'info', destination: fd }).info('plain');
    });
    const lines = readFileSync(f, 'utf8').trim().split('\n');
    expect(lines.map((l) => l.slice(0, 3))).toEqual(['<7>', '<6>', '<4>', '<3>', '{"l']);
    for (const l of lines) JSON.parse(l.replace(/^<\d>/, ''));
    expect(JSON.parse(lines[2]!.slice(3))).toMatchObject({ level: 'warn', jail: 'sshd', msg: 'w' });
  });
});

/**
 * journald out, end to end: a real systemd-journald (in its own namespace so it cannot meet
 * another test's journald), a child process whose stdout is connected to journald's stdout
 * socket the way systemd connects a service (stream header with level_prefix=1, JOURNAL_STREAM
 * = device:inode of that socket), and journalctl reading what was stored.
 */
const canJournal =
  process.getuid?.() === 0 && existsSync('/lib/systemd/systemd-journald') && spawnSync('journalctl', ['--version']).status === 0;

describe.skipIf(!canJournal || !existsSync(distLog))('log: journald', () => {
  const ns = `aegistest${process.pid}`;
  const sockDir = `/run/systemd/journal.${ns}`;
  let journald: ChildProcess | undefined;
  let machineId = '';

  afterAll(async () => {
    if (journald?.pid !== undefined && journald.exitCode === null) {
      const exited = new Promise((r) => journald!.once('exit', r));
      process.kill(journald.pid, 'SIGTERM');
      await exited;
    }
    rmSync(sockDir, { recursive: true, force: true });
    if (machineId !== '') {
      rmSync(`/var/log/journal/${machineId}.${ns}`, { recursive: true, force: true });
      rmSync(`/run/log/journal/${machineId}.${ns}`, { recursive: true, force: true });
    }
  });

  async function startJournald(): Promise<void> {
    machineId = readFileSync('/etc/machine-id', 'utf8').trim();
    journald = spawn('/lib/systemd/systemd-journald', [ns], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !existsSync(join(sockDir, 'stdout')); i++) await new Promise((r) => setTimeout(r, 50));
    if (!existsSync(join(sockDir, 'stdout'))) throw new Error('systemd-journald did not create its stdout socket');
  }

  function runScriptOnJournal(identifier: string, script: string, extraEnv: Record<string, string> = {}): Promise<number | null> {
    const file = join(dir, `${identifier}.mjs`);
    writeFileSync(file, script);
    return new Promise((resolveRun, reject) => {
      const sock = net.connect(join(sockDir, 'stdout'), () => {
        // identifier, unit id, default priority, level_prefix, forward to syslog/kmsg/console
        sock.write(`${identifier}\n\n6\n1\n0\n0\n0\n`);
        const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
        const child = spawn(process.execPath, [file], {
          stdio: ['ignore', sock, 'inherit'],
          env: { ...process.env, JOURNAL_STREAM: devIno(fd), ...extraEnv },
        });
        child.on('error', reject);
        child.on('close', (code) => {
          sock.end();
          resolveRun(code);
        });
      });
      sock.on('error', reject);
    });
  }

  function journal(identifier: string, args: string[] = []): Array<Record<string, string>> {
    const r = spawnSync('journalctl', [`--namespace=${ns}`, '-o', 'json', '--no-pager', `SYSLOG_IDENTIFIER=${identifier}`, ...args], {
      encoding: 'utf8',
    });
    return r.stdout
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, string>);
  }

  async function waitFor(identifier: string, n: number): Promise<Array<Record<string, string>>> {
    let got: Array<Record<string, string>> = [];
    for (let i = 0; i < 100; i++) {
      got = journal(identifier);
      if (got.length >= n) return got;
      await new Promise((r) => setTimeout(r, 50));
    }
    return got;
  }

  it('stores each line with the PRIORITY of its level, and -p warning shows warnings and errors only', async () => {
    await startJournald();
    const id = `aegis-log-${process.pid}`;
    const code = await runScriptOnJournal(
      id,
      `import { createLogger } from ${JSON.stringify(distLog)};
const log = createLogger({ level: 'debug' });
log.debug('a debug line');
log.info({ jail: 'sshd', ip: '198.51.100.7' }, 'ban');
log.warn('a warning');
log.error('an error');
log.child({ component: 'metrics' }).warn('a child warning');
`,
    );
    expect(code).toBe(0);
    const entries = await waitFor(id, 5);
    expect(entries.map((e) => [e.PRIORITY, JSON.parse(e.MESSAGE ?? '{}').msg])).toEqual([
      ['7', 'a debug line'],
      ['6', 'ban'],
      ['4', 'a warning'],
      ['3', 'an error'],
      ['4', 'a child warning'],
    ]);
    // The prefix is consumed by journald: MESSAGE is the JSON line itself.
    for (const e of entries) expect(e.MESSAGE?.startsWith('{')).toBe(true);
    const warnings = journal(id, ['-p', 'warning']);
    expect(warnings.map((e) => JSON.parse(e.MESSAGE ?? '{}').level)).toEqual(['warn', 'error', 'warn']);
  });

  it('does not prefix when JOURNAL_STREAM was inherited but stdout is not the journal', async () => {
    const id = `aegis-pipe-${process.pid}`;
    const file = join(dir, `${id}.mjs`);
    writeFileSync(file, `import { createLogger } from ${JSON.stringify(distLog)};\ncreateLogger({ level: 'info' }).warn('to a pipe');\n`);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', env: { ...process.env, JOURNAL_STREAM: '9:12345' } });
    expect(r.stdout.startsWith('{"level":"warn"')).toBe(true);
  });
});

describe('log: flat audit lines', () => {
  it('logRendered writes the bytes pino writes for the same call, apart from the time', () => {
    const f = join(dir, 'flat');
    const fd = openSync(f, 'w');
    const fields = { event: 'ban', jail: 'j"\\x\u00e9', ip: '2001:db8::1', failures: undefined, count: 2, latency_ms: 12.3, expires: null, permanent: true };
    // what a caller renders for those fields: undefined ones left out
    const body = ',"event":"ban","jail":"j\\"\\\\x\u00e9","ip":"2001:db8::1","count":2,"latency_ms":12.3,"expires":null,"permanent":true';
    const msg = '[j"\\x] Ban 2001:db8::1';
    try {
      const log = createLogger({ level: 'info', destination: fd, journal: false });
      log.warn(fields, msg);
      logRendered(log, 'warn', body, JSON.stringify(msg));
      log.info({ event: 'unban', n: 1 }, 'u');
      logRendered(log, 'info', ',"event":"unban","n":1', '"u"');
      // below the level: nothing
      logRendered(createLogger({ level: 'error', destination: fd, journal: false }), 'warn', body, '"hidden"');
    } finally {
      closeSync(fd);
    }
    const lines = readFileSync(f, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(4);
    const noTime = (l: string) => l.replace(/"time":"[^"]+"/, '"time":"T"');
    expect(noTime(lines[1]!)).toBe(noTime(lines[0]!));
    expect(noTime(lines[3]!)).toBe(noTime(lines[2]!));
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: 'warn', levelValue: 40, name: 'aegisd', jail: 'j"\\x\u00e9', expires: null });
  });

  it('logRendered lines carry their syslog priority under the journal', () => {
    const f = join(dir, 'flat-journal');
    const fd = openSync(f, 'w');
    try {
      const log = createLogger({ level: 'info', destination: fd, journal: true });
      logRendered(log, 'warn', ',"event":"ban"', '"b"');
      logRendered(log, 'info', ',"event":"unban"', '"u"');
    } finally {
      closeSync(fd);
    }
    const lines = readFileSync(f, 'utf8').trim().split('\n');
    expect(lines.map((l) => l.slice(0, 3))).toEqual(['<4>', '<6>']);
  });
});
