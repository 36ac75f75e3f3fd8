/**
 * A stand-in daemon for CLI tests: the REAL control server (compiled dist/control/server.js, the
 * same code aegisd runs) with in-memory handlers that behave like the daemon's contract says.
 * The real daemon's handlers are tested end to end elsewhere.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import type { BanView, Handlers, Request } from '../../../src/control/protocol.js';
import { cidrOverlaps, parseCidr } from '../../../src/net/address.js';

export const ROOT = resolve(import.meta.dirname, '../../..');
export const CLI = join(ROOT, 'dist/cli/aegis-ban.js');
const SERVER_JS = join(ROOT, 'dist/control/server.js');

export function assertBuilt(): void {
  if (!existsSync(CLI) || !existsSync(SERVER_JS)) throw new Error('dist/ is missing: run `npx tsc -p .` before these tests');
}

interface Jail {
  files: string[];
  failed: number;
  totalFailed: number;
  totalBanned: number;
  bantime: number;
  ignore: string[];
}

export class FakeDaemon {
  readonly requests: Request[] = [];
  readonly jails = new Map<string, Jail>([
    ['sshd', { files: ['/var/log/auth.log', '/var/log/auth.log.1'], failed: 2, totalFailed: 17, totalBanned: 0, bantime: 600, ignore: ['192.0.2.0/24'] }],
    ['cartae-api-auth', { files: ['/srv/cartae/api.log'], failed: 0, totalFailed: 3, totalBanned: 0, bantime: 900, ignore: [] }],
  ]);
  bans: BanView[] = [];
  now = 1_795_000_000;

  handlers(): Handlers {
    const unknown = (jail: string) => ({ ok: false as const, error: { code: 'AEGIS_ERR_UNKNOWN_JAIL' as const, message: `no jail named "${jail}"` } });
    return {
      ping: async (req) => {
        this.requests.push(req);
        return { ok: true, data: { pong: true, version: '9.9.9-test' } };
      },
      status: async (req) => {
        this.requests.push(req);
        if (req.jail !== undefined) {
          const j = this.jails.get(req.jail);
          if (!j) return unknown(req.jail);
          const banned = this.bans.filter((b) => b.jail === req.jail);
          return {
            ok: true,
            data: {
              jail: req.jail,
              currently_failed: j.failed,
              total_failed: j.totalFailed,
              files: j.files,
              currently_banned: banned.length,
              total_banned: j.totalBanned,
              banned,
            },
          };
        }
        const jails = [...this.jails].map(([name, j]) => ({
          jail: name,
          currently_banned: this.bans.filter((b) => b.jail === name).length,
          total_banned: j.totalBanned,
          currently_failed: j.failed,
          total_failed: j.totalFailed,
        }));
        return {
          ok: true,
          data: {
            jails,
            currently_banned: this.bans.length,
            total_banned: jails.reduce((a, j) => a + j.total_banned, 0),
            enforcer: { kind: 'log', interfaces: [] },
            version: '9.9.9-test',
            uptime: 3723,
            dry_run: false,
          },
        };
      },
      ban: async (req) => {
        this.requests.push(req);
        const j = this.jails.get(req.jail);
        if (!j) return unknown(req.jail);
        const c = parseCidr(req.ip)!;
        for (const r of ['127.0.0.0/8', '::1', ...j.ignore]) {
          if (cidrOverlaps(parseCidr(r)!, c)) {
            return { ok: false, error: { code: 'AEGIS_ERR_BAN_REFUSED', message: `refusing to ban ${req.ip} in ${req.jail}: it is covered by ignore entry ${r}` } };
          }
        }
        if (this.bans.some((b) => b.jail === req.jail && b.ip === req.ip)) return { ok: true, data: { banned: [] } };
        const time = req.time ?? j.bantime;
        const ban: BanView = { ip: req.ip, jail: req.jail, since: this.now, expires: time === -1 ? null : this.now + time, source: 'manual', count: 1 };
        this.bans.push(ban);
        j.totalBanned++;
        return { ok: true, data: { banned: [ban] } };
      },
      unban: async (req) => {
        this.requests.push(req);
        if (req.jail !== undefined && !this.jails.has(req.jail)) return unknown(req.jail);
        const inJail = (b: BanView) => req.jail === undefined || b.jail === req.jail;
        const hit = (b: BanView) => inJail(b) && (req.all === true || req.ips.some((ip) => cidrOverlaps(parseCidr(ip)!, parseCidr(b.ip)!)));
        const unbanned = this.bans.filter(hit);
        this.bans = this.bans.filter((b) => !hit(b));
        return { ok: true, data: { unbanned } };
      },
      banned: async (req) => {
        this.requests.push(req);
        if (req.ip === undefined) return { ok: true, data: this.bans };
        const c = parseCidr(req.ip)!;
        return { ok: true, data: this.bans.filter((b) => cidrOverlaps(parseCidr(b.ip)!, c)) };
      },
      reload: async (req) => {
        this.requests.push(req);
        if (req.jail === 'broken') {
          return {
            ok: false,
            error: {
              code: 'AEGIS_ERR_CONFIG_VALUE',
              message: 'jail.local:12 [sshd] maxretry: expected a positive integer, got "five"\nfilter.d/x.conf:3 [Definition] failregex: unbalanced parenthesis',
            },
          };
        }
        if (req.jail === 'onebad') return { ok: false, error: { code: 'AEGIS_ERR_CONFIG_VALUE', message: 'jail.local:2 [x] bantime: not a time' } };
        if (req.jail !== undefined && !this.jails.has(req.jail)) return unknown(req.jail);
        return { ok: true, data: { jails: req.jail === undefined ? [...this.jails.keys()] : [req.jail], warnings: ['jail.local:4 [sshd] bogus: unknown key'] } };
      },
    };
  }
}

interface ServerModule {
  startControlServer(opts: { path: string; handlers: Handlers; log: unknown; group?: string | null }): Promise<{ close(): Promise<void> }>;
}

/**
 * Start the fake daemon. With `subdir`, the server creates that directory itself (0700, or 0710
 * for a group) inside a temp dir that other users may traverse: the layout of /run/aegis.
 */
export async function startFake(
  opts: { group?: string; subdir?: string } = {},
): Promise<{ daemon: FakeDaemon; path: string; dir: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), `aeg-cli-${process.pid}-`));
  if (opts.subdir !== undefined) chmodSync(dir, 0o755);
  const path = opts.subdir === undefined ? join(dir, 'aegis.sock') : join(dir, opts.subdir, 'aegis.sock');
  const daemon = new FakeDaemon();
  const mod = (await import(SERVER_JS)) as ServerModule;
  const server = await mod.startControlServer({ path, handlers: daemon.handlers(), log: pino({ level: 'silent' }), group: opts.group ?? null });
  return {
    daemon,
    path,
    dir,
    stop: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run the built aegis-ban (as another user with `asUser`, through runuser). */
export function runCli(args: readonly string[], env: Record<string, string | undefined> = {}, asUser?: string): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const fullEnv: Record<string, string | undefined> = { ...process.env, AEGIS_SOCKET: undefined, ...env };
    for (const k of Object.keys(fullEnv)) if (fullEnv[k] === undefined) delete fullEnv[k];
    const [cmd, argv] = asUser === undefined ? [process.execPath, [CLI, ...args]] : ['runuser', ['-u', asUser, '--', process.execPath, CLI, ...args]];
    const child = spawn(cmd, argv, { env: fullEnv as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}
