/**
 * journald in: `journalctl -f -o json` as a supervised child. Each entry becomes one log line
 * (journal-format.ts); the `__CURSOR` of the last entry of a batch is saved through
 * positions.setCursor once the batch has been processed, and a restarted child starts
 * `--after-cursor` it: a crash replays at most the batch in flight, and nothing is skipped.
 *
 * Why journalctl and not sd-journal: no native addon to build, and journalctl already does
 * matches, `+` (OR), cursors, rotation and vacuuming. Its output is read with back-pressure:
 * stdout is paused while a batch is pending, so journalctl blocks on the pipe, not we on memory.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { Batch } from '../engine/types.js';
import { fieldText, formatJournalEntry, type JournalEntry } from './journal-format.js';
import { concatOwned } from './line-chunker.js';
import type { LogSource, PositionStore, SourceHooks } from './source.js';

export interface JournalSourceOptions {
  /** `journal:<jail>`: the cursor key in the PositionStore and every Batch's sourceId */
  readonly id: string;
  /** journalmatch terms as journalctl takes them: `FIELD=value`, `+` between OR groups */
  readonly matches: readonly string[];
  readonly positions: PositionStore;
  readonly hooks: SourceHooks;
  readonly journalctl?: string;
  /** read a journal directory instead of the system journal (tests) */
  readonly directory?: string;
  /**
   * With no saved cursor: read entries since this time (epoch seconds) as backlog — fail2ban
   * starts at now - findtime. Without it, only entries written after start() are read.
   */
  readonly since?: number;
  readonly maxLineBytes?: number;
  /** restart delay after journalctl exits: doubles from min to max (ms) */
  readonly restartMinMs?: number;
  readonly restartMaxMs?: number;
}

/** fields read; journalctl adds __CURSOR and the __ timestamps itself */
const FIELDS = [
  'MESSAGE', '_HOSTNAME', 'SYSLOG_IDENTIFIER', '_COMM', 'SYSLOG_PID', '_PID',
  '_SOURCE_REALTIME_TIMESTAMP', '_SOURCE_MONOTONIC_TIMESTAMP',
].join(',');
/** a JSON entry longer than this is skipped (MESSAGE can be megabytes with --all) */
const MAX_ENTRY_JSON = 4 << 20;
/** entries per batch at most */
const MAX_BATCH_LINES = 4096;

type Child = ChildProcessByStdio<null, Readable, Readable>;

export function createJournalSource(opts: JournalSourceOptions): LogSource {
  return new JournalSource(opts);
}

class JournalSource implements LogSource {
  readonly id: string;
  readonly #o: JournalSourceOptions;
  readonly #sourceId: string;
  readonly #maxLine: number;
  #child: Child | null = null;
  #cursor: string | undefined;
  #startedUs = 0;
  #closed = false;
  /** raw stdout chunks not yet parsed */
  #queue: Buffer[] = [];
  #partial: Buffer[] = [];
  #partialLen = 0;
  #skipping = false;
  #working: Promise<void> | null = null;
  #restartTimer: NodeJS.Timeout | null = null;
  #backoff: number;
  #spawnedAt = 0;
  #stderrTail = '';

  constructor(opts: JournalSourceOptions) {
    this.#o = opts;
    this.id = opts.id;
    // the daemon routes journal batches by this id (`journal:<jail>`)
    this.#sourceId = opts.id.startsWith('journal:') ? opts.id : `journal:${opts.id}`;
    this.#maxLine = opts.maxLineBytes ?? 65536;
    this.#backoff = opts.restartMinMs ?? 200;
  }

  files(): readonly string[] {
    return [];
  }

