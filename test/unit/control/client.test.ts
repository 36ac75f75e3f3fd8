import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from '../../../src/control/client.js';
import type { BanView, Handlers } from '../../../src/control/protocol.js';
import { startControlServer, type ControlServer } from '../../../src/control/server.js';
import { captureLog, tempDir } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function dir(): string {
  const t = tempDir('cli');
  cleanups.push(t.cleanup);
  return t.dir;
}

/** A raw server that does whatever `onLine` says, to play a broken or silent daemon. */
async function raw(path: string, onConn: (s: import('node:net').Socket) => void): Promise<Server> {
  const s = createServer(onConn);
  await new Promise<void>((r) => s.listen(path, r));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

describe('control client', () => {
  it('says unreachable when there is no socket', async () => {
    const r = await request(join(dir(), 'none.sock'), { cmd: 'ping' });
    expect(r).toEqual({ ok: false, unreachable: true, error: { code: 'AEGIS_ERR_DAEMON_UNREACHABLE', message: expect.stringMatching(/no control socket/) } });
  });

  it('says unreachable when the daemon accepts but never answers within the timeout', async () => {
    const path = join(dir(), 'mute.sock');
    const held: import('node:net').Socket[] = [];
    await raw(path, (s) => held.push(s));
    cleanups.push(() => held.forEach((s) => s.destroy()));
    const t0 = Date.now();
    const r = await request(path, { cmd: 'ping' }, { timeoutMs: 300 });
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(r).toMatchObject({ ok: false, unreachable: true, error: { message: expect.stringMatching(/no answer .* within 300 ms/) } });
  });

  it('says unreachable when the connection closes without an answer', async () => {
    const path = join(dir(), 'rude.sock');
    await raw(path, (s) => s.on('data', () => s.destroy()));
    const r = await request(path, { cmd: 'ping' });
    expect(r).toMatchObject({ ok: false, unreachable: true });
  });

  it('reports a garbled answer as an internal error, not as unreachable', async () => {
    const path = join(dir(), 'garble.sock');
    await raw(path, (s) => s.on('data', () => s.end('this is not json\n')));
    const r = await request(path, { cmd: 'ping' });
    expect(r).toMatchObject({ ok: false, unreachable: false, error: { code: 'AEGIS_ERR_INTERNAL' } });
  });

  it('reads a large answer arriving in many chunks (100 000 bans)', async () => {
    const bans: BanView[] = Array.from({ length: 100_000 }, (_, i) => ({
      ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      jail: 'sshd',
      since: 1_795_000_000,
      expires: null,
    }));
    const handlers = { banned: async () => ({ ok: true, data: bans }) } as unknown as Handlers;
    const { log } = captureLog();
    const server: ControlServer = await startControlServer({ path: join(dir(), 'big.sock'), handlers, log });
    cleanups.push(() => server.close());
    const r = await request(server.path, { cmd: 'banned' });
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.data).toHaveLength(100_000);
      expect(r.data[99_999]).toEqual(bans[99_999]);
    }
  });
});
