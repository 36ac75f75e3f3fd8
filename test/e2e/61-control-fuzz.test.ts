import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { AEGIS_BAN, hasDaemon, startAegis, waitFor, type AegisInstance } from '../unit/metrics/harness.js';
import { rng } from '../helpers/rng.js';

/**
 * 10 000 random and malformed control requests (bad JSON, binary, huge lines, unknown commands,
 * wrong types, partial writes, abrupt disconnects) from many connections at once, while the
 * daemon must keep banning from log lines and answering `aegis-ban ping`.
 */
const run = promisify(execFile);
const TOTAL = 10_000;
const WORKERS = 24; // below the control socket's connection cap, so `ping` still gets in


const COMMANDS = ['ping', 'status', 'ban', 'unban', 'banned', 'reload'];
const WRONG: unknown[] = [null, 5, -1, 1e308, true, [], [1, 2], {}, { a: { b: [] } }, '', 'x'.repeat(300), '198.18.0.1/99', '::ffff:999.1.1.1', '\u0000', '\ud800'];

type Req = { bytes: Buffer; answerable: boolean };

function makeRequest(r: () => number, i: number): Req {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)] as T;
  const k = r();
  if (k < 0.15) {
    // bad JSON: truncated objects, trailing junk, bare words
    const s = pick(['{', '{"cmd":', '{"cmd":"ping"', '}{', 'null', '[]', '"ping"', 'ping', '{"cmd":"ping"}}', "{'cmd':'ping'}", '{"cmd":"ping",}', '1e9999', '']);
    return { bytes: Buffer.from(`${s}\n`), answerable: true };
  }
  if (k < 0.25) {
    // binary garbage (no newline inside), invalid UTF-8 included
    const b = Buffer.alloc(1 + Math.floor(r() * 400));
    for (let j = 0; j < b.length; j++) {
      let v = Math.floor(r() * 256);
      if (v === 10) v = 11;
      b[j] = v;
    }
    return { bytes: Buffer.concat([b, Buffer.from('\n')]), answerable: true };
  }
  if (k < 0.4) {
    const cmd = Array.from({ length: 1 + Math.floor(r() * 20) }, () => String.fromCharCode(33 + Math.floor(r() * 90))).join('');
    return { bytes: Buffer.from(`${JSON.stringify({ cmd, id: i })}\n`), answerable: true };
  }
  if (k < 0.7) {
    // a known command with fields of the wrong type (never a well-formed unban or ban)
    const cmd = pick(COMMANDS);
    const body: Record<string, unknown> = { cmd, id: r() < 0.5 ? i : pick(WRONG) };
    for (const f of ['jail', 'ip', 'ips', 'time', 'all']) if (r() < 0.6) body[f] = pick(WRONG);
    if (cmd === 'unban' || cmd === 'ban') body.jail = pick(WRONG.filter((w) => typeof w !== 'string'));
    return { bytes: Buffer.from(`${JSON.stringify(body)}\n`), answerable: true };
  }
  if (k < 0.72) {
    // deeply nested
    const depth = 1000 + Math.floor(r() * 20_000);
    return { bytes: Buffer.from(`${'['.repeat(depth)}${']'.repeat(depth)}\n`), answerable: true };
  }
  if (k < 0.73) {
    // a line far over the request size cap: the server may answer once and close
    const n = 70_000 + Math.floor(r() * 2_000_000);
    return { bytes: Buffer.concat([Buffer.from('{"cmd":"ping","pad":"'), Buffer.alloc(n, 0x61), Buffer.from('"}\n')]), answerable: false };
  }
  const valid = pick([{ cmd: 'ping' }, { cmd: 'status' }, { cmd: 'banned' }, { cmd: 'status', jail: 'x' }, { cmd: 'status', jail: 'nope' }]);
  return { bytes: Buffer.from(`${JSON.stringify({ ...valid, id: i })}\n`), answerable: true };
}

interface Tally {
  sent: number;
  answers: number;
  okFalse: number;
  okTrue: number;
  malformedAnswers: string[];
  missing: number;
}

async function oneConnection(socketPath: string, r: () => number, start: number, count: number, tally: Tally): Promise<void> {
  const reqs = Array.from({ length: count }, (_, j) => makeRequest(r, start + j));
  const abrupt = r() < 0.15;
  const sock = net.connect(socketPath);
  sock.on('error', () => undefined);
  let buf = '';
  let answers = 0;
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      answers++;
      try {
        const o = JSON.parse(line) as { ok?: unknown; error?: { code?: unknown; message?: unknown } };
        if (o.ok === true) tally.okTrue++;
        else if (o.ok === false && typeof o.error?.code === 'string' && typeof o.error.message === 'string') tally.okFalse++;
        else tally.malformedAnswers.push(line.slice(0, 200));
      } catch {
        tally.malformedAnswers.push(line.slice(0, 200));
      }
    }
  });
  const closed = new Promise<void>((res) => sock.once('close', () => res()));
  await new Promise<void>((res) => {
    sock.once('connect', () => res());
    sock.once('close', () => res());
  });
  const whole = Buffer.concat(reqs.map((q) => q.bytes));
  tally.sent += count;
  if (abrupt) {
    // write part of the stream, then vanish mid-request
    sock.write(whole.subarray(0, Math.floor(r() * whole.length)));
    sock.destroy();
    await closed;
    return;
  }
  // partial writes: the stream cut at random places, with small pauses between pieces
  let off = 0;
  while (off < whole.length && !sock.destroyed) {
    const n = r() < 0.3 ? 1 + Math.floor(r() * 7) : 1 + Math.floor(r() * 8192);
    const ok = sock.write(whole.subarray(off, off + n));
    off += n;
    if (!ok) await new Promise((res) => sock.once('drain', res).once('close', res));
    if (r() < 0.05) await new Promise((res) => setTimeout(res, 1 + Math.floor(r() * 5)));
  }
  // Blank lines are not requests (the server skips them); an oversized line ends the connection.
  const blank = (q: Req): boolean => q.bytes.subarray(0, -1).toString('utf8').trim().length === 0;
  const expected = reqs.every((q) => q.answerable) ? reqs.filter((q) => !blank(q)).length : -1;
  await Promise.race([
    closed,
    waitFor('answers', async () => answers >= expected, 15_000, 20).catch(() => undefined),
  ]);
  if (expected >= 0 && answers < expected) tally.missing += expected - answers;
  sock.destroy();
  await closed;
  tally.answers += answers;
}

