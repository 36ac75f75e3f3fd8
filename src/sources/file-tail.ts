/**
 * Follows one log path through rotations: reads big chunks from a held file descriptor, hands
 * out complete lines as Batches, and notices when the path now names another file (rename +
 * create, delete + recreate) or the file shrank or was rewritten (copytruncate).
 *
 * Why a file descriptor and not re-opening by name: after a rename the old descriptor still
 * reads the old file, so its last lines are drained to EOF before we switch. We switch only
 * once the new file has data: a writer that has not reopened yet is still appending to the
 * old one, and a single writer that wrote to the new file will not write to the old again.
 *
 * Several tails share a registry (one per source) so that with a glob like `app.log*` the tail
 * of `app.log.1` does not read the inode that the tail of `app.log` is still draining: an
 * inode is read by one tail at a time and handed over with its offset. The registry also keeps
 * what a tail had read of a file that was then truncated, so that a copytruncate copy is read
 * from where the original stopped (file-identity.ts, file-recovery.ts).
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { watch, type FSWatcher, type Stats } from 'node:fs';
import type { Batch } from '../engine/types.js';
import type { FilePosition, PositionStore, SourceErrorKind, SourceHooks } from './source.js';
import { concatOwned, LineChunker } from './line-chunker.js';
import { readCopyRemainder, readRotatedRemainder, type RecoveryContext } from './file-recovery.js';
import {
  firstLineHash,
  firstLineHashOf,
  HASH_BYTES,
  hashPrefix,
  hashPrefixSync,
  isCopyOf,
  lastLineStart,
  readTail,
  TAIL_BYTES,
  type TruncatedFile,
} from './file-identity.js';

export type { TruncatedFile } from './file-identity.js';

const MIN_READ = 64 * 1024;
/** under a stream of writes, a read of less than this waits COALESCE_MS before the next */
const COALESCE_BYTES = 256 * 1024;
const COALESCE_MS = 2;
/** how long a new file that looks like a copy of a followed one waits for that one's truncation */
const COPY_WAIT_MS = 2000;
/**
 * Batches of one file handed to onBatch and not yet resolved. With several, the next batches
 * are read (and the engine starts on them) while earlier ones are still being matched and
 * applied: on a backlog the main thread and the worker threads are busy at the same time instead
 * of in turn. Two gave 1.0 M JSON lines/s through the daemon, three or four 1.2–1.4 M (4 MiB
 * batches, 2 cores): with two, a worker's result often waited for a main thread busy with the
 * batch before.
 */
const MAX_IN_FLIGHT = 4;
/** reads at least this big go to a reused shared buffer, not a fresh allocation */
const POOLED_READ = 256 * 1024;

export interface Handoff {
  readonly offset: number;
  readonly hash: string;
  readonly inLongLine?: boolean;
}

export interface TailRegistry {
  holder(key: string): FileTail | undefined;
  hold(key: string, tail: FileTail): void;
  /** `tail` is done with inode `key`; the next tail that opens it resumes at handoff.offset */
  release(key: string, tail: FileTail, handoff: Handoff): void;
  takeHandoff(key: string): Handoff | undefined;
  /** the saved position of a path as it was when the source started */
  savedFor(path: string): FilePosition | undefined;
  /** a saved position of another path with this inode and first line (renamed while stopped) */
  savedByIdentity(dev: number, ino: number, hash: string, path: string): FilePosition | undefined;
  /** true when logpath matches `path` (then its own tail reads it) */
  isMatched(path: string): boolean;
  /** a followed file was truncated (copytruncate): its copy, wherever it appears, resumes at rec */
  noteTruncated(rec: TruncatedFile): void;
  truncatedWithHash(hash: string): readonly TruncatedFile[];
  /** another tail is following a file with this first line (a copy may be in the making) */
  isFollowingHash(hash: string, except: FileTail): boolean;
}

export interface FileTailOptions {
  readonly path: string;
  /** where a file never seen before starts: 'head' = 0, 'tail' = after its last complete line */
  readonly mode: 'head' | 'tail';
  readonly positions: PositionStore;
  readonly hooks: SourceHooks;
  readonly registry: TailRegistry;
  readonly maxLineBytes: number;
  readonly maxBatchBytes: number;
  /** how long a descriptor whose path vanished stays open for late writes */
  readonly orphanGraceMs: number;
}

