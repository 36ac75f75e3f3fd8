/**
 * The XDP enforcer: mirrors the ban table into the kernel maps of bpf/aegis.bpf.o.
 *
 * - Maps are pinned under `[xdp] pin_path`; a restarted daemon reuses them (bans never leave
 *   the kernel) and atomically replaces the previous Aegis program on each interface.
 * - The kernel keys by prefix only. Several jails may ban the same prefix: #holders keeps
 *   jail → expiry per prefix, the kernel value is the longest expiry, and the key is deleted
 *   when the last jail lets go.
 * - Every write of one call goes to the kernel as one batch per map, off the event loop.
 * - Calls are serialized (#serial) so a ban and an unban of the same key land in call order.
 */
import { existsSync } from 'node:fs';
import type { XdpSettings } from '../config/types.js';
import { AegisError, ErrorCode, errorMessage } from '../errors.js';
import type { DriftReport, EnforcedBan, Enforcer, EnforcerContext, EnforcerCounters } from './enforcer.js';
import {
  BAN_MAPS,
  KernelClock,
  MAP,
  encodeExpiries,
  encodeTargets,
  keySize,
  mapOfTarget,
  rawEntryKey,
  readValueNs,
  type BanMapName,
  type Target,
} from './xdp/codec.js';
import { syncAllowList } from './xdp/allow.js';
import { asAegisError, preparePinPath } from './xdp/environment.js';
import { HolderTable, longest, type Holder } from './xdp/holders.js';
import {
  BUILD_HINT,
  OBJECT_PATH,
  PERMISSION_HINT,
  hasBpfPrivileges,
  loadAddon,
  type NativeAddon,
  type NativeProgram,
} from './xdp/native.js';

export { xdpAvailability } from './xdp/native.js';

/** LRU buckets of the rate limiter; a spray of more sources recycles the oldest buckets */
const RATE_ENTRIES = 65536;
/** kernel expiry differing from the ban table by more than this is rewritten (clock steps) */
const EXPIRY_SLACK_NS = 2e9;

/** entries handled between two yields to the event loop (about 20–50 ms of work) */
const SLICE = 32768;
/** let timers, the control socket and /metrics run during a million-entry restore */
const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

export interface XdpEnforcerOptions {
  readonly xdp: XdpSettings;
  readonly interfaces: readonly string[];
}

export function createXdpEnforcer(opts: XdpEnforcerOptions): Enforcer {
  return new XdpEnforcer(opts);
}

interface Attachment {
  readonly name: string;
  readonly mode: 'native' | 'generic';
  readonly replaced: number | null;
}

class XdpEnforcer implements Enforcer {
  readonly kind = 'xdp' as const;
  readonly #settings: XdpSettings;
  readonly #interfaces: readonly string[];
  #addon: NativeAddon | null = null;
  #prog: NativeProgram | null = null;
  #clock: KernelClock | null = null;
  #log: EnforcerContext['log'] | null = null;
  readonly #holders = new HolderTable();
  readonly #attached: Attachment[] = [];
  readonly #fill = new Map<BanMapName, number>();
  #allowCount = 0;
  #serial: Promise<unknown> = Promise.resolve();
  #stamp = 0;

  constructor(opts: XdpEnforcerOptions) {
    this.#settings = opts.xdp;
    this.#interfaces = [...new Set(opts.interfaces)];
  }

