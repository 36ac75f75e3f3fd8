import { describe, expect, it } from 'vitest';
import { formatJournalEntry, isoLocal } from '../../../src/sources/journal-format.js';

// fail2ban prints the entry's local time; pin the zone so the expected strings are fixed
process.env['TZ'] = 'UTC';

describe('journal entry → log line (fail2ban systemd backend format)', () => {
  it('writes date, host, identifier[pid]: message', () => {
    const line = formatJournalEntry({
      __REALTIME_TIMESTAMP: '1795432686275029',
      _HOSTNAME: 'web1',
      SYSLOG_IDENTIFIER: 'sshd',
      _PID: '4242',
      MESSAGE: 'Failed password for root from 198.18.0.7 port 22 ssh2',
    });
    expect(line).toBe('2026-11-23T11:18:06.275029 web1 sshd[4242]: Failed password for root from 198.18.0.7 port 22 ssh2');
  });

  it('prefers the sender time and SYSLOG_PID, falls back to _COMM, escapes newlines', () => {
    const line = formatJournalEntry({
      __REALTIME_TIMESTAMP: '1795432686275029',
      _SOURCE_REALTIME_TIMESTAMP: '1795432680000000',
      _HOSTNAME: 'web1',
      _COMM: 'node',
      SYSLOG_PID: '77',
      _PID: '1',
      MESSAGE: 'first\nsecond',
    });
    // no fraction when the microseconds are 0, as Python's isoformat()
    expect(line).toBe('2026-11-23T11:18:00 web1 node[77]: first\\nsecond');
  });

  it('decodes byte-array values and joins repeated MESSAGE values', () => {
    expect(formatJournalEntry({ __REALTIME_TIMESTAMP: '1000000', MESSAGE: [104, 105, 0xc3, 0xa9] })).toBe(
      '1970-01-01T00:00:01 hié',
    );
    expect(formatJournalEntry({ __REALTIME_TIMESTAMP: '1000000', SYSLOG_IDENTIFIER: 'x', MESSAGE: ['a', 'b'] })).toBe(
      '1970-01-01T00:00:01 x: a b',
    );
  });

  it('adds the monotonic time after kernel:', () => {
    const line = formatJournalEntry({
      __REALTIME_TIMESTAMP: '1000000',
      _HOSTNAME: 'h',
      SYSLOG_IDENTIFIER: 'kernel',
      __MONOTONIC_TIMESTAMP: '973794228',
      MESSAGE: 'oops',
    });
    expect(line).toBe('1970-01-01T00:00:01 h kernel: [  973.794228] oops');
  });

  it('formats microseconds with six digits', () => {
    expect(isoLocal(1_000_000 + 5)).toBe('1970-01-01T00:00:01.000005');
  });
});
