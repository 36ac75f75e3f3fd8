/**
 * The xdp enforcer against real kernel maps (loaded, not attached: no interface needed).
 * A second handle on the same pins inspects and tampers with the maps as another tool would.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ResolvedConfig, XdpSettings } from '../../../src/config/types.js';
import { createXdpEnforcer } from '../../../src/enforce/xdp.js';
import type { EnforcedBan, Enforcer, EnforcerContext } from '../../../src/enforce/enforcer.js';
import { KernelClock, MAP, decodeKey, encodeKeys, encodeValues, entryId } from '../../../src/enforce/xdp/codec.js';
import { OBJECT_PATH, loadAddon, xdpAvailability, type NativeAddon, type NativeProgram } from '../../../src/enforce/xdp/native.js';
import { parseCidr } from '../../../src/net/address.js';

const avail = xdpAvailability();
if (!avail.ok) console.warn(`skipping xdp enforcer tests: ${avail.reason}`);
const addon = avail.ok ? (loadAddon() as NativeAddon) : null;

let seq = 0;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function settings(pinPath: string, over: Partial<XdpSettings> = {}): XdpSettings {
  return { pinPath, maxEntries: 4096, keepAttached: false, mode: 'auto', rateLimit: { enabled: false, pps: 0, burst: 0 }, ...over };
}

function ctx(allow: string[] = []): EnforcerContext {
  return { config: {} as ResolvedConfig, jails: [], allow, log: pino({ level: 'silent' }) };
}

async function started(allow: string[] = [], pin?: string, maxEntries = 4096): Promise<{ enf: Enforcer; pin: string }> {
  const p = pin ?? `/sys/fs/bpf/aegis-enf-${process.pid}-${seq++}`;
  if (pin === undefined) {
    rmSync(p, { recursive: true, force: true });
    cleanups.push(() => rmSync(p, { recursive: true, force: true }));
  }
  const enf = createXdpEnforcer({ xdp: settings(p, { maxEntries }), interfaces: [] });
  await enf.start(ctx(allow));
  cleanups.push(() => enf.stop());
  return { enf, pin: p };
}

/** another handle on the same pinned maps */
function inspector(pin: string): NativeProgram {
  mkdirSync(pin, { recursive: true });
  const p = new addon!.Program({ object: OBJECT_PATH, pinPath: pin, maxEntries: 4096, rateEntries: 65536, ratePps: 0, rateBurst: 0 });
  cleanups.push(() => p.close());
  return p;
}

async function entries(p: NativeProgram, map: string): Promise<Map<string, bigint>> {
  const d = await p.dump(map);
  const out = new Map<string, bigint>();
  const vsize = d.count > 0 ? d.values.length / d.count : 0;
  for (let i = 0; i < d.count; i++) out.set(decodeKey(map, d.keys, i).text, vsize === 8 ? d.values.readBigUInt64LE(i * 8) : 1n);
  return out;
}

function mkBan(jail: string, cidr: string, expires: number | null): EnforcedBan {
  const c = parseCidr(cidr)!;
  return { jail, network: c.network, prefix: c.prefix, family: c.family, ip: c.network, since: Date.now() / 1000, expires, bantime: expires === null ? -1 : 600, banCount: 1, fields: {} };
}

