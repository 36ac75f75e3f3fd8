/**
 * `[daemon]`, `[metrics]` and `[xdp]` of aegis.conf / aegis.local, as declarative key tables:
 * each key has a parser that returns the value or the reason it is wrong, so every problem is
 * one diagnostic naming file, line, section and key. Relative paths resolve against the
 * process working directory (the demo runs from the repository root with `var/…` paths).
 */
import * as path from 'node:path';
import { ErrorCode } from '../errors.js';
import { parseAddress, parseCidr } from '../net/address.js';
import { type ConfigStore, ConfigFault, NoOptionError, NoSectionError } from './ini.js';
import { closestKey } from './suggest.js';
import type { DaemonSettings, Diagnostic, EnforcerKind, LogLevel, MetricsSettings, XdpSettings } from './types.js';

export const DEFAULT_DAEMON: DaemonSettings = {
  socket: '/run/aegis/aegis.sock',
  socketMode: 0o600,
  socketGroup: null,
  stateDir: '/var/lib/aegis',
  logLevel: 'info',
  enforcer: null,
  interfaces: [],
  dryRun: false,
};
export const DEFAULT_METRICS: MetricsSettings = {
  enabled: true,
  bind: '127.0.0.1',
  port: 9190,
  tokenFile: null,
  allow: [],
  tlsCert: null,
  tlsKey: null,
  rateLimit: null,
};
export const DEFAULT_XDP: XdpSettings = {
  pinPath: '/sys/fs/bpf/aegis',
  maxEntries: 1048576,
  keepAttached: false,
  mode: 'auto',
  rateLimit: { enabled: false, pps: 1000, burst: 2000 },
};

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = (message: string): Parsed<never> => ({ ok: false, message });

