/**
 * The XDP enforcer on a real veth, real packets: a "server" namespace whose veth carries the
 * program (loaded by the enforcer class itself, in a child process entered into that
 * namespace) and a "client" namespace that pings and sends UDP to it.
 */
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { xdpAvailability } from '../../src/enforce/xdp/native.js';
import { tempDir } from '../helpers/tmp.js';
import {
  CLIENT2_V4,
  CLIENT_NET_V4,
  CLIENT_V4,
  CLIENT_V6,
  Lab,
  netnsAvailability,
  programLoaded,
  waitUntil,
} from '../helpers/netns.js';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const DIST_XDP = join(ROOT, 'dist/enforce/xdp.js');
const xdp = xdpAvailability();
const ns = netnsAvailability();
const skip = !xdp.ok ? `XDP unavailable: ${xdp.reason}` : !ns.ok ? ns.reason : !existsSync(DIST_XDP) ? `${DIST_XDP} missing: run npm run build` : '';
if (skip) console.warn(`skipping XDP netns tests: ${skip}`);

const UDP_PORT = 9999;

/** Runs inside the server namespace: the enforcer + a UDP receiver, driven by JSON lines. */
const DRIVER = `
import { createXdpEnforcer } from ${JSON.stringify(DIST_XDP)};
import { pino } from ${JSON.stringify(join(ROOT, 'node_modules/pino/pino.js'))};
import dgram from 'node:dgram';
import readline from 'node:readline';
const [pinPath, iface, allow, mode, rateLimit] = JSON.parse(process.argv[2]);
const received = {};
for (const type of ['udp4', 'udp6']) {
  const s = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
  s.on('message', (_m, r) => { received[r.address] = (received[r.address] ?? 0) + 1; });
  s.bind(${UDP_PORT});
}
const enf = createXdpEnforcer({ xdp: { pinPath, maxEntries: 1 << 16, keepAttached: false, mode, rateLimit }, interfaces: [iface] });
const ops = {
  start: () => enf.start({ config: {}, jails: [], allow, log: pino({ level: 'silent' }) }),
  ban: (bans) => enf.ban(bans),
  unban: (bans) => enf.unban(bans),
  counters: () => enf.counters(),
  describe: () => enf.describe(),
  received: () => received,
  stop: async () => { await enf.stop(); setTimeout(() => process.exit(0), 50); },
};
readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const { id, op, arg } = JSON.parse(line);
  try {
    const result = await ops[op](arg);
    process.stdout.write(JSON.stringify({ id, ok: true, result: result ?? null }) + '\\n');
  } catch (e) {
    process.stdout.write(JSON.stringify({ id, ok: false, error: String(e?.message ?? e), code: e?.code }) + '\\n');
  }
});
`;

interface RateLimit {
  readonly enabled: boolean;
  readonly pps: number;
  readonly burst: number;
}
const NO_RATE_LIMIT: RateLimit = { enabled: false, pps: 0, burst: 0 };

class Driver {
  readonly child: ChildProcess;
  #seq = 0;
  #buf = '';
  #stderr = '';
  readonly #waiting = new Map<number, (r: { ok: boolean; result?: unknown; error?: string }) => void>();