  /** run `fn` after every earlier call has settled, so kernel writes keep call order */
  #serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#serial.then(fn, fn);
    this.#serial = run.catch(() => undefined);
    return run;
  }

  #program(): NativeProgram {
    if (!this.#prog) throw new AegisError(ErrorCode.INTERNAL, 'xdp enforcer used before start() or after stop()');
    return this.#prog;
  }

  async start(ctx: EnforcerContext): Promise<void> {
    this.#log = ctx.log;
    const addon = loadAddon();
    if (addon instanceof AegisError) throw addon;
    if (!existsSync(OBJECT_PATH))
      throw new AegisError(ErrorCode.NATIVE_MISSING, `BPF object ${OBJECT_PATH} not built`, { hint: BUILD_HINT });
    if (!hasBpfPrivileges()) throw new AegisError(ErrorCode.BPF_PERMISSION, 'not permitted to load XDP programs', { hint: PERMISSION_HINT });
    const s = this.#settings;
    preparePinPath(s.pinPath);
    const rate = s.rateLimit.enabled && s.rateLimit.pps > 0;
    let prog: NativeProgram;
    try {
      prog = new addon.Program({
        object: OBJECT_PATH,
        pinPath: s.pinPath,
        maxEntries: s.maxEntries,
        rateEntries: RATE_ENTRIES,
        ratePps: rate ? s.rateLimit.pps : 0,
        rateBurst: rate ? Math.max(1, s.rateLimit.burst) : 0,
      });
    } catch (e) {
      throw asAegisError(e, 'xdp');
    }
    this.#addon = addon;
    this.#prog = prog;
    this.#clock = new KernelClock(() => addon.clocks());
    for (const note of prog.notes) ctx.log.warn({ enforcer: 'xdp' }, note);
    if (prog.adopted.length > 0)
      ctx.log.info({ enforcer: 'xdp', pinPath: s.pinPath, maps: prog.adopted }, 'xdp: reusing pinned maps; bans held in the kernel stay in force');

    try {
      this.#allowCount = await syncAllowList(prog, ctx.allow);
      for (const name of this.#interfaces) {
        const r = prog.attach(name, s.mode);
        this.#attached.push({ name, mode: r.mode, replaced: r.replaced });
        if (r.nativeError !== undefined)
          ctx.log.warn({ enforcer: 'xdp', interface: name, mode: r.mode, reason: r.nativeError }, `xdp: native mode unavailable on ${name}, attached in generic mode (slower)`);
        else
          ctx.log.info({ enforcer: 'xdp', interface: name, mode: r.mode, replaced: r.replaced }, `xdp: attached to ${name} (${r.mode})`);
      }
      if (this.#interfaces.length === 0)
        ctx.log.warn({ enforcer: 'xdp' }, 'xdp: no --interface given: maps are kept but no traffic is filtered');
    } catch (e) {
      for (const a of this.#attached.splice(0)) {
        try {
          prog.detach(a.name);
        } catch {
          // best effort: the error below is the one to report
        }
      }
      prog.close();
      this.#prog = null;
      throw e instanceof AegisError ? e : asAegisError(e, 'cannot attach the XDP program');
    }
    // map fill for describe(): counting a million adopted entries takes a while; do not hold
    // up the start for a status figure (reconcile and counters() refresh it anyway)
    void Promise.all(BAN_MAPS.map(async (m) => [m, await prog.count(m)] as const)).then(
      (counts) => {
        if (this.#fill.size === 0) for (const [m, n] of counts) this.#fill.set(m, n);
      },
      () => undefined,
    );
  }

  ban(bans: readonly EnforcedBan[]): Promise<void> {
    return this.#serialize(async () => {
      const touched: Holder[] = [];
      const stamp = ++this.#stamp;
      for (let i = 0; i < bans.length; i++) {
        if (i % SLICE === SLICE - 1) await yieldToLoop();
        const b = bans[i]!;
        const r = this.#holders.hold(b);
        if (!r) {
          this.#log?.warn({ enforcer: 'xdp', network: b.network, prefix: b.prefix }, 'xdp: unparsable ban skipped');
          continue;
        }
        if (r.created) this.#bumpFill(r.holder.map, 1);
        if (r.holder.stamp !== stamp) {
          r.holder.stamp = stamp;
          touched.push(r.holder);
        }
      }
      await this.#write(touched);
    });
  }

  unban(bans: readonly EnforcedBan[]): Promise<void> {
    return this.#serialize(async () => {
      const rewrite = new Set<Holder>();
      const remove: Array<Pick<Target, 'prefix' | 'v4' | 'v6' | 'family'>> = [];
      for (let i = 0; i < bans.length; i++) {
        if (i % SLICE === SLICE - 1) await yieldToLoop();
        const b = bans[i]!;
        const r = this.#holders.release(b);
        if (r.kind === 'removed') {
          rewrite.delete(r.holder);
          remove.push({ prefix: r.holder.prefix, v4: r.holder.v4, v6: r.holder.v6, family: r.holder.v6 ? 6 : 4 });
          this.#bumpFill(r.holder.map, -1);
        } else if (r.kind === 'changed') {
          rewrite.add(r.holder);
        } else if (r.kind === 'unknown') {
          remove.push(r.target);
          this.#bumpFill(mapOfTarget(r.target), -1);
        }
      }
      await this.#delete(remove);
      await this.#write([...rewrite]);
    });
  }

  reconfigure(ctx: EnforcerContext): Promise<void> {
    return this.#serialize(async () => {
      this.#allowCount = await syncAllowList(this.#program(), ctx.allow);
    });
  }

  /**
   * The ban table is the truth. Walks each kernel map once, straight over the dump bytes:
   * entries no holder wants are stale (deleted), holders the kernel lacks, or whose kernel
   * entry already ended while the table still bans, are missing (re-added). Expiries that
   * drifted (wall-clock step) are rewritten without counting as drift.
   */
  reconcile(desired: readonly EnforcedBan[]): Promise<DriftReport> {
    return this.#serialize(async () => {
      const prog = this.#program();
      const clock = this.#clock!;
      const gen = ++this.#stamp;
      for (let i = 0; i < desired.length; i++) {
        if (i % SLICE === SLICE - 1) await yieldToLoop();
        this.#holders.holdAt(desired[i]!, gen);
      }
      this.#holders.sweep(gen); // their kernel entries, if any, show up as stale below
      const stamp = ++this.#stamp;
      const conv = clock.converterNs();
      const nowNs = clock.nowNs();
      let missing = 0;
      let stale = 0;
      const toWrite: Holder[] = [];
      for (const map of BAN_MAPS) {
        const dump = await prog.dump(map);
        const size = keySize(map);
        const staleIdx: number[] = [];
        for (let i = 0; i < dump.count; i++) {
          if (i % SLICE === SLICE - 1) await yieldToLoop();
          const h = this.#holders.get(rawEntryKey(map, dump.keys, i));
          if (!h || h.map !== map) {
            staleIdx.push(i);
            continue;
          }
          h.seen = stamp;
          const have = readValueNs(dump.values, i);
          const want = conv(longest(h));
          if (have !== 0 && have <= nowNs && (want === 0 || want > nowNs)) {
            missing++;
            toWrite.push(h);
          } else if ((have === 0) !== (want === 0) || Math.abs(have - want) > EXPIRY_SLACK_NS) {
            toWrite.push(h);
          }
        }
        if (staleIdx.length > 0) {
          const keys = Buffer.alloc(staleIdx.length * size);
          staleIdx.forEach((idx, j) => dump.keys.copy(keys, j * size, idx * size, (idx + 1) * size));
          try {
            await prog.remove(map, keys);
          } catch (e) {
            throw asAegisError(e, `xdp: cannot delete ${staleIdx.length} stale entries from ${map}`);
          }
          stale += staleIdx.length;
        }
      }
      for (const h of this.#holders.values()) {
        if (h.seen !== stamp) {
          missing++;
          toWrite.push(h);
        }
      }
      await this.#write(toWrite);
      for (const m of BAN_MAPS) this.#fill.set(m, 0);
      for (const h of this.#holders.values()) this.#bumpFill(h.map, 1);
      if (missing > 0 || stale > 0)
        this.#log?.warn({ enforcer: 'xdp', missing, stale }, `xdp: kernel maps differed from the ban table: ${missing} missing re-added, ${stale} stale removed`);
      return { missing, stale };
    });
  }

  async counters(): Promise<EnforcerCounters> {
    const prog = this.#prog;
    if (!prog) return {}; // stopped (shutdown in progress): nothing to read
    const slots = this.#addon!.statSlots;
    const s = prog.stats();
    const at = (k: keyof typeof slots): number => s[slots[k]] ?? 0;
    const [b4, b6, c4, c6] = await Promise.all(BAN_MAPS.map((m) => prog.count(m)));
    this.#fill.set(MAP.banV4, b4 ?? 0);
    this.#fill.set(MAP.banV6, b6 ?? 0);
    this.#fill.set(MAP.cidrV4, c4 ?? 0);
    this.#fill.set(MAP.cidrV6, c6 ?? 0);
    return {
      blocklistEntries: { ipv4: (b4 ?? 0) + (c4 ?? 0), ipv6: (b6 ?? 0) + (c6 ?? 0) },
      packets: [
        { protocol: 'ipv4', action: 'pass', value: at('passV4') },
        { protocol: 'ipv4', action: 'drop', value: at('dropV4') },
        { protocol: 'ipv6', action: 'pass', value: at('passV6') },
        { protocol: 'ipv6', action: 'drop', value: at('dropV6') },
      ],
      drops: [
        { reason: 'blocklist', value: at('dropBlocklist') },
        { reason: 'cidr', value: at('dropCidr') },
        { reason: 'rate_limit', value: at('dropRateLimit') },
      ],
      rateLimited: at('dropRateLimit'),
    };
  }

  describe(): Readonly<Record<string, unknown>> {
    const prog = this.#prog;
    const info = prog ? prog.maps() : {};
    const maps: Record<string, { entries: number; maxEntries: number }> = {};
    for (const m of BAN_MAPS) maps[m] = { entries: this.#fill.get(m) ?? 0, maxEntries: info[m]?.maxEntries ?? this.#settings.maxEntries };
    const rl = this.#settings.rateLimit;
    const f = (m: BanMapName): string => `${maps[m]!.entries}/${maps[m]!.maxEntries}`;
    return {
      kind: 'xdp',
      // one-line summaries for `aegis-ban status`; the structured fields follow
      attach: this.#attached.length === 0 ? 'none' : this.#attached.map((a) => `${a.name}:${a.mode}`).join(' '),
      fill: `ipv4 ${f(MAP.banV4)} + prefixes ${f(MAP.cidrV4)}, ipv6 ${f(MAP.banV6)} + prefixes ${f(MAP.cidrV6)}`,
      enforcer: 'xdp',
      loaded: prog !== null,
      programId: prog?.progId ?? null,
      pinPath: this.#settings.pinPath,
      keepAttached: this.#settings.keepAttached,
      interfaces: this.#attached.map((a) => ({ name: a.name, mode: a.mode })),
      maps,
      allowEntries: this.#allowCount,
      rateLimit: rl.enabled && rl.pps > 0 ? { pps: rl.pps, burst: rl.burst } : null,
    };
  }

  stop(): Promise<void> {
    return this.#serialize(async () => {
      const prog = this.#prog;
      if (!prog) return;
      if (!this.#settings.keepAttached) {
        for (const a of this.#attached) {
          try {
            prog.detach(a.name);
          } catch (e) {
            this.#log?.warn({ enforcer: 'xdp', interface: a.name, err: errorMessage(e) }, 'xdp: detach failed');
          }
        }
      }
      this.#attached.length = 0;
      prog.close();
      this.#prog = null;
    });
  }

  /** map fill for describe(): kept from the ban table, re-read from the kernel by counters() */
  #bumpFill(map: BanMapName, delta: number): void {
    this.#fill.set(map, Math.max(0, (this.#fill.get(map) ?? 0) + delta));
  }

  /** write the kernel value (longest expiry) of each holder, one batch per map */
  async #write(holders: readonly Holder[]): Promise<void> {
    if (holders.length === 0) return;
    const prog = this.#program();
    const clock = this.#clock!;
    const byMap = new Map<BanMapName, Holder[]>();
    for (const h of holders) {
      const list = byMap.get(h.map);
      if (list) list.push(h);
      else byMap.set(h.map, [h]);
    }
    for (const [map, hs] of byMap) {
      try {
        await prog.update(map, encodeTargets(map, hs), encodeExpiries(clock, hs.map(longest)));
      } catch (e) {
        throw asAegisError(e, `xdp: cannot write ${hs.length} entries to ${map}`);
      }
    }
  }

  async #delete(targets: ReadonlyArray<Pick<Target, 'prefix' | 'v4' | 'v6' | 'family'>>): Promise<void> {
    if (targets.length === 0) return;
    const prog = this.#program();
    const byMap = new Map<BanMapName, Array<Pick<Target, 'prefix' | 'v4' | 'v6' | 'family'>>>();
    for (const c of targets) {
      const m = mapOfTarget(c);
      const list = byMap.get(m);
      if (list) list.push(c);
      else byMap.set(m, [c]);
    }
    for (const [map, cs] of byMap) {
      try {
        await prog.remove(map, encodeTargets(map, cs));
      } catch (e) {
        throw asAegisError(e, `xdp: cannot delete ${cs.length} entries from ${map}`);
      }
    }
  }
}
