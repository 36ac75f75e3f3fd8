/**
 * Loading the native addon and the BPF object. The addon is optional (built by `npm install`
 * only when clang and libbpf-dev are present), so every failure here is an AegisError with a
 * hint, never a crash at import time.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AegisError, ErrorCode, errorMessage } from '../../errors.js';

/** the package root: dist/enforce/xdp/native.js → ../../.. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const ADDON_PATH = join(ROOT, 'native', 'build', 'Release', 'aegis_xdp.node');
export const OBJECT_PATH = join(ROOT, 'bpf', 'aegis.bpf.o');
export const BUILD_HINT =
  'install clang-14 llvm-14 libbpf-dev libelf-dev zlib1g-dev pkg-config (Debian) and run `npm rebuild aegis` (or `npm install`)';
export const PERMISSION_HINT = 'run aegisd as root, or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (systemd: AmbientCapabilities=)';

/** Shape of the errors the addon throws (libbpf errno carried through). */
export interface NativeError extends Error {
  readonly code?: string;
  readonly errno?: number;
  readonly map?: string;
  readonly mapFull?: boolean;
  readonly maxEntries?: number;
  readonly done?: number;
}

export interface AttachResult {
  readonly ifindex: number;
  readonly mode: 'native' | 'generic';
  /** id of the previous Aegis program this one replaced atomically, or null */
  readonly replaced: number | null;
  /** why native mode failed when auto fell back to generic */
  readonly nativeError?: string;
}

export interface AttachedProgram {
  readonly progId: number;
  readonly name: string;
  readonly mode: 'native' | 'generic' | 'offload';
  readonly ours: boolean;
}

export interface MapInfo {
  readonly maxEntries: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly id?: number;
}

export interface DumpResult {
  readonly count: number;
  readonly keys: Buffer;
  readonly values: Buffer;
}

/** One loaded aegis.bpf.o (see native/src/aegis_xdp.cc). */
export interface NativeProgram {
  readonly progId: number;
  /** maps found pinned and reused (bans survived) */
  readonly adopted: readonly string[];
  readonly notes: readonly string[];
  attach(ifname: string, mode: 'auto' | 'native' | 'generic'): AttachResult;
  detach(ifname: string): boolean;
  query(ifname: string): AttachedProgram | null;
  update(map: string, keys: Buffer, values: Buffer): Promise<number>;
  remove(map: string, keys: Buffer): Promise<number>;
  dump(map: string): Promise<DumpResult>;
  count(map: string): Promise<number>;
  lookup(map: string, key: Buffer): Buffer | null;
  stats(): number[];
  maps(): Record<string, MapInfo>;
  close(): void;
  /** test-only: BPF_PROG_TEST_RUN; duration is mean ns per run */
  _testRun(frame: Buffer, repeat?: number): { retval: number; duration: number };
}

export interface ProgramOptions {
  readonly object: string;
  readonly pinPath: string;
  readonly maxEntries: number;
  readonly rateEntries: number;
  /** 0 = rate limiter off */
  readonly ratePps: number;
  readonly rateBurst: number;
}

export interface NativeAddon {
  readonly Program: new (opts: ProgramOptions) => NativeProgram;
  /** [CLOCK_BOOTTIME ns, CLOCK_REALTIME ns] read back to back */
  clocks(): [bigint, bigint];
  readonly statSlots: Readonly<Record<StatName, number>>;
  readonly libbpfVersion: string;
}

export type StatName =
  | 'passV4'
  | 'dropV4'
  | 'passV6'
  | 'dropV6'
  | 'dropBlocklist'
  | 'dropCidr'
  | 'dropRateLimit'
  | 'passOther'
  | 'allowHit';

export const XDP_PROGRAM_NAME = 'aegis_xdp';

let cached: NativeAddon | AegisError | undefined;

/** The addon, or an AegisError (NATIVE_MISSING) saying how to build it. */
export function loadAddon(): NativeAddon | AegisError {
  if (cached !== undefined) return cached;
  if (process.platform !== 'linux') {
    cached = new AegisError(ErrorCode.NATIVE_MISSING, 'XDP enforcement needs Linux', { hint: 'use --enforcer nftables or log' });
    return cached;
  }
  if (!existsSync(ADDON_PATH)) {
    cached = new AegisError(ErrorCode.NATIVE_MISSING, `XDP addon not built (${ADDON_PATH} missing)`, { hint: BUILD_HINT });
    return cached;
  }
  try {
    cached = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
  } catch (e) {
    cached = new AegisError(ErrorCode.NATIVE_MISSING, `XDP addon failed to load: ${errorMessage(e)}`, { hint: BUILD_HINT, cause: e });
  }
  return cached;
}

/** Effective capabilities of this process allow loading and attaching XDP? */
export function hasBpfPrivileges(): boolean {
  // read the effective set even for uid 0: root in a container or under systemd's
  // CapabilityBoundingSet may lack them
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (!m?.[1]) return false;
    const caps = BigInt(`0x${m[1]}`);
    const has = (bit: number): boolean => (caps & (1n << BigInt(bit))) !== 0n;
    const CAP_NET_ADMIN = 12;
    const CAP_SYS_ADMIN = 21;
    const CAP_BPF = 39;
    return has(CAP_NET_ADMIN) && (has(CAP_BPF) || has(CAP_SYS_ADMIN));
  } catch {
    return typeof process.getuid === 'function' && process.getuid() === 0;
  }
}

/** Cheap check for select.ts and `aegis-ban status`: addon built, object present, privileges. */
export function xdpAvailability(): { ok: true } | { ok: false; reason: string } {
  const addon = loadAddon();
  if (addon instanceof AegisError) return { ok: false, reason: `${addon.message}; ${addon.hint ?? ''}`.trim() };
  if (!existsSync(OBJECT_PATH)) return { ok: false, reason: `BPF object ${OBJECT_PATH} missing; ${BUILD_HINT}` };
  if (!hasBpfPrivileges()) return { ok: false, reason: `not permitted to load BPF; ${PERMISSION_HINT}` };
  return { ok: true };
}
