// Deterministic JSON API logs for the benchmarks (seeded PRNG: the same bytes every run).
import { createWriteStream } from 'node:fs';

export function rng(seed = 1) {
  let s = seed >>> 0;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const v4 = (n) => `198.${18 + ((n >> 16) & 1)}.${(n >> 8) & 255}.${n & 255}`;
const v6 = (n) => `2001:db8:${(n >> 16).toString(16)}::${(n & 0xffff).toString(16)}`;

/**
 * ~3 % auth failures, ~0.5 % admin 401s, the rest ordinary requests, from 5 000 IPv4 and 1 000
 * IPv6 sources (numbered from `sourceOffset`: a warm-up log on other addresses); times spread
 * over the `spanSeconds` before `endMs`.
 */
export async function writeApiLog(file, { lines = 1_000_000, endMs = Date.now(), spanSeconds = 240, seed = 7, sourceOffset = 0 } = {}) {
  const r = rng(seed);
  const out = createWriteStream(file);
  const start = endMs - spanSeconds * 1000;
  let chunk = '';
  let auth = 0;
  let admin = 0;
  for (let i = 0; i < lines; i++) {
    const time = Math.floor(start + (i / lines) * spanSeconds * 1000);
    const src = r() < 0.85 ? v4(sourceOffset + Math.floor(r() * 5000)) : v6(sourceOffset + Math.floor(r() * 1000));
    const x = r();
    let o;
    if (x < 0.03) {
      auth++;
      o = { level: 40, time, pid: 4242, hostname: 'api-1', reqId: `req-${i}`, event: 'auth.login.failed', ip: src, user: `user${Math.floor(r() * 500)}`, msg: 'login failed' };
    } else if (x < 0.035) {
      admin++;
      o = { level: 40, time, pid: 4242, hostname: 'api-1', reqId: `req-${i}`, event: 'admin.operation.unauthorized', ip: src, path: '/api/v1/admin/users', status: 401, msg: 'unauthorized' };
    } else {
      o = { level: 30, time, pid: 4242, hostname: 'api-1', reqId: `req-${i}`, event: 'http.request', ip: src, method: r() < 0.7 ? 'GET' : 'POST', path: `/api/v1/items/${Math.floor(r() * 100000)}`, status: 200, responseTime: Math.floor(r() * 80) };
    }
    chunk += JSON.stringify(o) + '\n';
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await new Promise((res) => out.once('drain', res));
      chunk = '';
    }
  }
  out.write(chunk);
  await new Promise((res) => out.end(res));
  return { auth, admin };
}

/** One failed login from each of `lines` distinct addresses (the memory spray). */
export async function writeSprayLog(file, { lines = 1_000_000, endMs = Date.now() } = {}) {
  const out = createWriteStream(file);
  let chunk = '';
  for (let i = 0; i < lines; i++) {
    // log text only (no traffic): 1 M distinct addresses need more than the test ranges hold
    const ip = i % 4 === 3 ? `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1` : `11.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    chunk += `{"level":40,"time":${endMs - 60_000 + Math.floor(i / 100)},"event":"auth.login.failed","ip":"${ip}","user":"x"}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await new Promise((res) => out.once('drain', res));
      chunk = '';
    }
  }
  out.write(chunk);
  await new Promise((res) => out.end(res));
}
