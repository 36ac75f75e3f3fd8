/**
 * Control requests → ban manager and daemon. Shapes are SPEC's "--json shapes"; every refusal
 * is an error value with a stable code that aegis-ban maps to its exit code.
 */
import type { Handlers, BanView, JailStatus, StatusSummary, ErrorBody } from '../control/protocol.js';
import { ErrorCode } from '../errors.js';
import { LOOPBACK, cidrOverlaps, parseAddress, parseCidr, cidrContains, type Cidr } from '../net/address.js';
import { ownAddresses } from '../bans/ignore.js';
import type { Ban, BanManager } from '../bans/manager.js';
import type { JailRuntime } from './jails.js';

export interface DaemonView {
  readonly manager: BanManager;
  /** resolves when every ban decided so far is durable (what is shown must survive a crash) */
  settled(): Promise<void>;
  jails(): readonly JailRuntime[];
  filesOf(jail: string): readonly string[];
  enforcerDescription(): Readonly<Record<string, unknown>>;
  reload(jail?: string): Promise<{ ok: true; jails: string[]; warnings: string[] } | { ok: false; error: ErrorBody }>;
  readonly version: string;
  readonly startedAt: number;
  readonly dryRun: boolean;
}

function view(b: Ban): BanView {
  const full = b.family === 4 ? 32 : 128;
  return {
    ip: b.prefix === full ? b.network : `${b.network}/${b.prefix}`,
    jail: b.jail,
    since: b.since,
    expires: b.expires,
    source: b.source,
    count: b.banCount,
  };
}

const fail = (code: ErrorBody['code'], message: string) => ({ ok: false as const, error: { code, message } });

