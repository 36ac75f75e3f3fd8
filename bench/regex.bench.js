// `aegis-ban regex` vs `fail2ban-regex` on a deterministic 1 M-line syslog sshd log with the
// stock sshd filter (Debian's /etc/fail2ban/filter.d/sshd.conf, read by our config loader).
// Rows: lines/s of the in-process matcher path (raw-buffer literal prefilter + engine/match, the
// daemon's worker path), of the `aegis-ban regex` CLI as a process, and of fail2ban-regex on
// the same file (a prefix of it when the full run would exceed the time budget), and the ratio.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rng } from './lib/gen.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const LINES = Number(process.env.AEGIS_BENCH_LINES ?? 1_000_000);
const F2B_LINES = Number(process.env.AEGIS_BENCH_F2B_LINES ?? 100_000);
const CONFIG_DIR = existsSync('/etc/fail2ban/filter.d/sshd.conf') ? '/etc/fail2ban' : null;


const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const USERS = ['root', 'admin', 'test', 'oracle', 'ubuntu', 'git', 'postgres', 'deploy', 'user1', 'guest'];

export function generateSshdLog(lines, seed = 42) {
  const r = rng(seed);
  const ip = () => {
    if (r() < 0.15) return `2001:db8:${(r() * 65535) | 0}::${((r() * 65535) | 0).toString(16)}`;
    return `198.18.${(r() * 256) | 0}.${(r() * 256) | 0}`;
  };
  const parts = [];
  let t = Date.UTC(2026, 10, 1, 0, 0, 0) / 1000;
  for (let i = 0; i < lines; i++) {
    t += r() < 0.7 ? 0 : 1;
    const d = new Date(t * 1000);
    const stamp = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}:${String(d.getUTCSeconds()).padStart(2, '0')}`;
    const pid = 1000 + ((r() * 60000) | 0);
    const port = 1024 + ((r() * 60000) | 0);
    const u = USERS[(r() * USERS.length) | 0];
    const x = r();
    let msg;
    if (x < 0.1) msg = `sshd[${pid}]: Failed password for ${u} from ${ip()} port ${port} ssh2`;
    else if (x < 0.15) msg = `sshd[${pid}]: Failed password for invalid user ${u}${(r() * 100) | 0} from ${ip()} port ${port} ssh2`;
    else if (x < 0.2) msg = `sshd[${pid}]: Invalid user ${u}${(r() * 100) | 0} from ${ip()} port ${port}`;
    else if (x < 0.25) msg = `sshd[${pid}]: Accepted publickey for deploy from ${ip()} port ${port} ssh2: ED25519 SHA256:q2bXbQ6Jb1b0p4i0YwS1u3QvGd9y3s8p2yQm0bT6e9E`;
    else if (x < 0.32) msg = `sshd[${pid}]: Connection closed by ${ip()} port ${port} [preauth]`;
    else if (x < 0.38) msg = `sshd[${pid}]: Received disconnect from ${ip()} port ${port}:11: Bye Bye [preauth]`;
    else if (x < 0.44) msg = `sshd[${pid}]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)`;
    else if (x < 0.48) msg = `sshd[${pid}]: Disconnected from user deploy ${ip()} port ${port}`;
    else if (x < 0.5) msg = `sshd[${pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${ip()}  user=${u}`;
    else if (x < 0.75) msg = `CRON[${pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)`;
    else if (x < 0.9) msg = `systemd[1]: Started session-${(r() * 100000) | 0}.scope - Session ${(r() * 100000) | 0} of User deploy.`;
    else msg = `kernel: [${(r() * 1e6).toFixed(6)}] audit: type=1400 apparmor="ALLOWED" operation="open" profile="snap.lxd" name="/proc/${pid}/status"`;
    parts.push(`${stamp} web-01 ${msg}\n`);
  }
  return parts.join('');
}

function timeIt(fn) {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const v = fn();
  const c = process.cpuUsage(c0);
  return { secs: Number(process.hrtime.bigint() - t0) / 1e9, cpu: (c.user + c.system) / 1e6, v };
}

/** run a command under bash's `time`: wall and CPU seconds of the child, its stdout in a file */
function timeCommand(cmd, args, outFile, env = {}) {
  const q = (a) => `'${String(a).replace(/'/g, `'\\''`)}'`;
  const r = spawnSync('bash', ['-c', `TIMEFORMAT='%R %U %S'; time ${[cmd, ...args].map(q).join(' ')} > ${q(outFile)} 2>/dev/null`], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  const m = /([\d.]+) ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr ?? '');
  if (!m) throw new Error(`could not time ${cmd}: ${r.stderr}`);
  return { secs: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), out: readFileSync(outFile, 'utf8') };
}

