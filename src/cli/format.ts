/**
 * Human output of the daemon commands of aegis-ban, plus the small glue they share (global
 * options, one daemon call with the SPEC's error handling). Machine output (--json) is the
 * daemon's data printed as is, reduced to the SPEC's shapes where the SPEC fixes them.
 */
import { request, DEFAULT_TIMEOUT_MS } from '../control/client.js';
import type { BanView, Command, JailStatus, Request, ResponseByCommand, StatusSummary } from '../control/protocol.js';
import { ErrorCode } from '../errors.js';
import { parseCidr } from '../net/address.js';
import { parseDuration } from '../config/time-units.js';
import { ExitCode, exitCodeForError } from './exit-codes.js';
import { fail } from './output.js';

/** Options every aegis-ban command receives from the root. */
export interface GlobalArgs {
  readonly socket: string;
  readonly json: boolean;
}

export const DEFAULT_SOCKET = '/run/aegis/aegis.sock';

/**
 * Send one request; on success return the data, otherwise print the error the SPEC way, set the
 * exit code (3 unreachable, else by error code) and return null.
 */
export async function callDaemon<C extends Command>(
  args: GlobalArgs,
  req: Extract<Request, { cmd: C }>,
  timeoutMs: number = DEFAULT_TIMEOUT_MS,
): Promise<ResponseByCommand[C] | null> {
  const r = await request<C>(args.socket, req, { timeoutMs });
  if (r.ok) return r.data;
  fail({ json: args.json }, r.unreachable ? ExitCode.UNREACHABLE : exitCodeForError(r.error.code), r.error.code, r.error.message);
  return null;
}

/** Usage error found before contacting the daemon: exit 2, one line. */
export function usage(args: Pick<GlobalArgs, 'json'>, message: string, code: ErrorCode = ErrorCode.USAGE): void {
  fail({ json: args.json }, ExitCode.USAGE, code, message);
}

/** Validate an address argument; prints the usage error and returns null when invalid. */
export function addressArg(args: Pick<GlobalArgs, 'json'>, value: string): string | null {
  const c = parseCidr(value);
  if (c === null) {
    usage(args, `${JSON.stringify(value)} is not an IP address or CIDR prefix`, ErrorCode.ADDRESS_INVALID);
    return null;
  }
  return c.text;
}

/** `--time`: plain seconds, a number with s/m/h/d/w (or sums like 1h30m), or -1 (permanent). */
export function parseBanTime(text: string): number | null {
  const t = parseDuration(text);
  if (t === null || !Number.isFinite(t)) return null;
  if (t === -1) return -1;
  if (t <= 0) return null;
  return Math.round(t);
}

/** Exactly the SPEC's ban shape: {"ip","jail","since","expires"}. */
export function banJson(b: BanView): { ip: string; jail: string; since: number; expires: number | null } {
  return { ip: b.ip, jail: b.jail, since: b.since, expires: b.expires };
}

export function jailStatusJson(s: JailStatus): JailStatus {
  return {
    jail: s.jail,
    currently_failed: s.currently_failed,
    total_failed: s.total_failed,
    files: s.files,
    currently_banned: s.currently_banned,
    total_banned: s.total_banned,
    banned: s.banned.map(banJson),
  };
}

export function isJailStatus(v: StatusSummary | JailStatus): v is JailStatus {
  return typeof (v as JailStatus).jail === 'string' && Array.isArray((v as JailStatus).files);
}

/** Epoch seconds → `2026-11-23T11:00:00Z` (UTC, as logs and JSON use). */
export function formatTime(epochSeconds: number | null): string {
  if (epochSeconds === null) return 'never';
  const d = new Date(epochSeconds * 1000);
  if (Number.isNaN(d.getTime())) return String(epochSeconds);
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function formatDuration(seconds: number): string {
  if (seconds < 0) return 'permanent';
  let s = Math.floor(seconds);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  if (s > 0 || parts.length === 0) parts.push(`${s}s`);
  return parts.join(' ');
}

/** fail2ban-client's tree: `|- `, `` `- ``, children indented by `|  ` or three spaces. */
function tree(title: string, sections: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, string]>]>): string {
  const out = [title];
  sections.forEach(([name, rows], n) => {
    const last = n === sections.length - 1;
    out.push(`${last ? '`-' : '|-'} ${name}`);
    const indent = last ? '   ' : '|  ';
    rows.forEach(([key, value], m) => {
      out.push(`${indent}${m === rows.length - 1 ? '`-' : '|-'} ${key}:\t${value}`);
    });
  });
  return `${out.join('\n')}\n`;
}

/** The block `fail2ban-client status JAIL` prints, field for field. */
export function formatJailStatus(s: JailStatus): string {
  return tree(`Status for the jail: ${s.jail}`, [
    [
      'Filter',
      [
        ['Currently failed', String(s.currently_failed)],
        ['Total failed', String(s.total_failed)],
        ['File list', s.files.join(' ')],
      ],
    ],
    [
      'Actions',
      [
        ['Currently banned', String(s.currently_banned)],
        ['Total banned', String(s.total_banned)],
        ['Banned IP list', s.banned.map((b) => b.ip).join(' ')],
      ],
    ],
  ]);
}

function describeValue(v: unknown): string {
  if (Array.isArray(v)) return v.map((x) => describeValue(x)).join(',');
  if (v === null || v === undefined) return '-';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** `xdp (interfaces=eth0, mode=native)`: the enforcer's own description, first its kind. */
export function formatEnforcer(e: Readonly<Record<string, unknown>>): string {
  const head = e.kind ?? e.name ?? e.type;
  const rest = Object.entries(e).filter(([k]) => k !== 'kind' && k !== 'name' && k !== 'type');
  const details = rest.map(([k, v]) => `${k}=${describeValue(v)}`).join(', ');
  if (head === undefined) return details.length > 0 ? details : '-';
  return details.length > 0 ? `${describeValue(head)} (${details})` : describeValue(head);
}

/** `fail2ban-client status` plus totals and the enforcer. */
export function formatSummary(s: StatusSummary): string {
  const rows: Array<[string, string]> = [
    ['Number of jail', String(s.jails.length)],
    ['Jail list', s.jails.map((j) => j.jail).join(', ')],
    ['Currently banned', String(s.currently_banned)],
    ['Total banned', String(s.total_banned)],
    ['Enforcer', `${formatEnforcer(s.enforcer)}${s.dry_run ? ' [dry run: nothing enforced]' : ''}`],
    ['Version', s.version],
    ['Uptime', formatDuration(s.uptime)],
  ];
  const out = ['Status'];
  rows.forEach(([k, v], n) => out.push(`${n === rows.length - 1 ? '`-' : '|-'} ${k}:\t${v}`));
  return `${out.join('\n')}\n`;
}

/** Aligned columns, two spaces apart. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

export function formatBans(bans: readonly BanView[]): string {
  return table(
    ['IP', 'JAIL', 'SINCE', 'EXPIRES'],
    bans.map((b) => [b.ip, b.jail, formatTime(b.since), formatTime(b.expires)]),
  );
}
