import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AegisError } from '../../../src/errors.js';
import type { Handlers, Request } from '../../../src/control/protocol.js';
import { startControlServer, type ControlServer, type ControlServerOptions } from '../../../src/control/server.js';
import { captureLog, LineClient, sleep, tempDir } from './helpers.js';

const isRoot = process.getuid?.() === 0;

/** Handlers that record what reached them; `slow` and `boom` jails exercise timing and bugs. */
function makeHandlers(seen: Request[] = []): Handlers {
  return {
    ping: async (req) => {
      seen.push(req);
      return { ok: true, data: { pong: true, version: 'test' } };
    },
    status: async (req) => {
      seen.push(req);
      if (req.jail === 'boom') throw new Error('handler bug');
      if (req.jail === 'hang') return new Promise(() => undefined);
      if (req.jail === 'bigint') return { ok: true, data: { weird: 1n } as never };
      if (req.jail !== undefined && req.jail.startsWith('slow')) await sleep(Number(req.jail.slice(4)) || 200);
      if (req.jail !== undefined && req.jail !== 'sshd' && !req.jail.startsWith('slow') && !req.jail.startsWith('j')) {
        return { ok: false, error: { code: 'AEGIS_ERR_UNKNOWN_JAIL', message: `no jail named "${req.jail}"` } };
      }
      return {
        ok: true,
        data: { jail: req.jail ?? 'all', currently_failed: 0, total_failed: 0, files: [], currently_banned: 0, total_banned: 0, banned: [] },
      };
    },
    ban: async (req) => {
      seen.push(req);
      return { ok: true, data: { banned: [{ ip: req.ip, jail: req.jail, since: 1, expires: null }] } };
    },
    unban: async (req) => {
      seen.push(req);
      return { ok: true, data: { unbanned: [] } };
    },
    banned: async (req) => {
      seen.push(req);
      return { ok: true, data: [] };
    },
    reload: async (req) => {
      seen.push(req);
      return Promise.reject(new TypeError('rejected promise bug'));
    },
  };
}

const servers: ControlServer[] = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const c of cleanups.splice(0)) c();
});

async function start(
  over: Partial<ControlServerOptions> = {},
): Promise<{ server: ControlServer; path: string; dir: string; seen: Request[]; logs: Array<Record<string, unknown>> }> {
  const t = tempDir('ctl');
  cleanups.push(t.cleanup);
  const seen: Request[] = [];
  const { log, lines } = captureLog();
  const path = over.path ?? join(t.dir, 'run', 'aegis.sock');
  const server = await startControlServer({ path, handlers: makeHandlers(seen), log, ...over });
  servers.push(server);
  return { server, path, dir: t.dir, seen, logs: lines };
}

