/**
 * The sources the current jails need, and the routing of their batches to jails.
 *
 * One file source follows the union of every jail's globs (each with its jail's head/tail
 * mode), so a file watched by several jails is read once and has one saved position; each batch
 * is routed to the jails whose globs match its file. Content that existed before we started
 * (backlog) goes only to head-mode jails. A `backend = systemd` jail gets its own journal
 * source, reading back `findtime` when it has no saved cursor. On reload only sources whose inputs changed are re-created; saved positions make a
 * re-created source resume exactly where the old one stopped.
 */
import type { Batch } from '../engine/types.js';
import type { LogSource } from '../sources/source.js';
import { createFileSource } from '../sources/file-source.js';
import { createJournalSource } from '../sources/journal-source.js';
import { compileGlob, type CompiledGlob } from '../sources/glob.js';
import type { StateStore } from '../state/store.js';
import type { Events } from '../events.js';
import type { JailRuntime } from './jails.js';

export interface SourceSetOptions {
  readonly store: StateStore;
  readonly events: Events;
  /** resolves with the number of bans the batch caused, applying it only after `after` */
  readonly process: (jails: readonly JailRuntime[], batch: Batch, after: Promise<unknown>) => Promise<number>;
}

const JOURNAL = 'journal:';
/**
 * Reading a backlog, every batch costs a round trip to the worker threads; 4 MiB batches keep
 * that overhead small (a live append still arrives as a small batch at once).
 */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;

interface Running {
  readonly key: string;
  readonly source: LogSource;
}

export class SourceSet {
  readonly #opts: SourceSetOptions;
  #jails: readonly JailRuntime[] = [];
  #globs = new Map<string, CompiledGlob[]>();
  #routes = new Map<string, JailRuntime[]>();
  #running = new Map<string, Running>();
  /** per source id, the last batch being processed: the next one is applied after it */
  readonly #last = new Map<string, Promise<unknown>>();

  constructor(opts: SourceSetOptions) {
    this.#opts = opts;
  }

  #route(sourceId: string): JailRuntime[] {
    let r = this.#routes.get(sourceId);
    if (!r) {
      if (sourceId.startsWith(JOURNAL)) {
        const name = sourceId.slice(JOURNAL.length);
        r = this.#jails.filter((j) => j.name === name);
      } else {
        r = this.#jails.filter((j) => j.jail.backend !== 'systemd' && (this.#globs.get(j.name) ?? []).some((g) => g.matches(sourceId)));
      }
      // bounded: one entry per file ever routed since the last reload
      if (this.#routes.size > 100_000) this.#routes.clear();
      this.#routes.set(sourceId, r);
    }
    return r;
  }

  /** Follow what `jails` need; start, keep or stop sources accordingly. */
  async apply(jails: readonly JailRuntime[]): Promise<void> {
    this.#jails = jails;
    this.#globs = new Map(jails.map((j) => [j.name, j.jail.logpath.map((p) => compileGlob(p))]));
    this.#routes = new Map();
    const wanted = new Map<string, () => LogSource>();
    const modes = new Map<string, 'head' | 'tail'>();
    for (const j of jails) {
      if (j.jail.backend === 'systemd') continue;
      // a file any head-mode jail watches is read from its start
      for (const g of j.jail.logpath) if (modes.get(g) !== 'head') modes.set(g, j.jail.logpathMode);
    }
    const globs = [...modes].sort(([a], [b]) => a.localeCompare(b)).map(([glob, mode]) => ({ glob, mode }));
    if (globs.length > 0) {
      wanted.set(`file:${JSON.stringify(globs)}`, () =>
        createFileSource({ globs, mode: 'head', positions: this.#opts.store, hooks: this.#hooks(), maxBatchBytes: MAX_BATCH_BYTES }),
      );
    }
    for (const j of jails) {
      if (j.jail.backend !== 'systemd') continue;
      const matches = j.jail.filter.journalmatch;
      wanted.set(`${JOURNAL}${j.name}:${JSON.stringify(matches)}`, () =>
        createJournalSource({
          id: `${JOURNAL}${j.name}`,
          matches,
          since: Date.now() / 1000 - j.jail.findtime,
          positions: this.#opts.store,
          hooks: this.#hooks(),
        }),
      );
    }
    for (const [key, r] of this.#running) {
      if (!wanted.has(key)) {
        await r.source.close();
        this.#running.delete(key);
      }
    }
    for (const [key, make] of wanted) {
      if (this.#running.has(key)) continue;
      const source = make();
      this.#running.set(key, { key, source });
      await source.start();
    }
  }

  #hooks() {
    return {
      onBatch: async (batch: Batch) => {
        let jails = this.#route(batch.sourceId);
        if (batch.isBacklog) jails = jails.filter((j) => j.jail.logpathMode === 'head');
        const id = batch.sourceId;
        const processing = this.#opts.process(jails, batch, this.#last.get(id) ?? Promise.resolve());
        const settled = processing.catch(() => undefined);
        this.#last.set(id, settled);
        void settled.then(() => {
          if (this.#last.get(id) === settled) this.#last.delete(id);
        });
        const banned = await processing;
        // The source saves its position right after this resolves; it becomes durable with the
        // next flush — at once after a batch that banned (so a crash cannot replay the lines
        // that banned), else within 250 ms, not with an fsync per batch.
        if (banned > 0) setImmediate(() => void this.#opts.store.flush().catch(() => undefined));
        else this.#opts.store.flushSoon();
      },
      onError: (kind: string, message: string) => this.#opts.events.sourceError(kind, message),
    };
  }

  filesOf(jail: string): string[] {
    const j = this.#jails.find((x) => x.name === jail);
    if (!j) return [];
    if (j.jail.backend === 'systemd') return j.jail.filter.journalmatch.length > 0 ? [`journal: ${j.jail.filter.journalmatch.join(' ')}`] : ['journal'];
    const globs = this.#globs.get(jail) ?? [];
    const files = new Set<string>();
    for (const r of this.#running.values()) for (const f of r.source.files()) if (globs.some((g) => g.matches(f))) files.add(f);
    return [...files].sort();
  }

  async close(): Promise<void> {
    for (const r of this.#running.values()) await r.source.close();
    this.#running.clear();
  }
}
