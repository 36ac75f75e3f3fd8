/**
 * The real aegisd with `--enforcer xdp`, running in the lab's server namespace (nsenter keeps
 * the host's /sys/fs/bpf, so its pins are visible to the test), banning from real log lines
 * and enforced on real packets sent from the client namespace.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { xdpAvailability } from '../../src/enforce/xdp/native.js';
import { AEGISD, AUTH_FILTER, DaemonHandle, authLine, writeConfig } from '../helpers/daemon.js';
import { tempDir } from '../helpers/tmp.js';
import { CLIENT2_V4, CLIENT2_V6, CLIENT_NET_V4, CLIENT_V4, CLIENT_V6, Lab, SERVER_V4, netnsAvailability, programLoaded, waitUntil } from '../helpers/netns.js';

const xdp = xdpAvailability();
const ns = netnsAvailability();
const skip = !xdp.ok ? `XDP unavailable: ${xdp.reason}` : !ns.ok ? ns.reason : !existsSync(AEGISD) ? `${AEGISD} missing: run npm run build` : '';
if (skip) console.warn(`skipping XDP daemon tests: ${skip}`);

describe.skipIf(skip !== '')('aegisd --enforcer xdp on a veth (real daemon, real packets)', () => {
  let lab: Lab;
  let tmp: { dir: string; cleanup: () => void };
  let daemon: DaemonHandle | undefined;
  let logFile: string;
  let subnetLog: string;
  let configDir: string;
  const pinPath = `/sys/fs/bpf/aegis-e2e31-${process.pid}`;
  const metricsPort = 19000 + (process.pid % 1000);
  const programs = new Set<number>();

  async function start(): Promise<DaemonHandle> {
    const argv = [
      process.execPath, AEGISD,
      '--config-dir', configDir,
      '--socket', join(tmp.dir, 'aegis.sock'),
      '--state-dir', join(tmp.dir, 'state'),
      '--enforcer', 'xdp',
      '--interface', lab.serverIf,
      '--metrics-port', String(metricsPort),
      '--log-level', 'debug',
    ];
    const [cmd, ...rest] = [...lab.inServer(), ...argv];
    const child = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    const d = new DaemonHandle(child, { socket: join(tmp.dir, 'aegis.sock'), stateDir: join(tmp.dir, 'state'), metricsPort, configDir });
    await d.waitFor(async () => (await d.cli(['ping'])).code === 0, 'the control socket', 30_000);
    const p = lab.attachedProgram();
    if (p) programs.add(p.id);
    return d;
  }

  /** one sample of /metrics, fetched from inside the server namespace (metrics bind 127.0.0.1 there) */
  function metric(name: string, labels: Record<string, string> = {}): number {
    const url = `http://127.0.0.1:${metricsPort}/metrics`;
    const text = lab.execInServer([process.execPath, '-e', `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) }).then((r) => r.text()).then((t) => process.stdout.write(t))`]);
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!m || m[1] !== name) continue;
      if (Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`))) return Number(m[3]);
    }
    return 0;
  }

  function failLogins(ip: string, n = 5): void {
    for (let i = 0; i < n; i++) appendFileSync(logFile, authLine(ip));
  }

  beforeAll(async () => {
    rmSync(pinPath, { recursive: true, force: true });
    tmp = tempDir('aegis-xdp31-');
    configDir = join(tmp.dir, 'config');
    logFile = join(tmp.dir, 'app.log');
    writeFileSync(logFile, '');
    subnetLog = join(tmp.dir, 'subnet.log');
    writeFileSync(subnetLog, '');
    writeConfig(configDir, {
      aegisConf: `[xdp]\npin_path = ${pinPath}\nmax_entries = 65536\nkeep_attached = true\n`,
      filters: { x: AUTH_FILTER },
      jails: {
        x: `[x]\nenabled = true\nfilter = x\nlogpath = ${logFile}\nmaxretry = 5\nfindtime = 600\nbantime = 3600\nignoreip = ${CLIENT2_V4}\n`,
        subnet: `[subnet]\nenabled = true\nfilter = x\nlogpath = ${subnetLog}\nmaxretry = 5\nfindtime = 600\nbantime = 3600\nban_prefix_v6 = 64\n`,
      },
    });
    lab = new Lab('x31');
    daemon = await start();
  });

  afterAll(async () => {
    await daemon?.kill9();
    lab?.destroy();
    rmSync(pinPath, { recursive: true, force: true });
    tmp?.cleanup();
  });

  it('attaches to the --interface in native mode, shows it in status, and passes traffic', async () => {
    const st = await daemon!.cli(['status', '--json']);
    expect(st.code).toBe(0);
    const enforcer = (JSON.parse(st.stdout) as { enforcer?: { interfaces?: unknown } }).enforcer;
    expect(enforcer?.interfaces).toEqual([{ name: lab.serverIf, mode: 'native' }]);
    expect(await lab.ping(CLIENT_V4)).toBe(true);
    expect(await lab.ping(CLIENT_V6)).toBe(true);
  });

  it('bans from log lines and drops the client in XDP, counted in aegis_drops_total{reason="blocklist"}', async () => {
    const before = metric('aegis_drops_total', { reason: 'blocklist' });
    failLogins(CLIENT_V4);
    await daemon!.waitForBan(CLIENT_V4);
    // `banned` may answer a moment before the kernel write lands
    await waitUntil(async () => !(await lab.ping(CLIENT_V4)), 'the banned client to be dropped', 10_000);
    expect(await lab.ping(CLIENT_V6)).toBe(true);
    await waitUntil(() => metric('aegis_drops_total', { reason: 'blocklist' }) > before, 'drops on /metrics');
    expect(metric('aegis_blocklist_entries', { family: 'ipv4' })).toBe(1);
    expect(metric('aegis_packets_total', { protocol: 'ipv4', action: 'drop' })).toBeGreaterThan(0);
  });

  it('passes the client again after aegis-ban unban', async () => {
    const r = await daemon!.cli(['unban', CLIENT_V4]);
    expect(r.code).toBe(0);
    expect(await lab.ping(CLIENT_V4)).toBe(true);
    expect(metric('aegis_blocklist_entries', { family: 'ipv4' })).toBe(0);
  });

  it('does the same for IPv6', async () => {
    failLogins(CLIENT_V6);
    await daemon!.waitForBan(CLIENT_V6);
    await waitUntil(async () => !(await lab.ping(CLIENT_V6)), 'the banned IPv6 client to be dropped', 10_000);
    expect(metric('aegis_blocklist_entries', { family: 'ipv6' })).toBe(1);
    expect((await daemon!.cli(['unban', CLIENT_V6])).code).toBe(0);
    expect(await lab.ping(CLIENT_V6)).toBe(true);
  });

  it('a CIDR ban drops the whole prefix (reason cidr) and nothing outside it', async () => {
    const before = metric('aegis_drops_total', { reason: 'cidr' });
    const r = await daemon!.cli(['ban', 'x', '198.18.5.0/24']);
    expect(r.code, r.stderr).toBe(0);
    expect(await lab.ping(CLIENT_NET_V4)).toBe(false);
    expect(await lab.ping(CLIENT_V4)).toBe(true);
    await waitUntil(() => metric('aegis_drops_total', { reason: 'cidr' }) > before, 'cidr drops on /metrics');
    expect((await daemon!.cli(['unban', '198.18.5.0/24'])).code).toBe(0);
    expect(await lab.ping(CLIENT_NET_V4)).toBe(true);
  });

  it('ban_prefix_v6 = 64 bans the offender\'s whole /64 through the prefix map', async () => {
    expect(await lab.ping(CLIENT2_V6)).toBe(true);
    for (let i = 0; i < 5; i++) appendFileSync(subnetLog, authLine(CLIENT_V6));
    await waitUntil(async () => !(await lab.ping(CLIENT2_V6)), 'the /64 to be dropped', 15_000);
    expect(await lab.ping(CLIENT_V6)).toBe(false);
    expect(await lab.ping(CLIENT_V4)).toBe(true);
    const banned = JSON.parse((await daemon!.cli(['banned', '--json'])).stdout) as Array<{ ip: string; jail: string }>;
    const ours = banned.filter((b) => b.jail === 'subnet');
    expect(ours.length).toBe(1);
    for (const b of ours) expect((await daemon!.cli(['unban', b.ip, '--jail', 'subnet'])).code).toBe(0);
    expect(await lab.ping(CLIENT2_V6)).toBe(true);
  });

  it('never drops an ignoreip source: its failures do not ban and a manual ban is refused', async () => {
    failLogins(CLIENT2_V4, 8);
    failLogins(CLIENT_NET_V4, 1); // a later line, so the earlier ones were surely read
    await new Promise((r) => setTimeout(r, 1500));
    expect(JSON.parse((await daemon!.cli(['banned', CLIENT2_V4, '--json'])).stdout)).toEqual([]);
    const r = await daemon!.cli(['ban', 'x', CLIENT2_V4]);
    expect(r.code).toBe(1);
    expect(await lab.ping(CLIENT2_V4)).toBe(true);
  });

  it('a restart keeps the bans in the kernel without a gap', async () => {
    expect((await daemon!.cli(['ban', 'x', CLIENT_V4])).code).toBe(0);
    expect(await lab.ping(CLIENT_V4)).toBe(false);
    // 20 echo requests a second from the banned source across the whole restart: not one answer
    const flood = new Promise<string>((res) => {
      const p = spawn('ip', ['netns', 'exec', lab.client, 'ping', '-4', '-i', '0.05', '-w', '8', '-I', CLIENT_V4, SERVER_V4]);
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.on('exit', () => res(out));
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(await daemon!.stop()).toBe(0);
    daemon = await start();
    const out = await flood;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
    expect(Number(m?.[1])).toBeGreaterThan(50);
    expect(Number(m?.[2])).toBe(0);
    expect(await lab.ping(CLIENT_V4)).toBe(false);
    expect((await daemon!.cli(['unban', CLIENT_V4])).code).toBe(0);
    expect(await lab.ping(CLIENT_V4)).toBe(true);
  });

  it('a ban whose time runs out stops dropping while the daemon is dead (kill -9)', async () => {
    expect((await daemon!.cli(['ban', 'x', CLIENT_V4, '--time', '4'])).code).toBe(0);
    const until = Date.now() + 4000;
    expect(await lab.ping(CLIENT_V4)).toBe(false);
    await daemon!.kill9();
    daemon = undefined;
    expect(lab.attachedProgram()).not.toBeNull();
    expect(await lab.ping(CLIENT_V4)).toBe(false);
    await new Promise((r) => setTimeout(r, Math.max(0, until - Date.now()) + 700));
    expect(await lab.ping(CLIENT_V4)).toBe(true);
  });

  it('leaves no namespace, link, program or pin once the lab is removed', async () => {
    lab.destroy();
    rmSync(pinPath, { recursive: true, force: true });
    expect(lab.leftovers()).toEqual([]);
    for (const id of programs) await waitUntil(() => !programLoaded(id), `program ${id} to be freed`);
    expect(existsSync(pinPath)).toBe(false);
  });
});
