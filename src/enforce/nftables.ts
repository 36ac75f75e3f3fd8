/**
 * The `nftables` enforcer, for hosts where XDP cannot load: bans live in named sets of table
 * `inet aegis` (`ban4`/`ban6` for addresses, `ban4net`/`ban6net` interval sets for prefixes) with
 * a timeout per element, so the kernel ends a ban on time even when the daemon is dead. Layout
 * and scripts: nft-script.ts.
 *
 * Ownership (enforcer.ts contract): the ban manager owns the truth. This enforcer keeps
 * - `#entries`: what the manager asked for, per prefix, per jail (several jails may ban the same
 *   prefix; the element lives while any jail holds it and carries the longest expiry);
 * - `#kernel`: what it believes the kernel holds.
 * Each burst becomes ONE `nft -f -` transaction with the difference. Interval sets refuse
 * overlapping elements, so a prefix inside another banned prefix is held back in memory and
 * goes into the kernel when the covering one is lifted (docs: a nested prefix ban that outlives
 * its cover is re-added by the daemon, not by the kernel). Addresses never collide with
 * prefixes: they live in their own sets. When a transaction fails (someone edited
 * the table), the enforcer re-reads the kernel and repairs once, then reports an AegisError.
 */
import type { Logger } from 'pino';
import { AegisError, ErrorCode } from '../errors.js';
import { makeCidr, parseCidr, type Cidr } from '../net/address.js';
import type { DriftReport, EnforcedBan, Enforcer, EnforcerContext, EnforcerCounters } from './enforcer.js';
import { NftRunner } from './nft-exec.js';
import {
  cidrKey,
  elementScript,
  elementText,
  parseTable,
  setupScript,
  teardownScript,
  type KernelElement,
  type NftElement,
  type NftLayout,
} from './nft-script.js';

export interface NftablesEnforcerOptions {
  /** default `aegis` */
  readonly table?: string;
  readonly family?: 'inet';
  /** argv that runs nft; default `['nft']`. Tests: `['ip', 'netns', 'exec', ns, 'nft']` */
  readonly nft?: readonly string[];
  /** default `prerouting` (drops before conntrack, like XDP drops before the stack) */
  readonly hook?: 'prerouting' | 'input';
  /** default -300 (raw) */
  readonly priority?: number;
  /** clock in epoch seconds (tests) */
  readonly now?: () => number;
}

interface Entry {
  readonly cidr: Cidr;
  /** jail → expires (epoch s, null permanent) */
  readonly holders: Map<string, number | null>;
}

/** expiries within this many seconds are the same (nft keeps ms, JSON shows whole seconds) */
const EXPIRY_SLACK = 2;

export function createNftablesEnforcer(opts: NftablesEnforcerOptions = {}): Enforcer {
  return new NftablesEnforcer(opts);
}

class NftablesEnforcer implements Enforcer {
  readonly kind = 'nftables' as const;
  readonly #layout: NftLayout;
  readonly #nft: NftRunner;
  readonly #now: () => number;
  #log: Logger | null = null;
  #allow: Cidr[] = [];
  readonly #entries = new Map<string, Entry>();
  /** family/len → keys of entries with that prefix length, to find covering prefixes fast */
  readonly #byLen = new Map<string, Set<string>>();
  #kernel = new Map<string, KernelElement>();
  #queue: Promise<unknown> = Promise.resolve();
  #repairs = 0;

  constructor(opts: NftablesEnforcerOptions) {
    this.#layout = { family: opts.family ?? 'inet', table: opts.table ?? 'aegis', hook: opts.hook ?? 'prerouting', priority: opts.priority ?? -300 };
    this.#nft = new NftRunner(opts.nft ?? ['nft']);
    this.#now = opts.now ?? (() => Date.now() / 1000);
  }

