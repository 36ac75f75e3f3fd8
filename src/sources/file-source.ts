/**
 * The file source: discovers files matching logpath globs (now and later, also in directories
 * that do not exist yet) and follows each with a FileTail.
 *
 * Who notices what: an inotify watch on each directory that can hold matches sees entries
 * created, renamed and deleted at once; each FileTail's inotify watch on the file it reads sees
 * its writes; chokidar, polling every pollIntervalMs, does the initial scan and finds what the
 * watches missed (subdirectories of deeper globs, network filesystems); a poll timer pokes every
 * follower (orphaned descriptors, directories that appear later). Who owns the queue: nobody —
 * each follower reads only while no batch of its own is pending with the engine.
 */
import { watch, type FSWatcher as ChokidarWatcher } from 'chokidar';
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { compileGlob, type CompiledGlob } from './glob.js';
import { FileTail, type Handoff, type TailRegistry, type TruncatedFile } from './file-tail.js';
import type { FilePosition, LogSource, PositionStore, SourceHooks } from './source.js';

export interface FileSourceOptions {
  /**
   * logpath globs; an entry may carry its own mode. One source for all jails reads each file
   * once and keeps one position per file: a file matched by any `head` glob starts at its head
   * (its old lines come as backlog batches, which a `tail` jail can drop).
   */
  readonly globs: readonly (string | FileGlob)[];
  /** where a file never seen before starts, for plain string globs: 'head' (fail2ban's default) or 'tail' */
  readonly mode: 'head' | 'tail';
  readonly positions: PositionStore;
  readonly hooks: SourceHooks;
  /** a longer line is cut to this many bytes (default 65536) */
  readonly maxLineBytes?: number;
  /** largest read, and so largest Batch (default 1 MiB) */
  readonly maxBatchBytes?: number;
  /** safety-net poll (default 1000 ms); chokidar events drive normal reads */
  readonly pollIntervalMs?: number;
  /** how long a deleted or renamed-away file stays open for late writes (default 5000 ms) */
  readonly orphanGraceMs?: number;
  /** source id (default `file:` + the globs) */
  readonly id?: string;
}

export interface FileGlob {
  readonly glob: string;
  readonly mode: 'head' | 'tail';
}

export const DEFAULT_MAX_LINE_BYTES = 65536;
export const DEFAULT_MAX_BATCH_BYTES = 1 << 20;
const MAX_HANDOFFS = 1024;
/** rotated files compressed by logrotate: `app.log*` matches them, but they hold no lines */
const COMPRESSED = /\.(gz|bz2|xz|zst|lz4|lzma|z|zip)$/i;

export function createFileSource(opts: FileSourceOptions): LogSource {
  return new FileSource(opts);
}

class FileSource implements LogSource, TailRegistry {
  readonly id: string;
  readonly #o: FileSourceOptions;
  readonly #globs: CompiledGlob[];
  /** parallel to #globs */
  readonly #modes: Array<'head' | 'tail'>;
  readonly #tails = new Map<string, FileTail>();
  readonly #held = new Map<string, FileTail>();
  readonly #handoffs = new Map<string, Handoff>();
  readonly #watchedBases = new Set<string>();
  readonly #dirWatchers = new Map<string, FSWatcher>();
  #watcher: ChokidarWatcher | null = null;
  #timer: NodeJS.Timeout | null = null;
  #started = false;
  #closed = false;
  #lastFiles = '';
  readonly #saved = new Map<string, FilePosition>();
  readonly #truncated: TruncatedFile[] = [];

  constructor(opts: FileSourceOptions) {
    this.#o = opts;
    const entries = opts.globs.map((g) => (typeof g === 'string' ? { glob: g, mode: opts.mode } : g));
    this.id = opts.id ?? `file:${entries.map((e) => e.glob).join(',')}`;
    this.#globs = entries.map((e) => compileGlob(e.glob));
    this.#modes = entries.map((e) => e.mode);
  }