export const identityKey = (dev: number, ino: number): string => `${dev}:${ino}`;

export class FileTail {
  readonly path: string;
  readonly #o: FileTailOptions;
  readonly #chunker: LineChunker;
  #fh: FileHandle | null = null;
  #dev = 0;
  #ino = 0;
  #hash = '';
  #hashLen = 0;
  /** the file's first bytes as read from offset 0, while its first line is still incomplete */
  #head: Buffer = Buffer.alloc(0);
  /** next byte to read from the descriptor */
  #readPos = 0;
  /** bytes below this existed when we started following the file: batches there are backlog */
  #backlogEnd = 0;
  #knownSize = 0;
  #hashCheckedSize = -1;
  #orphanSince: number | null = null;
  #everOpened = false;
  /** the last delivered bytes, ending at file offset #tailEnd (empty when unknown) */
  #tailBytes: Buffer = Buffer.alloc(0);
  #tailEnd = 0;
  #copyWaitSince: number | null = null;
  #isGone = false;
  #pumping: Promise<void> | null = null;
  /** inotify on the inode we read: chokidar compares mtimes, which swallows writes a few ms apart */
  #watcher: FSWatcher | null = null;
  #again = false;
  #lastReadShort = false;
  #closed = false;
  #lastError = '';
  /** files that appear after the source started are read from their start */
  readonly #late: boolean;
  /** delivered batches not yet resolved, oldest first, with the position each one completes */
  readonly #inFlight: Array<{ readonly done: Promise<void>; readonly pos: FilePosition; readonly lease: SharedArrayBuffer | null }> = [];
  /**
   * Read buffers to reuse. A fresh 4 MiB buffer per read costs more in page faults than the
   * read itself; shared memory lets the worker threads see the batch without a copy.
   */
  readonly #pool: SharedArrayBuffer[] = [];

  constructor(options: FileTailOptions, late: boolean) {
    this.path = options.path;
    this.#o = options;
    this.#late = late;
    this.#chunker = new LineChunker(options.maxLineBytes);
  }

  /** let go after its path vanished: the source forgets it (a file reappearing gets a new tail) */
  get isGone(): boolean {
    return this.#isGone && this.#fh === null && this.#pumping === null;
  }

  get hash(): string {
    return this.#hash;
  }

  get isOpen(): boolean {
    return this.#fh !== null;
  }

