/**
 * One journal entry (as `journalctl -o json` prints it) → one log line, the way fail2ban's
 * systemd backend builds it (filtersystemd.py formatJournalEntry), so Debian's filters match:
 *   `<ISO local time> <_HOSTNAME> <SYSLOG_IDENTIFIER|_COMM>[<SYSLOG_PID|_PID>]: <MESSAGE>`
 * with `[<monotonic s>]` after `kernel:` and newlines inside MESSAGE written as `\n`.
 */

/** journalctl's JSON: a string, bytes as a number array, or an array of those (repeated field) */
export type JournalValue = string | number[] | Array<string | number[]> | null | undefined;
export type JournalEntry = Record<string, JournalValue>;

function one(v: string | number[]): string {
  return typeof v === 'string' ? v : Buffer.from(v).toString('utf8');
}

/** the first value of a field as text ('' if absent) */
export function fieldText(v: JournalValue): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (v.length === 0) return '';
  if (typeof v[0] === 'number') return one(v as number[]);
  return one(v[0] as string | number[]);
}

/** MESSAGE: several values are joined with a space, as fail2ban does */
function messageText(v: JournalValue): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (v.length > 0 && typeof v[0] !== 'number') return (v as Array<string | number[]>).map(one).join(' ');
  return one(v as number[]);
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** Python's datetime.isoformat() of the local time: microseconds only when non-zero */
export function isoLocal(us: number): string {
  const d = new Date(Math.floor(us / 1000));
  const micro = us % 1_000_000;
  const base =
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return micro === 0 ? base : `${base}.${pad(micro, 6)}`;
}

/** the entry's time in microseconds since the epoch (source time if the sender gave one) */
export function entryTimeUs(e: JournalEntry): number {
  const t = Number(fieldText(e['_SOURCE_REALTIME_TIMESTAMP']) || fieldText(e['__REALTIME_TIMESTAMP']));
  return Number.isFinite(t) ? t : Date.now() * 1000;
}

export function formatJournalEntry(e: JournalEntry): string {
  const parts: string[] = [];
  const host = fieldText(e['_HOSTNAME']);
  if (host !== '') parts.push(host);
  const ident = fieldText(e['SYSLOG_IDENTIFIER']) || fieldText(e['_COMM']);
  if (ident !== '') {
    let tag = ident;
    const pid = fieldText(e['SYSLOG_PID']) || fieldText(e['_PID']);
    if (pid !== '') tag += /^\d+$/.test(pid) ? `[${Number(pid)}]` : `[${pid}]`;
    tag += ':';
    parts.push(tag);
    if (tag === 'kernel:') {
      const mono = Number(fieldText(e['_SOURCE_MONOTONIC_TIMESTAMP']) || fieldText(e['__MONOTONIC_TIMESTAMP']));
      parts.push(`[${(mono / 1e6).toFixed(6).padStart(12)}]`);
    }
  }
  parts.push(messageText(e['MESSAGE']));
  return `${isoLocal(entryTimeUs(e))} ${parts.join(' ').replace(/\n/g, '\\n')}`;
}
