/** Test helpers: a raw line client over a real Unix socket, temp dirs, a capturing logger. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';

export function tempDir(tag: string): { dir: string; cleanup: () => void } {
  // Short paths: sun_path holds 107 bytes.
  const dir = mkdtempSync(join(tmpdir(), `aeg-${tag}-${process.pid}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CapturedLog {
  readonly log: Logger;
  readonly lines: Array<Record<string, unknown>>;
}

export function captureLog(): CapturedLog {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

/** Reads answers line by line; `closed` resolves when the server closes the connection. */
export class LineClient {
  readonly socket: Socket;
  readonly closed: Promise<void>;
  #buf = '';
  #lines: string[] = [];
  #waiters: Array<(l: string | null) => void> = [];
  #ended = false;

  constructor(path: string) {
    this.socket = createConnection({ path });
    this.socket.setEncoding('utf8');
    this.socket.on('data', (d: string) => {
      this.#buf += d;
      for (let nl = this.#buf.indexOf('\n'); nl >= 0; nl = this.#buf.indexOf('\n')) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        const w = this.#waiters.shift();
        if (w) w(line);
        else this.#lines.push(line);
      }
    });
    this.closed = new Promise((resolve) => {
      const done = (): void => {
        this.#ended = true;
        for (const w of this.#waiters.splice(0)) w(null);
        resolve();
      };
      this.socket.on('close', done);
      this.socket.on('error', () => undefined);
    });
  }

  static async open(path: string): Promise<LineClient> {
    const c = new LineClient(path);
    await new Promise<void>((resolve, reject) => {
      c.socket.once('connect', () => resolve());
      c.socket.once('error', reject);
    });
    return c;
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** next answer line, or null when the connection closed first */
  next(timeoutMs = 5_000): Promise<string | null> {
    const l = this.#lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push((line) => {
        clearTimeout(t);
        resolve(line);
      });
    });
  }

  async json(timeoutMs?: number): Promise<Record<string, unknown>> {
    const l = await this.next(timeoutMs);
    if (l === null) throw new Error('connection closed without an answer');
    return JSON.parse(l) as Record<string, unknown>;
  }

  async ask(req: unknown): Promise<Record<string, unknown>> {
    this.send(`${typeof req === 'string' ? req : JSON.stringify(req)}\n`);
    return this.json();
  }

  close(): void {
    this.socket.destroy();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
