/**
 * Shape validation of control requests. The socket is the daemon's one input that is not a log
 * line or a config file; everything arriving on it is checked here, field by field, before any
 * handler sees it. Bad input is a value (Result), never an exception.
 *
 * Addresses are returned in canonical form (SPEC "Addresses": mapped IPv6 → IPv4, RFC 5952),
 * so handlers can compare strings.
 */
import { ErrorCode, err, ok, type Result } from '../errors.js';
import { parseCidr } from '../net/address.js';
import type { Command, ErrorBody, Request } from './protocol.js';

export const COMMANDS: readonly Command[] = ['ping', 'status', 'ban', 'unban', 'banned', 'reload'];

/** Fields each command accepts besides `cmd` and `id`. Anything else is refused: a typo
 * (`"jails"`, `"ip"` for unban) must not silently widen an unban to every jail. */
const FIELDS: Readonly<Record<Command, readonly string[]>> = {
  ping: [],
  status: ['jail'],
  ban: ['jail', 'ip', 'time'],
  unban: ['ips', 'jail', 'all'],
  banned: ['ip'],
  reload: ['jail'],
};

export const MAX_JAIL_NAME = 200;
export const MAX_ID_LENGTH = 128;
export const MAX_UNBAN_IPS = 10_000;
/** Longest ban a request may ask for (seconds): keeps expiry arithmetic far from any overflow
 * in 32-bit kernel-side fields. -1 (permanent) is the way to ask for longer. */
export const MAX_BAN_SECONDS = 2 ** 31 - 1;

type Invalid = ErrorBody;

