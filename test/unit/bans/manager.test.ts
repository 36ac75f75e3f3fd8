import { afterEach, describe, expect, it } from 'vitest';
import { BanManager } from '../../../src/bans/manager.js';
import { StateStore } from '../../../src/state/store.js';
import { createLogEnforcer } from '../../../src/enforce/log.js';
import type { Enforcer, EnforcedBan } from '../../../src/enforce/enforcer.js';
import { parseCidr } from '../../../src/net/address.js';
import { tempDir } from '../../helpers/tmp.js';
import { testEvents } from '../../helpers/events.js';

let cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** the log enforcer, recording what it was asked to do */
function recordingEnforcer(): Enforcer & { applied: EnforcedBan[]; removed: EnforcedBan[] } {
  const inner = createLogEnforcer();
  const applied: EnforcedBan[] = [];
  const removed: EnforcedBan[] = [];
  return {
    ...inner,
    applied,
    removed,
    async ban(b) {
      applied.push(...b);
      await inner.ban(b);
    },
    async unban(b) {
      removed.push(...b);
      await inner.unban(b);
    },
  };
}

async function setup(now: () => number) {
  const { dir, cleanup } = tempDir();
  const store = await StateStore.open(dir);
  const enforcer = recordingEnforcer();
  const t = testEvents(dir);
  const manager = new BanManager({ store, enforcer, events: t.events, now });
  cleanups.push(cleanup, () => manager.close());
  return { dir, store, enforcer, manager, ...t };
}

const decision = (ip: string, bantime = 600) => ({
  jail: 'sshd',
  ip,
  cidr: parseCidr(ip)!,
  bantime,
  source: 'auto' as const,
  fields: {},
  readAt: Date.now(),
});

describe('ban manager', () => {
  it('a ban is enforced, durable and logged with jail, ip, count and expiry', async () => {
    const s = await setup(() => 1_000);
    const [b] = await s.manager.ban([decision('203.0.113.7')]);
    expect(b?.expires).toBe(1_600);
    expect(s.enforcer.applied.map((e) => e.network)).toEqual(['203.0.113.7']);
    const line = s.logLines().find((l) => l.event === 'ban');
    expect(line).toMatchObject({ jail: 'sshd', ip: '203.0.113.7', count: 1 });
    expect(line?.expires).toBe(new Date(1_600_000).toISOString());
    const again = await StateStore.open(s.dir);
    expect(again.bans()).toHaveLength(1);
  });

  it('an address already banned in a jail is not banned twice', async () => {
    const s = await setup(() => 1_000);
    await s.manager.ban([decision('203.0.113.7')]);
    expect(await s.manager.ban([decision('203.0.113.7')])).toEqual([]);
    expect(s.enforcer.applied).toHaveLength(1);
  });

  it('bans expire on time and are removed from the enforcer', async () => {
    let now = Date.now() / 1000;
    const s = await setup(() => now);
    await s.manager.ban([decision('203.0.113.8', 1)]);
    now += 1.2;
    await new Promise((r) => setTimeout(r, 1300));
    expect(s.manager.list()).toEqual([]);
    expect(s.enforcer.removed.map((e) => e.network)).toEqual(['203.0.113.8']);
    expect(s.logLines().some((l) => l.event === 'unban' && l.reason === 'expired')).toBe(true);
  });

  it('restore re-applies live bans with their remaining time and drops expired ones', async () => {
    const s = await setup(() => 1_000);
    await s.manager.ban([decision('203.0.113.1', 100), decision('203.0.113.2', 1000)]);
    const store2 = await StateStore.open(s.dir);
    const enforcer2 = recordingEnforcer();
    const m2 = new BanManager({ store: store2, enforcer: enforcer2, events: s.events, now: () => 1_500 });
    cleanups.push(() => m2.close());
    expect(await m2.restore()).toEqual({ restored: 1, expired: 1 });
    expect(enforcer2.applied.map((e) => [e.network, e.expires])).toEqual([['203.0.113.2', 2_000]]);
  });

  it('ban count and increment come from the history', async () => {
    let now = 1_000;
    const s = await setup(() => now);
    const inc = { bantimeFor: (prior: number) => 600 * 2 ** prior };
    await s.manager.ban([{ ...decision('203.0.113.9'), ...inc }]);
    await s.manager.unban(() => true, 'manual');
    now = 2_000;
    const [second] = await s.manager.ban([{ ...decision('203.0.113.9'), ...inc }]);
    expect(second?.banCount).toBe(2);
    expect(second?.bantime).toBe(1200);
  });
});
