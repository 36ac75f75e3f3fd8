/**
 * A two-namespace lab for XDP tests: "server" and "client" network namespaces joined by one
 * veth pair, addresses from 198.18.0.0/15 and 2001:db8::/32 only, no default route, so no
 * packet can leave the lab. Everything is named with the test's pid, and destroy() removes
 * the namespaces (which takes the veth and any XDP program attached to it along).
 *
 * Processes that need the server's network but the host's /sys/fs/bpf (pinned maps) run under
 * `nsenter --net=/run/netns/NAME`: `ip netns exec` would remount /sys and hide the pins.
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

export const SERVER_V4 = '198.18.0.1';
export const CLIENT_V4 = '198.18.0.2';
/** a second client address, used as the ignoreip source */
export const CLIENT2_V4 = '198.18.0.3';
/** a client address inside 198.18.5.0/24, for prefix bans */
export const CLIENT_NET_V4 = '198.18.5.2';
export const SERVER_V6 = '2001:db8::1';
/** client IPv6 addresses share a /64 that does not hold the server (subnet-ban tests) */
export const CLIENT_V6 = '2001:db8:0:1::2';
export const CLIENT2_V6 = '2001:db8:0:1::3';

export interface NetnsAvailability {
  readonly ok: boolean;
  readonly reason: string;
}

/** root, ip, nsenter, ping and a bpf filesystem */
export function netnsAvailability(): NetnsAvailability {
  if (process.platform !== 'linux') return { ok: false, reason: 'network namespaces need Linux' };
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return { ok: false, reason: 'needs root (network namespaces, XDP)' };
  for (const tool of ['ip', 'nsenter', 'ping']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) return { ok: false, reason: `${tool} not installed (iproute2 / util-linux / iputils-ping)` };
  }
  return { ok: true, reason: '' };
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

export class Lab {
  readonly server: string;
  readonly client: string;
  /** veth end in the server namespace (the XDP attach point) */
  readonly serverIf: string;
  readonly clientIf: string;
  #alive = true;

  constructor(tag: string) {
    const id = `${process.pid % 100000}`;
    this.server = `aegis-${tag}-s-${process.pid}`;
    this.client = `aegis-${tag}-c-${process.pid}`;
    this.serverIf = `axs${tag.slice(0, 3)}${id}`.slice(0, 15);
    this.clientIf = `axc${tag.slice(0, 3)}${id}`.slice(0, 15);
    try {
      ip(['netns', 'add', this.server]);
      ip(['netns', 'add', this.client]);
      ip(['link', 'add', this.serverIf, 'netns', this.server, 'type', 'veth', 'peer', 'name', this.clientIf, 'netns', this.client]);
      ip(['-n', this.server, 'addr', 'add', `${SERVER_V4}/16`, 'dev', this.serverIf]);
      ip(['-n', this.server, 'addr', 'add', `${SERVER_V6}/48`, 'dev', this.serverIf, 'nodad']);
      for (const a of [CLIENT_V4, CLIENT2_V4, CLIENT_NET_V4]) ip(['-n', this.client, 'addr', 'add', `${a}/16`, 'dev', this.clientIf]);
      for (const a of [CLIENT_V6, CLIENT2_V6]) ip(['-n', this.client, 'addr', 'add', `${a}/48`, 'dev', this.clientIf, 'nodad']);
      for (const [ns, dev] of [[this.server, this.serverIf], [this.client, this.clientIf]] as const) {
        ip(['-n', ns, 'link', 'set', 'lo', 'up']);
        ip(['-n', ns, 'link', 'set', dev, 'up']);
      }
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  /** argv prefix that runs a command in the server's network namespace, host mounts kept */
  inServer(): string[] {
    return ['nsenter', `--net=/run/netns/${this.server}`];
  }

  /** spawn a long-running process in the server namespace */
  spawnInServer(argv: readonly string[], opts: { env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const [cmd, ...rest] = [...this.inServer(), ...argv];
    return spawn(cmd!, rest, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  }

  /** one ICMP echo from the client (source `from`) to the server; true when answered */
  ping(from: string, timeoutS = 1): Promise<boolean> {
    const v6 = from.includes(':');
    const to = v6 ? SERVER_V6 : SERVER_V4;
    const args = ['netns', 'exec', this.client, 'ping', v6 ? '-6' : '-4', '-c', '1', '-W', String(timeoutS), '-I', from, to];
    return new Promise((res) => execFile('ip', args, { timeout: (timeoutS + 5) * 1000 }, (err) => res(err === null)));
  }

  /** `count` UDP datagrams from the client (source `from`) to the server's `port` */
  sendUdp(from: string, port: number, count: number): Promise<void> {
    const v6 = from.includes(':');
    const to = v6 ? SERVER_V6 : SERVER_V4;
    const script = `const s=require('dgram').createSocket('${v6 ? 'udp6' : 'udp4'}');s.bind({address:'${from}'},async()=>{for(let i=0;i<${count};i++){await new Promise(r=>s.send('aegis-test',${port},'${to}',r));}s.close();});`;
    return new Promise((res, rej) =>
      execFile('ip', ['netns', 'exec', this.client, process.execPath, '-e', script], { timeout: 20_000 }, (err) => (err ? rej(err) : res())),
    );
  }

  /** run a command in the server namespace; stdout */
  execInServer(argv: readonly string[]): string {
    const [cmd, ...rest] = [...this.inServer(), ...argv];
    return execFileSync(cmd!, rest, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** XDP program id attached to the server's veth, or null */
  attachedProgram(): { id: number; mode: string } | null {
    const out = execFileSync('ip', ['-n', this.server, '-d', '-j', 'link', 'show', 'dev', this.serverIf], { encoding: 'utf8' });
    const link = (JSON.parse(out) as Array<{ xdp?: { mode?: number; prog?: { id?: number } } }>)[0];
    const id = link?.xdp?.prog?.id;
    if (id === undefined) return null;
    const mode = link?.xdp?.mode === 1 ? 'native' : link?.xdp?.mode === 2 ? 'generic' : String(link?.xdp?.mode);
    return { id, mode };
  }

  destroy(): void {
    if (!this.#alive) return;
    this.#alive = false;
    for (const ns of [this.server, this.client]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }

  /** namespaces and links gone? (asserted by tests after destroy) */
  leftovers(): string[] {
    const left: string[] = [];
    for (const ns of [this.server, this.client]) if (existsSync(`/run/netns/${ns}`)) left.push(`netns ${ns}`);
    for (const dev of [this.serverIf, this.clientIf]) {
      if (spawnSync('ip', ['link', 'show', 'dev', dev], { stdio: 'ignore' }).status === 0) left.push(`link ${dev}`);
    }
    return left;
  }
}

/** Is a BPF program with this id still loaded? (freed asynchronously after netns removal) */
export function programLoaded(id: number): boolean {
  return spawnSync('bpftool', ['prog', 'show', 'id', String(id)], { stdio: 'ignore' }).status === 0;
}

export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
