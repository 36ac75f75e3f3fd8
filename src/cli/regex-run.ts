/**
 * The work of `aegis-ban regex` (commands/regex.ts), loaded only when that command runs: the
 * filter engine is most of the CLI's code, which `aegis-ban status` and the other control
 * commands have no use for.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { loadFilter } from '../config/filters.js';
import { formatDiagnostic, type FilterSpec } from '../config/types.js';
import { ErrorCode } from '../errors.js';
import { ZoneConverter } from '../engine/match/dates.js';
import { compileFilter, type DetailedMatcher, type DetailedOutcome, type PreMatch, type PreparedLine } from '../engine/match/filter.js';
import { decodeLine } from '../engine/scan.js';
import { createLineScanner } from '../engine/match/prefilter.js';
import { nativeScan } from '../engine/match/native-scan.js';
import type { RegexArgs } from './commands/regex.js';
import { ExitCode } from './exit-codes.js';
import { fail, printJson } from './output.js';
import { dateStageApplies, isSkippedLine, newReadProgress, publishRead, startDateStage, type DateStage } from './regex-dates.js';

/** A filter name (`sshd`, `sshd[mode=aggressive]`) or a path (`./f.conf`, `/x/f.conf[k=v]`). */
function looksLikeFilter(arg: string, configDir: string): boolean {
  const base = arg.replace(/\[.*\]\s*$/s, '').trim();
  if (base === '') return false;
  if (base.includes('/') || base.endsWith('.conf') || base.endsWith('.local')) {
    try {
      return statSync(base).isFile();
    } catch {
      return false;
    }
  }
  if (!/^[\w.-]+$/.test(base)) return false;
  const d = path.join(configDir, 'filter.d', base);
  return existsSync(`${d}.conf`) || existsSync(`${d}.local`) || existsSync(base.endsWith('.conf') ? d : `${d}.conf`);
}

function literalSpec(failregex: string[], ignoreregex: string[], args: RegexArgs): FilterSpec {
  return {
    name: '',
    file: null,
    options: {},
    failregex,
    ignoreregex,
    prefregex: null,
    datepattern: args.datepattern ?? null,
    maxlines: args.maxlines ?? 1,
    journalmatch: [],
    json: null,
    origin: { file: '<command line>', section: 'Definition' },
  };
}

