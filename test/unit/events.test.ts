import { afterEach, describe, expect, it } from 'vitest';
import { openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics/catalog.js';
import { Events, type BanEventData } from '../../src/events.js';
import { tempDir } from '../helpers/tmp.js';

let cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});

const base: BanEventData = {
  jail: 'sshd',
  ip: '198.51.100.7',
  network: '198.51.100.7',
  prefix: 32,
  family: 4,
  since: 1_700_000_000,
  expires: 1_700_000_600,
  bantime: 600,
  banCount: 1,
  source: 'auto',
  failures: 5,
};

/** what the lines said before they were rendered by hand: pino's own call, with these fields */
function pinoBan(log: ReturnType<typeof createLogger>, b: BanEventData, latencySeconds: number | null): void {
  const target = b.prefix === (b.family === 4 ? 32 : 128) ? b.ip : `${b.network}/${b.prefix}`;
  log.warn(
    {
      event: 'ban',
      jail: b.jail,
      ip: b.ip,
      target,
      reason: b.source === 'auto' ? 'maxretry' : 'manual',
      failures: b.failures,
      count: b.banCount,
      bantime: b.bantime,
      expires: b.expires === null ? null : new Date(b.expires * 1000).toISOString(),
      latency_ms: latencySeconds === null ? undefined : Math.round(latencySeconds * 1e4) / 10,
    },
    `[${b.jail}] Ban ${target}`,
  );
}

function pinoUnban(log: ReturnType<typeof createLogger>, b: BanEventData, reason: string): void {
  const target = b.prefix === (b.family === 4 ? 32 : 128) ? b.ip : `${b.network}/${b.prefix}`;
  log.info(
    { event: 'unban', jail: b.jail, ip: b.ip, target, reason, count: b.banCount, expires: b.expires === null ? null : new Date(b.expires * 1000).toISOString() },
    `[${b.jail}] Unban ${target}`,
  );
}

describe('events: ban and unban audit lines', () => {
  it('are the bytes pino writes for the same fields, odd jail names, prefixes and permanent bans included', () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const bans: BanEventData[] = [
      base,
      // IPv6 address, a prefix ban, a jail name JSON must escape
      { ...base, jail: 'api "v2" \\ é\t', ip: '2001:db8::7', network: '2001:db8::', prefix: 64, family: 6, banCount: 3, bantime: 2400 },
      // permanent, manual: no failures, no latency
      { ...base, ip: '203.0.113.9', network: '203.0.113.9', expires: null, bantime: -1, source: 'manual', failures: undefined },
      { ...base, ip: '203.0.113.0', network: '203.0.113.0', prefix: 24, failures: 12 },
    ];
    const latencies = [0.00432, 1.5, null, 0];
    const mine = join(dir, 'mine.log');
    const theirs = join(dir, 'pino.log');
    const log = createLogger({ level: 'info', destination: openSync(mine, 'w'), journal: false });
    const events = new Events(log, createMetrics(new Registry(), { version: 'test' }));
    events.bannedAll(bans, latencies);
    events.unbannedAll(bans, 'expired');
    const ref = createLogger({ level: 'info', destination: openSync(theirs, 'w'), journal: false });
    bans.forEach((b, i) => pinoBan(ref, b, latencies[i] ?? null));
    for (const b of bans) pinoUnban(ref, b, 'expired');
    const noTime = (text: string) => text.replace(/"time":"[^"]+"/g, '"time":"T"').trim().split('\n');
    const got = noTime(readFileSync(mine, 'utf8'));
    expect(got).toHaveLength(8);
    expect(got).toEqual(noTime(readFileSync(theirs, 'utf8')));
    expect(JSON.parse(got[1]!)).toMatchObject({ jail: 'api "v2" \\ é\t', target: '2001:db8::/64', latency_ms: 1500 });
  });

  it('count each ban once per label set and observe each known latency', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const registry = new Registry();
    const events = new Events(createLogger({ level: 'info', destination: openSync(join(dir, 'x.log'), 'w'), journal: false }), createMetrics(registry, { version: 'test' }));
    events.bannedAll([base, { ...base, ip: '198.51.100.8' }, { ...base, source: 'manual' }], [0.002, null, 0.002]);
    const text = await registry.metrics();
    expect(text).toMatch(/aegis_bans_total\{jail="sshd",source="auto"\} 2/);
    expect(text).toMatch(/aegis_bans_total\{jail="sshd",source="manual"\} 1/);
    expect(text).toMatch(/aegis_ban_latency_seconds_count 2/);
  });
});