  async start(): Promise<void> {
    this.#cursor = this.#o.positions.getCursor(this.id);
    this.#startedUs = Date.now() * 1000;
    await this.#spawn();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#restartTimer !== null) clearTimeout(this.#restartTimer);
    const child = this.#child;
    this.#child = null;
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('close', () => r()));
      child.kill('SIGTERM');
      await exited;
    }
    // a batch already handed to the engine finishes and saves its cursor; the rest is re-read
    this.#queue = [];
    await this.#working;
  }

  #args(): string[] {
    const a = ['--follow', '--output=json', '--all', '--quiet', '--no-pager', `--output-fields=${FIELDS}`];
    if (this.#o.directory !== undefined) a.push(`--directory=${this.#o.directory}`);
    if (this.#cursor !== undefined) a.push(`--after-cursor=${this.#cursor}`);
    else if (this.#o.since !== undefined) a.push(`--since=@${Math.floor(this.#o.since)}`, '--lines=all');
    else a.push('--lines=0');
    a.push(...this.#o.matches);
    return a;
  }

  #spawn(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#partial = [];
    this.#partialLen = 0;
    this.#skipping = false;
    this.#stderrTail = '';
    const child = spawn(this.#o.journalctl ?? 'journalctl', this.#args(), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '' },
    });
    this.#child = child;
    this.#spawnedAt = Date.now();
    child.stdout.on('data', (chunk: Buffer) => {
      this.#queue.push(chunk);
      // back-pressure: journalctl blocks on a full pipe while we work
      child.stdout.pause();
      this.#kick();
    });
    child.stderr.on('data', (d: Buffer) => {
      this.#stderrTail = (this.#stderrTail + d.toString('utf8')).slice(-500);
    });
    child.once('close', (code, signal) => this.#onExit(child, code, signal));
    return new Promise<void>((resolve) => {
      child.once('spawn', () => resolve());
      child.once('error', (e) => {
        this.#o.hooks.onError('journal', `cannot run journalctl: ${e.message}`);
        resolve();
      });
    });
  }

  #kick(): void {
    if (this.#working !== null) return;
    this.#working = this.#work().finally(() => {
      this.#working = null;
      if (this.#queue.length > 0) this.#kick();
      else if (this.#child !== null && !this.#closed) this.#child.stdout.resume();
    });
  }

  #onExit(child: Child, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#closed || this.#child !== child) return;
    this.#child = null;
    const why = signal !== null ? `signal ${signal}` : `code ${code}`;
    this.#o.hooks.onError('journal', `journalctl exited (${why}): ${this.#stderrTail.trim() || 'no message'}`);
    if (/seek to cursor/i.test(this.#stderrTail) && this.#cursor !== undefined) {
      // a malformed saved cursor would fail every restart: drop it, start as without one
      this.#o.hooks.onError('journal', `saved journal cursor rejected, reading from ${this.#o.since === undefined ? 'now' : 'since'} instead`);
      this.#cursor = undefined;
    }
    if (Date.now() - this.#spawnedAt > 10_000) this.#backoff = this.#o.restartMinMs ?? 200;
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, this.#o.restartMaxMs ?? 30_000);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      // what the old child printed is processed first, so the new one starts after its cursor
      void Promise.resolve(this.#working).then(() => this.#spawn());
    }, delay);
  }

  /** parse queued stdout into entries and deliver them in batches */
  async #work(): Promise<void> {
    while (this.#queue.length > 0 && !this.#closed) {
      const chunk = this.#queue.shift() as Buffer;
      const entries = this.#splitEntries(chunk);
      let lines: Buffer[] = [];
      let count = 0;
      let backlog = false;
      let cursor: string | undefined;
      const flush = async (): Promise<void> => {
        if (count === 0 || cursor === undefined) return;
        const batch: Batch = {
          sourceId: this.#sourceId,
          data: concatOwned(lines),
          lineCount: count,
          readAt: Date.now(),
          isBacklog: backlog,
        };
        const c = cursor;
        lines = [];
        count = 0;
        try {
          await this.#o.hooks.onBatch(batch);
        } catch (e) {
          this.#o.hooks.onError('journal', `batch handler failed: ${(e as Error).message}`);
        }
        this.#cursor = c;
        this.#o.positions.setCursor(this.id, c);
      };
      for (const raw of entries) {
        let e: JournalEntry;
        try {
          e = JSON.parse(raw) as JournalEntry;
        } catch {
          this.#o.hooks.onError('decode', `journalctl printed a line that is not JSON (${raw.length} bytes)`);
          continue;
        }
        // received by journald before we started: backlog (old failures are ignored upstream)
        const isOld = Number(fieldText(e['__REALTIME_TIMESTAMP'])) < this.#startedUs;
        if (count > 0 && isOld !== backlog) await flush();
        backlog = isOld;
        lines.push(this.#lineOf(e));
        count++;
        const c = fieldText(e['__CURSOR']);
        if (c !== '') cursor = c;
        if (count >= MAX_BATCH_LINES) await flush();
      }
      await flush();
    }
  }

  #lineOf(e: JournalEntry): Buffer {
    const line = Buffer.from(formatJournalEntry(e) + '\n', 'utf8');
    if (line.length - 1 <= this.#maxLine) return line;
    this.#o.hooks.onError('line_too_long', `journal entry longer than ${this.#maxLine} bytes cut`);
    const cut = Buffer.allocUnsafe(this.#maxLine + 1);
    line.copy(cut, 0, 0, this.#maxLine);
    cut[this.#maxLine] = 0x0a;
    return cut;
  }

  /** complete JSON lines of this chunk (with what the previous chunk left) */
  #splitEntries(chunk: Buffer): string[] {
    const out: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      if (this.#skipping) {
        this.#skipping = false;
      } else if (this.#partialLen > 0) {
        this.#partial.push(chunk.subarray(start, nl));
        out.push(Buffer.concat(this.#partial).toString('utf8'));
        this.#partial = [];
        this.#partialLen = 0;
      } else if (nl > start) {
        out.push(chunk.toString('utf8', start, nl));
      }
      start = nl + 1;
    }
    if (start < chunk.length && !this.#skipping) {
      this.#partial.push(Buffer.from(chunk.subarray(start)));
      this.#partialLen += chunk.length - start;
      if (this.#partialLen > MAX_ENTRY_JSON) {
        this.#o.hooks.onError('journal', `a journal entry larger than ${MAX_ENTRY_JSON} bytes of JSON was skipped`);
        this.#partial = [];
        this.#partialLen = 0;
        this.#skipping = true;
      }
    }
    return out;
  }
}
