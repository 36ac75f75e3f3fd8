/**
 * Data that crosses the source → engine → bans boundary. Batches carry raw bytes (complete,
 * newline-terminated lines) so that workers can search them for literals before decoding or
 * parsing anything; matches carry only what the window and ban stages need.
 */

/** A run of complete lines read from one source. */
export interface Batch {
  /** stable id of the source: the log file path (as matched by logpath), or `journal:<jail>` */
  readonly sourceId: string;
  /** complete lines, each ending in `\n` (UTF-8) */
  readonly data: Uint8Array;
  /**
   * lines in `data`; null when the source did not count them (the file source: counting a
   * million lines is a tenth of a second of the main thread, and the engine walks them anyway)
   */
  readonly lineCount: number | null;
  /** wall-clock ms when the bytes were read (ban latency starts here) */
  readonly readAt: number;
  /** true while replaying content that existed before the daemon (re)started tailing */
  readonly isBacklog: boolean;
}

/** One failure found by a jail's filter. */
export interface Match {
  readonly jail: string;
  /** failure id as written in the log (<F-ID> / <HOST> capture) */
  readonly host: string;
  /** log time, epoch seconds (float); the read time when the line has no date */
  readonly time: number;
  /** captures by lower-case name without `F-` (user, …) */
  readonly fields: Readonly<Record<string, string>>;
  /** index of the line inside its batch */
  readonly line: number;
  readonly readAt: number;
}

/**
 * The result of one line through a filter (engine/match/filter.ts). A matcher is stateful only
 * for multi-line filters (maxlines > 1), whose buffer lives with the matcher.
 */
export type LineOutcome =
  | { readonly kind: 'miss' }
  /** matched a failregex but an ignoreregex hid it */
  | { readonly kind: 'ignored' }
  /** a multi-line buffer is still incomplete, or an <F-NOFAIL> line */
  | { readonly kind: 'pending' }
  | {
      readonly kind: 'fail';
      readonly host: string;
      /** epoch seconds, null when the line had no date */
      readonly time: number | null;
      readonly fields: Readonly<Record<string, string>>;
      /** which failregex matched (0-based), -1 for a JSON rule */
      readonly regexIndex: number;
      /** how many failures this line stands for (fail2ban `attempts`, usually 1) */
      readonly attempts: number;
    };

export interface LineMatcher {
  match(line: string): LineOutcome;
  /** the date template that matched last, for `aegis-ban regex` reports */
  readonly dateTemplate: string | null;
}

export interface MatcherOptions {
  /** "now" in epoch seconds, for year inference and lines without a date */
  readonly now: () => number;
  /** IANA zone for dates without one; default process TZ */
  readonly timezone?: string;
}

export interface CompiledFilter {
  /**
   * If non-null, a line can only fail (or be ignored) when it contains at least one of these
   * byte strings: the engine searches raw buffers for them before decoding any line.
   */
  readonly literals: readonly string[] | null;
  readonly isMultiline: boolean;
  createMatcher(options: MatcherOptions): LineMatcher;
}
