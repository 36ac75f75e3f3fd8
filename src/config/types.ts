/**
 * What config resolution produces: flat, frozen data. Every later stage reads these types and
 * nothing of the INI files. `resolveConfig(dir)` (config/resolve.ts) returns
 * `{ config: ResolvedConfig | null, diagnostics: Diagnostic[] }` — config is null when any
 * diagnostic has severity 'error'.
 */
import type { ErrorCode } from '../errors.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export type EnforcerKind = 'xdp' | 'nftables' | 'action' | 'log';

/** One problem found in a config; printed as one line by formatDiagnostic. */
export interface Diagnostic {
  readonly severity: 'error' | 'warning';
  readonly code: ErrorCode;
  readonly file: string;
  readonly line?: number;
  readonly section?: string;
  readonly key?: string;
  readonly message: string;
}

/** `jail.local:12 [sshd] maxretry: expected a positive integer, got "five"` */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line === undefined ? d.file : `${d.file}:${d.line}`;
  const sec = d.section === undefined ? '' : ` [${d.section}]`;
  const key = d.key === undefined ? '' : ` ${d.key}`;
  return `${where}${sec}${key}: ${d.message}`;
}

/** `[daemon]` of aegis.conf / aegis.local; every field also has an aegisd flag (flag wins). */
export interface DaemonSettings {
  readonly socket: string;
  readonly socketMode: number;
  readonly socketGroup: string | null;
  readonly stateDir: string;
  readonly logLevel: LogLevel;
  /** null: xdp where it can load, else log with a loud warning */
  readonly enforcer: EnforcerKind | null;
  readonly interfaces: readonly string[];
  readonly dryRun: boolean;
}

/** `[metrics]` of aegis.conf */
export interface MetricsSettings {
  readonly enabled: boolean;
  readonly bind: string;
  readonly port: number;
  readonly tokenFile: string | null;
  /** CIDR allowlist; empty = everyone who can reach the socket */
  readonly allow: readonly string[];
  readonly tlsCert: string | null;
  readonly tlsKey: string | null;
  /** scrapes per minute per client address; null = unlimited */
  readonly rateLimit: number | null;
}

/** `[xdp]` of aegis.conf */
export interface XdpSettings {
  readonly pinPath: string;
  /** per family, for the exact and prefix maps */
  readonly maxEntries: number;
  readonly keepAttached: boolean;
  /** attach mode preference; auto = native, falling back to generic */
  readonly mode: 'auto' | 'native' | 'generic';
  /** per-source packet rate limit; off by default */
  readonly rateLimit: { readonly enabled: boolean; readonly pps: number; readonly burst: number };
}

export interface BantimeIncrement {
  readonly enabled: boolean;
  readonly factor: number;
  readonly formula: string | null;
  readonly multipliers: readonly number[];
  /** seconds; null = no cap */
  readonly maxtime: number | null;
  /** seconds; null = none */
  readonly rndtime: number | null;
  readonly overalljails: boolean;
}

/** One action of a jail as fail2ban resolves it: `iptables-multiport[name=x, port="ssh"]`. */
export interface ActionSpec {
  readonly name: string;
  readonly params: Readonly<Record<string, string>>;
}

/**
 * JSON filter (Aegis extension). In a filter file's [Definition]:
 *
 *   jsonhost   = ip                      # dotted path to the failure id (must be an IP); required
 *   jsontime   = time                    # dotted path to the time (epoch s / ms / ISO 8601); default `time`
 *   jsonfail   = event=auth.login.failed
 *                event=admin.operation.unauthorized status=401 path~^/api/v1/admin/
 *   jsonignore = user=healthcheck
 *   jsonfields = user path               # fields copied into the match (like <F-USER>)
 *
 * Each line of jsonfail / jsonignore is one rule; a line matches when all its conditions hold
 * (AND); the filter fails a line when any rule matches (OR) and no jsonignore rule does.
 * Conditions: `path=value` (equality; `a|b|c` = alternatives), `path!=value`, `path~regex`
 * (JavaScript regex on the string value), `path=400..499` (numeric range, inclusive),
 * `path>=N`, `path<=N`, `path?` (field present). Values may be double-quoted to hold spaces.
 * Paths are dotted (`req.remoteAddress`). The host only ever comes from the `jsonhost` field
 * of the parsed object, so text inside other fields can never become the banned host.
 */
