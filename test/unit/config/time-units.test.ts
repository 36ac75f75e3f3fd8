/** Time values read like fail2ban's MyTime.str2seconds (checked against it when installed). */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../../src/config/time-units.js';

const SAMPLES = ['600', '10m', '1h', '1d', '1w', '-1', '1h 30m', '1d12h', '1year-6mo', '6 months', '1hour+30min', '0d 1h 30m', '2.5h', '90s', '1mo', '1y', '5 min', '3 days', '1w2d', '30sec', '48h', '5w'];
const PY = '/usr/bin/python3';
const have = fs.existsSync(PY) && fs.existsSync('/usr/lib/python3/dist-packages/fail2ban/server/mytime.py');

describe('time units', () => {
  it.skipIf(!have)('give the seconds fail2ban gives', () => {
    const out = execFileSync(PY, ['-c', 'import sys,json\nfrom fail2ban.server.mytime import MyTime\nprint(json.dumps([MyTime.str2seconds(s) for s in json.loads(sys.stdin.read())]))'], {
      input: JSON.stringify(SAMPLES),
      encoding: 'utf8',
    });
    const want = JSON.parse(out) as number[];
    expect(SAMPLES.map((s) => parseDuration(s))).toEqual(want);
  });

  it('refuse what is not a time', () => {
    for (const s of ['', 'soon', '10 parsecs', '1h and a bit']) expect(parseDuration(s)).toBeNull();
  });
});