const TRUE = ['1', 'on', 'true', 'yes'];
const FALSE = ['0', 'off', 'false', 'no'];
function pBool(v: string): Parsed<boolean> {
  const l = v.trim().toLowerCase();
  if (TRUE.includes(l)) return ok(true);
  if (FALSE.includes(l)) return ok(false);
  return bad(`expected true or false, got ${JSON.stringify(v)}`);
}
function pInt(min: number, max: number, what: string) {
  return (v: string): Parsed<number> => {
    const t = v.trim();
    if (!/^\d+$/.test(t)) return bad(`expected ${what}, got ${JSON.stringify(v)}`);
    const n = Number(t);
    if (n < min || n > max) return bad(`expected ${what}, got ${JSON.stringify(v)}`);
    return ok(n);
  };
}
function pPath(v: string): Parsed<string> {
  const t = v.trim();
  if (!t) return bad('expected a path, got an empty value');
  return ok(path.resolve(t));
}
function pOptPath(v: string): Parsed<string | null> {
  const t = v.trim();
  if (!t) return ok(null);
  return ok(path.resolve(t));
}
function pEnum<T extends string>(values: readonly T[]) {
  return (v: string): Parsed<T> => {
    const t = v.trim().toLowerCase();
    if ((values as readonly string[]).includes(t)) return ok(t as T);
    return bad(`expected one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
  };
}
function pList(v: string): Parsed<string[]> {
  return ok(v.split(/[\s,]+/).filter((s) => s.length > 0));
}

interface KeyDef<S> {
  readonly parse: (v: string) => Parsed<unknown>;
  readonly apply: (s: S, v: unknown) => void;
}
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const DAEMON_KEYS: Record<string, KeyDef<Mutable<DaemonSettings>>> = {
  socket: { parse: pPath, apply: (s, v) => (s.socket = v as string) },
  socket_mode: {
    parse: (v) => (/^0?[0-7]{3}$/.test(v.trim()) ? ok(parseInt(v.trim(), 8)) : bad(`expected an octal mode such as 0600, got ${JSON.stringify(v)}`)),
    apply: (s, v) => (s.socketMode = v as number),
  },
  socket_group: { parse: (v) => ok(v.trim() || null), apply: (s, v) => (s.socketGroup = v as string | null) },
  state_dir: { parse: pPath, apply: (s, v) => (s.stateDir = v as string) },
  log_level: { parse: pEnum<LogLevel>(['trace', 'debug', 'info', 'warn', 'error']), apply: (s, v) => (s.logLevel = v as LogLevel) },
  enforcer: {
    parse: (v) => {
      const t = v.trim().toLowerCase();
      if (t === '' || t === 'auto') return ok(null);
      return pEnum<EnforcerKind>(['xdp', 'nftables', 'action', 'log'])(v);
    },
    apply: (s, v) => (s.enforcer = v as EnforcerKind | null),
  },
  interfaces: { parse: pList, apply: (s, v) => (s.interfaces = v as string[]) },
  dry_run: { parse: pBool, apply: (s, v) => (s.dryRun = v as boolean) },
};

const METRICS_KEYS: Record<string, KeyDef<Mutable<MetricsSettings>>> = {
  enabled: { parse: pBool, apply: (s, v) => (s.enabled = v as boolean) },
  bind: {
    parse: (v) => (parseAddress(v.trim()) ? ok(v.trim()) : bad(`expected an IP address, got ${JSON.stringify(v)}`)),
    apply: (s, v) => (s.bind = v as string),
  },
  port: { parse: pInt(1, 65535, 'a port from 1 to 65535'), apply: (s, v) => (s.port = v as number) },
  token_file: { parse: pOptPath, apply: (s, v) => (s.tokenFile = v as string | null) },
  allow: {
    parse: (v) => {
      const list = v.split(/[\s,]+/).filter((x) => x.length > 0);
      for (const c of list) if (!parseCidr(c)) return bad(`${JSON.stringify(c)} is not an IP address or CIDR prefix`);
      return ok(list);
    },
    apply: (s, v) => (s.allow = v as string[]),
  },
  tls_cert: { parse: pOptPath, apply: (s, v) => (s.tlsCert = v as string | null) },
  tls_key: { parse: pOptPath, apply: (s, v) => (s.tlsKey = v as string | null) },
  rate_limit: {
    parse: (v) => {
      const t = v.trim().toLowerCase();
      if (t === '' || t === '0' || t === 'off' || t === 'none' || t === 'no') return ok(null);
      return pInt(1, 1_000_000, 'scrapes per minute (a positive integer) or off')(v);
    },
    apply: (s, v) => (s.rateLimit = v as number | null),
  },
};

type XdpBuild = Mutable<Omit<XdpSettings, 'rateLimit'>> & { rateLimit: Mutable<XdpSettings['rateLimit']> };
const XDP_KEYS: Record<string, KeyDef<XdpBuild>> = {
  pin_path: { parse: pPath, apply: (s, v) => (s.pinPath = v as string) },
  max_entries: { parse: pInt(1, 1 << 28, 'a positive integer'), apply: (s, v) => (s.maxEntries = v as number) },
  keep_attached: { parse: pBool, apply: (s, v) => (s.keepAttached = v as boolean) },
  mode: { parse: pEnum(['auto', 'native', 'generic'] as const), apply: (s, v) => (s.mode = v as XdpSettings['mode']) },
  // `rate_limit = true|false`, or a number: the packets per second allowed per source
  rate_limit: {
    parse: (v) => {
      const b = pBool(v);
      if (b.ok) return b;
      const n = pInt(1, 100_000_000, 'true, false or packets per second')(v);
      return n;
    },
    apply: (s, v) => {
      if (typeof v === 'number') {
        s.rateLimit.enabled = true;
        s.rateLimit.pps = v;
      } else s.rateLimit.enabled = v as boolean;
    },
  },
  rate_limit_pps: { parse: pInt(1, 100_000_000, 'a positive integer'), apply: (s, v) => (s.rateLimit.pps = v as number) },
  rate_limit_burst: { parse: pInt(1, 100_000_000, 'a positive integer'), apply: (s, v) => (s.rateLimit.burst = v as number) },
};

function readSection<S>(store: ConfigStore, section: string, keys: Record<string, KeyDef<S>>, target: S, out: Diagnostic[]): void {
  if (!store.hasSection(section)) return;
  for (const key of store.options(section, false)) {
    const e = store.entry(section, key);
    const where = (): Pick<Mutable<Diagnostic>, 'file' | 'line' | 'section' | 'key'> => {
      const w: Pick<Mutable<Diagnostic>, 'file' | 'line' | 'section' | 'key'> = { file: e?.file ?? '', section, key };
      if (e && e.line > 0) w.line = e.line;
      return w;
    };
    const def = keys[key];
    if (!def) {
      const near = closestKey(key, Object.keys(keys));
      out.push({
        severity: 'warning',
        code: ErrorCode.CONFIG_UNKNOWN_KEY,
        ...where(),
        message: near ? `unknown key, ignored; did you mean ${JSON.stringify(near)}?` : 'unknown key, ignored',
      });
      continue;
    }
    let raw: string;
    try {
      raw = store.get(section, key);
    } catch (err) {
      if (err instanceof ConfigFault) {
        out.push(err.diagnostic);
        continue;
      }
      if (err instanceof NoOptionError || err instanceof NoSectionError) continue;
      throw err;
    }
    const r = def.parse(raw);
    if (!r.ok) {
      out.push({ severity: 'error', code: ErrorCode.CONFIG_VALUE, ...where(), message: r.message });
      continue;
    }
    def.apply(target, r.value);
  }
}

export interface DaemonConfig {
  readonly daemon: DaemonSettings;
  readonly metrics: MetricsSettings;
  readonly xdp: XdpSettings;
}

export function readDaemonSettings(store: ConfigStore, out: Diagnostic[]): DaemonConfig {
  const daemon: Mutable<DaemonSettings> = { ...DEFAULT_DAEMON, interfaces: [] };
  const metrics: Mutable<MetricsSettings> = { ...DEFAULT_METRICS, allow: [] };
  const xdp: XdpBuild = { ...DEFAULT_XDP, rateLimit: { ...DEFAULT_XDP.rateLimit } };
  readSection(store, 'daemon', DAEMON_KEYS, daemon, out);
  readSection(store, 'metrics', METRICS_KEYS, metrics, out);
  readSection(store, 'xdp', XDP_KEYS, xdp, out);
  for (const s of store.sectionNames()) {
    if (['daemon', 'metrics', 'xdp', 'INCLUDES'].includes(s)) continue;
    const o = store.sectionOrigin.get(s);
    const near = closestKey(s, ['daemon', 'metrics', 'xdp']);
    const d: Mutable<Diagnostic> = {
      severity: 'warning',
      code: ErrorCode.CONFIG_UNKNOWN_KEY,
      file: o?.file ?? '',
      section: s,
      message: near ? `unknown section, ignored; did you mean [${near}]?` : 'unknown section, ignored (aegis.conf holds [daemon], [metrics] and [xdp])',
    };
    if (o) d.line = o.line;
    out.push(d);
  }
  if ((metrics.tlsCert === null) !== (metrics.tlsKey === null)) {
    const key = metrics.tlsCert === null ? 'tls_cert' : 'tls_key';
    const other = key === 'tls_cert' ? 'tls_key' : 'tls_cert';
    const e = store.entry('metrics', other);
    const d: Mutable<Diagnostic> = {
      severity: 'error',
      code: ErrorCode.CONFIG_MISSING,
      file: e?.file ?? '',
      section: 'metrics',
      key,
      message: `${other} is set but ${key} is not: HTTPS needs both`,
    };
    if (e) d.line = e.line;
    out.push(d);
  }
  return { daemon, metrics, xdp };
}
