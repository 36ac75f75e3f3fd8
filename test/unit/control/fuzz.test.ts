/**
 * Seeded fuzz of the control server alone (the daemon-level fuzz lives in e2e): 10 000 random and
 * malformed requests — garbage bytes, broken JSON, wrong types, unknown commands, over-long
 * lines, writes split at random points, abrupt disconnects — and afterwards the server still
 * answers, every complete line on a surviving connection got exactly one answer, and no
 * connection is left open.
 */
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import type { Handlers } from '../../../src/control/protocol.js';
import { startControlServer, type ControlServer } from '../../../src/control/server.js';
import { captureLog, LineClient, sleep, tempDir } from './helpers.js';
import { rng } from '../../helpers/rng.js';


const handlers: Handlers = {
  ping: async () => ({ ok: true, data: { pong: true, version: 'fuzz' } }),
  status: async (req) => (req.jail === 'x' ? Promise.reject(new Error('bug')) : { ok: false, error: { code: 'AEGIS_ERR_UNKNOWN_JAIL', message: 'no' } }),
  ban: async (req) => ({ ok: true, data: { banned: [{ ip: req.ip, jail: req.jail, since: 0, expires: null }] } }),
  unban: async () => ({ ok: true, data: { unbanned: [] } }),
  banned: async () => ({ ok: true, data: [] }),
  reload: async () => {
    throw new Error('bug');
  },
};

const servers: ControlServer[] = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const c of cleanups.splice(0)) c();
});

it('survives 10 000 random and malformed requests and keeps answering', async () => {
  const t = tempDir('fuzz');
  cleanups.push(t.cleanup);
  const max = 4096;
  const server = await startControlServer({ path: join(t.dir, 'f.sock'), handlers, log: captureLog().log, maxRequestBytes: max });
  servers.push(server);
  const rand = rng(20261123);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const values: unknown[] = [null, true, 0, -1, 1e309, 'sshd', '', '1.2.3.4', '::ffff:1.2.3.4', '10.0.0.0/8', [], ['1.2.3.4'], {}, { a: 1 }, 'x'.repeat(300), '\u0000', 2 ** 53];
  const fields = ['cmd', 'id', 'jail', 'ip', 'ips', 'time', 'all', '__proto__', 'constructor'];
  const cmds = ['ping', 'status', 'ban', 'unban', 'banned', 'reload', 'PING', 'shutdown', '', 'ban '];

  function line(): Buffer {
    switch (Math.floor(rand() * 6)) {
      case 0: {
        const n = Math.floor(rand() * 200);
        const b = Buffer.alloc(n);
        for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
        return Buffer.from(b.filter((x) => x !== 10));
      }
      case 1: {
        const s = JSON.stringify({ cmd: pick(cmds), jail: pick(values), ip: pick(values) });
        return Buffer.from(s.slice(0, Math.floor(rand() * s.length)));
      }
      case 2: {
        const o: Record<string, unknown> = { cmd: pick(cmds) };
        for (let i = Math.floor(rand() * 4); i > 0; i--) o[pick(fields)] = pick(values);
        return Buffer.from(JSON.stringify(o));
      }
      case 3:
        return Buffer.from(JSON.stringify(pick([{ cmd: 'ping' }, { cmd: 'status', jail: 'x' }, { cmd: 'reload' }, { cmd: 'ban', jail: 's', ip: '203.0.113.5', time: 60 }])));
      case 4:
        return Buffer.from(JSON.stringify(pick(values)));
      default:
        return Buffer.from('['.repeat(Math.floor(rand() * 2000)));
    }
  }

  let sent = 0;
  let checked = 0;
  while (sent < 10_000) {
    const batch = await Promise.all(
      Array.from({ length: 16 }, async () => {
        const c = await LineClient.open(server.path);
        const n = 1 + Math.floor(rand() * 40);
        const lines = Array.from({ length: n }, line);
        const oversize = rand() < 0.05;
        const abort = rand() < 0.1;
        let payload = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
        if (oversize) payload = Buffer.concat([payload, Buffer.alloc(max + 10, 0x61), Buffer.from('\n')]);
        // Split at random points to exercise partial writes.
        for (let pos = 0; pos < payload.length; ) {
          const len = 1 + Math.floor(rand() * 600);
          c.socket.write(payload.subarray(pos, pos + len));
          pos += len;
          if (abort && rand() < 0.2) break;
          if (rand() < 0.05) await sleep(1);
        }
        sent += n;
        if (abort) {
          c.close();
          return;
        }
        const expected = lines.filter((l) => l.toString('utf8').trim().length > 0).length + (oversize ? 1 : 0);
        let got = 0;
        for (let i = 0; i < expected; i++) {
          const a = await c.next(10_000);
          if (a === null) break;
          expect(JSON.parse(a)).toHaveProperty('ok');
          got++;
        }
        expect(got).toBe(expected);
        if (oversize) await c.closed;
        c.close();
        checked++;
      }),
    );
    expect(batch).toHaveLength(16);
  }
  expect(checked).toBeGreaterThan(100);
  const c = await LineClient.open(server.path);
  expect(await c.ask({ cmd: 'ping' })).toEqual({ ok: true, data: { pong: true, version: 'fuzz' } });
  c.close();
  await sleep(50);
  expect(server.connections).toBe(0);
}, 120_000);
