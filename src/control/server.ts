/**
 * The control socket: a Unix socket speaking newline-delimited JSON (protocol.ts).
 *
 * Hardening (issue 6 §7), all of it bounded so a misbehaving local client can cost the daemon
 * little: the directory is 0700 when we create it, the socket 0600 (0660 with a group), a line
 * longer than `maxRequestBytes` is answered with an error and the connection closed, each
 * connection has a request rate cap, the number of connections is capped, idle connections are
 * dropped, and a client that writes without reading is paused (its unread answers stay in the
 * kernel buffer, not in our heap). Nothing a client sends can throw out of here: malformed input
 * is an error answer, a handler bug is an AEGIS_ERR_INTERNAL answer plus an error log line.
 */
import { promises as fsp } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { AegisError, ErrorCode, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { ErrorBody, Handlers, Request, Response } from './protocol.js';
import { extractId, validateRequest } from './validate.js';

export interface ControlServerOptions {
  readonly path: string;
  /** socket file mode; default 0o600 (0o660 when `group` is set: group members must be able to connect) */
  readonly mode?: number;
  /** group name or numeric gid given access to the socket (and traverse access to its directory) */
  readonly group?: string | null;
  readonly handlers: Handlers;
  /** longest request line; default 64 KiB */
  readonly maxRequestBytes?: number;
  /** per connection; default 100 (well above any interactive use; a flood is refused early) */
  readonly maxRequestsPerSecond?: number;
  /** default 64 */
  readonly maxConnections?: number;
  /** a connection silent this long is closed; default 60 s */
  readonly idleTimeoutMs?: number;
  /** a handler still running after this is answered AEGIS_ERR_INTERNAL (a hung handler is a
   * bug; without a bound it would hold its connection slot forever); default 300 s */
  readonly handlerTimeoutMs?: number;
  /**
   * Serve only ping, status and banned: for a second socket given to an operators group
   * (Node cannot read a peer's credentials, so read-only access is a separate socket).
   */
  readonly readOnly?: boolean;
  /** called once per refused request or connection (the daemon counts aegis_ratelimited_total{scope="control"}) */
  readonly onRateLimited?: () => void;
  readonly log: Logger;
}

export interface ControlServer {
  readonly path: string;
  /** open connections right now */
  readonly connections: number;
  /** Stop listening, finish the answer in progress on each connection, remove the socket file. */
  close(): Promise<void>;
}

export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024;
export const DEFAULT_MAX_REQUESTS_PER_SECOND = 100;
export const DEFAULT_MAX_CONNECTIONS = 64;
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
export const DEFAULT_HANDLER_TIMEOUT_MS = 300_000;
/** sun_path is 108 bytes on Linux, NUL included */
const MAX_SOCKET_PATH_BYTES = 107;
/** queued lines per connection before we stop reading from it */
const QUEUE_HIGH_WATER = 32;
/** how long close() lets a handler finish before cutting its connection */
const CLOSE_GRACE_MS = 2_000;

const READ_ONLY_COMMANDS: ReadonlySet<string> = new Set(['ping', 'status', 'banned']);

type Outcome = { ok: true; data: unknown } | { ok: false; error: ErrorBody };
type AnyHandler = (req: Request) => Promise<Outcome>;

type Item =
  | { readonly kind: 'line'; readonly text: string; readonly limited: boolean }
  | { readonly kind: 'too-large' };

function errorLine(code: ErrorCode, message: string, id?: string | number): string {
  const r: Response = id === undefined ? { ok: false, error: { code, message } } : { ok: false, error: { code, message }, id };
  return `${JSON.stringify(r)}\n`;
}

/** Resolve a group name through /etc/group (Node has no getgrnam); numeric gids pass through. */
export async function resolveGroup(group: string): Promise<number | null> {
  if (/^\d+$/.test(group)) return Number(group);
  let text: string;
  try {
    text = await fsp.readFile('/etc/group', 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return null;
}

/** Is something answering on this socket path? (ECONNREFUSED = a stale file left by a dead daemon) */
function probe(path: string): Promise<'live' | 'stale' | 'absent' | { error: string }> {
  return new Promise((resolve) => {
    const s = createConnection({ path });
    const done = (v: 'live' | 'stale' | 'absent' | { error: string }): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    // A listener whose backlog is full (a hung daemon) never accepts: that is not stale either.
    const timer = setTimeout(() => done('live'), 1_000);
    s.once('connect', () => done('live'));
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED') done('stale');
      else if (e.code === 'ENOENT') done('absent');
      else done({ error: `${e.code ?? 'error'}: ${e.message}` });
    });
  });
}

async function prepareDirectory(dir: string, gid: number | null, log: Logger): Promise<void> {
  let st;
  try {
    st = await fsp.stat(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new AegisError(ErrorCode.LISTEN, `cannot use control socket directory ${dir}: ${errorMessage(e)}`, { cause: e });
    }
    // Ours: create it closed. With a group, members need to traverse it (x), not list it.
    try {
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
      if (gid !== null) await fsp.chown(dir, -1, gid);
      await fsp.chmod(dir, gid === null ? 0o700 : 0o710);
    } catch (e2) {
      throw new AegisError(ErrorCode.LISTEN, `cannot create control socket directory ${dir}: ${errorMessage(e2)}`, {
        cause: e2,
        hint: 'run aegisd as root, or point --socket into a directory it may write',
      });
    }
    return;
  }
  if (!st.isDirectory()) throw new AegisError(ErrorCode.LISTEN, `control socket directory ${dir} exists and is not a directory`);
  // Someone else's directory (e.g. systemd's RuntimeDirectory): not ours to chmod. Warn when
  // other users could replace the socket with their own.
  if ((st.mode & 0o002) !== 0 && (st.mode & 0o1000) === 0) {
    log.warn({ dir, mode: (st.mode & 0o7777).toString(8) }, 'control socket directory is world-writable: another user could replace the socket');
  }
}

async function removeStale(path: string): Promise<void> {
  let st;
  try {
    st = await fsp.lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new AegisError(ErrorCode.LISTEN, `cannot inspect ${path}: ${errorMessage(e)}`, { cause: e });
  }
  if (!st.isSocket()) {
    throw new AegisError(ErrorCode.LISTEN, `${path} exists and is not a socket; refusing to remove it`, {
      hint: 'remove it yourself or choose another --socket path',
    });
  }
  const state = await probe(path);
  if (state === 'live') {
    throw new AegisError(ErrorCode.LISTEN, `another daemon is already listening on ${path}`, {
      hint: 'stop it first (aegis-ban ping tells whether it answers), or choose another --socket path',
    });
  }
  if (typeof state === 'object') throw new AegisError(ErrorCode.LISTEN, `cannot probe existing socket ${path}: ${state.error}`);
  if (state === 'stale') await fsp.unlink(path).catch(() => undefined);
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      reject(
        new AegisError(ErrorCode.LISTEN, `cannot listen on control socket ${path}: ${e.code ?? ''} ${e.message}`.replace(/\s+/g, ' '), {
          cause: e,
        }),
      );
    };
    server.once('error', onError);
    // The socket file is created by bind() inside listen(), with the process umask. A umask of
    // 0177 closes the window between bind and our chmod (relevant when the directory is shared).
    let previous: number | null = null;
    try {
      previous = process.umask(0o177);
    } catch {
      previous = null; // worker threads cannot change the umask; the chmod below still applies
    }
    try {
      server.listen(path, () => {
        server.off('error', onError);
        resolve();
      });
    } finally {
      if (previous !== null) process.umask(previous);
    }
  });
}

