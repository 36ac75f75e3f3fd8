import { describe, expect, it } from 'vitest';
import { HostMemo } from '../../../src/daemon/host-memo.js';
import { IgnoreList } from '../../../src/bans/ignore.js';
import { historyKey } from '../../../src/bans/manager.js';
import { banKey } from '../../../src/state/store.js';

const ignore = new IgnoreList({ ignoreip: ['198.51.100.0/24'], resolved: [], ignoreself: false, ignorecommand: null }, []);

describe('HostMemo', () => {
  it('parses a host once into its canonical address, ignore verdict, history keys and ban target', () => {
    const memo = new HostMemo('sshd', ignore, { v4: 32, v6: 64 });
    const a = memo.get('::ffff:203.0.113.9');
    expect(a?.addr.text).toBe('203.0.113.9');
    expect(a?.ignored).toBeNull();
    expect(a?.historyKey).toBe(historyKey('sshd', '203.0.113.9'));
    expect(a?.target.keys).toEqual({ ban: banKey('sshd', '203.0.113.9', 32), jailHistory: historyKey('sshd', '203.0.113.9'), allHistory: historyKey('*', '203.0.113.9') });
    expect(a?.target).toBe(a?.target);
    expect(a?.target.cidr.text).toBe('203.0.113.9');
    expect(memo.get('::ffff:203.0.113.9')).toBe(a);
    expect(memo.get('198.51.100.7')?.ignored).toBe('ignoreip');
    expect(memo.get('127.0.0.1')?.ignored).toBe('ignoreip');
    expect(memo.get('2001:DB8::1')?.addr.text).toBe('2001:db8::1');
    // the jail's ban_prefix for IPv6: a ban covers the /64
    expect(memo.get('2001:DB8::1:2:3:4')?.target.cidr.text).toBe('2001:db8::/64');
  });

  it('answers null for what is not an address, and stays bounded under a spray', () => {
    const memo = new HostMemo('api', ignore, { v4: 32, v6: 128 });
    expect(memo.get('not-an-ip')).toBeNull();
    expect(memo.get('1.2.3')).toBeNull();
    for (let i = 0; i < 100_000; i++) memo.get(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    // still right after many clears
    expect(memo.get('10.0.0.1')?.addr.text).toBe('10.0.0.1');
    expect(memo.size).toBeLessThanOrEqual(16_384);
  });
});
