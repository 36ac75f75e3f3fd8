/**
 * One request, one answer over the control socket. The outcome says whether the daemon was
 * reachable at all (aegis-ban exits 3 when it was not) or answered with an error (its code maps
 * to 0/1/2 in cli/exit-codes.ts).
 */
import { createConnection } from 'node:net';
import { ErrorCode } from '../errors.js';
import type { Command, ErrorBody, Request, ResponseByCommand } from './protocol.js';

export type RequestOutcome<C extends Command> =
  | { readonly ok: true; readonly data: ResponseByCommand[C] }
  /** `unreachable`: no answer came (no socket, nobody listening, timeout, cut connection) */
  | { readonly ok: false; readonly error: ErrorBody; readonly unreachable: boolean };

export interface RequestOptions {
  /** whole exchange, connect to answer; default 10 s */
  readonly timeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 10_000;

function unreachable(message: string): { ok: false; error: ErrorBody; unreachable: true } {
  return { ok: false, error: { code: ErrorCode.DAEMON_UNREACHABLE, message }, unreachable: true };
}

function describeConnectError(socketPath: string, e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ENOENT':
      return `daemon not running: no control socket at ${socketPath}`;
    case 'ECONNREFUSED':
      return `daemon not running: nothing listens on ${socketPath}`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied on ${socketPath} (run as root or as a member of the socket's group)`;
    case 'ENOTSOCK':
      return `${socketPath} is not a socket`;
    default:
      return `cannot reach the daemon at ${socketPath}: ${e.code ?? ''} ${e.message}`.replace(/\s+/g, ' ').trim();
  }
}

function isErrorBody(v: unknown): v is ErrorBody {
  return typeof v === 'object' && v !== null && typeof (v as { code?: unknown }).code === 'string' && typeof (v as { message?: unknown }).message === 'string';
}

/** Send `req`, wait for its one-line answer. Never throws. */
export function request<C extends Command>(
  socketPath: string,
  req: Extract<Request, { cmd: C }>,
  options: RequestOptions = {},
): Promise<RequestOutcome<C>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const socket = createConnection({ path: socketPath });
    const finish = (outcome: RequestOutcome<C>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish(unreachable(`no answer from the daemon at ${socketPath} within ${timeoutMs} ms`)), timeoutMs);

    const parse = (line: string): void => {
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        finish({ ok: false, error: { code: ErrorCode.INTERNAL, message: 'the daemon sent an answer that is not JSON' }, unreachable: false });
        return;
      }
      const r = v as { ok?: unknown; data?: unknown; error?: unknown };
      if (typeof v === 'object' && v !== null && r.ok === true) {
        finish({ ok: true, data: r.data as ResponseByCommand[C] });
      } else if (typeof v === 'object' && v !== null && r.ok === false && isErrorBody(r.error)) {
        finish({ ok: false, error: { code: r.error.code, message: r.error.message }, unreachable: false });
      } else {
        finish({ ok: false, error: { code: ErrorCode.INTERNAL, message: 'the daemon sent an answer without "ok"' }, unreachable: false });
      }
    };

    socket.on('connect', () => {
      socket.write(`${JSON.stringify(req)}\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      // Answers can be large (every ban); look for the newline only in the new chunk.
      const nl = chunk.indexOf(10);
      if (nl < 0) {
        chunks.push(chunk);
        return;
      }
      chunks.push(chunk.subarray(0, nl));
      parse(Buffer.concat(chunks).toString('utf8'));
    });
    socket.on('end', () => {
      if (settled) return;
      const rest = Buffer.concat(chunks).toString('utf8');
      if (rest.trim().length > 0) parse(rest);
      else finish(unreachable(`the daemon at ${socketPath} closed the connection without answering`));
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      // An answer may have arrived complete before a reset; the data handler already took it.
      finish(unreachable(describeConnectError(socketPath, e)));
    });
  });
}