class Connection {
  readonly #socket: Socket;
  readonly #server: ControlServerImpl;
  #chunks: Buffer[] = [];
  #pendingBytes = 0;
  readonly #queue: Item[] = [];
  #busy = false;
  #overflowed = false;
  #closing = false;
  #windowStart = 0;
  #windowCount = 0;
  #warnedRate = false;

  constructor(socket: Socket, server: ControlServerImpl) {
    this.#socket = socket;
    this.#server = server;
    socket.setTimeout(server.idleTimeoutMs);
    socket.on('timeout', () => {
      if (!this.#busy) socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => {
      // The client half-closed: answer what it sent (a last line without its newline too, as
      // `printf '{"cmd":"ping"}' | socat - UNIX-CONNECT:…` sends), then close our side.
      if (!this.#overflowed && this.#chunks.length > 0) {
        const last = Buffer.concat(this.#chunks).toString('utf8');
        this.#chunks = [];
        this.#pendingBytes = 0;
        this.#enqueueLine(last);
      }
      this.#closing = true;
      if (!this.#busy && this.#queue.length === 0) socket.end();
      else void this.#pump();
    });
    socket.on('drain', () => this.#maybeResume());
    socket.on('error', (e: NodeJS.ErrnoException) => {
      server.log.debug({ err: e.code ?? e.message }, 'control connection error');
    });
  }

  /** server shutdown: answer the request in progress, then close */
  shutdown(): void {
    this.#closing = true;
    this.#queue.length = 0;
    if (!this.#busy) this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#overflowed || this.#closing) return;
    const max = this.#server.maxRequestBytes;
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      if (this.#pendingBytes + piece.length > max) return this.#overflow();
      const whole = this.#chunks.length === 0 ? piece : Buffer.concat([...this.#chunks, piece]);
      this.#chunks = [];
      this.#pendingBytes = 0;
      this.#enqueueLine(whole.toString('utf8'));
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.#pendingBytes + rest.length > max) return this.#overflow();
      // Copy: a subarray would pin the whole (up to 64 KiB) chunk for a few trailing bytes.
      this.#chunks.push(Buffer.from(rest));
      this.#pendingBytes += rest.length;
    }
    void this.#pump();
  }

  #overflow(): void {
    this.#overflowed = true;
    this.#chunks = [];
    this.#pendingBytes = 0;
    this.#queue.push({ kind: 'too-large' });
    this.#socket.pause();
    void this.#pump();
  }

  #enqueueLine(text: string): void {
    if (text.trim().length === 0) return; // blank lines (e.g. a bare "\r\n") are not requests
    const now = Date.now();
    if (now - this.#windowStart >= 1_000) {
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    this.#windowCount++;
    const limited = this.#windowCount > this.#server.maxRequestsPerSecond;
    if (limited) {
      this.#server.rateLimited();
      if (!this.#warnedRate) {
        this.#warnedRate = true;
        this.#server.log.warn({ limit: this.#server.maxRequestsPerSecond }, 'control client over its request rate; refusing requests');
      }
    }
    this.#queue.push({ kind: 'line', text, limited });
    if (this.#queue.length >= QUEUE_HIGH_WATER) this.#socket.pause();
  }

  #maybeResume(): void {
    if (this.#overflowed || this.#closing || this.#socket.destroyed) return;
    if (this.#queue.length < QUEUE_HIGH_WATER / 2 && !this.#socket.writableNeedDrain) this.#socket.resume();
  }

  /** Answer queued lines one at a time, so answers come back in request order. */
  async #pump(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      for (let item = this.#queue.shift(); item !== undefined; item = this.#queue.shift()) {
        if (this.#socket.destroyed) return;
        if (item.kind === 'too-large') {
          const socket = this.#socket;
          // Destroy once flushed: with half-open sockets allowed, a client that never closes
          // would otherwise keep the connection (and its slot) until the idle timeout.
          socket.end(errorLine(ErrorCode.REQUEST_TOO_LARGE, `request line longer than ${this.#server.maxRequestBytes} bytes; closing the connection`), () => socket.destroy());
          this.#queue.length = 0;
          return;
        }
        const out = await this.#server.answer(item.text, item.limited);
        if (this.#socket.destroyed) return;
        this.#socket.write(out);
        if (this.#socket.writableNeedDrain) this.#socket.pause();
        else this.#maybeResume();
      }
    } finally {
      this.#busy = false;
      if (this.#closing && this.#queue.length === 0 && !this.#socket.destroyed) this.#socket.end();
    }
  }
}

class ControlServerImpl implements ControlServer {
  readonly path: string;
  readonly log: Logger;
  readonly maxRequestBytes: number;
  readonly maxRequestsPerSecond: number;
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
  readonly #handlerTimeoutMs: number;
  readonly #readOnly: boolean;
  readonly #handlers: Handlers;
  readonly #onRateLimited: (() => void) | undefined;
  readonly #server: Server;
  readonly #live = new Set<Connection>();
  #inode: number | null = null;
  #closed: Promise<void> | null = null;

  constructor(opts: ControlServerOptions) {
    this.path = opts.path;
    this.log = opts.log;
    this.#handlers = opts.handlers;
    this.#onRateLimited = opts.onRateLimited;
    this.maxRequestBytes = opts.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    this.maxRequestsPerSecond = opts.maxRequestsPerSecond ?? DEFAULT_MAX_REQUESTS_PER_SECOND;
    this.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.#readOnly = opts.readOnly ?? false;
    this.#handlerTimeoutMs = opts.handlerTimeoutMs ?? DEFAULT_HANDLER_TIMEOUT_MS;
    this.#server = createServer({ allowHalfOpen: true }, (socket) => this.#accept(socket));
    // After listen, a server error (EMFILE on accept…) must be logged, never thrown.
    this.#server.on('error', (e) => this.log.error({ err: errorMessage(e) }, 'control socket error'));
  }

  get connections(): number {
    return this.#live.size;
  }

  get server(): Server {
    return this.#server;
  }

  setInode(ino: number): void {
    this.#inode = ino;
  }

  rateLimited(): void {
    try {
      this.#onRateLimited?.();
    } catch (e) {
      this.log.error({ err: errorMessage(e) }, 'onRateLimited callback failed');
    }
  }

  #accept(socket: Socket): void {
    if (this.#closed !== null) {
      socket.destroy();
      return;
    }
    if (this.#live.size >= this.maxConnections) {
      this.rateLimited();
      socket.on('error', () => undefined);
      socket.setTimeout(this.idleTimeoutMs, () => socket.destroy());
      socket.end(errorLine(ErrorCode.RATE_LIMITED, `too many control connections (limit ${this.maxConnections})`), () => socket.destroy());
      return;
    }
    const conn = new Connection(socket, this);
    this.#live.add(conn);
    socket.on('close', () => this.#live.delete(conn));
  }

  /** One request line → one answer line (never throws). */
  async answer(text: string, limited: boolean): Promise<string> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return errorLine(ErrorCode.REQUEST_INVALID, 'request is not valid JSON');
    }
    const id = extractId(parsed);
    if (limited) return errorLine(ErrorCode.RATE_LIMITED, `over ${this.maxRequestsPerSecond} requests per second on this connection`, id);
    const v = validateRequest(parsed);
    if (!v.ok) {
      this.log.debug({ code: v.error.code, msg: v.error.message }, 'invalid control request');
      return errorLine(v.error.code, v.error.message, id);
    }
    const req = v.value;
    if (this.#readOnly && !READ_ONLY_COMMANDS.has(req.cmd)) {
      return errorLine(ErrorCode.FORBIDDEN, `"${req.cmd}" is not allowed on this read-only socket; use the main control socket`, id);
    }
    let outcome: Outcome;
    try {
      const handler = this.#handlers[req.cmd] as AnyHandler;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`handler did not finish within ${this.#handlerTimeoutMs} ms`)), this.#handlerTimeoutMs);
      });
      try {
        outcome = await Promise.race([handler(req), timeout]);
      } finally {
        clearTimeout(timer);
      }
    } catch (e) {
      // A handler that throws is a bug: report it, keep the daemon and the connection up.
      this.log.error({ err: e instanceof Error ? { message: e.message, stack: e.stack } : String(e), cmd: req.cmd }, 'control handler failed');
      return errorLine(ErrorCode.INTERNAL, `internal error while handling "${req.cmd}" (see the daemon log)`, id);
    }
    try {
      const body = outcome.ok ? { ok: true, data: outcome.data } : { ok: false, error: outcome.error };
      return `${JSON.stringify(id === undefined ? body : { ...body, id })}\n`;
    } catch (e) {
      this.log.error({ err: errorMessage(e), cmd: req.cmd }, 'control answer not serialisable');
      return errorLine(ErrorCode.INTERNAL, `internal error while answering "${req.cmd}" (see the daemon log)`, id);
    }
  }

  close(): Promise<void> {
    if (this.#closed !== null) return this.#closed;
    this.#closed = (async () => {
      const stopped = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      for (const c of this.#live) c.shutdown();
      const grace = setTimeout(() => {
        for (const c of this.#live) c.destroy();
      }, CLOSE_GRACE_MS);
      await stopped;
      clearTimeout(grace);
      // Remove the socket file only if it is still ours: a newer daemon may own the path now.
      try {
        const st = await fsp.lstat(this.path);
        if (this.#inode === null || st.ino === this.#inode) await fsp.unlink(this.path);
      } catch {
        // already gone
      }
    })();
    return this.#closed;
  }
}

/**
 * Start the control server. Throws AegisError(LISTEN) when the path is unusable or another live
 * daemon answers on it; the daemon turns that into its exit code.
 */
export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const path = opts.path;
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new AegisError(ErrorCode.LISTEN, `control socket path is longer than ${MAX_SOCKET_PATH_BYTES} bytes: ${path}`, {
      hint: 'choose a shorter --socket path',
    });
  }
  let gid: number | null = null;
  if (opts.group !== undefined && opts.group !== null && opts.group !== '') {
    gid = await resolveGroup(opts.group);
    if (gid === null) throw new AegisError(ErrorCode.LISTEN, `control socket group "${opts.group}" does not exist`, { hint: 'create it (groupadd) or unset the socket group' });
  }
  const mode = (opts.mode ?? 0o600) | (gid === null ? 0 : 0o060);
  await prepareDirectory(dirname(path), gid, opts.log);
  await removeStale(path);
  const impl = new ControlServerImpl(opts);
  await listen(impl.server, path);
  try {
    if (gid !== null) await fsp.chown(path, -1, gid);
    await fsp.chmod(path, mode);
    impl.setInode((await fsp.lstat(path)).ino);
  } catch (e) {
    await impl.close();
    throw new AegisError(ErrorCode.LISTEN, `cannot set owner/mode of control socket ${path}: ${errorMessage(e)}`, { cause: e });
  }
  opts.log.info({ path, mode: mode.toString(8), group: opts.group ?? null }, 'control socket listening');
  return impl;
}