export interface JsonCondition {
  readonly path: readonly string[];
  readonly op: 'eq' | 'ne' | 'regex' | 'range' | 'exists';
  /** eq/ne: alternatives; regex: [source]; range: [min, max] as decimal strings */
  readonly values: readonly string[];
}
export interface JsonFilterSpec {
  readonly hostPath: readonly string[];
  readonly timePath: readonly string[];
  readonly fail: readonly (readonly JsonCondition[])[];
  readonly ignore: readonly (readonly JsonCondition[])[];
  readonly fields: readonly string[];
}

/**
 * A filter after `%(x)s` and `<tag>` substitution from the filter file and the jail's
 * `filter = name[k=v]` options. Regexes are in fail2ban (Python) form, as `fail2ban-client -d`
 * prints them; engine/match translates them to JavaScript.
 */
export interface FilterSpec {
  /** `sshd`, or `` for a jail with inline failregex only */
  readonly name: string;
  readonly file: string | null;
  readonly options: Readonly<Record<string, string>>;
  readonly failregex: readonly string[];
  readonly ignoreregex: readonly string[];
  readonly prefregex: string | null;
  readonly datepattern: string | null;
  readonly maxlines: number;
  readonly journalmatch: readonly string[];
  readonly json: JsonFilterSpec | null;
  /** where each failregex line came from, for error messages */
  readonly origin: { readonly file: string; readonly section: string };
  /**
   * Optional (added by engine/match): 1-based line numbers in origin.file of each regex, so a
   * regex that cannot be translated is reported as `file:line`. Loaders fill it when they can.
   */
  readonly regexLines?: {
    readonly failregex?: readonly (number | undefined)[];
    readonly ignoreregex?: readonly (number | undefined)[];
    readonly prefregex?: number;
    readonly datepattern?: number;
  };
}

export interface ResolvedJail {
  readonly name: string;
  readonly enabled: boolean;
  readonly filter: FilterSpec;
  /** globs as written (after interpolation); sources expand them, also later */
  readonly logpath: readonly string[];
  /** `tail` / `head` from the logpath line; fail2ban default is head */
  readonly logpathMode: 'head' | 'tail';
  readonly backend: 'auto' | 'polling' | 'pyinotify' | 'systemd';
  readonly logencoding: string;
  readonly maxretry: number;
  /** seconds */
  readonly findtime: number;
  /** seconds; -1 = permanent */
  readonly bantime: number;
  readonly increment: BantimeIncrement;
  /** IPs and CIDRs as written (hostnames resolved at load, see ignoreHostnames) */
  readonly ignoreip: readonly string[];
  readonly ignoreHostnames: readonly string[];
  readonly ignoreself: boolean;
  readonly ignorecommand: string | null;
  readonly maxmatches: number;
  readonly usedns: 'yes' | 'warn' | 'no' | 'raw';
  readonly banPrefixV4: number;
  readonly banPrefixV6: number;
  readonly actions: readonly ActionSpec[];
  /** where the jail section lives, for messages */
  readonly origin: { readonly file: string; readonly line: number };
}

export interface ResolvedConfig {
  readonly configDir: string;
  readonly daemon: DaemonSettings;
  readonly metrics: MetricsSettings;
  readonly xdp: XdpSettings;
  /** every jail section, enabled or not, in file order */
  readonly jails: readonly ResolvedJail[];
}

export interface ResolveResult {
  readonly config: ResolvedConfig | null;
  readonly diagnostics: readonly Diagnostic[];
}

/**
 * An action.d command action resolved for one jail: `[Definition]` commands after `[Init]`
 * defaults, the jail's `action = name[k=v]` params and `%(x)s` interpolation. `<tag>`s that
 * depend on the ban (`<ip>`, `<F-USER>`, `<bantime>`…) are left in place for the action
 * enforcer to fill per ban. `config/actions.ts` exports
 * `loadAction(configDir, jail, spec): { action: ActionDefinition | null; diagnostics }`.
 */
export interface ActionDefinition {
  readonly name: string;
  readonly file: string;
  /** actionstart, actionstop, actioncheck, actionban, actionunban, actionflush (absent = none) */
  readonly commands: Readonly<Partial<Record<ActionCommand, string>>>;
  /** every [Init] / param value after interpolation, for late `<tag>` substitution */
  readonly tags: Readonly<Record<string, string>>;
  /** `[Init?family=inet6]` overrides, applied for IPv6 bans */
  readonly tagsInet6: Readonly<Record<string, string>>;
}
export type ActionCommand =
  | 'actionstart'
  | 'actionstop'
  | 'actioncheck'
  | 'actionban'
  | 'actionunban'
  | 'actionflush';