  /** something may have changed (chokidar event, poll tick): read, check rotation */
  poke(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#pumping !== null) {
      this.#again = true;
      return this.#pumping;
    }
    this.#pumping = this.#run().finally(() => {
      this.#pumping = null;
    });
    return this.#pumping;
  }

  /**
   * Open the file and choose where to start, without reading yet: the source awaits this for
   * the files found at start, so a rotation right after start() cannot slip past unread.
   */
  async prime(): Promise<void> {
    if (this.#pumping !== null || this.#fh !== null) return;
    this.#pumping = this.#check()
      .then(() => undefined)
      .catch((e: unknown) => this.#report('read', `${this.path}: ${(e as Error).message}`))
      .finally(() => {
        this.#pumping = null;
      });
    await this.#pumping;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#pumping;
    await this.#settle(0);
    await this.#closeFh();
  }

  async #run(): Promise<void> {
    try {
      for (;;) {
        this.#again = false;
        const changed = await this.#check();
        const n = this.#fh === null ? 0 : await this.#drain(false);
        if (this.#closed || (!changed && n === 0 && !this.#again)) return;
        // a stream of small writes: gather for a moment instead of a read (and a batch to the
        // engine) per write; a lone write is read at once, so this costs latency only under load
        if (n > 0 && n < COALESCE_BYTES && this.#again) await new Promise((r) => setTimeout(r, COALESCE_MS));
      }
    } catch (e) {
      // an unexpected failure of this file only; the next poke starts over from the same offset
      this.#report('read', `${this.path}: ${(e as Error).message}`);
    }
  }

  /** returns true when the file changed identity or size in a way that needs a read */
  async #check(): Promise<boolean> {
    let st: Stats;
    try {
      st = await stat(this.path);
    } catch (e) {
      return this.#onStatError(e as NodeJS.ErrnoException);
    }
    if (this.#fh === null) return this.#openPath(st);
    if (st.dev !== this.#dev || st.ino !== this.#ino) {
      if (st.size === 0) {
        // keep reading the old file until the new one has data (its writer may not have
        // reopened yet); but a deleted old file is let go after the grace period, as below
        if ((await this.#fh.stat()).nlink === 0) return this.#onGone();
        return false;
      }
      await this.#drain();
      await this.#abandon('rotated');
      return this.#openPath(st);
    }
    this.#orphanSince = null;
    this.#knownSize = st.size;
    if (st.size < this.#readPos) {
      await this.#restartFromZero('truncated');
      return true;
    }
    if (this.#hash !== '' && st.size !== this.#hashCheckedSize) {
      // copytruncate followed by new writes can leave the file larger than our offset again;
      // a different first line says it is new content: read it from 0
      this.#hashCheckedSize = st.size;
      if ((await hashPrefix(this.#fh, this.#hashLen)) !== this.#hash) {
        await this.#restartFromZero('rewritten');
        return true;
      }
    }
    return st.size > this.#readPos;
  }

  async #onStatError(e: NodeJS.ErrnoException): Promise<boolean> {
    if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') {
      this.#report(e.code === 'EACCES' ? 'permission' : 'read', `${this.path}: ${e.message}`);
      return false;
    }
    return this.#onGone();
  }

  /** the path is gone (deleted or renamed away): keep reading the descriptor for a while */
  async #onGone(): Promise<boolean> {
    if (this.#fh === null) return false;
    this.#orphanSince ??= Date.now();
    if (Date.now() - this.#orphanSince >= this.#o.orphanGraceMs) {
      await this.#drain();
      await this.#abandon('gone');
      this.#isGone = true;
    }
    return false;
  }

  async #restartFromZero(why: 'truncated' | 'rewritten'): Promise<void> {
    const dropped = this.#chunker.reset();
    if (dropped > 0) {
      this.#report('rotation', `${this.path}: ${why}; a partial line of ${dropped} bytes was dropped`);
    }
    // copytruncate: the lines between our last read and the truncation are in the copy, which
    // logrotate has finished before truncating. Read them there (`<path>.1`), or, when logpath
    // matches the copy, let its own tail start where we stopped.
    if (this.#hash !== '' && (this.#tailBytes.length > 0 || this.#tailEnd === 0)) {
      const rec: TruncatedFile = { hash: this.#hash, hashLen: this.#hashLen, offset: this.#tailEnd, tail: this.#tailBytes };
      this.#o.registry.noteTruncated(rec);
      const copy = `${this.path}.1`;
      if (!this.#o.registry.isMatched(copy)) await readCopyRemainder(copy, rec, this.#recoveryContext());
    }
    this.#readPos = 0;
    this.#backlogEnd = 0;
    this.#hash = '';
    this.#hashLen = 0;
    this.#head = Buffer.alloc(0);
    this.#hashCheckedSize = -1;
    this.#tailBytes = Buffer.alloc(0);
    this.#tailEnd = 0;
  }

  /** stop reading the current inode and hand it over with our offset */
  async #abandon(why: 'rotated' | 'gone'): Promise<void> {
    const fh = this.#fh;
    if (fh === null) return;
    const inLongLine = this.#chunker.isDiscarding;
    const dropped = this.#chunker.reset();
    if (dropped > 0) {
      this.#report('rotation', `${this.path}: ${why}; a partial last line of ${dropped} bytes was dropped`);
    }
    this.#o.registry.release(identityKey(this.#dev, this.#ino), this, { offset: this.#readPos, hash: this.#hash, inLongLine });
    this.#fh = null;
    this.#unwatch();
    this.#orphanSince = null;
    await fh.close().catch(() => undefined);
  }

  async #closeFh(): Promise<void> {
    const fh = this.#fh;
    if (fh === null) return;
    this.#o.registry.release(identityKey(this.#dev, this.#ino), this, {
      offset: this.#readPos - this.#chunker.pending,
      hash: this.#hash,
      inLongLine: this.#chunker.isDiscarding,
    });
    this.#fh = null;
    this.#unwatch();
    await fh.close().catch(() => undefined);
  }

  /** open the file now at our path and choose where to start; false if it must wait */
  async #openPath(seen: Stats): Promise<boolean> {
    if (!seen.isFile()) {
      // a FIFO would block open() (and a libuv thread) until a writer comes; devices never end
      this.#report('read', `${this.path}: not a regular file, not followed`);
      return false;
    }
    const key = identityKey(seen.dev, seen.ino);
    const holder = this.#o.registry.holder(key);
    if (holder !== undefined && holder !== this) {
      void holder.poke(); // it drains the inode to EOF and hands it over, then we are poked
      return false;
    }
    let fh: FileHandle;
    try {
      fh = await open(this.path, 'r');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code !== 'ENOENT') {
        this.#report(err.code === 'EACCES' ? 'permission' : 'read', `${this.path}: ${err.message}`);
      }
      return false;
    }
    const st = await fh.stat();
    if (identityKey(st.dev, st.ino) !== key && this.#o.registry.holder(identityKey(st.dev, st.ino)) !== undefined) {
      await fh.close(); // replaced between stat and open by a file another tail holds
      return false;
    }
    this.#lastError = '';
    this.#fh = fh;
    this.#unwatch();
    try {
      this.#watcher = watch(this.path, { persistent: false }, () => void this.poke());
      this.#watcher.on('error', () => this.#unwatch());
    } catch {
      // the poll tick still finds new data
    }
    this.#dev = st.dev;
    this.#ino = st.ino;
    this.#knownSize = st.size;
    this.#orphanSince = null;
    this.#chunker.reset();
    const h = await firstLineHash(fh, st.size);
    if (h.hash !== '' && this.#o.registry.isFollowingHash(h.hash, this) && !(await this.#isKnownCopy(fh, st.size, h.hash))) {
      // probably the copy of a followed file that logrotate is about to truncate: wait for that
      // tail to notice the truncation (it leaves a TruncatedFile), else both would read the
      // same lines. A plain copy that is never followed by a truncation is read after a while.
      this.#copyWaitSince ??= Date.now();
      if (Date.now() - this.#copyWaitSince < COPY_WAIT_MS) {
        this.#fh = null;
        this.#unwatch();
        await fh.close().catch(() => undefined);
        return false;
      }
    }
    this.#copyWaitSince = null;
    this.#hash = h.hash;
    this.#hashLen = h.len;
    this.#head = Buffer.alloc(0);
    this.#hashCheckedSize = st.size;
    const { offset, backlogEnd, inLongLine } = await this.#chooseStart(fh, st, h.hash);
    if (inLongLine === true) this.#chunker.startDiscarding();
    this.#everOpened = true;
    this.#readPos = offset;
    this.#tailEnd = offset;
    this.#tailBytes = await readTail(fh, offset);
    this.#backlogEnd = backlogEnd;
    this.#o.registry.hold(identityKey(st.dev, st.ino), this);
    this.#record(offset);
    return true;
  }

  async #isKnownCopy(fh: FileHandle, size: number, hash: string): Promise<boolean> {
    for (const rec of this.#o.registry.truncatedWithHash(hash)) {
      if (rec.offset <= size && (await isCopyOf(fh, size, rec))) return true;
    }
    return false;
  }

  async #chooseStart(
    fh: FileHandle,
    st: Stats,
    hash: string,
  ): Promise<{ offset: number; backlogEnd: number; inLongLine?: boolean | undefined }> {
    const { registry } = this.#o;
    const key = identityKey(st.dev, st.ino);
    const size = st.size;
    // 1. handed over in this run by the tail of another path (rotation inside the glob)
    const handoff = registry.takeHandoff(key);
    if (handoff !== undefined && (handoff.hash === '' || hash === '' || handoff.hash === hash) && handoff.offset <= size) {
      return { offset: handoff.offset, backlogEnd: 0, inLongLine: handoff.inLongLine };
    }
    // a copy of a file we were reading before it was truncated (copytruncate, logpath matching
    // the copy): start where we had stopped in the original
    if (hash !== '') {
      for (const rec of registry.truncatedWithHash(hash)) {
        if (rec.offset <= size && (await isCopyOf(fh, size, rec))) return { offset: rec.offset, backlogEnd: 0 };
      }
    }
    // after a rotation while running, the new file is all fresh content
    if (this.#everOpened) return { offset: 0, backlogEnd: 0 };
    // 2. saved position of this path: same inode and first line, or same first line after a copy
    // the start-time snapshot is only for files found at start; later, the live store is current
    const saved = this.#late ? this.#o.positions.getFile(this.path) : registry.savedFor(this.path);
    if (saved !== undefined && saved.offset <= size) {
      const sameInode = saved.dev === st.dev && saved.ino === st.ino;
      if ((sameInode && (saved.firstLineHash === '' || saved.firstLineHash === hash)) ||
          (!sameInode && saved.firstLineHash !== '' && saved.firstLineHash === hash)) {
        return { offset: saved.offset, backlogEnd: size, inLongLine: saved.inLongLine };
      }
    }
    // 3. saved position of another path with this inode and first line: renamed while stopped
    if (hash !== '' && !this.#late) {
      const moved = registry.savedByIdentity(st.dev, st.ino, hash, this.path);
      if (moved !== undefined && moved.offset <= size) {
        return { offset: moved.offset, backlogEnd: size, inLongLine: moved.inLongLine };
      }
    }
    // 4. never seen (or the path was followed before and now holds another file)
    if (saved !== undefined) {
      const rotated = `${this.path}.1`;
      // when logpath matches it, its own tail resumes it by identity
      if (!registry.isMatched(rotated)) {
        await readRotatedRemainder(rotated, saved, this.#o.positions, this.#recoveryContext());
      }
      return { offset: 0, backlogEnd: size };
    }
    if (this.#late || this.#o.mode === 'head') return { offset: 0, backlogEnd: size };
    return { offset: await lastLineStart(fh, size, this.#o.maxLineBytes), backlogEnd: size };
  }

  #recoveryContext(): RecoveryContext {
    return {
      sourceId: this.path,
      maxLineBytes: this.#o.maxLineBytes,
      maxBatchBytes: this.#o.maxBatchBytes,
      isClosed: () => this.#closed,
      deliver: (batch) => this.#deliver(batch),
      onError: (kind, message) => this.#o.hooks.onError(kind, message),
    };
  }

  async #deliver(batch: Batch): Promise<void> {
    try {
      await this.#o.hooks.onBatch(batch);
    } catch (e) {
      this.#report('read', `${this.path}: batch handler failed: ${(e as Error).message}`);
    }
  }

  /** read and deliver until EOF; returns bytes read */
  /**
   * Read and deliver. `toEof`: until a read returns nothing (before letting a file go);
   * otherwise until a read comes back short, i.e. we caught up with the writer for now.
   */
  async #drain(toEof = true): Promise<number> {
    let total = 0;
    try {
      while (!this.#closed && this.#fh !== null) {
        const n = await this.#readBatch(this.#fh);
        if (n === 0) break;
        total += n;
        if (!toEof && this.#lastReadShort) break;
      }
    } finally {
      // every batch of this drain is done before anything else happens to the file (rotation,
      // truncation, hand-over): positions are recorded in order and never for a file we left
      await this.#settle(0);
      // caught up: live appends are small reads, and a hundred followed files must not each
      // keep a few idle 4 MiB buffers
      this.#pool.length = 0;
    }
    return total;
  }

  /** wait until at most `keep` delivered batches are unresolved, recording their positions */
  async #settle(keep: number): Promise<void> {
    while (this.#inFlight.length > keep) {
      const f = this.#inFlight[0]!;
      await f.done;
      this.#inFlight.shift();
      this.#release(f.lease);
      this.#o.positions.setFile(f.pos);
    }
  }

  /** a read buffer back to the pool, which keeps one more than can be in flight */
  #release(lease: SharedArrayBuffer | null): void {
    if (lease !== null && this.#pool.length < MAX_IN_FLIGHT + 1) this.#pool.push(lease);
  }

  /** a buffer of at least `size` bytes; large ones come from the pool (a lease until resolved) */
  #take(size: number): { buf: Buffer; lease: SharedArrayBuffer | null } {
    if (size < POOLED_READ) return { buf: Buffer.allocUnsafeSlow(size), lease: null };
    const i = this.#pool.findIndex((b) => b.byteLength >= size);
    const sab = i >= 0 ? this.#pool.splice(i, 1)[0]! : new SharedArrayBuffer(Math.max(size, this.#o.maxBatchBytes + this.#o.maxLineBytes));
    return { buf: Buffer.from(sab, 0, sab.byteLength), lease: sab };
  }

  async #readBatch(fh: FileHandle): Promise<number> {
    const max = this.#o.maxBatchBytes;
    const isBacklog = this.#readPos < this.#backlogEnd;
    // size the buffer to what stat said is there: a live append of 100 bytes gets a small buffer
    let want = Math.min(max, Math.max(MIN_READ, this.#knownSize - this.#readPos));
    if (isBacklog) want = Math.min(want, this.#backlogEnd - this.#readPos);
    let lease: SharedArrayBuffer | null = null;
    const { buf, offset } = this.#chunker.allocate(want, (n) => {
      const t = this.#take(n);
      lease = t.lease;
      return t.buf;
    });
    const giveBack = (): void => this.#release(lease);
    const { bytesRead } = await fh.read(buf, offset, want, this.#readPos);
    this.#lastReadShort = bytesRead < want;
    if (bytesRead === 0) {
      giveBack();
      return 0;
    }
    // truncated and rewritten between our check and this read (copytruncate racing us): the
    // bytes are from the middle of new content. The first line tells; read it all from 0.
    if (this.#hash !== '' && hashPrefixSync(fh.fd, this.#hashLen) !== this.#hash) {
      giveBack();
      await this.#settle(0);
      await this.#restartFromZero('rewritten');
      return bytesRead;
    }
    if (this.#hash === '') this.#noteHead(buf.subarray(offset, offset + bytesRead));
    this.#readPos += bytesRead;
    const r = this.#chunker.push(buf, offset + bytesRead);
    if (r.cut > 0) {
      this.#o.hooks.onError(
        'line_too_long',
        `${this.path}: ${r.cut} line(s) longer than ${this.#o.maxLineBytes} bytes cut (before offset ${this.#readPos})`,
      );
    }
    if (r.data === null) {
      giveBack();
      return bytesRead;
    }
    // a few live lines in a big read buffer: hand over a right-sized copy instead
    const small = r.data.length * 4 < buf.length;
    const batch: Batch = {
      sourceId: this.path,
      data: small ? concatOwned([r.data]) : r.data,
      lineCount: null,
      readAt: Date.now(),
      isBacklog,
    };
    if (small) {
      giveBack();
      lease = null;
    }
    this.#noteTail(r.cut > 0 ? null : r.data, this.#readPos - this.#chunker.pending);
    if (this.#hash === '' && this.#readPos > this.#head.length) {
      // we started past the first line (a partial line at open in tail mode): read it back
      const h = await firstLineHash(fh, this.#readPos);
      this.#hash = h.hash;
      this.#hashLen = h.len;
    }
    this.#inFlight.push({ done: this.#deliver(batch), pos: this.#position(this.#readPos - this.#chunker.pending), lease });
    await this.#settle(MAX_IN_FLIGHT - 1);
    return bytesRead;
  }

  /** bytes just read at #readPos: while they continue the file's start, they may complete its first line */
  #noteHead(fresh: Buffer): void {
    if (this.#readPos !== this.#head.length || this.#readPos >= HASH_BYTES) return;
    this.#head = Buffer.concat([this.#head, fresh.subarray(0, HASH_BYTES - this.#readPos)]);
    const h = firstLineHashOf(this.#head);
    if (h.hash === '') return;
    this.#hash = h.hash;
    this.#hashLen = h.len;
    this.#hashCheckedSize = this.#readPos + fresh.length;
    this.#head = Buffer.alloc(0);
  }

  /** remember the last bytes delivered (to recognise a copy of this file after copytruncate) */
  #noteTail(data: Buffer | null, end: number): void {
    if (data === null) {
      this.#tailBytes = Buffer.alloc(0);
      this.#tailEnd = end;
      return;
    }
    const joined = data.length >= TAIL_BYTES || this.#tailEnd !== end - data.length
      ? data.subarray(data.length - Math.min(TAIL_BYTES, data.length))
      : Buffer.concat([this.#tailBytes, data]).subarray(-TAIL_BYTES);
    this.#tailBytes = Buffer.from(joined);
    this.#tailEnd = end;
  }

  #record(offset: number): void {
    this.#o.positions.setFile(this.#position(offset));
  }

  #position(offset: number): FilePosition {
    const base = { path: this.path, dev: this.#dev, ino: this.#ino, firstLineHash: this.#hash, offset };
    return this.#chunker.isDiscarding ? { ...base, inLongLine: true } : base;
  }

  #unwatch(): void {
    this.#watcher?.close();
    this.#watcher = null;
  }

  /** report once per distinct problem, not on every poll */
  #report(kind: SourceErrorKind, message: string): void {
    if (kind !== 'rotation' && message === this.#lastError) return;
    this.#lastError = message;
    this.#o.hooks.onError(kind, message);
  }
}
