/** Pure parts of the XDP enforcer: key layouts, address fast path, clock mapping, holder table. */
import { describe, expect, it } from 'vitest';
import type { EnforcedBan } from '../../../src/enforce/enforcer.js';
import { KernelClock, MAP, dottedToU32, encodeExpiries, encodeTargets, rawEntryKey, readValueNs, targetOfBan } from '../../../src/enforce/xdp/codec.js';
import { HolderTable, longest } from '../../../src/enforce/xdp/holders.js';

function ban(jail: string, network: string, prefix: number, expires: number | null): EnforcedBan {
  return { jail, network, prefix, family: network.includes(':') ? 6 : 4, ip: network, since: 0, expires, bantime: 60, banCount: 1, fields: {} };
}

describe('dottedToU32', () => {
  it('reads canonical dotted quads and refuses everything else', () => {
    expect(dottedToU32('198.51.100.7')).toBe(0xc6336407);
    expect(dottedToU32('255.255.255.255')).toBe(0xffffffff);
    expect(dottedToU32('0.0.0.0')).toBe(0);
    for (const bad of ['1.2.3', '1.2.3.4.5', '01.2.3.4', '256.1.1.1', '1..2.3', '1.2.3.4 ', 'a.b.c.d', '', '1.2.3.']) expect(dottedToU32(bad)).toBe(-1);
  });
});

describe('targets and keys', () => {
  it('sends full-length prefixes to the exact maps and shorter ones to the tries, host bits cleared', () => {
    const t = targetOfBan(ban('j', '198.51.100.77', 24, null))!;
    expect(t.prefix).toBe(24);
    expect(encodeTargets(MAP.cidrV4, [t])).toEqual(Buffer.from([24, 0, 0, 0, 198, 51, 100, 0]));
    const e = targetOfBan(ban('j', '198.51.100.77', 32, null))!;
    expect(encodeTargets(MAP.banV4, [e])).toEqual(Buffer.from([198, 51, 100, 77]));
    const v6 = targetOfBan(ban('j', '2001:db8::1', 128, null))!;
    expect(encodeTargets(MAP.banV6, [v6]).toString('hex')).toBe('20010db8000000000000000000000001');
  });

  it('gives a dumped key the same identity as the ban it came from', () => {
    for (const [map, net, prefix] of [[MAP.banV4, '198.51.100.7', 32], [MAP.cidrV4, '198.51.0.0', 16], [MAP.banV6, '2001:db8::7', 128], [MAP.cidrV6, '2001:db8:1:2::', 64]] as const) {
      const t = targetOfBan(ban('j', net, prefix, null))!;
      expect(rawEntryKey(map, encodeTargets(map, [t]), 0)).toBe(t.key);
    }
  });

  it('maps IPv4-mapped IPv6 to the IPv4 entry', () => {
    const t = targetOfBan({ network: '::ffff:198.51.100.7', prefix: 128, family: 6 });
    expect(t?.family).toBe(4);
  });
});

describe('KernelClock', () => {
  it('maps epoch seconds onto boot-time ns with one reading, permanent as 0, past as 1', () => {
    const boot = 5_000_000_000_000n; // 5000 s after boot
    const real = 1_800_000_000_000_000_000n; // epoch ns
    const clock = new KernelClock(() => [boot, real]);
    expect(clock.toKernel(null)).toBe(0n);
    expect(clock.toKernel(1_800_000_060)).toBe(boot + 60_000_000_000n);
    expect(clock.toKernel(1_000)).toBe(1n);
    expect(clock.toEpoch(boot + 60_000_000_000n)).toBe(1_800_000_060);
    const buf = encodeExpiries(clock, [1_800_000_060.5, null]);
    expect(readValueNs(buf, 0)).toBe(Number(boot) + 60.5e9);
    expect(readValueNs(buf, 1)).toBe(0);
  });
});

