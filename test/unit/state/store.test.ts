import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StateStore, banKey, type StoredBan } from '../../../src/state/store.js';
import { tempDir } from '../../helpers/tmp.js';

const ban = (ip: string, expires: number | null = 2_000_000_000): StoredBan => ({
  jail: 'sshd',
  ip,
  network: ip,
  prefix: 32,
  family: 4,
  since: 1_700_000_000,
  expires,
  bantime: 600,
  banCount: 1,
  source: 'auto',
  fields: {},
});

let cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});

describe('state store', () => {
  it('compaction keeps the event loop free and loses nothing changed while it runs', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const s = await StateStore.open(dir);
    const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    // ~25 MB of journal: past the compaction threshold, so this flush compacts
    for (let i = 0; i < 120_000; i++) s.putBan(ban(ip(i)));
    const compacting = s.flush();
    let ticks = 0;
    let changedWhileCompacting = false;
    let settled = false;
    void compacting.then(() => (settled = true));
    // the snapshot's temporary file exists only while it is being written: seeing it from a
    // turn of the event loop proves the loop was free then; change the state at that moment
    while (!settled) {
      await new Promise((r) => setImmediate(r));
      ticks++;
      if (!changedWhileCompacting && existsSync(join(dir, 'state.json.tmp'))) {
        s.putBan(ban('198.51.100.77'));
        s.deleteBan('sshd', ip(5), 32);
        changedWhileCompacting = true;
      }
    }
    await compacting;
    expect(changedWhileCompacting).toBe(true);
    await s.flush();
    // kill -9 now: the new snapshot plus what was journaled after it
    const again = await StateStore.open(dir);
    const ips = new Set(again.bans().map((b) => b.ip));
    expect(ips.size).toBe(120_000);
    expect(ips.has('198.51.100.77')).toBe(true);
    expect(ips.has(ip(5))).toBe(false);
    expect(ips.has(ip(119_999))).toBe(true);
  });

  it('a flushed ban survives a crash (no close): the journal is replayed on open', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const s = await StateStore.open(dir);
    s.putBan(ban('198.51.100.1'));
    s.setFile({ path: '/var/log/x.log', dev: 1, ino: 2, firstLineHash: 'h', offset: 1234 });
    await s.flush();
    // simulate kill -9: never close, open a second store on the same dir
    const again = await StateStore.open(dir);
    expect(again.bans().map((b) => b.ip)).toEqual(['198.51.100.1']);
    expect(again.getFile('/var/log/x.log')?.offset).toBe(1234);
  });

  it('a ban and the history it moved on are one record; replaying it twice counts once', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const s = await StateStore.open(dir);
    s.putBanWithHistory('sshd|198.51.100.1/32', ban('198.51.100.1'), { jailKey: 'sshd|198.51.100.1', jailCount: 2, allKey: '*|198.51.100.1', allCount: 3, at: 1_700_000_000.25 });
    await s.flush();
    const journal = readFileSync(join(dir, 'journal.ndjson'), 'utf8').trim().split('\n');
    expect(journal).toHaveLength(1);
    // the same record again, as after a crash between a snapshot and the journal's truncation
    appendFileSync(join(dir, 'journal.ndjson'), `${journal[0]}\n`);
    const again = await StateStore.open(dir);
    expect(again.bans().map((b) => b.ip)).toEqual(['198.51.100.1']);
    expect(again.history('sshd|198.51.100.1')).toEqual({ count: 2, last: 1_700_000_000.25 });
    expect(again.history('*|198.51.100.1')).toEqual({ count: 3, last: 1_700_000_000.25 });
  });

  it('writes a ban record exactly as JSON.stringify would, odd strings and permanent bans included', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const s = await StateStore.open(dir);
    const b: StoredBan = { ...ban('2001:db8::7', null), jail: 'api "v2" \\ é', family: 6, prefix: 64, network: '2001:db8::', fields: { user: 'bob"; rm -rf /\n', path: '/x' } };
    const h: Array<[string, number]> = [['api "v2" \\ é|2001:db8::7', 4], ['*|2001:db8::7', 9]];
    // the ban table hands the store its Ban objects, which carry a run-time field or two more
    s.putBanWithHistory(banKey(b.jail, b.network, b.prefix), { ...b, failures: 5 } as StoredBan, { jailKey: h[0]![0], jailCount: 4, allKey: h[1]![0], allCount: 9, at: 1_700_000_123.5 });
    const b2: StoredBan = { ...b, ip: '2001:db8:1::8', network: '2001:db8:1::' };
    s.putBan({ ...b2, failures: 3 } as StoredBan);
    await s.flush();
    const lines = readFileSync(join(dir, 'journal.ndjson'), 'utf8').trim().split('\n');
    expect(lines[0]).toBe(JSON.stringify({ t: 'ban', b, h, at: 1_700_000_123.5 }));
    expect(lines[1]).toBe(JSON.stringify({ t: 'ban', b: b2 }));
    // and the snapshot written at close holds the same fields, nothing more
    await s.close();
    const snap = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { bans: StoredBan[] };
    expect(snap.bans.map((x) => JSON.stringify(x)).sort()).toEqual([JSON.stringify(b), JSON.stringify(b2)].sort());
  });

  it('an unban recorded after the ban wins on replay', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const s = await StateStore.open(dir);
    s.putBan(ban('198.51.100.1'));
    s.putBan(ban('198.51.100.2'));
    await s.flush();
    s.deleteBan('sshd', '198.51.100.1', 32);
    await s.flush();
    const again = await StateStore.open(dir);
    expect(again.bans().map((b) => b.ip)).toEqual(['198.51.100.2']);
  });

  it('a torn last journal line (crash mid-write) is ignored, earlier records kept', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const s = await StateStore.open(dir);
    s.putBan(ban('198.51.100.1'));
    await s.flush();
    appendFileSync(join(dir, 'journal.ndjson'), '{"t":"ban","b":{"jail":"ss');
    const again = await StateStore.open(dir);
    expect(again.bans().map((b) => b.ip)).toEqual(['198.51.100.1']);
    expect(again.loadWarnings).toEqual([]);
  });

  it('close() folds the journal into the snapshot, written atomically', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const s = await StateStore.open(dir);
    s.putBan(ban('198.51.100.1'));
    s.putHistory('sshd|198.51.100.1', { count: 3, last: 1 });
    await s.close();
    expect(readFileSync(join(dir, 'journal.ndjson'), 'utf8')).toBe('');
    const snap = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { bans: unknown[] };
    expect(snap.bans).toHaveLength(1);
    const again = await StateStore.open(dir);
    expect(again.history('sshd|198.51.100.1')?.count).toBe(3);
  });

  it('concurrent flushes each resolve only once their records are on disk', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const s = await StateStore.open(dir);
    const all: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      s.putBan(ban(`198.51.100.${i}`));
      all.push(s.flush());
    }
    await Promise.all(all);
    const again = await StateStore.open(dir);
    expect(again.bans()).toHaveLength(50);
  });
});
