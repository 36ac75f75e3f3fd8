/**
 * The `log` enforcer: decide and record only. Used when asked for, under --dry-run, and as
 * the loud fallback when XDP cannot load. It keeps the same view of entries an enforcer keyed
 * by address would, so `aegis-ban status` reports what would be in the kernel.
 */
import type { Enforcer, EnforcedBan, EnforcerContext } from './enforcer.js';
import type { Logger } from 'pino';

export function createLogEnforcer(opts: { reason?: string } = {}): Enforcer {
  const entries = new Map<string, number>();
  let log: Logger | null = null;
  // a host ban (the usual case) is keyed by its address alone: no string to build per ban
  const key = (b: EnforcedBan) => (b.prefix === (b.family === 4 ? 32 : 128) ? b.network : `${b.network}/${b.prefix}`);
  return {
    kind: 'log',
    async start(ctx: EnforcerContext) {
      log = ctx.log;
    },
    async ban(bans) {
      for (const b of bans) {
        const k = key(b);
        entries.set(k, (entries.get(k) ?? 0) + 1);
      }
      log?.debug({ enforcer: 'log', entries: bans.length }, 'log enforcer: bans recorded, nothing enforced');
    },
    async unban(bans) {
      for (const b of bans) {
        const k = key(b);
        const n = (entries.get(k) ?? 1) - 1;
        if (n <= 0) entries.delete(k);
        else entries.set(k, n);
      }
    },
    describe() {
      return { kind: 'log', enforcing: false, entries: entries.size, ...(opts.reason ? { fallback_reason: opts.reason } : {}) };
    },
    async stop() {
      entries.clear();
    },
  };
}
