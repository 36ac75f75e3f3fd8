/**
 * Crash-safe state under --state-dir: active bans, ban history (bantime.increment), log file
 * positions and journal cursors.
 *
 * Layout: `state.json` is a snapshot written by tmp + fsync + rename; `journal.ndjson` holds
 * every change since, one JSON record per line, appended and fdatasync'ed before a change is
 * acknowledged (a ban is logged or shown only after its record is on disk). Start = snapshot +
 * replay; records are idempotent (set / delete by key), so a crash between writing a new
 * snapshot and truncating the journal replays harmlessly. A torn last line is ignored.
 */
import { mkdirSync, readFileSync, existsSync, openSync, writeSync, fsyncSync, closeSync, renameSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { FilePosition, PositionStore } from '../sources/source.js';
import type { Family } from '../net/address.js';
import { jsonNumber, jsonString } from '../json-text.js';

export interface StoredBan {
  readonly jail: string;
  readonly ip: string;
  readonly network: string;
  readonly prefix: number;
  readonly family: Family;
  readonly since: number;
  readonly expires: number | null;
  readonly bantime: number;
  readonly banCount: number;
  readonly source: 'auto' | 'manual';
  readonly fields: Readonly<Record<string, string>>;
}

/** what a ban moves on in the history: its jail's entry and all jails' entry, both last banned `at` */
export interface BanHistoryUpdate {
  readonly jailKey: string;
  readonly jailCount: number;
  readonly allKey: string;
  readonly allCount: number;
  /** epoch s */
  readonly at: number;
}

export interface HistoryEntry {
  /** bans of this address so far */
  readonly count: number;
  /** epoch s of the last ban */
  readonly last: number;
}

type JournalRecord =
  // `h`, `at`: the ban-history entries this ban set (absolute counts, so replaying a record
  // the snapshot already holds changes nothing); one record per ban, not one plus two
  | { t: 'ban'; b: StoredBan; h?: Array<[string, number]>; at?: number }
  | { t: 'unban'; k: string }
  | { t: 'hist'; k: string; h: HistoryEntry }
  | { t: 'pos'; p: FilePosition }
  | { t: 'cur'; id: string; c: string };

interface Snapshot {
  version: 1;
  bans: StoredBan[];
  history: Array<[string, HistoryEntry]>;
  files: FilePosition[];
  cursors: Array<[string, string]>;
}

/** Bound on remembered ban history (bantime.increment); oldest forgotten first. */
export const MAX_HISTORY = 1_000_000;
const COMPACT_BYTES = 16 * 1024 * 1024;

export function banKey(jail: string, network: string, prefix: number): string {
  return `${jail}|${network}/${prefix}`;
}

export class StateStore implements PositionStore {
  readonly #dir: string;
  readonly #bans = new Map<string, StoredBan>();
  readonly #history = new Map<string, HistoryEntry>();
  readonly #files = new Map<string, FilePosition>();
  readonly #cursors = new Map<string, string>();
  #pending: string[] = [];
  readonly #pendingPositions = new Map<string, FilePosition>();
  #journal: FileHandle | null = null;
  #journalBytes = 0;
  #tail: Promise<void> = Promise.resolve();
  #soon: NodeJS.Timeout | null = null;
  #closed = false;
  /** records skipped while loading (torn or unreadable lines) */
  readonly loadWarnings: string[] = [];

  private constructor(dir: string) {
    this.#dir = dir;
  }

  static async open(dir: string): Promise<StateStore> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const s = new StateStore(dir);
    s.#load();
    // Fold what we replayed into a fresh snapshot so the journal starts empty.
    s.#writeSnapshot();
    // O_APPEND: writes land at the end even after a compaction truncates the file
    s.#journal = await open(join(dir, 'journal.ndjson'), 'a', 0o600);
    await s.#journal.truncate(0);
    s.#journalBytes = 0;
    return s;
  }

  #load(): void {
    const snapPath = join(this.#dir, 'state.json');
    if (existsSync(snapPath)) {
      try {
        const snap = JSON.parse(readFileSync(snapPath, 'utf8')) as Snapshot;
        for (const b of snap.bans) this.#bans.set(banKey(b.jail, b.network, b.prefix), b);
        for (const [k, h] of snap.history) this.#history.set(k, h);
        for (const p of snap.files) this.#files.set(p.path, p);
        for (const [id, c] of snap.cursors) this.#cursors.set(id, c);
      } catch (e) {
        this.loadWarnings.push(`${snapPath}: unreadable snapshot ignored (${e instanceof Error ? e.message : String(e)})`);
      }
    }
    const jPath = join(this.#dir, 'journal.ndjson');
    if (existsSync(jPath)) {
      const lines = readFileSync(jPath, 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (line.length === 0) return;
        try {
          this.#apply(JSON.parse(line) as JournalRecord);
        } catch {
          // a torn write at a crash leaves at most the last line incomplete
          if (i < lines.length - 2) this.loadWarnings.push(`${jPath}:${i + 1}: unreadable record skipped`);
        }
      });
    }
  }

  #apply(r: JournalRecord): void {
    switch (r.t) {
      case 'ban':
        this.#bans.set(banKey(r.b.jail, r.b.network, r.b.prefix), r.b);
        if (r.h !== undefined && r.at !== undefined) for (const [k, count] of r.h) this.#setHistory(k, { count, last: r.at });
        break;
      case 'unban':
        this.#bans.delete(r.k);
        break;
      case 'hist':
        this.#setHistory(r.k, r.h);
        break;
      case 'pos':
        this.#files.set(r.p.path, r.p);
        break;
      case 'cur':
        this.#cursors.set(r.id, r.c);
        break;
    }
  }

  #setHistory(k: string, h: HistoryEntry): void {
    this.#history.delete(k);
    this.#history.set(k, h);
    if (this.#history.size > MAX_HISTORY) {
      const oldest = this.#history.keys().next();
      if (!oldest.done) this.#history.delete(oldest.value);
    }
  }

  /** what the snapshot holds, taken at once (entries are replaced on change, never mutated) */
  #snapshot(): Snapshot {
    return {
      version: 1,
      bans: [...this.#bans.values()],
      history: [...this.#history.entries()],
      files: [...this.#files.values()],
      cursors: [...this.#cursors.entries()],
    };
  }

  /** at start and stop: nothing else runs, so it may block */
  #writeSnapshot(): void {
    const tmp = join(this.#dir, 'state.json.tmp');
    const fd = openSync(tmp, 'w', 0o600);
    try {
      for (const chunk of snapshotChunks(this.#snapshot())) writeSync(fd, chunk);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.#publishSnapshot(tmp);
  }

  /**
   * While running (compaction): the same file, written a chunk at a time with the event loop
   * free in between — with a million bans, serialising them takes seconds, which must not
   * stall bans, the control socket or scrapes. Changes made meanwhile wait in #pending (flushes
   * run one at a time and this runs inside one), so truncating the journal afterwards drops
   * only records the snapshot holds.
   */
  async #writeSnapshotAsync(): Promise<void> {
    const tmp = join(this.#dir, 'state.json.tmp');
    const fh = await open(tmp, 'w', 0o600);
    try {
      for (const chunk of snapshotChunks(this.#snapshot())) await fh.write(chunk);
      await fh.sync();
    } finally {
      await fh.close();
    }
    this.#publishSnapshot(tmp);
  }

  #publishSnapshot(tmp: string): void {
    renameSync(tmp, join(this.#dir, 'state.json'));
    const dfd = openSync(this.#dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }

  // ---- reads

  bans(): StoredBan[] {
    return [...this.#bans.values()];
  }
  history(key: string): HistoryEntry | undefined {
    return this.#history.get(key);
  }
  getFile(path: string): FilePosition | undefined {
    return this.#files.get(path);
  }
  listFiles(): FilePosition[] {
    return [...this.#files.values()];
  }
  getCursor(id: string): string | undefined {
    return this.#cursors.get(id);
  }

  // ---- writes (buffered; durable after flush())

  putBan(b: StoredBan): void {
    this.#bans.set(banKey(b.jail, b.network, b.prefix), b);
    this.#pending.push(`{"t":"ban","b":${banJson(b)}}`);
  }
  deleteBan(jail: string, network: string, prefix: number): void {
    const k = banKey(jail, network, prefix);
    if (this.#bans.delete(k)) this.#pending.push(JSON.stringify({ t: 'unban', k }));
  }
  /**
   * A ban (`key` is its banKey) and the two history entries it moves on, as one journal
   * record: a burst of thousands of bans pays one serialisation per ban.
   */
  putBanWithHistory(key: string, b: StoredBan, h: BanHistoryUpdate): void {
    this.#bans.set(key, b);
    this.#setHistory(h.jailKey, { count: h.jailCount, last: h.at });
    if (h.allKey !== h.jailKey) this.#setHistory(h.allKey, { count: h.allCount, last: h.at });
    this.#pending.push(banRecord(b, h));
  }
  putHistory(key: string, h: HistoryEntry): void {
    this.#setHistory(key, h);
    this.#pending.push(JSON.stringify({ t: 'hist', k: key, h }));
  }
  setFile(pos: FilePosition): void {
    this.#files.set(pos.path, pos);
    this.#pendingPositions.set(pos.path, pos);
  }
  setCursor(id: string, cursor: string): void {
    this.#cursors.set(id, cursor);
    this.#pending.push(JSON.stringify({ t: 'cur', id, c: cursor }));
  }

  /**
   * Make everything written so far durable. Flushes run one after another; each writes what
   * is pending when it starts, so a caller's records are on disk when its promise resolves.
   */
  flush(): Promise<void> {
    const run = this.#tail.then(() => this.#doFlush());
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /**
   * Flush within `delayMs` (log positions): a batch of lines does not pay an fsync of its own.
   * After a crash at most that much of the log is read again; bans never wait for this — they
   * call flush() and carry pending positions with them.
   */
  flushSoon(delayMs = 250): void {
    if (this.#soon || this.#closed) return;
    this.#soon = setTimeout(() => {
      this.#soon = null;
      this.flush().catch(() => undefined);
    }, delayMs);
    this.#soon.unref();
  }

  async #doFlush(): Promise<void> {
    const journal = this.#journal;
    if (!journal || this.#closed) return;
    if (this.#pending.length === 0 && this.#pendingPositions.size === 0) return;
    for (const p of this.#pendingPositions.values()) this.#pending.push(JSON.stringify({ t: 'pos', p }));
    this.#pendingPositions.clear();
    const text = this.#pending.join('\n') + '\n';
    this.#pending = [];
    await journal.write(text);
    await journal.datasync();
    this.#journalBytes += Buffer.byteLength(text);
    if (this.#journalBytes > COMPACT_BYTES) await this.#compact();
  }

  async #compact(): Promise<void> {
    await this.#writeSnapshotAsync();
    await this.#journal?.truncate(0);
    await this.#journal?.datasync();
    this.#journalBytes = 0;
  }

  async close(): Promise<void> {
    if (this.#soon) clearTimeout(this.#soon);
    this.#soon = null;
    await this.flush();
    this.#closed = true;
    this.#writeSnapshot();
    await this.#journal?.truncate(0);
    await this.#journal?.close();
    this.#journal = null;
  }
}

/**
 * `JSON.stringify({ t: 'ban', b, h, at })`, written out: thousands of bans a second each pay for
 * one, and the generic serialiser walks 11 keys and a nested array to get there.
 * test/unit/state/store.test.ts replays it and compares it with JSON.stringify.
 */
function banRecord(b: StoredBan, h: BanHistoryUpdate): string {
  const hist = h.allKey === h.jailKey ? `[${jsonString(h.jailKey)},${jsonNumber(h.jailCount)}]` : `[${jsonString(h.jailKey)},${jsonNumber(h.jailCount)}],[${jsonString(h.allKey)},${jsonNumber(h.allCount)}]`;
  return `{"t":"ban","b":${banJson(b)},"h":[${hist}],"at":${jsonNumber(h.at)}}`;
}

/** `JSON.stringify(b)` of a StoredBan's own fields, in their order (journal and snapshot) */
function banJson(b: StoredBan): string {
  let fields = '{}';
  for (const _ in b.fields) {
    fields = JSON.stringify(b.fields);
    break;
  }
  return (
    `{"jail":${jsonString(b.jail)},"ip":${jsonString(b.ip)},"network":${jsonString(b.network)},` +
    `"prefix":${jsonNumber(b.prefix)},"family":${jsonNumber(b.family)},"since":${jsonNumber(b.since)},"expires":${b.expires === null ? 'null' : jsonNumber(b.expires)},` +
    `"bantime":${jsonNumber(b.bantime)},"banCount":${jsonNumber(b.banCount)},"source":${jsonString(b.source)},"fields":${fields}}`
  );
}

/**
 * The snapshot as JSON in pieces of about 256 KiB: a million bans must not need one giant
 * string, nor a million write(2) calls.
 */
function* snapshotChunks(snap: Snapshot): Generator<string> {
  let parts: string[] = ['{"version":1,"bans":['];
  let length = 0;
  const add = (text: string): boolean => {
    parts.push(text);
    length += text.length;
    return length >= 256 * 1024;
  };
  const take = (): string => {
    const chunk = parts.join('');
    parts = [];
    length = 0;
    return chunk;
  };
  let first = true;
  for (const b of snap.bans) {
    if (add((first ? '' : ',') + banJson(b))) yield take();
    first = false;
  }
  add('],"history":[');
  first = true;
  for (const h of snap.history) {
    if (add((first ? '' : ',') + JSON.stringify(h))) yield take();
    first = false;
  }
  add(`],"files":${JSON.stringify(snap.files)},"cursors":${JSON.stringify(snap.cursors)}}`);
  yield take();
}
