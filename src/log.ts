/**
 * pino set-up. JSON lines on stdout. Under systemd (JOURNAL_STREAM set) every line also carries
 * its syslog priority so `journalctl -p warning` filters work.
 * Audit lines (bans, unbans) go through the same logger synchronously: a ban that was logged
 * was logged before the daemon could die. A burst of them (thousands of bans decided from one
 * batch) is written with one write(2) per 256 KiB instead of one per line: `inOneWrite`.
 *
 * How the priority reaches journald: a service's stdout is a stream socket to journald, which
 * reads a `<N>` prefix at the start of each line as that line's syslog priority (SyslogLevelPrefix=,
 * on by default) and strips it. A JSON field named PRIORITY would only be text inside MESSAGE.
 * So under the journal each line is written as `<4>{"level":"warn",…}`.
 *
 * JOURNAL_STREAM is inherited by every child, including ones whose stdout was redirected to a
 * file or pipe, so it alone does not prove stdout is the journal: systemd.exec(5) says to compare
 * its `device:inode` with fstat() of the fd, which is what `isJournalStream` does.
 */
import { fstatSync } from 'node:fs';
import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from './config/types.js';

export type { Logger };

const SYSLOG_PRIORITY: Readonly<Record<string, number>> = {
  trace: 7,
  debug: 7,
  info: 6,
  warn: 4,
  error: 3,
  fatal: 2,
};

/** pino's numeric level → syslog priority (debug 7 … emerg 0). */
export function syslogPriority(levelValue: number): number {
  if (levelValue >= 60) return 2; // fatal → crit
  if (levelValue >= 50) return 3; // error → err
  if (levelValue >= 40) return 4; // warn → warning
  if (levelValue >= 30) return 6; // info → info
  return 7; // debug, trace → debug
}

export interface LoggerOptions {
  readonly level: LogLevel;
  /** default process.stdout (fd 1) */
  readonly destination?: number;
  /**
   * Prefix each line with its `<N>` syslog priority. Default: on when JOURNAL_STREAM names the
   * destination fd (systemd connected it to journald).
   */
  readonly journal?: boolean;
}

/** True when `env` (JOURNAL_STREAM, "device:inode") names the open file behind `fd`. */
export function isJournalStream(fd: number, env: string | undefined = process.env.JOURNAL_STREAM): boolean {
  if (env === undefined) return false;
  const m = /^(\d+):(\d+)$/.exec(env.trim());
  if (!m) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1] as string) && st.ino === BigInt(m[2] as string);
  } catch {
    return false;
  }
}

const NAME = 'aegisd';

export function createLogger(options: LoggerOptions): Logger {
  const fd = options.destination ?? 1;
  const journal = options.journal ?? isJournalStream(fd);
  const sink = new BufferedSink(pino.destination({ dest: fd, sync: true }), journal);
  const logger = pino(
    {
      level: options.level,
      base: { name: NAME },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level(label: string, number: number) {
          return { level: label, levelValue: number };
        },
      },
    },
    sink,
  );
  sinks.set(logger, sink);
  return logger;
}

/** bytes gathered during a burst before they are written */
const BURST_BYTES = 256 * 1024;

/**
 * Writes each line at once (synchronously) unless a burst is open, in which case lines are
 * gathered and written when it closes. Under the journal it writes `<N>` before each line: pino
 * tells a stream the level of the line it is about to write through `lastLevel` when the stream
 * sets the `pino.metadata` symbol.
 */
class BufferedSink implements DestinationStream {
  readonly [key: symbol]: unknown;
  lastLevel = 30;
  #depth = 0;
  /** lines of the open burst (joined once: sonic-boom's own buffering costs more per line) */
  #pending: string[] = [];
  #pendingBytes = 0;
  readonly #out: DestinationStream;
  readonly #journal: boolean;

  constructor(out: DestinationStream, journal: boolean) {
    this.#out = out;
    this.#journal = journal;
    (this as Record<symbol, unknown>)[Symbol.for('pino.metadata')] = true;
  }

  write(line: string): void {
    const text = this.#journal ? `<${syslogPriority(this.lastLevel)}>${line}` : line;
    if (this.#depth === 0) {
      this.#out.write(text);
      return;
    }
    this.#pending.push(text);
    this.#pendingBytes += text.length;
    if (this.#pendingBytes >= BURST_BYTES) this.#flush();
  }

  burst(fn: () => void): void {
    this.#depth++;
    try {
      fn();
    } finally {
      if (--this.#depth === 0) this.#flush();
    }
  }

  #flush(): void {
    if (this.#pending.length === 0) return;
    const text = this.#pending.join('');
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#out.write(text);
  }
}

const sinks = new WeakMap<Logger, BufferedSink>();

/**
 * Run `fn` (synchronous: nothing may wait inside a burst) and write every line it logs with as
 * few writes as possible, all before this returns. Child loggers share their parent's sink only
 * through the parent, so pass the logger `createLogger` returned.
 */
export function inOneWrite(log: Logger, fn: () => void): void {
  const sink = sinks.get(log);
  if (sink) sink.burst(fn);
  else fn();
}

const LEVEL_VALUE = { info: 30, warn: 40 } as const;

let isoMs = NaN;
let isoText = '';
/** pino's isoTime, formatted once per millisecond: a burst of bans shares it */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}

/**
 * `log[level](fields, msg)` for the audit hot path — a burst of thousands of bans or unbans —
 * with the fields rendered by the caller: pino spends ~15 µs on such a line (its generic
 * serialiser, a Date per line), more than the rest of a ban. `body` is the fields as JSON
 * members, each after a comma (`,"event":"ban",…`), `msgJson` the message as a JSON string; the
 * caller keeps pino's rules (fields in order, undefined ones left out). The bytes are those pino
 * writes with the options above: level label and value, ISO time, the base name, the fields,
 * then msg (test/unit/log.test.ts holds the two to each other). A logger not made by
 * createLogger (a child with more bindings) gets the fields parsed back, through pino.
 */
export function logRendered(log: Logger, level: keyof typeof LEVEL_VALUE, body: string, msgJson: string): void {
  const sink = sinks.get(log);
  if (sink === undefined) {
    log[level](JSON.parse(`{${body.slice(1)}}`) as object, JSON.parse(msgJson) as string);
    return;
  }
  if (!log.isLevelEnabled(level)) return;
  sink.lastLevel = LEVEL_VALUE[level];
  sink.write(`{"level":"${level}","levelValue":${LEVEL_VALUE[level]},"time":"${isoNow()}","name":"${NAME}"${body},"msg":${msgJson}}\n`);
}

export { SYSLOG_PRIORITY };
