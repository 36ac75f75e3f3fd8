import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, fstatSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { hasDaemon, startAegis, waitFor, type AegisInstance } from '../unit/metrics/harness.js';

/**
 * journald out with the real daemon: aegisd's stdout connected to a real systemd-journald the
 * way systemd connects a service's (stream socket, level-prefix on, JOURNAL_STREAM = its
 * device:inode). `journalctl -p warning` must show the daemon's warnings and no info lines;
 * ban lines are stored with jail and ip in the JSON message.
 */
const canJournal =
  process.getuid?.() === 0 && existsSync('/lib/systemd/systemd-journald') && spawnSync('journalctl', ['--version']).status === 0;
const why = !hasDaemon ? 'dist/cli/aegisd.js not built' : !canJournal ? 'needs root, /lib/systemd/systemd-journald and journalctl' : '';
if (why) console.log(`skipping 65-journald: ${why}`);

describe.skipIf(why !== '')('aegisd logging into a real journald', () => {
  // Its own namespace, so it cannot meet another test's journald.
  const ns = `aegise2e${process.pid}`;
  const sockDir = `/run/systemd/journal.${ns}`;
  const machineId = existsSync('/etc/machine-id') ? readFileSync('/etc/machine-id', 'utf8').trim() : '';
  let journald: ChildProcess | undefined;
  let stream: net.Socket | undefined;
  let aegis: AegisInstance | undefined;
  const id = `aegis-e2e-${process.pid}`;

  beforeAll(async () => {
    journald = spawn('/lib/systemd/systemd-journald', [ns], { stdio: 'ignore' });
    await waitFor('journald stdout socket', async () => existsSync(join(sockDir, 'stdout')), 10_000, 50);
    stream = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(join(sockDir, 'stdout'), () => resolve(s));
      s.on('error', reject);
    });
    // identifier, unit, default priority, level_prefix, forward to syslog / kmsg / console
    stream.write(`${id}\n\n6\n1\n0\n0\n0\n`);
    const fd = (stream as unknown as { _handle: { fd: number } })._handle.fd;
    const st = fstatSync(fd, { bigint: true });
    // A token file others can read: the daemon starts, with a warning.
    aegis = await startAegis({ tokenMode: 0o644, stdout: stream, env: { JOURNAL_STREAM: `${st.dev}:${st.ino}` } });
  });

  afterAll(async () => {
    await aegis?.stop();
    stream?.destroy();
    if (journald?.pid !== undefined && journald.exitCode === null) {
      const gone = new Promise((r) => journald!.once('exit', r));
      process.kill(journald.pid, 'SIGTERM');
      await gone;
    }
    rmSync(sockDir, { recursive: true, force: true });
    if (machineId !== '') {
      rmSync(`/var/log/journal/${machineId}.${ns}`, { recursive: true, force: true });
      rmSync(`/run/log/journal/${machineId}.${ns}`, { recursive: true, force: true });
    }
  });

  function entries(args: string[] = []): Array<{ PRIORITY: string; msg: Record<string, unknown> }> {
    const r = spawnSync('journalctl', [`--namespace=${ns}`, '-o', 'json', '--no-pager', `SYSLOG_IDENTIFIER=${id}`, ...args], { encoding: 'utf8' });
    return r.stdout
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as { PRIORITY: string; MESSAGE: string })
      .map((e) => ({ PRIORITY: e.PRIORITY, msg: JSON.parse(e.MESSAGE) as Record<string, unknown> }));
  }

  it('stores every line at the priority of its level, and -p warning shows no info line', async () => {
    const now = Math.floor(Date.now() / 1000);
    aegis!.append('x', Array.from({ length: 5 }, () => JSON.stringify({ time: now, event: 'auth.login.failed', ip: '198.18.65.5' })));
    await waitFor('the ban', async () => aegis!.ctl(['banned', '198.18.65.5']).status === 0, 20_000);
    const all = await waitFor('ban line in the journal', async () => {
      const e = entries();
      return e.some((x) => JSON.stringify(x.msg).includes('198.18.65.5')) ? e : undefined;
    }, 10_000, 100);
    for (const e of all) {
      const expected = { trace: '7', debug: '7', info: '6', warn: '4', error: '3', fatal: '2' }[String(e.msg.level)];
      expect(e.PRIORITY, JSON.stringify(e.msg)).toBe(expected);
    }
    const ban = all.find((e) => JSON.stringify(e.msg).includes('198.18.65.5') && e.msg.jail === 'x');
    // (its priority is that of the level the daemon logs bans at, checked in the loop above)
    expect(ban).toBeDefined();
    const token = all.find((e) => String(e.msg.msg).includes('readable by group or others'));
    expect(token?.PRIORITY).toBe('4');
    const warnings = entries(['-p', 'warning']);
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings.every((e) => ['warn', 'error', 'fatal'].includes(String(e.msg.level)))).toBe(true);
    expect(warnings.some((e) => String(e.msg.msg).includes('readable by group or others'))).toBe(true);
  });
});