describe.skipIf(!avail.ok)('xdp enforcer on real maps', () => {
  it('keeps the longest expiry when two jails ban one address and removes it only when both let go', async () => {
    const { enf, pin } = await started();
    const ins = inspector(pin);
    const clock = new KernelClock(() => addon!.clocks());
    const now = Math.floor(Date.now() / 1000);
    await enf.ban([mkBan('sshd', '198.18.0.7', now + 600), mkBan('nginx', '198.18.0.7', now + 3600)]);
    const v1 = (await entries(ins, MAP.banV4)).get('198.18.0.7')!;
    expect(clock.toEpoch(v1)).toBeCloseTo(now + 3600, 0);

    await enf.unban([mkBan('nginx', '198.18.0.7', now + 3600)]);
    const v2 = (await entries(ins, MAP.banV4)).get('198.18.0.7')!;
    expect(clock.toEpoch(v2)).toBeCloseTo(now + 600, 0);

    await enf.unban([mkBan('sshd', '198.18.0.7', now + 600)]);
    expect((await entries(ins, MAP.banV4)).has('198.18.0.7')).toBe(false);
  });

  it('writes a permanent ban as 0 and lets it win over a timed one', async () => {
    const { enf, pin } = await started();
    const ins = inspector(pin);
    await enf.ban([mkBan('a', '2001:db8::5', Date.now() / 1000 + 60), mkBan('b', '2001:db8::5', null)]);
    expect((await entries(ins, MAP.banV6)).get('2001:db8::5')).toBe(0n);
  });

  it('puts subnet bans in the prefix tries and full-length ones in the exact maps', async () => {
    const { enf, pin } = await started();
    const ins = inspector(pin);
    await enf.ban([mkBan('j', '2001:db8:1:2::/64', null), mkBan('j', '198.18.7.0/24', null), mkBan('j', '198.18.0.9', null)]);
    expect([...(await entries(ins, MAP.cidrV6)).keys()]).toEqual(['2001:db8:1:2::/64']);
    expect([...(await entries(ins, MAP.cidrV4)).keys()]).toEqual(['198.18.7.0/24']);
    expect([...(await entries(ins, MAP.banV4)).keys()]).toEqual(['198.18.0.9']);
    const c = await enf.counters!();
    expect(c.blocklistEntries).toEqual({ ipv4: 2, ipv6: 1 });
  });

  it('reconcile re-adds what the kernel lost, removes what it should not hold, and says how many', async () => {
    const { enf, pin } = await started();
    const ins = inspector(pin);
    const want = [mkBan('j', '198.18.0.1', null), mkBan('j', '198.18.0.2', null), mkBan('j', '2001:db8::/64', null)];
    await enf.ban(want);
    // someone deletes one entry and adds another behind our back
    await ins.remove(MAP.banV4, encodeKeys(MAP.banV4, [parseCidr('198.18.0.2')!]));
    await ins.update(MAP.banV4, encodeKeys(MAP.banV4, [parseCidr('198.18.0.66')!]), encodeValues([0n]));
    const drift = await enf.reconcile!(want);
    expect(drift).toEqual({ missing: 1, stale: 1 });
    expect([...(await entries(ins, MAP.banV4)).keys()].sort()).toEqual(['198.18.0.1', '198.18.0.2']);
    expect(await enf.reconcile!(want)).toEqual({ missing: 0, stale: 0 });
  });

  it('reconcile counts an entry the kernel already let expire while the table still bans it as missing', async () => {
    const { enf, pin } = await started();
    const ins = inspector(pin);
    const clock = new KernelClock(() => addon!.clocks());
    const b = mkBan('j', '198.18.0.3', Date.now() / 1000 + 600);
    await enf.ban([b]);
    await ins.update(MAP.banV4, encodeKeys(MAP.banV4, [parseCidr('198.18.0.3')!]), encodeValues([clock.toKernel(Date.now() / 1000 - 5)]));
    expect(await enf.reconcile!([b])).toEqual({ missing: 1, stale: 0 });
    expect(clock.toEpoch((await entries(ins, MAP.banV4)).get('198.18.0.3')!)).toBeCloseTo(b.expires!, 0);
  });

  it('fills the allow tries from ignoreip plus loopback and replaces them on reconfigure', async () => {
    const { enf, pin } = await started(['198.18.9.0/24', '2001:db8:ffff::1', 'host.example']);
    const ins = inspector(pin);
    expect([...(await entries(ins, MAP.allowV4)).keys()].sort()).toEqual(['127.0.0.0/8', '198.18.9.0/24']);
    expect([...(await entries(ins, MAP.allowV6)).keys()].sort()).toEqual(['2001:db8:ffff::1', '::1']);
    await enf.reconfigure!(ctx(['198.18.10.1']));
    expect([...(await entries(ins, MAP.allowV4)).keys()].sort()).toEqual(['127.0.0.0/8', '198.18.10.1']);
    expect([...(await entries(ins, MAP.allowV6)).keys()]).toEqual(['::1']);
  });

  it('keeps bans in the pinned maps across stop and a new start (daemon restart)', async () => {
    const first = await started();
    await first.enf.ban([mkBan('j', '198.18.0.4', null)]);
    await first.enf.stop();
    const second = await started([], first.pin);
    const ins = inspector(first.pin);
    expect((await entries(ins, MAP.banV4)).has('198.18.0.4')).toBe(true);
    await second.enf.counters!(); // map fill is counted in the background after start; this refreshes it
    expect(second.enf.describe()).toMatchObject({ enforcer: 'xdp', loaded: true, pinPath: first.pin, maps: { aegis_ban_v4: { entries: 1, maxEntries: 4096 } } });
    await second.enf.unban([mkBan('j', '198.18.0.4', null)]);
    expect((await entries(ins, MAP.banV4)).size).toBe(0);
  });

  it('applies 50 000 bans in one call while the event loop keeps running', async () => {
    const { enf } = await started([], undefined, 65536);
    const bans = Array.from({ length: 50_000 }, (_, i) => mkBan('bulk', `198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, null));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await enf.ban(bans);
    clearInterval(timer);
    const c = await enf.counters!();
    expect(c.blocklistEntries?.ipv4).toBe(50_000);
    expect(ticks).toBeGreaterThan(0); // timers fired while the kernel batch ran on the pool
    expect(entryId(parseCidr('198.18.0.1')!)).toBe('4:198.18.0.1/32');
  });
});

describe.skipIf(!avail.ok)('xdp enforcer reconcile against a changed ban table', () => {
  it('removes entries the table dropped and shortens a multi-jail entry to the jails left', async () => {
    const { enf, pin } = await started();
    const ins = inspector(pin);
    const clock = new KernelClock(() => addon!.clocks());
    const now = Math.floor(Date.now() / 1000);
    await enf.ban([mkBan('a', '198.18.0.1', now + 100), mkBan('b', '198.18.0.1', now + 900), mkBan('a', '198.18.0.2', null)]);
    const drift = await enf.reconcile!([mkBan('a', '198.18.0.1', now + 100)]);
    expect(drift).toEqual({ missing: 0, stale: 1 });
    const e = await entries(ins, MAP.banV4);
    expect([...e.keys()]).toEqual(['198.18.0.1']);
    expect(clock.toEpoch(e.get('198.18.0.1')!)).toBeCloseTo(now + 100, 0);
  });
});

describe.skipIf(!avail.ok)('xdp enforcer start failures', () => {
  it.skipIf(spawnSync('bpftool', ['version'], { stdio: 'ignore' }).status !== 0)('refuses pinned maps of another layout in one line that says what to remove', async () => {
    const pin = `/sys/fs/bpf/aegis-enf-${process.pid}-${seq++}`;
    mkdirSync(pin, { recursive: true });
    cleanups.push(() => rmSync(pin, { recursive: true, force: true }));
    execFileSync('bpftool', ['map', 'create', `${pin}/aegis_ban_v4`, 'type', 'hash', 'key', '8', 'value', '8', 'entries', '16', 'name', 'aegis_ban_v4']);
    const enf = createXdpEnforcer({ xdp: settings(pin), interfaces: [] });
    const err = await enf.start(ctx()).then(() => null, (e: unknown) => e as { code?: string; message?: string; hint?: string });
    expect(err?.code).toBe('AEGIS_ERR_BPF_LOAD');
    expect(err?.message).toContain('aegis_ban_v4');
    expect(err?.message).not.toContain('\n');
    expect(err?.hint).toMatch(/remove them under \[xdp\] pin_path/);
  });

  it('names a missing interface and how to fix it', async () => {
    const pin = `/sys/fs/bpf/aegis-enf-${process.pid}-${seq++}`;
    cleanups.push(() => rmSync(pin, { recursive: true, force: true }));
    const enf = createXdpEnforcer({ xdp: settings(pin), interfaces: ['aegis-nope0'] });
    const err = await enf.start(ctx()).then(() => null, (e: unknown) => e as { code?: string; message?: string; hint?: string });
    expect(err?.code).toBe('AEGIS_ERR_BPF_LOAD');
    expect(err?.message).toContain('aegis-nope0');
    expect(err?.hint).toMatch(/--interface/);
    expect(enf.describe()).toMatchObject({ loaded: false });
  });
});
