/**
 * The XDP program itself, run by the kernel on crafted frames (BPF_PROG_TEST_RUN through the
 * addon's test-only `_testRun`). Needs root and the built bpf/ + native/; skips with the
 * reason otherwise.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCidr } from '../../../src/net/address.js';
import { AegisError } from '../../../src/errors.js';
import { encodeKeys, encodeValues, KernelClock, MAP } from '../../../src/enforce/xdp/codec.js';
import { OBJECT_PATH, loadAddon, xdpAvailability, type NativeAddon, type NativeProgram } from '../../../src/enforce/xdp/native.js';
import { XDP_DROP, XDP_PASS, arp, udp4, udp6 } from './frames.js';

const avail = xdpAvailability();
if (!avail.ok) console.warn(`skipping XDP program tests: ${avail.reason}`);
const addon = avail.ok ? (loadAddon() as NativeAddon) : null;

const open: Array<{ prog: NativeProgram; pin: string }> = [];
let seq = 0;

function load(rate?: { pps: number; burst: number }): NativeProgram {
  const pin = `/sys/fs/bpf/aegis-unit-${process.pid}-${seq++}`;
  rmSync(pin, { recursive: true, force: true });
  mkdirSync(pin, { recursive: true });
  const prog = new addon!.Program({
    object: OBJECT_PATH,
    pinPath: pin,
    maxEntries: 1024,
    rateEntries: 1024,
    ratePps: rate?.pps ?? 0,
    rateBurst: rate?.burst ?? 0,
  });
  open.push({ prog, pin });
  return prog;
}


afterEach(() => {
  for (const { prog, pin } of open.splice(0)) {
    prog.close();
    rmSync(pin, { recursive: true, force: true });
  }
});

async function ban(prog: NativeProgram, text: string, expiresNs = 0n): Promise<void> {
  const c = parseCidr(text)!;
  const full = c.family === 4 ? 32 : 128;
  const map = c.prefix === full ? (c.family === 4 ? MAP.banV4 : MAP.banV6) : c.family === 4 ? MAP.cidrV4 : MAP.cidrV6;
  await prog.update(map, encodeKeys(map, [c]), encodeValues([expiresNs]));
}

async function allow(prog: NativeProgram, text: string): Promise<void> {
  const c = parseCidr(text)!;
  const map = c.family === 4 ? MAP.allowV4 : MAP.allowV6;
  await prog.update(map, encodeKeys(map, [c]), Buffer.from([1]));
}

function stat(prog: NativeProgram, name: keyof NativeAddon['statSlots']): number {
  return prog.stats()[addon!.statSlots[name]] ?? -1;
}

const run = (prog: NativeProgram, frame: Buffer): number => prog._testRun(frame, 1).retval;

describe.skipIf(!avail.ok)('XDP program (BPF_PROG_TEST_RUN)', () => {
  it('passes an IPv4 source that is not banned and drops it once banned, counting both', async () => {
    const prog = load();
    const f = udp4('198.18.0.2', '198.18.0.1');
    expect(run(prog, f)).toBe(XDP_PASS);
    await ban(prog, '198.18.0.2');
    expect(run(prog, f)).toBe(XDP_DROP);
    expect(run(prog, udp4('198.18.0.3', '198.18.0.1'))).toBe(XDP_PASS);
    expect(stat(prog, 'passV4')).toBe(2);
    expect(stat(prog, 'dropV4')).toBe(1);
    expect(stat(prog, 'dropBlocklist')).toBe(1);
  });

  it('drops a banned IPv6 source and passes its neighbour', async () => {
    const prog = load();
    await ban(prog, '2001:db8::66');
    expect(run(prog, udp6('2001:db8::66', '2001:db8::1'))).toBe(XDP_DROP);
    expect(run(prog, udp6('2001:db8::67', '2001:db8::1'))).toBe(XDP_PASS);
    expect(stat(prog, 'dropV6')).toBe(1);
    expect(stat(prog, 'passV6')).toBe(1);
  });

  it('reads the source behind one 802.1Q tag', async () => {
    const prog = load();
    await ban(prog, '198.18.0.2');
    await ban(prog, '2001:db8::66');
    expect(run(prog, udp4('198.18.0.2', '198.18.0.1', { vlan: 100 }))).toBe(XDP_DROP);
    expect(run(prog, udp6('2001:db8::66', '2001:db8::1', { vlan: 100 }))).toBe(XDP_DROP);
    expect(run(prog, udp4('198.18.0.9', '198.18.0.1', { vlan: 100 }))).toBe(XDP_PASS);
  });

  it('passes ARP and later IPv4 fragments it does not judge, even from a banned address', async () => {
    const prog = load();
    await ban(prog, '198.18.0.2');
    expect(run(prog, arp('198.18.0.2', '198.18.0.1'))).toBe(XDP_PASS);
    expect(run(prog, udp4('198.18.0.2', '198.18.0.1', { fragOffset: 185 }))).toBe(XDP_PASS);
    expect(run(prog, udp4('198.18.0.2', '198.18.0.1').subarray(0, 20))).toBe(XDP_PASS); // truncated IPv4 header
    expect(stat(prog, 'passOther')).toBe(3);
  });

  it('lets an expired ban pass without anyone deleting it, and keeps a future one dropping', async () => {
    const prog = load();
    const clock = new KernelClock(() => addon!.clocks());
    await ban(prog, '198.18.0.2', clock.toKernel(Date.now() / 1000 - 1));
    await ban(prog, '198.18.0.3', clock.toKernel(Date.now() / 1000 + 3600));
    expect(run(prog, udp4('198.18.0.2', '198.18.0.1'))).toBe(XDP_PASS);
    expect(run(prog, udp4('198.18.0.3', '198.18.0.1'))).toBe(XDP_DROP);
  });

  it('never drops an allowed source, even when it is banned exactly or by prefix', async () => {
    const prog = load();
    await allow(prog, '198.18.0.0/24');
    await allow(prog, '2001:db8:1::/48');
    await ban(prog, '198.18.0.2');
    await ban(prog, '198.18.0.0/16');
    await ban(prog, '2001:db8:1::5');
    expect(run(prog, udp4('198.18.0.2', '198.18.0.1'))).toBe(XDP_PASS);
    expect(run(prog, udp4('198.18.1.2', '198.18.0.1'))).toBe(XDP_DROP); // outside the allow /24
    expect(run(prog, udp6('2001:db8:1::5', '2001:db8::1'))).toBe(XDP_PASS);
    expect(stat(prog, 'allowHit')).toBeGreaterThanOrEqual(2);
  });

  it('drops every source inside a banned prefix (reason cidr) and nothing outside it', async () => {
    const prog = load();
    await ban(prog, '198.18.5.0/24');
    await ban(prog, '2001:db8:aa:bb::/64');
    expect(run(prog, udp4('198.18.5.77', '198.18.0.1'))).toBe(XDP_DROP);
    expect(run(prog, udp4('198.18.6.77', '198.18.0.1'))).toBe(XDP_PASS);
    expect(run(prog, udp6('2001:db8:aa:bb::1234', '2001:db8::1'))).toBe(XDP_DROP);
    expect(run(prog, udp6('2001:db8:aa:bc::1234', '2001:db8::1'))).toBe(XDP_PASS);
    expect(stat(prog, 'dropCidr')).toBe(2);
    expect(stat(prog, 'dropBlocklist')).toBe(0);
  });

  it('rate-limits one source past its burst (reason rate_limit) while another passes', () => {
    const prog = load({ pps: 1, burst: 3 });
    const hot = udp4('198.18.0.2', '198.18.0.1');
    const verdicts = Array.from({ length: 6 }, () => run(prog, hot));
    expect(verdicts).toEqual([XDP_PASS, XDP_PASS, XDP_PASS, XDP_DROP, XDP_DROP, XDP_DROP]);
    expect(run(prog, udp6('2001:db8::9', '2001:db8::1'))).toBe(XDP_PASS);
    expect(stat(prog, 'dropRateLimit')).toBe(3);
  });

  it('has the rate limiter off by default', () => {
    const prog = load();
    const hot = udp4('198.18.0.2', '198.18.0.1');
    expect(prog._testRun(hot, 1000).retval).toBe(XDP_PASS);
    expect(stat(prog, 'dropRateLimit')).toBe(0);
  });

  it('reports a full map with its name and size', async () => {
    const prog = load();
    const many = Array.from({ length: 1025 }, (_, i) => parseCidr(`198.18.${i >> 8}.${i & 255}`)!);
    const err = await prog
      .update(MAP.banV4, encodeKeys(MAP.banV4, many), encodeValues(many.map(() => 0n)))
      .then(() => null, (e: unknown) => e as Error & { mapFull?: boolean });
    expect(err?.mapFull).toBe(true);
    expect(err?.message).toContain('aegis_ban_v4 is full (max_entries 1024)');
  });

  it('reuses pinned maps: a second load sees the first one\'s bans', async () => {
    const prog = load();
    await ban(prog, '198.18.0.2');
    const pin = open[0]!.pin;
    const again = new addon!.Program({ object: OBJECT_PATH, pinPath: pin, maxEntries: 1024, rateEntries: 1024, ratePps: 0, rateBurst: 0 });
    try {
      expect(again.adopted).toContain(MAP.banV4);
      expect(run(again, udp4('198.18.0.2', '198.18.0.1'))).toBe(XDP_DROP);
    } finally {
      again.close();
    }
  });
});

it('xdpAvailability explains itself when XDP cannot be used', () => {
  const a = xdpAvailability();
  if (a.ok) expect(loadAddon()).not.toBeInstanceOf(AegisError);
  else expect(a.reason.length).toBeGreaterThan(10);
});