  start(ctx: EnforcerContext): Promise<void> {
    this.#log = ctx.log.child({ enforcer: 'nftables' });
    this.#allow = parseAllow(ctx.allow, this.#log);
    return this.#enqueue(async () => {
      let r = await this.#nft.apply(setupScript(this.#layout, this.#allow));
      if (!r.ok && r.code !== null) {
        // an older or foreign table of the same name with other set flags: replace it
        this.#log?.warn({ table: this.#layout.table, error: r.stderr }, 'nftables table incompatible; recreating it');
        r = await this.#nft.apply(teardownScript(this.#layout) + setupScript(this.#layout, this.#allow));
      }
      if (!r.ok) throw nftError('cannot create the nftables table', r.stderr);
      const state = await this.#read();
      this.#kernel = new Map(state.filter((e) => e.key !== null).map((e) => [e.key!, e]));
      this.#log?.info({ table: `${this.#layout.family} ${this.#layout.table}`, hook: this.#layout.hook, adopted: this.#kernel.size }, 'nftables enforcer ready');
    });
  }

  ban(bans: readonly EnforcedBan[]): Promise<void> {
    return this.#enqueue(async () => {
      const touched = new Set<string>();
      for (const b of bans) {
        const cidr = parseCidr(`${b.network}/${b.prefix}`);
        if (!cidr) {
          this.#log?.error({ jail: b.jail, network: b.network, prefix: b.prefix }, 'nftables: not an address, ban skipped');
          continue;
        }
        this.#touch(cidr, this.#hold(cidr, b.jail, b.expires), touched);
      }
      await this.#sync(touched);
    });
  }

  unban(bans: readonly EnforcedBan[]): Promise<void> {
    return this.#enqueue(async () => {
      const touched = new Set<string>();
      for (const b of bans) {
        const cidr = parseCidr(`${b.network}/${b.prefix}`);
        if (!cidr) continue;
        const key = cidrKey(cidr);
        const e = this.#entries.get(key);
        if (!e) {
          touched.add(key);
          continue;
        }
        e.holders.delete(b.jail);
        if (e.holders.size === 0) {
          this.#entries.delete(key);
          this.#index(cidr, key, false);
        }
        this.#touch(cidr, key, touched);
      }
      await this.#sync(touched);
    });
  }

  reconfigure(ctx: EnforcerContext): Promise<void> {
    this.#log = ctx.log.child({ enforcer: 'nftables' });
    this.#allow = parseAllow(ctx.allow, this.#log);
    return this.#enqueue(async () => {
      const r = await this.#nft.apply(setupScript(this.#layout, this.#allow));
      if (!r.ok) throw nftError('cannot update the nftables allow sets', r.stderr);
    });
  }

  reconcile(desired: readonly EnforcedBan[]): Promise<DriftReport> {
    return this.#enqueue(async () => {
      this.#entries.clear();
      this.#byLen.clear();
      for (const b of desired) {
        const cidr = parseCidr(`${b.network}/${b.prefix}`);
        if (!cidr) continue;
        this.#hold(cidr, b.jail, b.expires);
      }
      return this.#repair();
    });
  }

  /**
   * Read at scrape time: the drop rules' counters from the kernel (the chain only — listing the
   * sets would serialise every element on each scrape); entry counts as last applied.
   */
  async counters(): Promise<EnforcerCounters> {
    const r = await this.#nft.listChain(this.#layout.family, this.#layout.table, 'filter');
    let v4 = 0;
    for (const e of this.#kernel.values()) if (e.family === 4) v4++;
    const entries = { ipv4: v4, ipv6: this.#kernel.size - v4 };
    if (!r.ok) return { blocklistEntries: entries };
    return { blocklistEntries: entries, drops: [{ reason: 'blocklist', value: parseTable(r.stdout, this.#now()).dropped }] };
  }

  describe(): Readonly<Record<string, unknown>> {
    let v4 = 0;
    for (const e of this.#kernel.values()) if (e.family === 4) v4++;
    return {
      kind: this.kind,
      table: `${this.#layout.family} ${this.#layout.table}`,
      sets: { addresses: ['ban4', 'ban6'], prefixes: ['ban4net', 'ban6net'], allow: ['allow4', 'allow6'] },
      hook: this.#layout.hook,
      priority: this.#layout.priority,
      elements: { ipv4: v4, ipv6: this.#kernel.size - v4 },
      held: this.#entries.size,
      nftInvocations: this.#nft.invocations,
      repairs: this.#repairs,
    };
  }

  stop(): Promise<void> {
    return this.#enqueue(async () => {
      const r = await this.#nft.apply(teardownScript(this.#layout));
      if (!r.ok) throw nftError('cannot delete the nftables table', r.stderr);
      this.#kernel.clear();
      this.#entries.clear();
      this.#byLen.clear();
    });
  }

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(fn, fn);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  /** record that `jail` holds `cidr` until `expires`; returns the entry's key */
  #hold(cidr: Cidr, jail: string, expires: number | null): string {
    const key = cidrKey(cidr);
    let e = this.#entries.get(key);
    if (!e) {
      e = { cidr, holders: new Map() };
      this.#entries.set(key, e);
      this.#index(cidr, key, true);
    }
    e.holders.set(jail, expires);
    return key;
  }

  #index(c: Cidr, key: string, add: boolean): void {
    const k = `${c.family}/${c.prefix}`;
    let s = this.#byLen.get(k);
    if (add) {
      if (!s) this.#byLen.set(k, (s = new Set()));
      s.add(key);
    } else if (s) {
      s.delete(key);
      if (s.size === 0) this.#byLen.delete(k);
    }
  }

  /** `key` changed; when it is a prefix, the prefixes inside it may change too */
  #touch(c: Cidr, key: string, touched: Set<string>): void {
    touched.add(key);
    if (isHost(c)) return;
    for (const [k, e] of this.#entries) if (!isHost(e.cidr) && e.cidr.family === c.family && e.cidr.prefix > c.prefix && isInside(e.cidr, c)) touched.add(k);
    for (const [k, e] of this.#kernel) {
      if (e.family !== c.family || e.key === null) continue;
      const kc = parseCidr(e.key);
      if (kc && !isHost(kc) && kc.prefix > c.prefix && isInside(kc, c)) touched.add(k);
    }
  }

  /** a prefix inside another banned prefix (addresses live in their own set: never covered) */
  #covered(c: Cidr): boolean {
    if (isHost(c)) return false;
    for (const k of this.#byLen.keys()) {
      const [f, l] = k.split('/').map(Number) as [number, number];
      if (f !== c.family || l >= c.prefix) continue;
      if (this.#entries.has(cidrKey(makeCidr(c.bytes, c.family, l)))) return true;
    }
    return false;
  }

  #desired(key: string, now: number): NftElement | null {
    const e = this.#entries.get(key);
    if (!e || this.#covered(e.cidr)) return null;
    let expires: number | null = -Infinity;
    for (const x of e.holders.values()) {
      if (x === null) {
        expires = null;
        break;
      }
      expires = Math.max(expires, x);
    }
    if (expires !== null && expires <= now) return null;
    return { key, family: e.cidr.family, text: elementText(e.cidr), expires };
  }

  /** Apply the difference for `touched` keys in one transaction; repair once on failure. */
  async #sync(touched: ReadonlySet<string>): Promise<void> {
    const now = this.#now();
    const remove: KernelElement[] = [];
    const add: NftElement[] = [];
    for (const key of touched) {
      const d = this.#desired(key, now);
      const k = this.#kernel.get(key);
      if (d === null) {
        if (k) remove.push(k);
      } else if (!k) add.push(d);
      else if (!sameExpiry(k.expires, d.expires)) {
        remove.push(k);
        add.push(d);
      }
    }
    // Elements at or near their expiry may be gone from the kernel already: delete them the
    // safe way, unless that would trip nft's overlap check against an addition (nft-script.ts).
    const ensure = new Set<string>();
    for (const k of remove) {
      if (k.key === null || k.expires === null || k.expires > now + EXPIRY_SLACK) continue;
      const kc = parseCidr(k.key);
      // only interval sets check overlaps; an address set never trips over anything
      if (kc && (isHost(kc) || !add.some((a) => a.key !== k.key && overlaps(kc, a)))) ensure.add(k.key);
    }
    const script = elementScript(this.#layout, remove, add, now, ensure);
    if (script === '') return;
    const r = await this.#nft.apply(script);
    if (r.ok) {
      for (const k of remove) this.#kernel.delete(k.key!);
      for (const a of add) this.#kernel.set(a.key, { key: a.key, family: a.family, text: a.text, expires: a.expires });
      return;
    }
    this.#log?.warn({ error: r.stderr, add: add.length, remove: remove.length }, 'nftables batch failed; re-reading the table to repair');
    await this.#repair();
  }

  /** Read the kernel, then make it equal #entries (table, chain and allow sets included). */
  async #repair(): Promise<DriftReport> {
    this.#repairs++;
    const now = this.#now();
    const kernel = await this.#read();
    const want = new Map<string, NftElement>();
    for (const key of this.#entries.keys()) {
      const d = this.#desired(key, now);
      if (d) want.set(key, d);
    }
    const have = new Map<string, KernelElement>();
    const remove: KernelElement[] = [];
    for (const e of kernel) {
      if (e.key === null || !want.has(e.key)) remove.push(e);
      else have.set(e.key, e);
    }
    const stale = remove.length;
    const add: NftElement[] = [];
    let missing = 0;
    for (const [key, d] of want) {
      const k = have.get(key);
      if (!k) {
        add.push(d);
        missing++;
      } else if (!sameExpiry(k.expires, d.expires)) {
        remove.push(k);
        add.push(d);
        missing++;
      }
    }
    const script = setupScript(this.#layout, this.#allow) + elementScript(this.#layout, remove, add, now);
    const r = await this.#nft.apply(script);
    if (!r.ok) throw nftError('cannot repair the nftables ban sets', r.stderr);
    this.#kernel = new Map([...want].map(([k, d]) => [k, { key: k, family: d.family, text: d.text, expires: d.expires }]));
    if (missing + stale > 0) this.#log?.warn({ missing, stale }, 'nftables ban sets differed from the ban table; repaired');
    return { missing, stale };
  }

  /** Ban elements in the kernel now; none when the table is gone. */
  async #read(): Promise<KernelElement[]> {
    const r = await this.#nft.listTable(this.#layout.family, this.#layout.table);
    if (!r.ok) {
      if (/No such file or directory/.test(r.stderr)) return [];
      throw nftError('cannot read the nftables table', r.stderr);
    }
    return parseTable(r.stdout, this.#now()).bans;
  }
}

function sameExpiry(a: number | null, b: number | null): boolean {
  if (a === null || b === null) return a === b;
  return Math.abs(a - b) <= EXPIRY_SLACK;
}

function isHost(c: Cidr): boolean {
  return c.prefix === (c.family === 4 ? 32 : 128);
}

function overlaps(c: Cidr, a: NftElement): boolean {
  const ac = parseCidr(a.key);
  return ac !== null && !isHost(ac) && ac.family === c.family && (isInside(ac, c) || isInside(c, ac));
}

function isInside(inner: Cidr, outer: Cidr): boolean {
  if (inner.prefix < outer.prefix) return false;
  const m = makeCidr(inner.bytes, inner.family, outer.prefix);
  return m.network === outer.network;
}

function parseAllow(list: readonly string[], log: Logger): Cidr[] {
  const out: Cidr[] = [];
  for (const s of list) {
    const c = parseCidr(s);
    if (c) out.push(c);
    else log.warn({ entry: s }, 'nftables: allow entry is not an address or CIDR; skipped');
  }
  return out;
}

function nftError(what: string, stderr: string): AegisError {
  const missing = /ENOENT|not found/.test(stderr);
  return new AegisError(ErrorCode.NFT_FAILED, `${what}: ${stderr || 'nft failed'}`, {
    hint: missing ? 'install nftables (apt-get install nftables)' : 'nft needs root or CAP_NET_ADMIN, and the nf_tables kernel module',
  });
}