describe('HolderTable', () => {
  it('keeps the longest expiry over jails and lets go of the key with the last jail', () => {
    const t = new HolderTable();
    t.hold(ban('a', '198.51.100.7', 32, 100));
    t.hold(ban('b', '198.51.100.7', 32, 300));
    const h = t.hold(ban('c', '198.51.100.7', 32, 200))!.holder;
    expect(t.size).toBe(1);
    expect(longest(h)).toBe(300);
    expect(t.release(ban('b', '198.51.100.7', 32, 300)).kind).toBe('changed');
    expect(longest(h)).toBe(200);
    expect(t.release(ban('a', '198.51.100.7', 32, 100)).kind).toBe('unchanged');
    expect(t.release(ban('c', '198.51.100.7', 32, 200)).kind).toBe('removed');
    expect(t.size).toBe(0);
    expect(t.release(ban('c', '198.51.100.7', 32, 200)).kind).toBe('unknown');
  });

  it('treats a permanent holder as the longest', () => {
    const t = new HolderTable();
    t.hold(ban('a', '2001:db8::1', 128, 100));
    const h = t.hold(ban('b', '2001:db8::1', 128, null))!.holder;
    expect(longest(h)).toBeNull();
  });

  it('reconciles in place: jails replaced on first sighting, entries not seen swept', () => {
    const t = new HolderTable();
    t.hold(ban('a', '198.51.100.7', 32, 100));
    t.hold(ban('b', '198.51.100.7', 32, 900));
    t.hold(ban('a', '198.51.100.8', 32, 100));
    const h = t.holdAt(ban('a', '198.51.100.7', 32, 150), 42)!;
    expect(longest(h)).toBe(150); // jail b is gone from the table
    expect(t.sweep(42).map((x) => x.v4)).toEqual([0xc6336408]);
    expect(t.size).toBe(1);
  });
});

describe('hexIpv6ToBytes', () => {
  it('agrees with the general parser on plain IPv6 text and declines what it does not handle', async () => {
    const { parseAddress } = await import('../../../src/net/address.js');
    const { hexIpv6ToBytes } = await import('../../../src/enforce/xdp/codec.js');
    for (const t of ['2001:db8::1', '::1', '::', '2001:db8:0:1::', 'fe80::1:2:3:4', '2001:db8:1:2:3:4:5:6', 'ABCD::ef', '1::2:3:4:5:6:7']) {
      expect(Array.from(hexIpv6ToBytes(t)!), t).toEqual(Array.from(parseAddress(t)!.bytes));
    }
    for (const t of ['::ffff:198.51.100.1', '::ffff:c633:6401', '1:::2', '1::2::3', '12345::', 'g::1', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', 'fe80::1%eth0', '']) {
      expect(hexIpv6ToBytes(t), t).toBeNull();
    }
  });

  it('gives fast-path and general-path bans of one prefix the same key', () => {
    const fast = targetOfBan({ network: '2001:db8:1:2::', prefix: 64, family: 6 })!;
    const slow = targetOfBan({ network: '2001:0db8:0001:0002:0000:0000:0000:0000', prefix: 64 })!;
    expect(fast.key).toBe(slow.key);
    expect(targetOfBan({ network: '2001:db8:1:2::ff', prefix: 64, family: 6 })!.key).toBe(fast.key);
  });
});

describe('hexIpv6ToBytes against the general parser (seeded random addresses)', () => {
  it('matches parseAddress on 5 000 generated IPv6 texts, compressed and not', async () => {
    const { parseAddress, bytesToText } = await import('../../../src/net/address.js');
    const { hexIpv6ToBytes } = await import('../../../src/enforce/xdp/codec.js');
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let t = 0; t < 5000; t++) {
      const bytes = new Uint8Array(16);
      for (let i = 0; i < 8; i++) {
        const zero = rnd(3) === 0; // plenty of zero runs, so '::' appears in varied places
        const v = zero ? 0 : rnd(0x10000);
        bytes[i * 2] = v >> 8;
        bytes[i * 2 + 1] = v & 255;
      }
      const canonical = bytesToText(bytes, 6);
      const full = Array.from({ length: 8 }, (_, i) => ((bytes[i * 2]! << 8) | bytes[i * 2 + 1]!).toString(16)).join(':');
      for (const text of [canonical, full]) {
        const ref = parseAddress(text);
        const got = hexIpv6ToBytes(text);
        if (ref === null || ref.family === 4) expect(got, text).toBeNull();
        else expect(Array.from(got ?? []), text).toEqual(Array.from(ref.bytes));
      }
    }
  });
});