function invalid(message: string, code: ErrorCode = ErrorCode.REQUEST_INVALID): { ok: false; error: Invalid } {
  return err({ code, message });
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `a string`;
  return `a ${typeof v}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// C0 controls, DEL and the Unicode line/paragraph separators: none belongs in a jail name, and
// each could forge a log line or a terminal sequence when the name is echoed back.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f\u2028\u2029]/;

/** A jail name as a request may carry it. Existence is the handler's business. */
export function checkJailName(field: string, v: unknown): Result<string, Invalid> {
  if (typeof v !== 'string') return invalid(`"${field}" must be a string, got ${describe(v)}`);
  if (v.length === 0) return invalid(`"${field}" must not be empty`);
  if (v.length > MAX_JAIL_NAME) return invalid(`"${field}" is longer than ${MAX_JAIL_NAME} characters`);
  if (CONTROL_CHARS.test(v)) return invalid(`"${field}" contains control characters`);
  if (v.trim() !== v) return invalid(`"${field}" has leading or trailing whitespace`);
  return ok(v);
}

/** An IP address or CIDR prefix; returns its canonical text. */
export function checkAddress(field: string, v: unknown): Result<string, Invalid> {
  if (typeof v !== 'string') return invalid(`"${field}" must be a string, got ${describe(v)}`);
  // parseCidr bounds its own work, but refuse absurd strings before echoing them in a message.
  const shown = v.length > 60 ? `${JSON.stringify(v.slice(0, 60))}…` : JSON.stringify(v);
  const c = v.length <= 64 ? parseCidr(v) : null;
  if (c === null) return invalid(`${shown} is not an IP address or CIDR prefix`, ErrorCode.ADDRESS_INVALID);
  return ok(c.text);
}

function checkTime(v: unknown): Result<number, Invalid> {
  if (typeof v !== 'number' || !Number.isFinite(v)) return invalid(`"time" must be a finite number of seconds, got ${describe(v)}`);
  if (v === -1) return ok(-1);
  if (v <= 0) return invalid(`"time" must be a positive number of seconds or -1 (permanent), got ${v}`);
  if (v > MAX_BAN_SECONDS) return invalid(`"time" must be at most ${MAX_BAN_SECONDS} seconds (use -1 for permanent), got ${v}`);
  return ok(v);
}

function checkId(v: unknown): Result<string | number, Invalid> {
  if (typeof v === 'string') {
    if (v.length > MAX_ID_LENGTH) return invalid(`"id" is longer than ${MAX_ID_LENGTH} characters`);
    return ok(v);
  }
  if (typeof v === 'number' && Number.isFinite(v)) return ok(v);
  return invalid(`"id" must be a string or a finite number, got ${describe(v)}`);
}

/**
 * The `id` of a parsed line, when it has a usable one, so even an invalid request's error
 * answer can be matched by a client that pipelines.
 */
export function extractId(v: unknown): string | number | undefined {
  if (!isPlainObject(v) || !Object.hasOwn(v, 'id')) return undefined;
  const id = checkId(v.id);
  return id.ok ? id.value : undefined;
}

/** Validate one parsed JSON value as a Request. */
export function validateRequest(v: unknown): Result<Request, Invalid> {
  if (!isPlainObject(v)) return invalid(`a request must be a JSON object, got ${describe(v)}`);
  if (!Object.hasOwn(v, 'cmd')) return invalid('missing "cmd"');
  const cmdValue = v.cmd;
  if (typeof cmdValue !== 'string') return invalid(`"cmd" must be a string, got ${describe(cmdValue)}`);
  const cmd = COMMANDS.find((c) => c === cmdValue);
  if (cmd === undefined) {
    const shown = cmdValue.length > 40 ? `${JSON.stringify(cmdValue.slice(0, 40))}…` : JSON.stringify(cmdValue);
    return invalid(`unknown command ${shown} (known: ${COMMANDS.join(', ')})`);
  }
  const allowed = FIELDS[cmd];
  for (const key of Object.keys(v)) {
    if (key === 'cmd' || key === 'id') continue;
    if (!allowed.includes(key)) {
      const shown = key.length > 40 ? `${JSON.stringify(key.slice(0, 40))}…` : JSON.stringify(key);
      return invalid(`unknown field ${shown} for "${cmd}"${allowed.length > 0 ? ` (accepted: ${allowed.join(', ')})` : ''}`);
    }
  }
  let id: string | number | undefined;
  if (Object.hasOwn(v, 'id')) {
    const r = checkId(v.id);
    if (!r.ok) return r;
    id = r.value;
  }
  const withId = <T extends object>(o: T): T & { id?: string | number } => (id === undefined ? o : { ...o, id });
  const has = (k: string): boolean => Object.hasOwn(v, k) && v[k] !== undefined;

  switch (cmd) {
    case 'ping':
      return ok(withId({ cmd }));
    case 'status':
    case 'reload': {
      if (!has('jail')) return ok(withId({ cmd }));
      const jail = checkJailName('jail', v.jail);
      if (!jail.ok) return jail;
      return ok(withId({ cmd, jail: jail.value }));
    }
    case 'banned': {
      if (!has('ip')) return ok(withId({ cmd }));
      const ip = checkAddress('ip', v.ip);
      if (!ip.ok) return ip;
      return ok(withId({ cmd, ip: ip.value }));
    }
    case 'ban': {
      if (!has('jail')) return invalid('"ban" needs "jail"');
      if (!has('ip')) return invalid('"ban" needs "ip"');
      const jail = checkJailName('jail', v.jail);
      if (!jail.ok) return jail;
      const ip = checkAddress('ip', v.ip);
      if (!ip.ok) return ip;
      if (!has('time')) return ok(withId({ cmd, jail: jail.value, ip: ip.value }));
      const time = checkTime(v.time);
      if (!time.ok) return time;
      return ok(withId({ cmd, jail: jail.value, ip: ip.value, time: time.value }));
    }
    case 'unban': {
      let all = false;
      if (has('all')) {
        if (typeof v.all !== 'boolean') return invalid(`"all" must be a boolean, got ${describe(v.all)}`);
        all = v.all;
      }
      let ips: string[] = [];
      if (has('ips')) {
        const raw = v.ips;
        if (!Array.isArray(raw)) return invalid(`"ips" must be an array of strings, got ${describe(raw)}`);
        if (raw.length > MAX_UNBAN_IPS) return invalid(`"ips" holds more than ${MAX_UNBAN_IPS} entries`);
        for (let i = 0; i < raw.length; i++) {
          const ip = checkAddress(`ips[${i}]`, raw[i]);
          if (!ip.ok) return ip;
          ips.push(ip.value);
        }
        ips = [...new Set(ips)];
      }
      if (all && ips.length > 0) return invalid('"all": true and a non-empty "ips" exclude each other');
      if (!all && ips.length === 0) return invalid('"unban" needs a non-empty "ips" or "all": true');
      let jail: string | undefined;
      if (has('jail')) {
        const j = checkJailName('jail', v.jail);
        if (!j.ok) return j;
        jail = j.value;
      }
      const base = jail === undefined ? { cmd, ips } : { cmd, ips, jail };
      return ok(withId(all ? { ...base, all: true } : base));
    }
  }
}
