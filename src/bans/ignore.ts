/**
 * Who is never banned: loopback always; the host's own addresses when `ignoreself` (default,
 * as in fail2ban); each jail's `ignoreip` (addresses, prefixes, and hostnames resolved when the
 * config is loaded — never in the hot path); and `ignorecommand` (exit 0 = ignore), run only
 * when a ban is about to be decided, with the address passed as data, and cached.
 */
import { networkInterfaces } from 'node:os';
import { lookup } from 'node:dns/promises';
import { execFile } from 'node:child_process';
import { LRUCache } from 'lru-cache';
import { CidrSet, LOOPBACK, parseCidr, type Address, type Cidr } from '../net/address.js';

export function ownAddresses(): Cidr[] {
  const out: Cidr[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const ni of list ?? []) {
      const c = parseCidr(ni.address.split('%')[0] ?? '');
      if (c) out.push(c);
    }
  }
  return out;
}

/** Resolve hostnames of ignoreip once; unresolvable names are reported, not fatal. */
export async function resolveHostnames(names: readonly string[]): Promise<{ cidrs: Cidr[]; failed: string[] }> {
  const cidrs: Cidr[] = [];
  const failed: string[] = [];
  await Promise.all(
    names.map(async (n) => {
      try {
        const addrs = await lookup(n, { all: true });
        for (const a of addrs) {
          const c = parseCidr(a.address);
          if (c) cidrs.push(c);
        }
      } catch {
        failed.push(n);
      }
    }),
  );
  return { cidrs, failed };
}

export interface IgnoreSpec {
  readonly ignoreip: readonly string[];
  readonly resolved: readonly Cidr[];
  readonly ignoreself: boolean;
  readonly ignorecommand: string | null;
}

export class IgnoreList {
  readonly #set: CidrSet;
  readonly #command: string | null;
  readonly #commandCache = new LRUCache<string, boolean>({ max: 10_000, ttl: 300_000 });

  constructor(spec: IgnoreSpec, own: readonly Cidr[] = ownAddresses()) {
    const items: Cidr[] = [...LOOPBACK, ...spec.resolved];
    if (spec.ignoreself) items.push(...own);
    for (const s of spec.ignoreip) {
      const c = parseCidr(s);
      if (c) items.push(c);
    }
    this.#set = new CidrSet(items);
    this.#command = spec.ignorecommand;
  }

  /** the reason an address is ignored, or null */
  reason(addr: Address): string | null {
    if (this.#set.contains(addr)) return 'ignoreip';
    return null;
  }

  /** for manual bans of prefixes: which ignored prefix it would cover */
  overlapping(c: Cidr): Cidr | undefined {
    return this.#set.overlapping(c);
  }

  get prefixes(): readonly Cidr[] {
    return this.#set.items;
  }

  /** true when an ignorecommand must be asked (most jails have none: no await per ban then) */
  get hasCommand(): boolean {
    return this.#command !== null && this.#command !== '';
  }

  /** ignorecommand, with `<ip>` passed as an environment variable, never spliced into text */
  async commandSaysIgnore(ip: string): Promise<boolean> {
    if (!this.#command) return false;
    const cached = this.#commandCache.get(ip);
    if (cached !== undefined) return cached;
    const cmd = this.#command.replace(/<ip>/g, '"$AEGIS_IP"');
    const result = await new Promise<boolean>((resolve) => {
      execFile('/bin/sh', ['-c', cmd], { env: { ...process.env, AEGIS_IP: ip }, timeout: 10_000 }, (error) => {
        resolve(error === null);
      });
    });
    this.#commandCache.set(ip, result);
    return result;
  }
}
