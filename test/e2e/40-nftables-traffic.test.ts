/**
 * Real packets through the nftables enforcer: a client namespace pings a server namespace over
 * a veth pair (198.18.0.0/15 and 2001:db8::/32 only, no default route). The enforcer's nft runs
 * inside the server namespace, so the host's ruleset is never touched.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedConfig } from '../../src/config/types.js';
import type { EnforcedBan, Enforcer, EnforcerContext } from '../../src/enforce/enforcer.js';
import { createNftablesEnforcer } from '../../src/enforce/nftables.js';

const SRV = `aegis-srv-${process.pid}`;
const CLI = `aegis-cli-${process.pid}`;
const can =
  process.getuid?.() === 0 &&
  spawnSync('nft', ['--version']).status === 0 &&
  spawnSync('ip', ['-V']).status === 0 &&
  spawnSync('ping', ['-V']).status === 0;
if (!can) console.log('skipped nftables traffic test: needs root, nft, ip (iproute2) and ping (iputils-ping)');

const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: 'pipe' });
const inNs = (ns: string, ...args: string[]): void => ip('netns', 'exec', ns, ...args);

beforeAll(() => {
  if (!can) return;
  ip('netns', 'add', SRV);
  ip('netns', 'add', CLI);
  const a = `av${process.pid % 100000}s`;
  const b = `av${process.pid % 100000}c`;
  ip('link', 'add', a, 'netns', SRV, 'type', 'veth', 'peer', 'name', b, 'netns', CLI);
  for (const [ns, dev, v4, v6] of [
    [SRV, a, ['198.18.0.1/24'], ['2001:db8::1/64']],
    [CLI, b, ['198.18.0.2/24', '198.18.0.3/24'], ['2001:db8::2/64', '2001:db8::3/64']],
  ] as const) {
    inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    for (const x of v4) inNs(ns, 'ip', 'addr', 'add', x, 'dev', dev);
    for (const x of v6) inNs(ns, 'ip', '-6', 'addr', 'add', x, 'dev', dev, 'nodad');
    inNs(ns, 'ip', 'link', 'set', dev, 'up');
  }
});
afterAll(() => {
  if (!can) return;
  spawnSync('ip', ['netns', 'del', CLI]);
  spawnSync('ip', ['netns', 'del', SRV]);
});

/** one echo request from `src`; true when the reply came back */
function reaches(src: string, dst: string): boolean {
  const v6 = dst.includes(':');
  const r = spawnSync('ip', ['netns', 'exec', CLI, 'ping', ...(v6 ? ['-6'] : []), '-c', '1', '-W', '1', '-I', src, dst], { stdio: 'pipe' });
  return r.status === 0;
}

function ctx(allow: string[]): EnforcerContext {
  const config: ResolvedConfig = {
    configDir: '/nonexistent',
    daemon: { socket: '', socketMode: 0o600, socketGroup: null, stateDir: '', logLevel: 'info', enforcer: 'nftables', interfaces: [], dryRun: false },
    metrics: { enabled: false, bind: '127.0.0.1', port: 0, tokenFile: null, allow: [], tlsCert: null, tlsKey: null, rateLimit: null },
    xdp: { pinPath: '', maxEntries: 1, keepAttached: false, mode: 'auto', rateLimit: { enabled: false, pps: 0, burst: 0 } },
    jails: [],
  };
  return { config, jails: [], allow, log: pino({ level: 'silent' }) };
}

function ban(addr: string, seconds: number | null, prefix?: number): EnforcedBan {
  const v6 = addr.includes(':');
  const now = Math.floor(Date.now() / 1000);
  return { jail: 'sshd', network: addr, prefix: prefix ?? (v6 ? 128 : 32), family: v6 ? 6 : 4, ip: addr, since: now, expires: seconds === null ? null : now + seconds, bantime: seconds ?? -1, banCount: 1, fields: {} };
}

describe.skipIf(!can)('nftables enforcer drops real traffic', () => {
  let e: Enforcer;
  beforeAll(async () => {
    e = createNftablesEnforcer({ nft: ['ip', 'netns', 'exec', SRV, 'nft'] });
    await e.start(ctx(['127.0.0.0/8', '::1', '198.18.0.3']));
  });
  afterAll(async () => {
    await e?.stop();
  });

  it('passes everyone before any ban', () => {
    expect(reaches('198.18.0.2', '198.18.0.1')).toBe(true);
    expect(reaches('198.18.0.3', '198.18.0.1')).toBe(true);
    expect(reaches('2001:db8::2', '2001:db8::1')).toBe(true);
  });

  it('drops a banned IPv4 and IPv6 source and passes its neighbours', async () => {
    await e.ban([ban('198.18.0.2', 600), ban('2001:db8::2', 600)]);
    expect(reaches('198.18.0.2', '198.18.0.1')).toBe(false);
    expect(reaches('2001:db8::2', '2001:db8::1')).toBe(false);
    expect(reaches('198.18.0.3', '198.18.0.1')).toBe(true);
    expect(reaches('2001:db8::3', '2001:db8::1')).toBe(true);
    // the two echo requests at least (neighbour discovery from a banned source is dropped too)
    const drops = (await e.counters!()).drops?.find((d) => d.reason === 'blocklist')?.value ?? 0;
    expect(drops).toBeGreaterThanOrEqual(2);
  });

  it('passes again after unban', async () => {
    await e.unban([ban('198.18.0.2', 600), ban('2001:db8::2', 600)]);
    expect(reaches('198.18.0.2', '198.18.0.1')).toBe(true);
    expect(reaches('2001:db8::2', '2001:db8::1')).toBe(true);
  });

  it('drops a whole prefix, except an allowed address inside it', async () => {
    await e.ban([ban('198.18.0.0', 600, 30), ban('2001:db8::', 600, 120)]);
    expect(reaches('198.18.0.2', '198.18.0.1')).toBe(false);
    expect(reaches('198.18.0.3', '198.18.0.1')).toBe(true);
    expect(reaches('2001:db8::3', '2001:db8::1')).toBe(false);
    await e.unban([ban('198.18.0.0', 600, 30), ban('2001:db8::', 600, 120)]);
    expect(reaches('2001:db8::3', '2001:db8::1')).toBe(true);
  });

  it('lets the kernel end a ban on time with no call from the daemon', async () => {
    await e.ban([ban('198.18.0.2', 2)]);
    expect(reaches('198.18.0.2', '198.18.0.1')).toBe(false);
    await new Promise((r) => setTimeout(r, 2500));
    expect(reaches('198.18.0.2', '198.18.0.1')).toBe(true);
  });
});
