/**
 * The nftables enforcer against the real `nft`, inside a network namespace this test creates,
 * so the host's ruleset is never touched. nft runs through a wrapper that counts processes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedConfig } from '../../../src/config/types.js';
import type { EnforcedBan, Enforcer, EnforcerContext } from '../../../src/enforce/enforcer.js';
import { createNftablesEnforcer } from '../../../src/enforce/nftables.js';

const NS = `aegis-nft-${process.pid}`;
const isRoot = process.getuid?.() === 0;
const hasNft = spawnSync('nft', ['--version']).status === 0;
const hasIp = spawnSync('ip', ['-V']).status === 0;
const can = isRoot && hasNft && hasIp;
if (!can) console.log(`skipped nftables tests: ${!isRoot ? 'not root' : !hasNft ? 'nft missing (apt-get install nftables)' : 'ip missing (iproute2)'}`);

const dir = mkdtempSync(join(tmpdir(), `aegis-nft-${process.pid}-`));
const counter = join(dir, 'count');
const wrapper = ['sh', '-c', `echo x >> ${counter}; exec ip netns exec ${NS} nft "$@"`, 'nft'];
const invocations = (): number => (existsSync(counter) ? readFileSync(counter, 'utf8').split('\n').filter(Boolean).length : 0);

beforeAll(() => {
  if (can) execFileSync('ip', ['netns', 'add', NS]);
});
afterAll(() => {
  if (can) spawnSync('ip', ['netns', 'del', NS]);
  rmSync(dir, { recursive: true, force: true });
});

const nft = (...args: string[]): string => execFileSync('ip', ['netns', 'exec', NS, 'nft', ...args], { encoding: 'utf8', maxBuffer: 256 << 20 });
const nftIn = (script: string): void => void execFileSync('ip', ['netns', 'exec', NS, 'nft', '-f', '-'], { input: script });

interface Elem {
  text: string;
  timeout: number | null;
  expires: number | null;
}
function elements(set: string): Elem[] {
  const doc = JSON.parse(nft('-j', 'list', 'set', 'inet', 'aegis', set)) as { nftables: Array<{ set?: { elem?: unknown[] } }> };
  const out: Elem[] = [];
  for (const item of doc.nftables) {
    for (const raw of item.set?.elem ?? []) {
      let val: unknown = raw;
      let timeout: number | null = null;
      let expires: number | null = null;
      if (typeof raw === 'object' && raw !== null && 'elem' in raw) {
        const e = (raw as { elem: { val: unknown; timeout?: number; expires?: number } }).elem;
        val = e.val;
        timeout = e.timeout ?? null;
        expires = e.expires ?? null;
      }
      const text = typeof val === 'string' ? val : `${(val as { prefix: { addr: string; len: number } }).prefix.addr}/${(val as { prefix: { len: number } }).prefix.len}`;
      out.push({ text, timeout, expires });
    }
  }
  return out.sort((a, b) => a.text.localeCompare(b.text));
}
const texts = (set: string): string[] => elements(set).map((e) => e.text);

function ctx(allow: string[] = ['127.0.0.0/8', '::1', '198.18.9.0/24']): EnforcerContext {
  const config: ResolvedConfig = {
    configDir: dir,
    daemon: { socket: '', socketMode: 0o600, socketGroup: null, stateDir: '', logLevel: 'info', enforcer: 'nftables', interfaces: [], dryRun: false },
    metrics: { enabled: false, bind: '127.0.0.1', port: 0, tokenFile: null, allow: [], tlsCert: null, tlsKey: null, rateLimit: null },
    xdp: { pinPath: '', maxEntries: 1, keepAttached: false, mode: 'auto', rateLimit: { enabled: false, pps: 0, burst: 0 } },
    jails: [],
  };
  return { config, jails: [], allow, log: pino({ level: 'silent' }) };
}

const now = (): number => Math.floor(Date.now() / 1000);
function ban(jail: string, ip: string, seconds: number | null, prefix?: number): EnforcedBan {
  const v6 = ip.includes(':');
  const p = prefix ?? (v6 ? 128 : 32);
  return { jail, network: ip, prefix: p, family: v6 ? 6 : 4, ip, since: now(), expires: seconds === null ? null : now() + seconds, bantime: seconds ?? -1, banCount: 1, fields: {} };
}

let e: Enforcer | null = null;
afterEach(async () => {
  await e?.stop().catch(() => undefined);
  e = null;
  spawnSync('ip', ['netns', 'exec', NS, 'nft', 'delete', 'table', 'inet', 'aegis']);
  rmSync(counter, { force: true });
});

async function started(): Promise<Enforcer> {
  e = createNftablesEnforcer({ nft: wrapper });
  await e.start(ctx());
  return e;
}

describe.skipIf(!can)('nftables enforcer', () => {
  it('creates the table: address and prefix ban sets with timeouts, allow sets, a prerouting chain, allow first', async () => {
    await started();
    const ruleset = nft('list', 'table', 'inet', 'aegis');
    expect(ruleset).toMatch(/set ban4 \{\s*type ipv4_addr\s*flags timeout/);
    expect(ruleset).toMatch(/set ban6 \{\s*type ipv6_addr\s*flags timeout/);
    expect(ruleset).toMatch(/set ban4net \{\s*type ipv4_addr\s*flags interval,timeout/);
    expect(ruleset).toMatch(/set ban6net \{\s*type ipv6_addr\s*flags interval,timeout/);
    expect(ruleset).toMatch(/type filter hook prerouting priority (raw|-300); policy accept;/);
    const rules = ruleset.slice(ruleset.indexOf('chain filter'));
    expect(rules.indexOf('@allow4 accept')).toBeLessThan(rules.indexOf('@ban4'));
    expect(rules.indexOf('@allow6 accept')).toBeLessThan(rules.indexOf('@ban6'));
    expect(rules.indexOf('@allow4 accept')).toBeLessThan(rules.indexOf('@ban4net'));
    expect(texts('allow4')).toEqual(['127.0.0.0/8', '198.18.9.0/24']);
    expect(texts('allow6')).toEqual(['::1']);
  });

  it('applies a burst of IPv4 and IPv6 bans in one nft process, with per-element timeouts', async () => {
    const en = await started();
    const before = invocations();
    const burst = [
      ...Array.from({ length: 60 }, (_, i) => ban('sshd', `198.18.${Math.floor(i / 10)}.${(i % 10) + 1}`, 600)),
      ...Array.from({ length: 40 }, (_, i) => ban('sshd', `2001:db8::${(i + 1).toString(16)}`, 3600)),
      ban('sshd', '198.18.7.7', null),
    ];
    await en.ban(burst);
    expect(invocations() - before).toBe(1);
    const v4 = elements('ban4');
    const v6 = elements('ban6');
    expect(v4).toHaveLength(61);
    expect(v6).toHaveLength(40);
    const one = v4.find((x) => x.text === '198.18.0.1')!;
    expect(one.timeout).toBeGreaterThanOrEqual(599);
    expect(one.timeout).toBeLessThanOrEqual(601);
    expect(v6.find((x) => x.text === '2001:db8::28')!.timeout).toBeGreaterThanOrEqual(3599);
    expect(v4.find((x) => x.text === '198.18.7.7')!.timeout).toBeNull();
    // an unban burst is one process too
    const mid = invocations();
    await en.unban(burst.slice(0, 30));
    expect(invocations() - mid).toBe(1);
    expect(elements('ban4')).toHaveLength(31);
  });

  it('keeps the longest expiry when two jails ban the same address, and the element while any holds it', async () => {
    const en = await started();
    await en.ban([ban('sshd', '198.18.0.5', 100), ban('web', '198.18.0.5', 5000)]);
    expect(elements('ban4')[0]!.timeout).toBeGreaterThanOrEqual(4999);
    await en.unban([ban('web', '198.18.0.5', 5000)]);
    const left = elements('ban4');
    expect(left.map((x) => x.text)).toEqual(['198.18.0.5']);
    expect(left[0]!.timeout).toBeLessThanOrEqual(101);
    await en.unban([ban('sshd', '198.18.0.5', 100)]);
    expect(texts('ban4')).toEqual([]);
  });

  it('stores prefix bans as interval elements beside address bans inside them', async () => {
    const en = await started();
    await en.ban([ban('sshd', '198.18.4.9', 600)]);
    await en.ban([ban('manual', '198.18.4.0', 300, 24), ban('sshd', '2001:db8:1::', 600, 64)]);
    expect(texts('ban4net')).toEqual(['198.18.4.0/24']);
    expect(texts('ban6net')).toEqual(['2001:db8:1::/64']);
    expect(elements('ban4net')[0]!.timeout).toBeGreaterThanOrEqual(299);
    expect(texts('ban4')).toEqual(['198.18.4.9']);
    await en.unban([ban('manual', '198.18.4.0', 300, 24)]);
    expect(texts('ban4net')).toEqual([]);
    expect(texts('ban4')).toEqual(['198.18.4.9']);
  });

  it('holds back a prefix inside a banned prefix and puts it in when the outer one is lifted', async () => {
    const en = await started();
    await en.ban([ban('a', '198.18.0.0', 600, 16)]);
    await en.ban([ban('b', '198.18.5.0', 900, 24)]);
    expect(texts('ban4net')).toEqual(['198.18.0.0/16']);
    await en.unban([ban('a', '198.18.0.0', 600, 16)]);
    expect(texts('ban4net')).toEqual(['198.18.5.0/24']);
    expect(elements('ban4net')[0]!.timeout).toBeGreaterThanOrEqual(899);
    // and the other way round: a wider ban replaces the narrower one in one transaction
    await en.ban([ban('a', '198.18.0.0', 600, 15)]);
    expect(texts('ban4net')).toEqual(['198.18.0.0/15']);
    expect(en.describe()).toMatchObject({ repairs: 0 });
  });

  it('applies and lifts 20 000 address bans in one process each, in seconds', async () => {
    const en = await started();
    const many = Array.from({ length: 20_000 }, (_, i) => ban('spray', `198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, 600));
    const before = invocations();
    let t = Date.now();
    await en.ban(many);
    const banMs = Date.now() - t;
    expect(elements('ban4')).toHaveLength(20_000);
    t = Date.now();
    await en.unban(many);
    const unbanMs = Date.now() - t;
    expect(invocations() - before).toBe(2);
    expect(texts('ban4')).toEqual([]);
    console.log(`nftables: 20000 bans in ${banMs} ms, 20000 unbans in ${unbanMs} ms`);
    expect(banMs + unbanMs).toBeLessThan(10_000);
  });

  it('unbans an element the kernel already expired without failing the batch', async () => {
    const en = await started();
    await en.ban([ban('sshd', '198.18.0.60', 1), ban('sshd', '198.18.0.61', 600)]);
    await new Promise((r) => setTimeout(r, 2200));
    expect(texts('ban4')).toEqual(['198.18.0.61']);
    await en.unban([ban('sshd', '198.18.0.60', 1), ban('sshd', '198.18.0.61', 600)]);
    expect(texts('ban4')).toEqual([]);
    expect(en.describe()).toMatchObject({ repairs: 0 });
  });

  it('reconcile re-adds a deleted element and removes a stale one', async () => {
    const en = await started();
    const desired = [ban('sshd', '198.18.0.70', 600), ban('sshd', '198.18.0.71', 600), ban('sshd', '2001:db8::70', 600)];
    await en.ban(desired);
    nftIn('delete element inet aegis ban4 { 198.18.0.70 }\nadd element inet aegis ban4 { 198.18.0.99 timeout 600s }\n');
    const report = await en.reconcile!(desired);
    expect(report).toEqual({ missing: 1, stale: 1 });
    expect(texts('ban4')).toEqual(['198.18.0.70', '198.18.0.71']);
    expect(elements('ban4')[0]!.timeout).toBeGreaterThanOrEqual(598);
    expect(await en.reconcile!(desired)).toEqual({ missing: 0, stale: 0 });
  });

  it('reconcile rebuilds the whole table after `nft flush ruleset`', async () => {
    const en = await started();
    const desired = [ban('sshd', '198.18.0.80', 600)];
    await en.ban(desired);
    nft('delete', 'table', 'inet', 'aegis');
    expect(await en.reconcile!(desired)).toEqual({ missing: 1, stale: 0 });
    expect(texts('ban4')).toEqual(['198.18.0.80']);
    expect(nft('list', 'chain', 'inet', 'aegis', 'filter')).toContain('@ban4');
  });

  it('adopts existing ban elements on restart and reports drops', async () => {
    const en = await started();
    await en.ban([ban('sshd', '198.18.0.90', 600)]);
    e = createNftablesEnforcer({ nft: wrapper });
    await e.start(ctx());
    expect(texts('ban4')).toEqual(['198.18.0.90']);
    expect(e.describe()).toMatchObject({ elements: { ipv4: 1, ipv6: 0 } });
    expect(await e.counters!()).toMatchObject({ blocklistEntries: { ipv4: 1, ipv6: 0 }, drops: [{ reason: 'blocklist', value: 0 }] });
  });

  it('stop deletes the table', async () => {
    const en = await started();
    await en.ban([ban('sshd', '198.18.0.100', 600)]);
    await en.stop();
    e = null;
    const r = spawnSync('ip', ['netns', 'exec', NS, 'nft', 'list', 'table', 'inet', 'aegis'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
  });
});
void writeFileSync;