const why = hasDaemon ? '' : 'dist/cli/aegisd.js not built';
if (why) console.log(`skipping 61-control-fuzz: ${why}`);

describe.skipIf(why !== '')('control socket under fuzz', () => {
  let aegis: AegisInstance;
  beforeAll(async () => {
    aegis = await startAegis();
  });
  afterAll(async () => {
    await aegis?.stop();
  });

  it('answers or drops 10 000 malformed requests without crashing, and keeps banning and answering ping', async () => {
    const r = rng(0xae615);
    const tally: Tally = { sent: 0, answers: 0, okFalse: 0, okTrue: 0, malformedAnswers: [], missing: 0 };
    let next = 0;
    let fuzzing = true;

    // Beside the fuzz: `aegis-ban ping` must keep answering, and log lines must keep banning.
    const pings: number[] = [];
    const pingFailures: string[] = [];
    const pinger = (async () => {
      while (fuzzing) {
        const t0 = performance.now();
        try {
          await run(process.execPath, [AEGIS_BAN, '--socket', aegis.socket, 'ping'], { timeout: 10_000 });
          pings.push(performance.now() - t0);
        } catch (e) {
          pingFailures.push(String(e).slice(0, 300));
        }
        await new Promise((res) => setTimeout(res, 100));
      }
    })();
    const banned: string[] = [];
    const banner = (async () => {
      let n = 0;
      while (fuzzing) {
        const ip = `198.18.61.${++n}`;
        const now = Math.floor(Date.now() / 1000);
        aegis.append('x', Array.from({ length: 5 }, () => JSON.stringify({ time: now, event: 'auth.login.failed', ip })));
        try {
          await waitFor(`ban of ${ip}`, async () => {
            try {
              await run(process.execPath, [AEGIS_BAN, '--socket', aegis.socket, 'banned', ip], { timeout: 10_000 });
              return true;
            } catch {
              return false;
            }
          }, 20_000, 200);
          banned.push(ip);
        } catch {
          /* counted below: every driven ban must have happened */
        }
        if (n >= 200) break;
      }
      return n;
    })();

    const workers = Array.from({ length: WORKERS }, async (_, w) => {
      const wr = rng(0x1000 + w + Math.floor(r() * 1e6));
      while (next < TOTAL) {
        const count = Math.min(TOTAL - next, 1 + Math.floor(wr() * 60));
        const start = next;
        next += count;
        await oneConnection(aegis.socket, wr, start, count, tally);
        if (aegis.proc.exitCode !== null) throw new Error(`aegisd died: ${aegis.stderrTail()}`);
      }
    });
    const t0 = performance.now();
    await Promise.all(workers);
    const fuzzSeconds = (performance.now() - t0) / 1000;
    fuzzing = false;
    const driven = await banner;
    await pinger;

    console.log(
      `fuzz: ${tally.sent} requests in ${fuzzSeconds.toFixed(1)} s, ${tally.answers} answers (${tally.okFalse} errors, ${tally.okTrue} ok), ` +
        `${pings.length} pings (max ${Math.max(...pings).toFixed(0)} ms), ${banned.length}/${driven} bans driven by log lines`,
    );
    expect(tally.sent).toBe(TOTAL);
    expect(aegis.proc.exitCode).toBeNull();
    expect(tally.malformedAnswers).toEqual([]);
    expect(tally.missing).toBe(0);
    expect(tally.okFalse).toBeGreaterThan(TOTAL / 3);
    expect(pingFailures).toEqual([]);
    expect(pings.length).toBeGreaterThanOrEqual(2);
    expect(banned.length).toBe(driven);
    expect(banned.length).toBeGreaterThan(0);
    // Still fine afterwards, and refusals were counted.
    expect(aegis.ctl(['ping']).status).toBe(0);
    const m = await aegis.scrape();
    expect(m.status).toBe(200);
    const rss = Number(/^process_resident_memory_bytes (\S+)/m.exec(m.body)?.[1]);
    expect(rss).toBeLessThan(512 * 1024 * 1024);
  });

  it('refuses requests over the per-connection rate cap and counts them in aegis_ratelimited_total{scope="control"}', async () => {
    const sock = net.connect(aegis.socket);
    let out = '';
    sock.setEncoding('utf8').on('data', (d: string) => (out += d));
    await new Promise((res) => sock.once('connect', res));
    sock.write(`${Array.from({ length: 1000 }, (_, i) => JSON.stringify({ cmd: 'ping', id: i })).join('\n')}\n`);
    await waitFor('1000 answers', async () => out.split('\n').length > 1000, 30_000, 50);
    sock.destroy();
    const limited = out.split('\n').filter((l) => l.includes('AEGIS_ERR_RATE_LIMITED')).length;
    expect(limited).toBeGreaterThan(0);
    const m = await aegis.scrape();
    expect(Number(/^aegis_ratelimited_total\{scope="control"\} (\S+)/m.exec(m.body)?.[1])).toBeGreaterThanOrEqual(limited);
  });
});
