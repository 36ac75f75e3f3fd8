/**
 * Migration: Debian's stock /etc/fail2ban tree, unchanged, plus a jail.local enabling two stock
 * jails, drives aegisd. Failure lines are real ones from fail2ban's own test corpus, re-dated to
 * now. Three enforcers: `log` on the host; `action` (the stock `banaction = iptables-multiport` run
 * as fail2ban would run it) and `nftables`, both with the daemon inside a network namespace this
 * test creates, so no command ever touches the host's firewall.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { AEGISD, DaemonHandle, freePort, startDaemon } from '../helpers/daemon.js';

const STOCK = '/etc/fail2ban';
const CORPUS = '/usr/lib/python3/dist-packages/fail2ban/tests/files/logs';
const haveStock = existsSync(join(STOCK, 'jail.conf')) && existsSync(join(CORPUS, 'sshd'));
const isRoot = process.getuid?.() === 0;
const haveNet = isRoot && spawnSync('nft', ['--version']).status === 0 && spawnSync('ip', ['-V']).status === 0;
if (!haveStock) console.log('skipped migration tests: Debian package fail2ban not installed (apt-get install fail2ban)');
if (!existsSync(AEGISD)) console.log('migration tests need the built daemon: npm run build');
if (haveStock && !haveNet) console.log('skipped the action/nftables migration cases: need root, nft and ip');

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => String(n).padStart(2, '0');
/** `Nov 23 11:30:05`, in UTC (the daemon runs with TZ=UTC) */
function syslogNow(): string {
  const d = new Date();
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
}
function nginxNow(): string {
  const d = new Date();
  return `${d.getUTCFullYear()}/${two(d.getUTCMonth() + 1)}/${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
}

/** The lines fail2ban's corpus marks as failures from a literal IPv4 host, by message. */
function corpusFailures(file: string): string[] {
  const lines = readFileSync(join(CORPUS, file), 'utf8').split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length - 1; i++) {
    const m = /^# failJSON: (\{.*\})\s*$/.exec(lines[i] ?? '');
    if (!m) continue;
    const meta = JSON.parse(m[1]!) as { match?: boolean; host?: string };
    const next = lines[i + 1] ?? '';
    if (meta.match === true && typeof meta.host === 'string' && /^\d+\.\d+\.\d+\.\d+$/.test(meta.host) && next.includes(meta.host)) {
      out.push(next.replaceAll(meta.host, '\u0000HOST\u0000'));
    }
  }
  return out;
}

/** Re-date a syslog corpus line to now and put `ip` in it. */
function sshdLine(template: string, ip: string): string {
  return `${template.replace(/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d/, syslogNow()).replaceAll('\u0000HOST\u0000', ip)}\n`;
}
function nginxLine(template: string, ip: string): string {
  return `${template.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d/, nginxNow()).replaceAll('\u0000HOST\u0000', ip)}\n`;
}

interface Setup {
  dir: string;
  etc: string;
  authLog: string;
  nginxLog: string;
  cleanup: () => void;
}

function stockTree(): Setup {
  const { dir, cleanup } = tempDir('aegis-e2e-migrate-');
  const etc = join(dir, 'etc');
  cpSync(STOCK, etc, { recursive: true });
  const authLog = join(dir, 'auth.log');
  const nginxLog = join(dir, 'nginx-error.log');
  writeFileSync(authLog, '');
  writeFileSync(nginxLog, '');
  // What an operator writes: enable jails, point them at their logs. Nothing else changes.
  writeFileSync(
    join(etc, 'jail.local'),
    `[sshd]\nenabled = true\nbackend = polling\nlogpath = ${authLog}\n\n[nginx-http-auth]\nenabled = true\nbackend = polling\nlogpath = ${nginxLog}\n`,
  );
  return { dir, etc, authLog, nginxLog, cleanup };
}

interface Status {
  jail: string;
  currently_banned: number;
  total_failed: number;
  banned: Array<{ ip: string; jail: string; since: number; expires: number | null }>;
}
async function status(d: DaemonHandle, jail: string): Promise<Status> {
  const r = await d.cli(['status', jail, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Status;
}

/** feed 5 real sshd failures (stock maxretry = 5) for `ip` and wait until sshd bans it */
async function banThroughSshd(d: DaemonHandle, s: Setup, ip: string): Promise<Status> {
  const templates = corpusFailures('sshd').filter((l) => /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d /.test(l));
  expect(templates.length).toBeGreaterThanOrEqual(5);
  for (const t of templates.slice(0, 5)) appendFileSync(s.authLog, sshdLine(t, ip));
  return d.waitFor(async () => {
    const st = await status(d, 'sshd');
    return st.banned.some((b) => b.ip === ip) ? st : false;
  }, `sshd to ban ${ip}`, 30_000);
}

describe.skipIf(!haveStock)('migrating from fail2ban: the stock Debian tree, unchanged', () => {
  let s: Setup;
  let d: DaemonHandle | undefined;
  beforeAll(() => {
    s = stockTree();
  });
  afterEach(async () => {
    await d?.stop();
    d = undefined;
  });
  afterAll(() => s?.cleanup());

  it('starts with --enforcer log and bans from real sshd and nginx-http-auth lines', async () => {
    d = await startDaemon({ configDir: s.etc, enforcer: 'log', env: { TZ: 'UTC' } });
    const jails = JSON.parse((await d.cli(['status', '--json'])).stdout) as { jails: Array<{ jail: string }> };
    expect(jails.jails.map((j) => j.jail).sort()).toEqual(['nginx-http-auth', 'sshd']);

    const st = await banThroughSshd(d, s, '198.18.45.7');
    expect(st.total_failed).toBeGreaterThanOrEqual(5);
    const ban = st.banned.find((b) => b.ip === '198.18.45.7')!;
    // stock bantime = 10m
    expect(ban.expires! - ban.since).toBe(600);

    const nginx = corpusFailures('nginx-http-auth');
    for (const t of nginx.slice(0, 5)) appendFileSync(s.nginxLog, nginxLine(t, '198.18.45.8'));
    await d.waitFor(async () => (await status(d!, 'nginx-http-auth')).banned.some((b) => b.ip === '198.18.45.8'), 'nginx-http-auth ban', 30_000);
  });
});

describe.skipIf(!haveStock || !haveNet)('migrating from fail2ban: real enforcement inside a namespace', () => {
  const NS = `aegis-mig-${process.pid}`;
  let s: Setup;
  let d: DaemonHandle | undefined;
  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', NS]);
  });
  afterEach(async () => {
    await d?.stop();
    d = undefined;
    s?.cleanup();
  });
  afterAll(() => {
    spawnSync('ip', ['netns', 'del', NS]);
  });
  const nftIn = (...args: string[]) => spawnSync('ip', ['netns', 'exec', NS, 'nft', ...args], { encoding: 'utf8' });

  it('--enforcer action runs the stock banaction (iptables-multiport) as fail2ban would', async () => {
    s = stockTree();
    d = await startNsDaemon(NS, s.etc, 'action');
    await banThroughSshd(d, s, '198.18.45.9');
    const rules = (): string => spawnSync('ip', ['netns', 'exec', NS, 'iptables', '-w', '-S', 'f2b-sshd'], { encoding: 'utf8' }).stdout ?? '';
    await d.waitFor(() => rules().includes('198.18.45.9'), 'the address in chain f2b-sshd', 15_000);
    expect(rules()).toMatch(/-A f2b-sshd -s 198\.18\.45\.9(\/32)? -j REJECT/);
    const input = spawnSync('ip', ['netns', 'exec', NS, 'iptables', '-w', '-S', 'INPUT'], { encoding: 'utf8' }).stdout ?? '';
    expect(input).toMatch(/-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd/);
    await d.stop();
    d = undefined;
    // stock actionstop removes its chain again
    expect(spawnSync('ip', ['netns', 'exec', NS, 'iptables', '-w', '-S', 'f2b-sshd']).status).not.toBe(0);
  });

  it('--enforcer nftables serves the same firewall banaction from the aegis table', async () => {
    s = stockTree();
    d = await startNsDaemon(NS, s.etc, 'nftables');
    await banThroughSshd(d, s, '198.18.45.10');
    await d.waitFor(() => (nftIn('list', 'set', 'inet', 'aegis', 'ban4').stdout ?? '').includes('198.18.45.10'), 'the address in ban4', 15_000);
    expect(nftIn('list', 'table', 'inet', 'f2b-table').status).not.toBe(0);
    await d.stop();
    d = undefined;
    expect(nftIn('list', 'table', 'inet', 'aegis').status).not.toBe(0);
  });
});

/**
 * aegisd inside the namespace: `ip netns exec` execs node in place, so the pid is the daemon's.
 * The control socket is a file, so the CLI outside reaches it.
 */
async function startNsDaemon(ns: string, configDir: string, enforcer: 'action' | 'nftables'): Promise<DaemonHandle> {
  const socket = join(configDir, '..', 'aegis.sock');
  const stateDir = join(configDir, '..', 'state');
  const metricsPort = await freePort();
  const child = spawn(
    'ip',
    ['netns', 'exec', ns, process.execPath, AEGISD, '--config-dir', configDir, '--socket', socket, '--state-dir', stateDir,
      '--metrics-port', String(metricsPort), '--enforcer', enforcer, '--log-level', 'debug'],
    { env: { ...process.env, TZ: 'UTC' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const d = new DaemonHandle(child, { socket, stateDir, metricsPort, configDir });
  await d.waitFor(async () => (await d.cli(['ping'])).code === 0, 'the control socket', 20_000);
  return d;
}
