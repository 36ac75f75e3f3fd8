import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync } from 'node:fs';
import { hasDaemon, startAegis, waitFor, type AegisInstance } from '../unit/metrics/harness.js';

/**
 * No label carries an IP: after 100 000 distinct source addresses went through the daemon
 * (failures from log lines, some of them reaching bans), the set of series in /metrics is the
 * same as before; only values moved.
 */
const why = hasDaemon ? '' : 'dist/cli/aegisd.js not built';
if (why) console.log(`skipping 63-ip-spray: ${why}`);

function series(body: string): string[] {
  return body
    .split('\n')
    .filter((l) => l.length > 0 && !l.startsWith('#'))
    .map((l) => l.slice(0, l.lastIndexOf(' ')))
    // Node's own handle/resource gauges and GC kinds come and go with activity.
    .filter((s) => !s.startsWith('nodejs_active') && !s.startsWith('nodejs_gc'))
    .sort();
}

function value(body: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(body);
  return m ? Number(m[1]) : NaN;
}

describe.skipIf(why !== '')('metrics series under an IP spray', () => {
  let aegis: AegisInstance;
  beforeAll(async () => {
    aegis = await startAegis({ maxretry: 2 });
  });
  afterAll(async () => {
    await aegis?.stop();
  });

  it('keeps the series set unchanged after 100 000 distinct IPs', async () => {
    const now = Math.floor(Date.now() / 1000);
    // Warm up: one failure and one ban so every series that can exist for jail x exists.
    aegis.append('x', [0, 1].map(() => JSON.stringify({ time: now, event: 'auth.login.failed', ip: '198.18.200.1' })));
    await waitFor('warm-up ban', async () => aegis.ctl(['banned', '198.18.200.1']).status === 0, 20_000);
    const before = await aegis.scrape();
    const bansBefore = value(before.body, 'aegis_bans_total{jail="x",source="auto"}');

    const N = 100_000;
    const chunk: string[] = [];
    for (let i = 0; i < N; i++) {
      // 198.18.0.0/15 (v4) and 2001:db8::/32 (v6); every 50th address fails twice and is banned.
      const ip = i % 2 === 0 ? `198.${18 + ((i >> 16) & 1)}.${(i >> 8) & 255}.${i & 255}` : `2001:db8::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`;
      chunk.push(JSON.stringify({ time: now, event: 'auth.login.failed', ip, user: `user${i}`, path: `/p/${i}` }));
      if (i % 50 === 0) chunk.push(chunk[chunk.length - 1] as string);
      if (chunk.length >= 10_000) appendFileSync(aegis.logPath('x'), `${chunk.splice(0).join('\n')}\n`);
    }
    if (chunk.length > 0) appendFileSync(aegis.logPath('x'), `${chunk.join('\n')}\n`);
    const expectedLines = N + N / 50;
    const after = await waitFor('the daemon to read the spray', async () => {
      const s = await aegis.scrape();
      return value(s.body, 'aegis_log_lines_total{jail="x"}') >= expectedLines + 2 ? s : undefined;
    }, 90_000, 500);
    expect(series(after.body)).toEqual(series(before.body));
    expect(value(after.body, 'aegis_bans_total{jail="x",source="auto"}')).toBeGreaterThan(bansBefore);
    expect(after.body).not.toMatch(/198\.18\.|2001:db8|user\d|\/p\//);
  });
});