describe('control socket: files and permissions', () => {
  it('creates a missing directory 0700 and the socket 0600', async () => {
    const { path } = await start();
    expect(statSync(join(path, '..')).mode & 0o7777).toBe(0o700);
    const st = lstatSync(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('leaves the mode of a directory it did not create alone', async () => {
    const t = tempDir('own');
    cleanups.push(t.cleanup);
    const dir = join(t.dir, 'shared');
    mkdirSync(dir, { mode: 0o755 });
    const { path } = await start({ path: join(dir, 'a.sock') });
    expect(statSync(dir).mode & 0o7777).toBe(0o755);
    expect(lstatSync(path).mode & 0o777).toBe(0o600);
  });

  it.skipIf(!isRoot)('with a group: socket 0660 owned by that group, new directory 0710', async () => {
    const { path } = await start({ group: '65534' });
    expect(lstatSync(path).mode & 0o777).toBe(0o660);
    expect(lstatSync(path).gid).toBe(65534);
    expect(statSync(join(path, '..')).mode & 0o7777).toBe(0o710);
    expect(statSync(join(path, '..')).gid).toBe(65534);
  });

  it('refuses an unknown group', async () => {
    await expect(start({ group: `no-such-group-${process.pid}` })).rejects.toThrow(/group .* does not exist/);
  });

  it('removes the socket file on close', async () => {
    const { server, path } = await start();
    await server.close();
    expect(existsSync(path)).toBe(false);
  });

  it('replaces a stale socket left by a killed daemon', async () => {
    const t = tempDir('stale');
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'aegis.sock');
    // A real process listens, then dies by SIGKILL: its socket file stays, nobody answers.
    const child = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    await new Promise((r) => child.on('exit', r));
    expect(lstatSync(path).isSocket()).toBe(true);
    await start({ path });
    const c = await LineClient.open(path);
    expect(await c.ask({ cmd: 'ping' })).toEqual({ ok: true, data: { pong: true, version: 'test' } });
    c.close();
  });

  it('refuses to start when a live daemon answers on the path, and that daemon keeps working', async () => {
    const { path } = await start();
    const err = await start({ path }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AegisError);
    expect((err as AegisError).code).toBe('AEGIS_ERR_LISTEN');
    expect((err as AegisError).message).toMatch(/another daemon is already listening/);
    const c = await LineClient.open(path);
    expect((await c.ask({ cmd: 'ping' })).ok).toBe(true);
    c.close();
  });

  it('refuses to remove a file that is not a socket', async () => {
    const t = tempDir('file');
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'aegis.sock');
    writeFileSync(path, 'precious');
    await expect(start({ path })).rejects.toThrow(/not a socket; refusing to remove it/);
    expect(existsSync(path)).toBe(true);
  });

  it('refuses a path longer than a Unix socket can hold', async () => {
    await expect(start({ path: `/tmp/${'x'.repeat(120)}/a.sock` })).rejects.toThrow(/longer than 107 bytes/);
  });
});

describe('control socket: requests and answers', () => {
  it('answers ping and echoes string and number ids', async () => {
    const { path } = await start();
    const c = await LineClient.open(path);
    expect(await c.ask({ cmd: 'ping', id: 'a1' })).toEqual({ ok: true, data: { pong: true, version: 'test' }, id: 'a1' });
    expect(await c.ask({ cmd: 'ping', id: 7 })).toMatchObject({ ok: true, id: 7 });
    c.close();
  });

  it('answers malformed JSON with an error and keeps the connection usable', async () => {
    const { path } = await start();
    const c = await LineClient.open(path);
    for (const bad of ['{', 'not json', '{"cmd":"ping"', '\u0000\u0001\u00ff', '[[[[[[[[[[', 'null', '42', '"ping"', '[]', '{}']) {
      const r = await c.ask(bad);
      expect(r.ok).toBe(false);
      expect((r.error as { code: string }).code).toBe('AEGIS_ERR_REQUEST_INVALID');
    }
    expect((await c.ask({ cmd: 'ping' })).ok).toBe(true);
    c.close();
  });

  it('refuses unknown commands, unknown fields and wrong types, naming the problem', async () => {
    const { path, seen } = await start();
    const c = await LineClient.open(path);
    const cases: Array<[unknown, RegExp, string?]> = [
      [{ cmd: 'shutdown' }, /unknown command "shutdown"/],
      [{ cmd: 7 }, /"cmd" must be a string/],
      [{ cmd: 'status', jails: 'sshd' }, /unknown field "jails"/],
      [{ cmd: 'status', jail: 5 }, /"jail" must be a string/],
      [{ cmd: 'status', jail: '' }, /must not be empty/],
      [{ cmd: 'status', jail: 'a\nb' }, /control characters/],
      [{ cmd: 'ban', jail: 'sshd' }, /needs "ip"/],
      [{ cmd: 'ban', jail: 'sshd', ip: 123 }, /"ip" must be a string/],
      [{ cmd: 'ban', jail: 'sshd', ip: '1.2.3.999' }, /not an IP address/, 'AEGIS_ERR_ADDRESS_INVALID'],
      [{ cmd: 'ban', jail: 'sshd', ip: '1.2.3.4', time: '1h' }, /"time" must be a finite number/],
      [{ cmd: 'ban', jail: 'sshd', ip: '1.2.3.4', time: 0 }, /positive number of seconds or -1/],
      [{ cmd: 'ban', jail: 'sshd', ip: '1.2.3.4', time: 1e300 }, /at most/],
      [{ cmd: 'unban', ips: '1.2.3.4' }, /"ips" must be an array/],
      [{ cmd: 'unban', ips: [] }, /needs a non-empty "ips" or "all": true/],
      [{ cmd: 'unban', ips: ['1.2.3.4'], all: true }, /exclude each other/],
      [{ cmd: 'unban', all: 'yes' }, /"all" must be a boolean/],
      [{ cmd: 'banned', ip: 'fe80::1%eth0' }, /not an IP address/, 'AEGIS_ERR_ADDRESS_INVALID'],
      [{ cmd: 'ping', id: { x: 1 } }, /"id" must be a string or a finite number/],
    ];
    for (const [req, message, code] of cases) {
      const r = await c.ask(req);
      expect(r.ok, JSON.stringify(req)).toBe(false);
      const e = r.error as { code: string; message: string };
      expect(e.code, JSON.stringify(req)).toBe(code ?? 'AEGIS_ERR_REQUEST_INVALID');
      expect(e.message, JSON.stringify(req)).toMatch(message);
    }
    expect(seen).toEqual([]); // nothing invalid reached a handler
    // An error answer still carries the request's id.
    expect(await c.ask({ cmd: 'nope', id: 'x9' })).toMatchObject({ ok: false, id: 'x9' });
    c.close();
  });

  it('hands handlers canonical addresses (mapped IPv6 → IPv4, RFC 5952, host bits cleared)', async () => {
    const { path, seen } = await start();
    const c = await LineClient.open(path);
    await c.ask({ cmd: 'ban', jail: 'sshd', ip: '::ffff:198.51.100.9' });
    await c.ask({ cmd: 'ban', jail: 'sshd', ip: '2001:DB8:0:0:0:0:0:1', time: -1 });
    await c.ask({ cmd: 'unban', ips: ['198.51.100.77/24', '198.51.100.0/24'] });
    await c.ask({ cmd: 'unban', all: true, jail: 'sshd' });
    expect(seen).toEqual([
      { cmd: 'ban', jail: 'sshd', ip: '198.51.100.9' },
      { cmd: 'ban', jail: 'sshd', ip: '2001:db8::1', time: -1 },
      { cmd: 'unban', ips: ['198.51.100.0/24'] },
      { cmd: 'unban', ips: [], jail: 'sshd', all: true },
    ]);
    c.close();
  });

  it('passes handler error answers through unchanged', async () => {
    const { path } = await start();
    const c = await LineClient.open(path);
    expect(await c.ask({ cmd: 'status', jail: 'nope', id: 1 })).toEqual({
      ok: false,
      error: { code: 'AEGIS_ERR_UNKNOWN_JAIL', message: 'no jail named "nope"' },
      id: 1,
    });
    c.close();
  });

  it('turns a throwing handler into AEGIS_ERR_INTERNAL, logs it, and keeps serving', async () => {
    const { path, logs } = await start();
    const c = await LineClient.open(path);
    const r1 = await c.ask({ cmd: 'status', jail: 'boom', id: 'b' });
    expect(r1).toMatchObject({ ok: false, id: 'b', error: { code: 'AEGIS_ERR_INTERNAL' } });
    const r2 = await c.ask({ cmd: 'reload' });
    expect(r2).toMatchObject({ ok: false, error: { code: 'AEGIS_ERR_INTERNAL' } });
    const r3 = await c.ask({ cmd: 'status', jail: 'bigint' });
    expect(r3).toMatchObject({ ok: false, error: { code: 'AEGIS_ERR_INTERNAL' } });
    expect((await c.ask({ cmd: 'ping' })).ok).toBe(true);
    const errors = logs.filter((l) => l.level === 50).map((l) => JSON.stringify(l));
    expect(errors.some((l) => l.includes('handler bug'))).toBe(true);
    expect(errors.some((l) => l.includes('rejected promise bug'))).toBe(true);
    c.close();
  });

  it('answers a handler that never finishes with AEGIS_ERR_INTERNAL after the handler timeout', async () => {
    const { path } = await start({ handlerTimeoutMs: 200 });
    const c = await LineClient.open(path);
    expect(await c.ask({ cmd: 'status', jail: 'hang', id: 'h' })).toMatchObject({ ok: false, id: 'h', error: { code: 'AEGIS_ERR_INTERNAL' } });
    expect((await c.ask({ cmd: 'ping' })).ok).toBe(true);
    c.close();
  });

  it('answers pipelined requests in order even when handlers finish out of order', async () => {
    const { path } = await start();
    const c = await LineClient.open(path);
    const delays = [120, 5, 60, 0, 90, 10, 30, 0, 70, 1];
    c.send(delays.map((d, i) => JSON.stringify({ cmd: 'status', jail: `slow${d || 1}`, id: i })).join('\n') + '\n');
    const ids: unknown[] = [];
    for (let i = 0; i < delays.length; i++) ids.push((await c.json()).id);
    expect(ids).toEqual(delays.map((_, i) => i));
    c.close();
  });

  it('assembles a request written one byte at a time, multi-byte characters split across writes', async () => {
    const { path, seen } = await start();
    const c = await LineClient.open(path);
    const bytes = Buffer.from(`${JSON.stringify({ cmd: 'status', jail: 'jäïl-日本', id: 'slow' })}\r\n`);
    for (const b of bytes) {
      c.socket.write(Buffer.from([b]));
      await sleep(1);
    }
    expect(await c.json()).toMatchObject({ ok: true, id: 'slow' });
    expect(seen).toEqual([{ cmd: 'status', jail: 'jäïl-日本', id: 'slow' }]);
    c.close();
  });

  it('serves only ping, status and banned on a read-only socket', async () => {
    const { path, seen } = await start({ readOnly: true });
    const c = await LineClient.open(path);
    expect((await c.ask({ cmd: 'ping' })).ok).toBe(true);
    expect((await c.ask({ cmd: 'status', jail: 'sshd' })).ok).toBe(true);
    expect((await c.ask({ cmd: 'banned' })).ok).toBe(true);
    for (const req of [{ cmd: 'ban', jail: 'sshd', ip: '203.0.113.1' }, { cmd: 'unban', all: true }, { cmd: 'reload', id: 3 }]) {
      expect(await c.ask(req)).toMatchObject({ ok: false, error: { code: 'AEGIS_ERR_FORBIDDEN' } });
    }
    expect(seen.map((r) => r.cmd)).toEqual(['ping', 'status', 'banned']);
    c.close();
  });

  it('ignores blank lines', async () => {
    const { path } = await start();
    const c = await LineClient.open(path);
    c.send('\n\r\n   \n');
    expect(await c.ask({ cmd: 'ping', id: 1 })).toMatchObject({ ok: true, id: 1 });
    c.close();
  });

  it('answers a last request sent without its newline when the client half-closes', async () => {
    const { path } = await start();
    const c = await LineClient.open(path);
    c.socket.end(`${JSON.stringify({ cmd: 'ping', id: 1 })}\n${JSON.stringify({ cmd: 'ping', id: 2 })}`);
    expect(await c.json()).toMatchObject({ ok: true, id: 1 });
    expect(await c.json()).toMatchObject({ ok: true, id: 2 });
    await c.closed;
  });

  it('answers a half-closed connection, then closes it', async () => {
    const { path } = await start();
    const c = await LineClient.open(path);
    c.socket.end(`${JSON.stringify({ cmd: 'status', jail: 'slow50' })}\n`);
    expect((await c.json()).ok).toBe(true);
    await c.closed;
  });
});

describe('control socket: limits', () => {
  it('answers an over-long line with AEGIS_ERR_REQUEST_TOO_LARGE and closes that connection only', async () => {
    const { path, server } = await start({ maxRequestBytes: 1024 });
    const other = await LineClient.open(path);
    const c = await LineClient.open(path);
    expect((await c.ask({ cmd: 'ping', id: 'before' })).ok).toBe(true);
    c.send(`{"cmd":"status","jail":"${'x'.repeat(2000)}"}\n`);
    const r = await c.json();
    expect(r).toMatchObject({ ok: false, error: { code: 'AEGIS_ERR_REQUEST_TOO_LARGE' } });
    await c.closed;
    expect((await other.ask({ cmd: 'ping' })).ok).toBe(true);
    other.close();
    await sleep(20);
    expect(server.connections).toBe(0);
  });

  it('does not buffer an endless line: cuts it at the cap while it is still arriving', async () => {
    const { path } = await start({ maxRequestBytes: 64 * 1024 });
    const c = await LineClient.open(path);
    const chunk = 'a'.repeat(16 * 1024);
    let sent = 0;
    // Keep writing without a newline; the server must answer and close long before 10 MB.
    while (sent < 10 * 1024 * 1024 && !c.socket.destroyed) {
      if (!c.socket.write(chunk)) await Promise.race([new Promise((r) => c.socket.once('drain', r)), c.closed, sleep(200)]);
      sent += chunk.length;
      const l = await Promise.race([c.next(1), sleep(0).then(() => undefined)]).catch(() => undefined);
      if (typeof l === 'string') {
        expect(JSON.parse(l)).toMatchObject({ error: { code: 'AEGIS_ERR_REQUEST_TOO_LARGE' } });
        break;
      }
    }
    await c.closed;
    expect(sent).toBeLessThan(10 * 1024 * 1024);
  });

  it('caps requests per second per connection, counts each refusal, and recovers after a second', async () => {
    let limited = 0;
    const { path } = await start({ maxRequestsPerSecond: 5, onRateLimited: () => limited++ });
    const c = await LineClient.open(path);
    const other = await LineClient.open(path);
    c.send(Array.from({ length: 20 }, (_, i) => JSON.stringify({ cmd: 'ping', id: i })).join('\n') + '\n');
    const answers = [];
    for (let i = 0; i < 20; i++) answers.push(await c.json());
    expect(answers.map((a) => a.id)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(answers.filter((a) => a.ok === true)).toHaveLength(5);
    const refused = answers.filter((a) => a.ok === false);
    expect(refused).toHaveLength(15);
    expect(refused[0]).toMatchObject({ error: { code: 'AEGIS_ERR_RATE_LIMITED' } });
    expect(limited).toBe(15);
    // The cap is per connection: another client is unaffected.
    expect((await other.ask({ cmd: 'ping' })).ok).toBe(true);
    await sleep(1_100);
    expect((await c.ask({ cmd: 'ping' })).ok).toBe(true);
    c.close();
    other.close();
  });

  it('caps connections: one over the cap gets an error line and is closed', async () => {
    let limited = 0;
    const { path } = await start({ maxConnections: 2, onRateLimited: () => limited++ });
    const a = await LineClient.open(path);
    const b = await LineClient.open(path);
    await sleep(20);
    const c = await LineClient.open(path);
    expect(await c.json()).toMatchObject({ ok: false, error: { code: 'AEGIS_ERR_RATE_LIMITED' } });
    await c.closed;
    expect(limited).toBe(1);
    a.close();
    await sleep(50);
    const d = await LineClient.open(path);
    expect((await d.ask({ cmd: 'ping' })).ok).toBe(true);
    for (const x of [b, d]) x.close();
  });

  it('closes idle connections', async () => {
    const { path } = await start({ idleTimeoutMs: 200 });
    const c = await LineClient.open(path);
    expect((await c.ask({ cmd: 'ping' })).ok).toBe(true);
    await c.closed;
  });

  it('survives clients that vanish mid-line or while their request is being handled', async () => {
    const { path, server } = await start();
    for (let i = 0; i < 20; i++) {
      const c = await LineClient.open(path);
      if (i % 2 === 0) c.send('{"cmd":"stat');
      else c.send(`${JSON.stringify({ cmd: 'status', jail: 'slow30' })}\n`);
      c.close();
    }
    await sleep(100);
    const c = await LineClient.open(path);
    expect((await c.ask({ cmd: 'ping' })).ok).toBe(true);
    c.close();
    await sleep(20);
    expect(server.connections).toBe(0);
  });

  it('answers every one of many pipelined requests from a client that reads late', async () => {
    const { path } = await start({ maxRequestsPerSecond: 100_000 });
    const c = await LineClient.open(path);
    c.socket.pause();
    const n = 20_000;
    let batch = '';
    for (let i = 0; i < n; i++) batch += `${JSON.stringify({ cmd: 'ping', id: i })}\n`;
    c.send(batch);
    await sleep(200);
    c.socket.resume();
    for (let i = 0; i < n; i++) {
      const r = await c.json();
      if (r.id !== i || r.ok !== true) expect(r).toMatchObject({ ok: true, id: i });
    }
    c.close();
  });
});