export async function runRegex(argv: RegexArgs): Promise<void> {
  const out = { json: argv.json };
  const configDir = argv['config-dir'];
  // now: --now, else AEGIS_NOW, else the clock
  let fixedNow: number | null = null;
  if (argv.now !== undefined) fixedNow = argv.now;
  else if (process.env['AEGIS_NOW'] !== undefined && process.env['AEGIS_NOW'] !== '') fixedNow = Number(process.env['AEGIS_NOW']);
  if (fixedNow !== null && !Number.isFinite(fixedNow)) {
    fail(out, ExitCode.USAGE, ErrorCode.CONFIG_VALUE, `--now: expected epoch seconds, got ${JSON.stringify(argv.now ?? process.env['AEGIS_NOW'])}`);
    return;
  }
  const timezone = argv.timezone ?? (process.env['TZ'] || undefined);
  if (timezone !== undefined && !ZoneConverter.isValid(timezone)) {
    fail(out, ExitCode.USAGE, ErrorCode.CONFIG_VALUE, `--timezone: unknown time zone ${JSON.stringify(timezone)}`);
    return;
  }

  // the filter
  let spec: FilterSpec;
  let filterLabel: string;
  if (looksLikeFilter(argv.filter, configDir)) {
    const r = loadFilter(configDir, argv.filter);
    const err = r.diagnostics.find((d) => d.severity === 'error');
    if (r.filter === null || err !== undefined) {
      fail(out, ExitCode.USAGE, err?.code ?? ErrorCode.FILTER_NOT_FOUND, err ? formatDiagnostic(err) : `filter ${argv.filter} could not be loaded`);
      return;
    }
    spec = r.filter;
    if (argv.datepattern !== undefined) spec = { ...spec, datepattern: argv.datepattern };
    if (argv.maxlines !== undefined) spec = { ...spec, maxlines: argv.maxlines };
    filterLabel = `filter file : ${spec.name}${Object.keys(spec.options).length ? `[${Object.entries(spec.options).map(([k, v]) => `${k}=${v}`).join(', ')}]` : ''}, basedir: ${configDir}`;
  } else {
    spec = literalSpec([argv.filter], [], argv);
    filterLabel = `failregex : ${argv.filter}`;
  }
  if (argv.ignoreregex !== undefined) {
    let extra: readonly string[] = [argv.ignoreregex];
    if (looksLikeFilter(argv.ignoreregex, configDir)) {
      const r = loadFilter(configDir, argv.ignoreregex);
      if (r.filter === null) {
        const e = r.diagnostics.find((d) => d.severity === 'error');
        fail(out, ExitCode.USAGE, e?.code ?? ErrorCode.FILTER_NOT_FOUND, e ? formatDiagnostic(e) : `filter ${argv.ignoreregex} could not be loaded`);
        return;
      }
      extra = r.filter.ignoreregex;
    }
    spec = { ...spec, ignoreregex: [...spec.ignoreregex, ...extra] };
  }
  // the input: a file, else the argument is itself one line
  let buf: Buffer;
  let inputLabel: string;
  let isFile = false;
  try {
    isFile = statSync(argv.log).isFile();
  } catch {
    isFile = false;
  }
  let stage: DateStage | null = null;
  if (isFile) {
    try {
      // a large log: its date stage starts on a second thread at once, and scans the log as
      // it is read, while this thread reads it and then compiles the filter too (each thread
      // needs its own)
      const log = openLog(argv.log, spec);
      try {
        if (log.shared !== null) {
          const progress = newReadProgress();
          stage = startDateStage({ spec, data: log.shared, progress, now: fixedNow, ...(timezone ? { timezone } : {}) });
          buf = readShared(log.fd, log.shared, progress);
        } else buf = readFileSync(log.fd);
      } finally {
        closeSync(log.fd);
      }
    } catch (e) {
      stage?.cancel();
      fail(out, ExitCode.USAGE, ErrorCode.CONFIG_MISSING, `cannot read ${argv.log}: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    inputLabel = `log file : ${argv.log}`;
  } else {
    buf = Buffer.from(argv.log.endsWith('\n') ? argv.log : `${argv.log}\n`, 'utf8');
    inputLabel = 'log line : (given on the command line)';
  }

  const { filter, diagnostics } = compileFilter(spec);
  if (filter === null && spec.file === null && /^[\w.-]+(?:\[.*\])?$/s.test(argv.filter)) {
    // a bare word that is no filter file and no usable regex: say what was looked for
    const where = path.join(configDir, 'filter.d', `${argv.filter.replace(/\[.*$/s, '')}.conf`);
    fail(out, ExitCode.USAGE, ErrorCode.FILTER_NOT_FOUND, `filter ${JSON.stringify(argv.filter)} not found (no ${where} or .local), and as a regex it has no <HOST>/<F-ID>`);
    stage?.cancel();
    return;
  }
  if (filter === null) {
    stage?.cancel();
    for (const d of diagnostics.slice(1)) process.stderr.write(`aegis-ban: ${formatDiagnostic(d)}\n`);
    const d = diagnostics[0];
    fail(out, ExitCode.USAGE, d?.code ?? ErrorCode.REGEX_INVALID, d ? formatDiagnostic(d) : 'filter did not compile');
    return;
  }
  const clockNow = (): number => (fixedNow !== null ? fixedNow : Date.now() / 1000);
  const matcher = filter.createMatcher({ now: clockNow, ...(timezone ? { timezone } : {}) }) as DetailedMatcher;

  const started = process.hrtime.bigint();
  const scanner = createLineScanner(filter.literals);
  const literals = filter.literals;
  let total = 0;
  let skipped = 0;
  let matched = 0;
  let ignored = 0;
  const templateHits = new Map<string, number>();
  const w = argv.json ? new LineWriter() : null;
  // line numbers: count newlines between candidate lines
  let lineNo = 0;
  let pos = 0;
  // Without --json the lines that are no candidates are only counted: once, natively, over the
  // whole file at the end (all lines, less the candidates), not a step per line in between
  const native = w === null ? nativeScan() : null;
  let candidates = 0;
  /** candidates that count as blank or comment under the non-candidate rule (isBlank, '#') */
  let candidatesSkippable = 0;
  const emitNonCandidates = (upTo: number): void => {
    // lines wholly before byte `upTo` were not candidates: misses (or comments / blanks)
    if (native !== null) return;
    while (pos < upTo) {
      let nl = buf.indexOf(10, pos);
      if (nl < 0 || nl >= upTo) nl = Math.min(upTo, nl < 0 ? buf.length : nl);
      lineNo++;
      total++;
      const first = buf[pos];
      const blankOrComment = first === 35 /* # */ || isBlank(buf, pos, nl);
      if (blankOrComment) skipped++;
      if (w) w.write(blankOrComment ? `{"line":${lineNo},"skipped":true}` : `{"line":${lineNo},"match":false,"host":null,"time":null,"attempts":0,"fields":{}}`);
      pos = nl + 1;
    }
  };
  // `prepared`: the line's date stage, run ahead on another thread (null: blank or comment);
  // undefined: run both stages here. `pre`: the start of its matching stage, run there too.
  const onCandidate = (start: number, end: number, prepared?: PreparedLine | null, pre?: PreMatch | null): void => {
    emitNonCandidates(start);
    lineNo++;
    total++;
    pos = end + 1;
    if (native !== null) {
      candidates++;
      if (buf[start] === 35 /* # */ || isBlank(buf, start, end)) candidatesSkippable++;
    }
    if (prepared === null) {
      skipped++;
      if (w) w.write(`{"line":${lineNo},"skipped":true}`);
      return;
    }
    let r: DetailedOutcome;
    if (prepared !== undefined && pre !== undefined && pre !== null) r = matcher.matchPreMatched(prepared, pre);
    else {
      const text = decodeLine(buf, start, end);
      if (prepared === undefined && isSkippedLine(text)) {
        skipped++;
        if (w) w.write(`{"line":${lineNo},"skipped":true}`);
        return;
      }
      r = prepared === undefined ? matcher.matchDetailed(text) : matcher.matchPrepared(text, prepared);
    }
    const tpl = matcher.lineTemplate;
    if (tpl !== null) templateHits.set(tpl, (templateHits.get(tpl) ?? 0) + 1);
    const o = r.outcome;
    if (o.kind === 'fail') {
      matched++;
      if (w) {
        const time = o.time ?? clockNow();
        w.write(JSON.stringify({ line: lineNo, match: true, host: o.host, time, attempts: o.attempts, fields: o.fields }));
      }
      return;
    }
    // like fail2ban-regex: lines hidden by ignoreregex and <F-NOFAIL> / pending matches
    if (o.kind === 'ignored' || o.kind === 'pending') ignored++;
    if (w) w.write(`{"line":${lineNo},"match":false,"host":null,"time":null,"attempts":0,"fields":{}}`);
  };
  const twoStage = stage !== null;
  if (stage !== null) {
    try {
      await stage.consume(onCandidate);
    } catch (e) {
      fail(out, ExitCode.USAGE, ErrorCode.REGEX_INVALID, `date stage failed: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
  } else {
    scanner.scan(buf, (start, end) => onCandidate(start, end));
  }
  emitNonCandidates(buf.length);
  if (native !== null) {
    const lines = native.countLines(buf) + (buf.length > 0 && buf[buf.length - 1] !== 10 ? 1 : 0);
    total += lines - candidates;
    skipped += native.countSkippable(buf) - candidatesSkippable;
  }
  if (w) {
    w.flush();
    process.exitCode = ExitCode.OK;
    return;
  }
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  const lines: string[] = [];
  lines.push('', 'Running tests', '=============', '');
  lines.push(`Use   ${filterLabel}`);
  lines.push(`Use      datepattern : ${spec.datepattern ?? 'Default Detectors'}`);
  lines.push(`Use   ${inputLabel}`);
  lines.push('', 'Results', '=======', '');
  const hits = matcher.hits;
  lines.push(`Failregex: ${hits.reduce((a, b) => a + b, 0)} total`);
  if (spec.failregex.length > 0) {
    lines.push('|-  #) [# of hits] regular expression');
    spec.failregex.forEach((re, i) => lines.push(`|   ${i + 1}) [${hits[i] ?? 0}] ${re}`));
    lines.push('`-');
  }
  if (spec.json) lines.push(`JSON rules: ${spec.json.fail.length} (host from ${spec.json.hostPath.join('.')})`);
  lines.push('', `Ignoreregex: ${matcher.ignoreHits.reduce((a, b) => a + b, 0)} total`);
  if (spec.ignoreregex.length > 0) {
    lines.push('|-  #) [# of hits] regular expression');
    spec.ignoreregex.forEach((re, i) => lines.push(`|   ${i + 1}) [${matcher.ignoreHits[i] ?? 0}] ${re}`));
    lines.push('`-');
  }
  lines.push('', 'Date template hits:', '|- [# of hits] date format');
  for (const [name, n] of [...templateHits].sort((a, b) => b[1] - a[1])) lines.push(`|  [${n}] ${name}`);
  lines.push('`-', '');
  const considered = total - skipped;
  lines.push(`Lines: ${considered} lines, ${ignored} ignored, ${matched} matched, ${considered - ignored - matched} missed`);
  if (skipped > 0) lines.push(`(${skipped} comment or blank lines skipped)`);
  lines.push(`[processed in ${secs.toFixed(2)} sec on ${twoStage ? '2 threads' : '1 thread'}${literals ? `, prefilter literals: ${filter.literals!.map((l) => JSON.stringify(l)).join(' ')}` : ''}]`, '');
  process.stdout.write(lines.join('\n'));
  process.exitCode = ExitCode.OK;
}

/** an open log; `shared`: the memory to read it into when a second thread will run its date stage */
function openLog(file: string, spec: FilterSpec): { fd: number; shared: Buffer | null } {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    // AEGIS_REGEX_THREADS=1: one thread whatever the size (to compare both paths)
    const two = process.env['AEGIS_REGEX_THREADS'] !== '1' && dateStageApplies(spec, size);
    return { fd, shared: two ? Buffer.from(new SharedArrayBuffer(size)) : null };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** read the log into `shared` in pieces, publishing each so that the date stage can start on it */
function readShared(fd: number, shared: Buffer, progress: Int32Array): Buffer {
  // small enough that the worker starts early, and that a log of a few MiB takes several pieces
  const PIECE = 2 * 1024 * 1024;
  let off = 0;
  try {
    while (off < shared.length) {
      const n = readSync(fd, shared, off, Math.min(PIECE, shared.length - off), off);
      if (n === 0) break; // the file shrank since fstat: what was read is the log
      off += n;
      publishRead(progress, off, false);
    }
  } finally {
    // always say it is done, so that the date stage ends either way
    publishRead(progress, off, true);
  }
  return off === shared.length ? shared : shared.subarray(0, off);
}

function isBlank(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c !== 32 && c !== 9 && c !== 13) return false;
  }
  return true;
}

/** buffered stdout: a million small writes would dominate the run time */
class LineWriter {
  #parts: string[] = [];
  #size = 0;
  write(s: string): void {
    this.#parts.push(s);
    this.#size += s.length + 1;
    if (this.#size > 1 << 20) this.flush();
  }
  flush(): void {
    if (this.#parts.length === 0) return;
    process.stdout.write(this.#parts.join('\n') + '\n');
    this.#parts = [];
    this.#size = 0;
  }
}