  constructor(lab: Lab, script: string, pinPath: string, allow: string[], mode: 'auto' | 'native' | 'generic', rate: RateLimit) {
    this.child = lab.spawnInServer([process.execPath, script, JSON.stringify([pinPath, lab.serverIf, allow, mode, rate])]);
    this.child.stdout!.on('data', (d: Buffer) => {
      this.#buf += d.toString();
      let i: number;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        const r = JSON.parse(this.#buf.slice(0, i)) as { id: number; ok: boolean; result?: unknown; error?: string };
        this.#buf = this.#buf.slice(i + 1);
        this.#waiting.get(r.id)?.(r);
        this.#waiting.delete(r.id);
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.#stderr += d.toString()));
  }

  async call<T>(op: string, arg?: unknown): Promise<T> {
    const id = ++this.#seq;
    const r = await new Promise<{ ok: boolean; result?: unknown; error?: string }>((res, rej) => {
      this.#waiting.set(id, res);
      this.child.stdin!.write(`${JSON.stringify({ id, op, arg })}\n`);
      setTimeout(() => rej(new Error(`driver ${op} timed out; stderr: ${this.#stderr}`)), 30_000);
    });
    if (!r.ok) throw new Error(`${op}: ${r.error}`);
    return r.result as T;
  }

  kill9(): Promise<void> {
    return new Promise((res) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return res();
      this.child.once('exit', () => res());
      this.child.kill('SIGKILL');
    });
  }
}

function ban(cidr: string, expires: number | null = null, jail = 'e2e'): Record<string, unknown> {
  const [network, p] = cidr.split('/');
  const family = network!.includes(':') ? 6 : 4;
  const prefix = p === undefined ? (family === 4 ? 32 : 128) : Number(p);
  return { jail, network, prefix, family, ip: network, since: Date.now() / 1000, expires, bantime: expires === null ? -1 : 60, banCount: 1, fields: {} };
}

interface Counters {
  drops: Array<{ reason: string; value: number }>;
  packets: Array<{ protocol: string; action: string; value: number }>;
  blocklistEntries: { ipv4: number; ipv6: number };
}
const drops = (c: Counters, reason: string): number => c.drops.find((d) => d.reason === reason)?.value ?? 0;

describe.skipIf(skip !== '')('XDP enforcer in a netns lab (real packets)', () => {
  let lab: Lab;
  let driver: Driver;
  let tmp: { dir: string; cleanup: () => void };
  let script: string;
  const pinPath = `/sys/fs/bpf/aegis-e2e30-${process.pid}`;
  const programs: number[] = [];

  async function startDriver(mode: 'auto' | 'native' | 'generic' = 'auto', rate = NO_RATE_LIMIT): Promise<Driver> {
    const d = new Driver(lab, script, pinPath, [CLIENT2_V4], mode, rate);
    await d.call('start');
    const desc = await d.call<{ programId: number }>('describe');
    programs.push(desc.programId);
    return d;
  }

  beforeAll(async () => {
    rmSync(pinPath, { recursive: true, force: true });
    tmp = tempDir('aegis-xdp30-');
    script = join(tmp.dir, 'driver.mjs');
    writeFileSync(script, DRIVER);
    lab = new Lab('x30');
    driver = await startDriver();
  });

  afterAll(async () => {
    await driver?.kill9();
    lab?.destroy();
    rmSync(pinPath, { recursive: true, force: true });
    tmp?.cleanup();
  });

  it('attaches to the server veth in native mode and passes traffic before any ban', async () => {
    const desc = await driver.call<{ interfaces: Array<{ name: string; mode: string }> }>('describe');
    expect(desc.interfaces).toEqual([{ name: lab.serverIf, mode: 'native' }]);
    expect(lab.attachedProgram()?.id).toBe(programs[0]);
    expect(await lab.ping(CLIENT_V4)).toBe(true);
    expect(await lab.ping(CLIENT_V6)).toBe(true);
    const c = await driver.call<Counters>('counters');
    expect(c.packets.find((p) => p.protocol === 'ipv4' && p.action === 'pass')!.value).toBeGreaterThan(0);
  });

  it('drops a banned IPv4 source before the stack sees it (ICMP and UDP), counted as blocklist', async () => {
    const before = await driver.call<Counters>('counters');
    await driver.call('ban', [ban(CLIENT_V4)]);
    expect(await lab.ping(CLIENT_V4)).toBe(false);
    await lab.sendUdp(CLIENT_V4, UDP_PORT, 5);
    await lab.sendUdp(CLIENT2_V4, UDP_PORT, 5);
    await waitUntil(async () => ((await driver.call<Record<string, number>>('received'))[CLIENT2_V4] ?? 0) >= 5, 'UDP from the unbanned source');
    const got = await driver.call<Record<string, number>>('received');
    expect(got[CLIENT_V4] ?? 0).toBe(0);
    const after = await driver.call<Counters>('counters');
    expect(drops(after, 'blocklist') - drops(before, 'blocklist')).toBeGreaterThanOrEqual(6);
    expect(after.blocklistEntries.ipv4).toBe(1);
  });

  it('passes the source again after unban', async () => {
    await driver.call('unban', [ban(CLIENT_V4)]);
    expect(await lab.ping(CLIENT_V4)).toBe(true);
    await lab.sendUdp(CLIENT_V4, UDP_PORT, 3);
    await waitUntil(async () => ((await driver.call<Record<string, number>>('received'))[CLIENT_V4] ?? 0) >= 3, 'UDP after unban');
  });

  it('drops a banned IPv6 source and passes it after unban', async () => {
    await driver.call('ban', [ban(CLIENT_V6)]);
    expect(await lab.ping(CLIENT_V6)).toBe(false);
    expect(await lab.ping(CLIENT_V4)).toBe(true);
    const c = await driver.call<Counters>('counters');
    expect(c.packets.find((p) => p.protocol === 'ipv6' && p.action === 'drop')!.value).toBeGreaterThan(0);
    await driver.call('unban', [ban(CLIENT_V6)]);
    expect(await lab.ping(CLIENT_V6)).toBe(true);
  });

  it('drops every source of a banned prefix (reason cidr) and nothing outside it', async () => {
    const before = await driver.call<Counters>('counters');
    await driver.call('ban', [ban('198.18.5.0/24')]);
    expect(await lab.ping(CLIENT_NET_V4)).toBe(false);
    expect(await lab.ping(CLIENT_V4)).toBe(true);
    const after = await driver.call<Counters>('counters');
    expect(drops(after, 'cidr') - drops(before, 'cidr')).toBeGreaterThanOrEqual(1);
    await driver.call('unban', [ban('198.18.5.0/24')]);
    expect(await lab.ping(CLIENT_NET_V4)).toBe(true);
  });

  it('never drops an ignoreip source, even banned by hand and covered by a prefix ban', async () => {
    await driver.call('ban', [ban(CLIENT2_V4), ban('198.18.0.0/16', null, 'wide')]);
    expect(await lab.ping(CLIENT2_V4)).toBe(true);
    expect(await lab.ping(CLIENT_V4)).toBe(false);
    await driver.call('unban', [ban(CLIENT2_V4), ban('198.18.0.0/16', null, 'wide')]);
    expect(await lab.ping(CLIENT_V4)).toBe(true);
  });

  it('ends a ban on time in the kernel with no Aegis process alive', async () => {
    const expires = Date.now() / 1000 + 4;
    await driver.call('ban', [ban(CLIENT_V4, expires)]);
    expect(await lab.ping(CLIENT_V4)).toBe(false);
    await driver.kill9();
    expect(lab.attachedProgram()?.id).toBe(programs[0]); // the kernel keeps it attached
    expect(await lab.ping(CLIENT_V4)).toBe(false);
    await new Promise((r) => setTimeout(r, Math.max(0, expires * 1000 - Date.now()) + 500));
    expect(await lab.ping(CLIENT_V4)).toBe(true);
  });

  it('a new process adopts the pinned maps and swaps the program in place', async () => {
    // the killed process wrote the (now expired) entry; the new one finds it in the pinned map
    driver = await startDriver();
    const old = programs[0]!;
    const now = programs[programs.length - 1]!;
    expect(now).not.toBe(old);
    expect(lab.attachedProgram()?.id).toBe(now);
    const c = await driver.call<Counters>('counters');
    expect(c.blocklistEntries.ipv4).toBe(1); // the expired entry is still there until reconcile
    await driver.call('ban', [ban(CLIENT_V6)]);
    expect(await lab.ping(CLIENT_V6)).toBe(false);
    await waitUntil(() => !programLoaded(old), 'the replaced program to be freed');
  });

  it('mode = generic attaches in generic (skb) mode and still drops, after a clean stop detached the native one', async () => {
    await driver.call('stop');
    await new Promise<void>((r) => (driver.child.exitCode !== null ? r() : driver.child.once('exit', () => r())));
    expect(lab.attachedProgram()).toBeNull();
    expect(await lab.ping(CLIENT_V6)).toBe(true); // detached: nothing drops, though the ban is still pinned
    driver = await startDriver('generic');
    expect(lab.attachedProgram()).toEqual({ id: programs[programs.length - 1], mode: 'generic' });
    const desc = await driver.call<{ interfaces: Array<{ name: string; mode: string }> }>('describe');
    expect(desc.interfaces).toEqual([{ name: lab.serverIf, mode: 'generic' }]);
    expect(await lab.ping(CLIENT_V6)).toBe(false);
    expect(await lab.ping(CLIENT_V4)).toBe(true);
  });

  it('with rate_limit on, a flooding source is cut to its rate (reason rate_limit) and ignoreip is exempt', async () => {
    await driver.call('stop');
    await new Promise<void>((r) => (driver.child.exitCode !== null ? r() : driver.child.once('exit', () => r())));
    driver = await startDriver('auto', { enabled: true, pps: 5, burst: 5 });
    const before = await driver.call<Counters>('counters');
    const base = (await driver.call<Record<string, number>>('received'))[CLIENT_V4] ?? 0;
    const base2 = (await driver.call<Record<string, number>>('received'))[CLIENT2_V4] ?? 0;
    await lab.sendUdp(CLIENT_V4, UDP_PORT, 200); // about 200 datagrams within well under a second
    await lab.sendUdp(CLIENT2_V4, UDP_PORT, 200);
    await waitUntil(async () => ((await driver.call<Record<string, number>>('received'))[CLIENT2_V4] ?? 0) - base2 >= 200, 'the exempt source\'s datagrams');
    const got = ((await driver.call<Record<string, number>>('received'))[CLIENT_V4] ?? 0) - base;
    expect(got).toBeGreaterThanOrEqual(5);
    expect(got).toBeLessThan(60); // burst 5 + 5/s while the flood lasted
    const after = await driver.call<Counters & { rateLimited: number }>('counters');
    expect(drops(after, 'rate_limit') - drops(before, 'rate_limit')).toBeGreaterThan(100);
    expect(after.rateLimited).toBe(drops(after, 'rate_limit'));
  });

  it('never replaces an XDP program it did not load, and says whose it is', async () => {
    await driver.call('stop');
    await new Promise<void>((r) => (driver.child.exitCode !== null ? r() : driver.child.once('exit', () => r())));
    const src = join(tmp.dir, 'other.bpf.c');
    writeFileSync(src, '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nSEC("xdp") int other_xdp(struct xdp_md *ctx) { return XDP_PASS; }\nchar LICENSE[] SEC("license") = "GPL";\n');
    const arch = execFileSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).trim();
    const clang = spawnSync('sh', ['-c', 'command -v clang-14 || command -v clang'], { encoding: 'utf8' }).stdout.trim();
    execFileSync(clang, ['-O2', '-g', '-target', 'bpf', `-I/usr/include/${arch}`, '-c', src, '-o', join(tmp.dir, 'other.bpf.o')]);
    execFileSync('ip', ['-n', lab.server, 'link', 'set', 'dev', lab.serverIf, 'xdp', 'obj', join(tmp.dir, 'other.bpf.o'), 'sec', 'xdp']);
    const foreign = lab.attachedProgram();
    expect(foreign).not.toBeNull();
    const d = new Driver(lab, script, pinPath, [CLIENT2_V4], 'auto', NO_RATE_LIMIT);
    await expect(d.call('start')).rejects.toThrow(/other_xdp.*Aegis did not load/);
    expect(lab.attachedProgram()?.id).toBe(foreign!.id);
    await d.kill9();
    execFileSync('ip', ['-n', lab.server, 'link', 'set', 'dev', lab.serverIf, 'xdp', 'off']);
    driver = await startDriver();
  });

  it('a clean stop detaches; removing the lab and pins leaves no namespace, link, program or pin', async () => {
    await driver.call('stop');
    await new Promise<void>((r) => (driver.child.exitCode !== null ? r() : driver.child.once('exit', () => r())));
    expect(lab.attachedProgram()).toBeNull();
    expect(await lab.ping(CLIENT_V6)).toBe(true); // detached: nothing drops any more
    lab.destroy();
    rmSync(pinPath, { recursive: true, force: true });
    expect(lab.leftovers()).toEqual([]);
    for (const id of programs) await waitUntil(() => !programLoaded(id), `program ${id} to be freed`);
    expect(existsSync(pinPath)).toBe(false);
    expect(spawnSync('bpftool', ['map', 'show', 'pinned', join(pinPath, 'aegis_ban_v4')], { stdio: 'ignore' }).status).not.toBe(0);
  });
});