export function createHandlers(d: DaemonView): Handlers {
  const findJail = (name: string) => d.jails().find((j) => j.name === name);

  function jailStatus(j: JailRuntime): JailStatus {
    const bans = d.manager.byJail(j.name);
    return {
      jail: j.name,
      currently_failed: j.windows.currentlyFailed(Date.now() / 1000),
      total_failed: j.totalFailed,
      files: d.filesOf(j.name),
      currently_banned: bans.length,
      total_banned: d.manager.totalBanned(j.name),
      banned: bans.map(view),
    };
  }

  /** why a manual ban of `c` must be refused, or null */
  function refusal(c: Cidr, jail: JailRuntime): string | null {
    if (LOOPBACK.some((l) => cidrOverlaps(l, c))) return `refusing to ban ${c.text}: it covers a loopback address`;
    const own = ownAddresses().find((o) => cidrOverlaps(o, c));
    if (own) return `refusing to ban ${c.text}: it covers ${own.network}, an address of this host`;
    const ign = jail.ignore.overlapping(c);
    if (ign) return `refusing to ban ${c.text}: it covers ${ign.text}, in ignoreip of jail ${jail.name}`;
    return null;
  }

  return {
    async ping() {
      return { ok: true, data: { pong: true, version: d.version } };
    },

    async status(req) {
      await d.settled();
      if (req.jail !== undefined) {
        const j = findJail(req.jail);
        if (!j) return fail(ErrorCode.UNKNOWN_JAIL, `no jail named "${req.jail}"`);
        return { ok: true, data: jailStatus(j) };
      }
      const counts = d.manager.countByJail();
      const now = Date.now() / 1000;
      const jails = d.jails().map((j) => ({
        jail: j.name,
        currently_banned: counts.get(j.name) ?? 0,
        total_banned: d.manager.totalBanned(j.name),
        currently_failed: j.windows.currentlyFailed(now),
        total_failed: j.totalFailed,
      }));
      const summary: StatusSummary = {
        jails,
        currently_banned: jails.reduce((n, j) => n + j.currently_banned, 0),
        total_banned: jails.reduce((n, j) => n + j.total_banned, 0),
        enforcer: d.enforcerDescription(),
        version: d.version,
        uptime: Math.round(Date.now() / 1000 - d.startedAt),
        dry_run: d.dryRun,
      };
      return { ok: true, data: summary };
    },

    async ban(req) {
      const j = findJail(req.jail);
      if (!j) return fail(ErrorCode.UNKNOWN_JAIL, `no jail named "${req.jail}"`);
      const c = parseCidr(req.ip);
      if (!c) return fail(ErrorCode.ADDRESS_INVALID, `"${req.ip}" is not an IP address or CIDR prefix`);
      const why = refusal(c, j);
      if (why) return fail(ErrorCode.BAN_REFUSED, why);
      const bantime = req.time ?? j.jail.bantime;
      if (d.manager.isBanned(j.name, c)) {
        const existing = d.manager.byJail(j.name).filter((b) => b.network === c.network && b.prefix === c.prefix);
        return { ok: true, data: { banned: existing.map(view) } };
      }
      const banned = await d.manager.ban([
        { jail: j.name, ip: c.network, cidr: c, bantime, source: 'manual', fields: {} },
      ]);
      return { ok: true, data: { banned: banned.map(view) } };
    },

    async unban(req) {
      if (req.jail !== undefined && !findJail(req.jail) && !d.manager.byJail(req.jail).length) {
        return fail(ErrorCode.UNKNOWN_JAIL, `no jail named "${req.jail}"`);
      }
      const inJail = (b: Ban) => req.jail === undefined || b.jail === req.jail;
      // an unbanned address starts with a clean slate: its old failures must not re-ban it
      const forgetWindows = (gone: readonly Ban[]) => {
        for (const j of d.jails()) if (req.jail === undefined || j.name === req.jail) for (const b of gone) j.windows.forget(b.ip);
      };
      if (req.all) {
        const gone = await d.manager.unban(inJail, 'manual');
        forgetWindows(gone);
        return { ok: true, data: { unbanned: gone.map(view) } };
      }
      const wanted: Cidr[] = [];
      for (const ip of req.ips) {
        const c = parseCidr(ip);
        if (!c) return fail(ErrorCode.ADDRESS_INVALID, `"${ip}" is not an IP address or CIDR prefix`);
        wanted.push(c);
      }
      const full = (c: Cidr) => c.prefix === (c.family === 4 ? 32 : 128);
      // an address unbans its own ban and a prefix ban it caused (ban_prefix_v4/v6)
      const hits = (b: Ban, c: Cidr) =>
        (b.network === c.network && b.prefix === c.prefix) || (full(c) && b.ip === c.network);
      const gone = await d.manager.unban((b) => inJail(b) && wanted.some((c) => hits(b, c)), 'manual');
      forgetWindows(gone);
      const missing = wanted.filter((c) => !gone.some((b) => hits(b, c))).map((c) => c.text);
      if (missing.length > 0) {
        const done = gone.length > 0 ? `unbanned ${gone.map((b) => view(b).ip).join(', ')}; ` : '';
        return fail(ErrorCode.NOT_BANNED, `${done}not banned${req.jail ? ` in jail ${req.jail}` : ''}: ${missing.join(', ')}`);
      }
      return { ok: true, data: { unbanned: gone.map(view) } };
    },

    async banned(req) {
      await d.settled();
      let list = d.manager.list();
      if (req.ip !== undefined) {
        const addr = parseAddress(req.ip);
        const c = parseCidr(req.ip);
        if (!c) return fail(ErrorCode.ADDRESS_INVALID, `"${req.ip}" is not an IP address or CIDR prefix`);
        list = list.filter((b) => {
          const bc = parseCidr(`${b.network}/${b.prefix}`);
          return bc !== null && (addr ? cidrContains(bc, addr) : bc.network === c.network && bc.prefix === c.prefix);
        });
      }
      list.sort((a, b) => a.jail.localeCompare(b.jail) || a.since - b.since);
      return { ok: true, data: list.map(view) };
    },

    async reload(req) {
      const r = await d.reload(req.jail);
      if (!r.ok) return r;
      return { ok: true, data: { jails: r.jails, warnings: r.warnings } };
    },
  };
}