  files(): readonly string[] {
    return [...this.#tails.values()].filter((t) => t.isOpen).map((t) => t.path).sort();
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    // a snapshot: tails record new positions as they open, and a renamed file must still be
    // found by the identity its old path had when we started
    const all = this.#o.positions.listFiles?.();
    if (all !== undefined) for (const p of all) this.#saved.set(p.path, p);
    const bases = await this.#existingBases();
    bases.forEach((b) => this.#watchedBases.add(b));
    bases.forEach((b) => this.#watchDir(b));
    const poll = this.#o.pollIntervalMs ?? 1000;
    const watcher = watch(bases, {
      persistent: true,
      ignoreInitial: false,
      // chokidar's atomic mode hides unlink+add pairs; FileTail wants to see what happened
      atomic: false,
      // Polling, because chokidar's inotify mode handles every write to every file of a watched
      // directory (a stat and path joins per event: half a core at 300 000 single-line writes/s).
      // Its job here is discovery and the safety net; the fast path is #watchDir (entries
      // created, renamed, deleted) and FileTail's own inotify watch of the file it reads.
      usePolling: true,
      interval: poll,
      binaryInterval: poll,
      depth: Math.max(0, ...this.#globs.map((g) => g.depth)),
      ignored: (p: string) => !this.#globs.some((g) => g.mayContain(p)),
    });
    this.#watcher = watcher;
    watcher.on('add', (p) => {
      this.#watchDir(path.dirname(p));
      this.#onPath(p);
    });
    watcher.on('change', (p) => this.#onPath(p));
    watcher.on('unlink', (p) => void this.#tails.get(p)?.poke());
    watcher.on('addDir', (p) => {
      if (this.#globs.some((g) => g.isLeafDir(p))) this.#watchDir(p);
    });
    watcher.on('unlinkDir', (p) => {
      this.#dirWatchers.get(p)?.close();
      this.#dirWatchers.delete(p);
    });
    watcher.on('error', (e) => this.#o.hooks.onError('read', `watch: ${(e as Error).message}`));
    // chokidar never says ready for an empty path list
    if (bases.length > 0) await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    // files found by the initial scan are pre-existing (their content is backlog): they are
    // opened before start() resolves (a rotation right after cannot slip past unread), but
    // start() does not wait for a backlog of gigabytes to drain
    const initial = [...this.#tails.values()];
    await Promise.all(initial.map((t) => t.prime()));
    for (const t of initial) void t.poke();
    this.#emitFiles();
    const every = this.#o.pollIntervalMs ?? 1000;
    this.#timer = setInterval(() => this.#tick(), every);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    for (const w of this.#dirWatchers.values()) w.close();
    this.#dirWatchers.clear();
    await this.#watcher?.close();
    await Promise.all([...this.#tails.values()].map((t) => t.close()));
    this.#tails.clear();
  }

  // TailRegistry: one tail reads an inode at a time; see file-tail.ts
  holder(key: string): FileTail | undefined {
    return this.#held.get(key);
  }
  hold(key: string, tail: FileTail): void {
    this.#held.set(key, tail);
    this.#emitFiles();
  }
  release(key: string, tail: FileTail, handoff: Handoff): void {
    if (this.#held.get(key) !== tail) return;
    this.#held.delete(key);
    this.#handoffs.set(key, handoff);
    if (this.#handoffs.size > MAX_HANDOFFS) {
      const oldest = this.#handoffs.keys().next().value;
      if (oldest !== undefined) this.#handoffs.delete(oldest);
    }
    this.#emitFiles();
    if (this.#closed) return;
    // a tail may be waiting for exactly this inode
    for (const t of this.#tails.values()) if (t !== tail && !t.isOpen) void t.poke();
  }
  savedFor(path: string): FilePosition | undefined {
    return this.#saved.get(path) ?? this.#o.positions.getFile(path);
  }
  savedByIdentity(dev: number, ino: number, hash: string, path: string): FilePosition | undefined {
    for (const p of this.#saved.values()) {
      if (p.path !== path && p.dev === dev && p.ino === ino && p.firstLineHash === hash) return p;
    }
    return undefined;
  }
  isMatched(p: string): boolean {
    return this.#globs.some((g) => g.matches(p));
  }
  noteTruncated(rec: TruncatedFile): void {
    this.#truncated.push(rec);
    if (this.#truncated.length > 64) this.#truncated.shift();
    if (this.#closed) return;
    // a copy's tail may be waiting for exactly this
    for (const t of this.#tails.values()) if (!t.isOpen) void t.poke();
  }
  truncatedWithHash(hash: string): readonly TruncatedFile[] {
    return this.#truncated.filter((r) => r.hash === hash);
  }
  isFollowingHash(hash: string, except: FileTail): boolean {
    for (const t of this.#tails.values()) if (t !== except && t.isOpen && t.hash === hash) return true;
    return false;
  }
  takeHandoff(key: string): Handoff | undefined {
    const h = this.#handoffs.get(key);
    this.#handoffs.delete(key);
    return h;
  }

  /**
   * inotify on a directory whose files can match: entries created, renamed or deleted there
   * (rotation, a new log) are seen at once. Writes to files come as 'change' and are ignored
   * here with one comparison: the file's own watch handles them.
   */
  #watchDir(dir: string): void {
    if (this.#closed || this.#dirWatchers.has(dir)) return;
    if (!this.#globs.some((g) => g.isLeafDir(dir))) return;
    try {
      const w = fsWatch(dir, { persistent: false }, (event, name) => {
        if (event !== 'rename' || name === null) return;
        this.#onDirEntry(path.join(dir, name.toString()));
      });
      w.on('error', () => {
        w.close();
        this.#dirWatchers.delete(dir);
      });
      this.#dirWatchers.set(dir, w);
    } catch {
      // gone again, or out of inotify watches: chokidar's polling still finds files
    }
  }

  #onDirEntry(p: string): void {
    if (this.#closed) return;
    const tail = this.#tails.get(p);
    if (tail !== undefined) {
      void tail.poke();
      return;
    }
    if (!this.#matches(p)) return;
    // a new entry that matches: a file (not a directory named like one) gets a tail
    void stat(p).then(
      (st) => {
        if (st.isFile() && !this.#closed && !this.#tails.has(p)) void this.#newTail(p).poke();
      },
      () => undefined,
    );
  }

  #onPath(p: string): void {
    if (this.#closed) return;
    const abs = path.resolve(p);
    let tail = this.#tails.get(abs);
    if (tail === undefined) {
      if (!this.#matches(abs)) return;
      tail = this.#newTail(abs);
    }
    // during the initial scan start() pokes them all at once, after chokidar is ready
    if (this.#timer !== null) void tail.poke();
  }

  #matches(p: string): boolean {
    return !COMPRESSED.test(p) && this.#globs.some((g) => g.matches(p));
  }

  #newTail(abs: string): FileTail {
    const tail = new FileTail(
      {
        path: abs,
        mode: this.#globs.some((g, i) => this.#modes[i] === 'head' && g.matches(abs)) ? 'head' : 'tail',
        positions: this.#o.positions,
        hooks: this.#o.hooks,
        registry: this,
        maxLineBytes: this.#o.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
        maxBatchBytes: this.#o.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES,
        orphanGraceMs: this.#o.orphanGraceMs ?? 5000,
      },
      // a file that shows up after start() is new content: read it from its start
      this.#timer !== null,
    );
    this.#tails.set(abs, tail);
    return tail;
  }

  /** glob bases that exist now and are not watched yet (chokidar 5 ignores missing paths) */
  async #existingBases(): Promise<string[]> {
    const out: string[] = [];
    for (const g of this.#globs) {
      if (this.#watchedBases.has(g.base) || out.includes(g.base)) continue;
      try {
        if ((await stat(g.base)).isDirectory()) out.push(g.base);
      } catch {
        // not there yet: the poll tick looks again
      }
    }
    return out;
  }

  async #watchNewBases(): Promise<void> {
    for (const b of await this.#existingBases()) {
      if (this.#closed || this.#watchedBases.has(b)) continue;
      this.#watchedBases.add(b);
      this.#watchDir(b);
      this.#watcher?.add(b);
    }
  }

  #tick(): void {
    if (this.#closed) return;
    void this.#watchNewBases();
    for (const [p, t] of this.#tails) {
      if (t.isGone) this.#tails.delete(p); // else every rotated-away date-named file stays forever
      else void t.poke();
    }
    this.#emitFiles();
  }

  #emitFiles(): void {
    const list = this.files();
    const key = list.join('\0');
    if (key === this.#lastFiles) return;
    this.#lastFiles = key;
    this.#o.hooks.onFiles?.(list);
  }
}