export default async function run() {
  const rows = [];
  if (CONFIG_DIR === null) {
    return [{ benchmark: 'regex sshd (1M syslog lines)', aegis: 0, unit: 'lines/s', note: 'skipped: /etc/fail2ban/filter.d/sshd.conf not installed (Debian package fail2ban)' }];
  }
  const dir = mkdtempSync(join(tmpdir(), `aegis-bench-regex-${process.pid}-`));
  try {
    const log = join(dir, 'auth.log');
    writeFileSync(log, generateSshdLog(LINES));
    const { loadFilter } = await import(join(root, 'dist/config/filters.js'));
    const { compileFilter } = await import(join(root, 'dist/engine/match/filter.js'));
    const { decodeLine } = await import(join(root, 'dist/engine/scan.js'));
    const { createLineScanner } = await import(join(root, 'dist/engine/match/prefilter.js'));
    const { filter: spec, diagnostics } = loadFilter(CONFIG_DIR, 'sshd');
    if (!spec) throw new Error(`sshd filter did not load: ${diagnostics.map((d) => d.message).join('; ')}`);
    const { filter } = compileFilter(spec);
    if (!filter) throw new Error('sshd filter did not compile');
    const now = Date.UTC(2026, 10, 23) / 1000;

    // 1. in-process: the worker's path (prefilter on the raw buffer, decode candidates, match)
    const buf = readFileSync(log);
    const scanner = createLineScanner(filter.literals);
    const matchAll = (scan) => {
      const m = filter.createMatcher({ now: () => now, timezone: 'UTC' });
      let fails = 0;
      let candidates = 0;
      scan((s, e) => {
        candidates++;
        if (m.match(decodeLine(buf, s, e)).kind === 'fail') fails++;
      });
      return { fails, candidates };
    };
    const inProc = timeIt(() => matchAll((visit) => scanner.scan(buf, visit)));

    // 2. the CLI as a process (start-up and file reading included)
    // the machine drifts by ±20 % within minutes: the median of three CLI runs, against the
    // faster of two fail2ban-regex runs (the peer gets the benefit of the doubt)
    const cliRuns = [0, 1, 2].map(() => timeCommand(process.execPath, [join(root, 'dist/cli/aegis-ban.js'), 'regex', log, 'sshd', '--config-dir', CONFIG_DIR, '--now', String(now), '--timezone', 'UTC'], join(dir, 'aegis.out')));
    const cli = [...cliRuns].sort((a, b) => a.secs - b.secs)[1];
    const cliMatched = /(\d+) matched/.exec(cli.out)?.[1];

    // 3. fail2ban-regex on a prefix of the same log (its per-line cost is flat in the line count)
    let f2b = null;
    let n = 0;
    let f2bMatched;
    const hasF2b = spawnSync('fail2ban-regex', ['--version'], { encoding: 'utf8' }).status === 0;
    if (hasF2b) {
      n = Math.min(F2B_LINES, LINES);
      const part = join(dir, 'auth-prefix.log');
      let cut = 0;
      for (let i = 0; i < n; i++) cut = buf.indexOf(10, cut) + 1;
      writeFileSync(part, buf.subarray(0, cut));
      const f2bRun = () => timeCommand('fail2ban-regex', ['--print-no-missed', part, join(CONFIG_DIR, 'filter.d/sshd.conf')], join(dir, 'f2b.out'), { TZ: 'UTC' });
      const [a, b] = [f2bRun(), f2bRun()];
      f2b = a.secs <= b.secs ? a : b;
      f2bMatched = /Lines: \d+ lines, \d+ ignored, (\d+) matched/.exec(f2b.out)?.[1];
    }
    const peer = (aegis, peerRate) => (peerRate ? { peer: 'fail2ban-regex', peerValue: Math.round(peerRate), ratio: Number((aegis / peerRate).toFixed(1)) } : {});
    const f2bNote = f2b ? `; fail2ban-regex: ${n} lines in ${f2b.secs.toFixed(1)} s wall / ${f2b.cpu.toFixed(1)} s CPU, ${f2bMatched ?? '?'} matched` : '; fail2ban-regex not installed';
    rows.push({
      benchmark: `regex sshd, matcher path in-process (${LINES} syslog lines), CPU time`,
      aegis: Math.round(LINES / inProc.cpu),
      unit: 'lines/s',
      ...peer(LINES / inProc.cpu, f2b ? n / f2b.cpu : null),
      note: `${inProc.v.fails} failures, ${inProc.v.candidates} candidate lines decoded, ${inProc.secs.toFixed(2)} s wall, single-pass literal scan${f2bNote}`,
    });
    rows.push({
      benchmark: `aegis-ban regex CLI vs fail2ban-regex (${LINES} syslog lines), wall clock`,
      aegis: Math.round(LINES / cli.secs),
      unit: 'lines/s',
      ...peer(LINES / cli.secs, f2b ? n / f2b.secs : null),
      note: `median of 3 runs (${cliRuns.map((r) => r.secs.toFixed(2)).join(' / ')} s wall), ${cli.cpu.toFixed(2)} s CPU incl. start-up, ${cliMatched ?? '?'} matched; date stage on a second thread (fail2ban-regex: one, faster of 2 runs)`,
    });
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  run().then((rows) => console.table(rows));
  void execFileSync;
}
