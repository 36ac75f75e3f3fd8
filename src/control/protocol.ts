/**
 * The control protocol (documented in the README for other tools): a Unix socket, one JSON
 * object per line each way. Every request has `cmd`; every response has `ok`.
 *
 *   → {"cmd":"status","jail":"sshd"}
 *   ← {"ok":true,"data":{…}}
 *   ← {"ok":false,"error":{"code":"AEGIS_ERR_UNKNOWN_JAIL","message":"no jail named \"x\""}}
 *
 * An optional `id` in a request is echoed in its response.
 */
import type { ErrorCode } from '../errors.js';

/** A ban as shown to users and scripts (SPEC "--json shapes"). */
export interface BanView {
  /** address, or network/prefix for a prefix ban */
  readonly ip: string;
  readonly jail: string;
  /** epoch seconds */
  readonly since: number;
  /** epoch seconds; null when permanent */
  readonly expires: number | null;
  readonly source?: 'auto' | 'manual';
  readonly count?: number;
}

export interface JailStatus {
  readonly jail: string;
  readonly currently_failed: number;
  readonly total_failed: number;
  readonly files: readonly string[];
  readonly currently_banned: number;
  readonly total_banned: number;
  readonly banned: readonly BanView[];
}

export interface StatusSummary {
  readonly jails: ReadonlyArray<{
    readonly jail: string;
    readonly currently_banned: number;
    readonly total_banned: number;
    readonly currently_failed: number;
    readonly total_failed: number;
  }>;
  readonly total_banned: number;
  readonly currently_banned: number;
  readonly enforcer: Readonly<Record<string, unknown>>;
  readonly version: string;
  readonly uptime: number;
  readonly dry_run: boolean;
}

export type Request =
  | { readonly cmd: 'ping'; readonly id?: string | number }
  | { readonly cmd: 'status'; readonly jail?: string; readonly id?: string | number }
  /** time: seconds, -1 permanent; absent = the jail's bantime */
  | { readonly cmd: 'ban'; readonly jail: string; readonly ip: string; readonly time?: number; readonly id?: string | number }
  /** ips empty + all: unban everything */
  | { readonly cmd: 'unban'; readonly ips: readonly string[]; readonly jail?: string; readonly all?: boolean; readonly id?: string | number }
  | { readonly cmd: 'banned'; readonly ip?: string; readonly id?: string | number }
  | { readonly cmd: 'reload'; readonly jail?: string; readonly id?: string | number };

export type Command = Request['cmd'];

export interface ResponseByCommand {
  ping: { readonly pong: true; readonly version: string };
  status: StatusSummary | JailStatus;
  ban: { readonly banned: readonly BanView[] };
  unban: { readonly unbanned: readonly BanView[] };
  banned: readonly BanView[];
  reload: { readonly jails: readonly string[]; readonly warnings: readonly string[] };
}

export interface ErrorBody {
  readonly code: ErrorCode;
  readonly message: string;
}

export type Response<C extends Command = Command> =
  | { readonly ok: true; readonly data: ResponseByCommand[C]; readonly id?: string | number }
  | { readonly ok: false; readonly error: ErrorBody; readonly id?: string | number };

/** Implemented by the daemon; the server calls it after validating the request shape. */
export type Handlers = {
  readonly [C in Command]: (
    req: Extract<Request, { cmd: C }>,
  ) => Promise<{ ok: true; data: ResponseByCommand[C] } | { ok: false; error: ErrorBody }>;
};
