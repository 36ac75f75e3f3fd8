import { describe, expect, it } from 'vitest';
import type { FilterSpec, JsonCondition, JsonFilterSpec } from '../../../../src/config/types.js';
import { compileFilter, type DetailedMatcher } from '../../../../src/engine/match/filter.js';
import { countPath, jsonTime } from '../../../../src/engine/match/json-filter.js';
import { ZoneConverter } from '../../../../src/engine/match/dates.js';
import type { LineOutcome } from '../../../../src/engine/types.js';

const cond = (path: string, op: JsonCondition['op'], ...values: string[]): JsonCondition => ({ path: path.split('.'), op, values });

function jsonSpec(json: Partial<JsonFilterSpec> & Pick<JsonFilterSpec, 'fail'>, failregex: string[] = []): FilterSpec {
  return {
    name: 'cartae-api-auth',
    file: 'filter.d/cartae-api-auth.conf',
    options: {},
    failregex,
    ignoreregex: [],
    prefregex: null,
    datepattern: null,
    maxlines: 1,
    journalmatch: [],
    json: { hostPath: ['ip'], timePath: ['time'], ignore: [], fields: ['user', 'path'], ...json },
    origin: { file: 'filter.d/cartae-api-auth.conf', section: 'Definition' },
  };
}

function matcher(spec: FilterSpec): { m: DetailedMatcher; literals: readonly string[] | null } {
  const { filter, diagnostics } = compileFilter(spec);
  if (filter === null) throw new Error(diagnostics.map((d) => d.message).join('; '));
  return { m: filter.createMatcher({ now: () => 1795000000, timezone: 'UTC' }) as DetailedMatcher, literals: filter.literals };
}

function fail(o: LineOutcome): Extract<LineOutcome, { kind: 'fail' }> {
  if (o.kind !== 'fail') throw new Error(`expected a failure, got ${o.kind}`);
  return o;
}

// the cartae examples of the README
const CARTAE: FilterSpec = jsonSpec({
  fail: [
    [cond('event', 'eq', 'auth.login.failed')],
    [cond('event', 'eq', 'admin.operation.unauthorized'), cond('status', 'range', '401', '401'), cond('path', 'regex', '^/api/v1/admin/')],
  ],
  ignore: [[cond('user', 'eq', 'healthcheck')]],
});

describe('JSON filter', () => {
  it('fails a line on an equality rule, host from `ip`, time from epoch ms, user as a field', () => {
    const { m } = matcher(CARTAE);
    const o = fail(m.match('{"level":40,"time":1732345678901,"event":"auth.login.failed","ip":"203.0.113.7","user":"bob"}'));
    expect(o.host).toBe('203.0.113.7');
    expect(o.time).toBeCloseTo(1732345678.901, 6);
    expect(o.fields).toEqual({ user: 'bob' });
    expect(o.regexIndex).toBe(-1);
  });

  it('matches a 401 on a path under /api/v1/admin/ and nothing else of that event', () => {
    const { m } = matcher(CARTAE);
    const line = (status: number, path: string): string =>
      `{"time":"2026-11-22T10:00:00.123Z","event":"admin.operation.unauthorized","ip":"2001:db8::7","path":"${path}","status":${status}}`;
    const o = fail(m.match(line(401, '/api/v1/admin/users')));
    expect(o.host).toBe('2001:db8::7');
    expect(o.time).toBeCloseTo(Date.UTC(2026, 10, 22, 10, 0, 0, 123) / 1000, 6);
    expect(o.fields).toEqual({ path: '/api/v1/admin/users' });
    expect(m.match(line(403, '/api/v1/admin/users')).kind).toBe('miss');
    expect(m.match(line(401, '/api/v1/users')).kind).toBe('miss');
    expect(m.match(line(401, '/x/api/v1/admin/')).kind).toBe('miss');
  });

  it('supports alternatives, !=, ranges, >= style open ranges and presence', () => {
    const { m } = matcher(
      jsonSpec({
        fail: [[cond('event', 'eq', 'login.failed', 'login.locked'), cond('status', 'range', '400', '499'), cond('tenant', 'ne', 'internal'), cond('reason', 'exists')]],
      }),
    );
    const base = { ip: '198.51.100.9', status: 403, reason: 'bad password', tenant: 'acme' };
    const l = (o: object): string => JSON.stringify(o);
    expect(m.match(l({ ...base, event: 'login.failed' })).kind).toBe('fail');
    expect(m.match(l({ ...base, event: 'login.locked', status: '429' })).kind).toBe('fail');
    expect(m.match(l({ ...base, event: 'login.ok' })).kind).toBe('miss');
    expect(m.match(l({ ...base, event: 'login.failed', status: 500 })).kind).toBe('miss');
    expect(m.match(l({ ...base, event: 'login.failed', tenant: 'internal' })).kind).toBe('miss');
    const { reason: _r, ...noReason } = base;
    expect(m.match(l({ ...noReason, event: 'login.failed' })).kind).toBe('miss');
    const open = matcher(jsonSpec({ fail: [[cond('status', 'range', '500', '')]] })).m;
    expect(open.match(l({ ip: '198.51.100.9', status: 503 })).kind).toBe('fail');
    expect(open.match(l({ ip: '198.51.100.9', status: 404 })).kind).toBe('miss');
  });

  it('hides a failure matched by a jsonignore rule', () => {
    const { m } = matcher(CARTAE);
    expect(m.match('{"time":1732345678,"event":"auth.login.failed","ip":"203.0.113.7","user":"healthcheck"}').kind).toBe('ignored');
  });

  it('takes the host from a nested path such as req.remoteAddress', () => {
    const { m } = matcher(jsonSpec({ hostPath: ['req', 'remoteAddress'], fail: [[cond('msg', 'eq', 'login failed')]] }));
    const o = fail(m.match('{"time":1732345678,"msg":"login failed","req":{"method":"POST","remoteAddress":"::ffff:198.51.100.9"},"user":"eve"}'));
    expect(o.host).toBe('::ffff:198.51.100.9');
    expect(m.match('{"msg":"login failed","remoteAddress":"198.51.100.9"}').kind).toBe('miss');
  });

  it('never takes the host from another field (log injection)', () => {
    const { m } = matcher(CARTAE);
    // an IP-looking user name or path, and a user name that tries to close the string
    expect(fail(m.match('{"event":"auth.login.failed","ip":"203.0.113.7","user":"198.51.100.66"}')).host).toBe('203.0.113.7');
    expect(fail(m.match(JSON.stringify({ event: 'auth.login.failed', ip: '203.0.113.7', user: 'x","ip":"198.51.100.66' }))).host).toBe('203.0.113.7');
    expect(m.match('{"event":"auth.login.failed","user":"198.51.100.66","path":"/ip/198.51.100.67"}').kind).toBe('miss');
    // a host that is not an address is no failure
    expect(m.match('{"event":"auth.login.failed","ip":"evil.example"}').kind).toBe('miss');
    expect(m.match('{"event":"auth.login.failed","ip":["198.51.100.66"]}').kind).toBe('miss');
  });

  it('refuses a line whose host key appears twice (JSON.parse would keep the last)', () => {
    const { m } = matcher(CARTAE);
    expect(m.match('{"event":"auth.login.failed","ip":"203.0.113.7","user":"bob","ip":"198.51.100.66"}').kind).toBe('miss');
    // the key text inside a value is not a second key
    expect(fail(m.match('{"event":"auth.login.failed","ip":"203.0.113.7","user":"\\"ip\\":1"}')).host).toBe('203.0.113.7');
    expect(countPath('{"ip":1,"a":{"ip":2},"ip":3}', ['ip'])).toBe(2);
    expect(countPath('{"req":{"remoteAddress":1},"remoteAddress":2}', ['req', 'remoteAddress'])).toBe(1);
  });

  it('does not parse lines longer than its bound, nor non-JSON lines', () => {
    const { m } = matcher(CARTAE);
    const long = `{"event":"auth.login.failed","ip":"203.0.113.7","pad":"${'x'.repeat(70_000)}"}`;
    expect(m.match(long).kind).toBe('miss');
    expect(m.match('event=auth.login.failed ip=203.0.113.7').kind).toBe('miss');
    expect(m.match('{"event":"auth.login.failed","ip":"203.0.113.7"').kind).toBe('miss');
  });

  it('exposes the equality values as prefilter literals, as they appear in raw JSON', () => {
    const { literals } = matcher(CARTAE);
    expect(new Set(literals)).toEqual(new Set(['auth.login.failed', 'admin.operation.unauthorized']));
    // a rule with no equality condition: no literal can be promised
    expect(matcher(jsonSpec({ fail: [[cond('status', 'range', '401', '401')]] })).literals).toBeNull();
    // only characters every JSON encoder writes as themselves ("/" may be "\/")
    expect(matcher(jsonSpec({ fail: [[cond('path', 'eq', '/api/v1/admin')]] })).literals).toEqual(['admin']);
  });
});

describe('classic failregex over JSON lines', () => {
  const spec: FilterSpec = {
    ...jsonSpec({ fail: [] }),
    json: null,
    failregex: [String.raw`^.*"event":"auth\.login\.failed".*"ip":"<HOST>".*$`],
  };

  it('matches and takes the time from the `time` field (ms, s, ISO 8601)', () => {
    const { m, literals } = matcher(spec);
    expect(literals).not.toBeNull();
    const a = fail(m.match('{"level":40,"time":1732345678901,"event":"auth.login.failed","ip":"203.0.113.7","user":"bob"}'));
    expect(a.host).toBe('203.0.113.7');
    expect(a.time).toBeCloseTo(1732345678.901, 6);
    expect(fail(m.match('{"time":1732345678,"event":"auth.login.failed","ip":"203.0.113.7"}')).time).toBe(1732345678);
    expect(fail(m.match('{"time":"2026-11-22T10:00:00.123Z","event":"auth.login.failed","ip":"2001:db8::7"}')).time).toBeCloseTo(
      Date.UTC(2026, 10, 22, 10, 0, 0, 123) / 1000,
      6,
    );
  });

  it('is open to injection where the JSON filter is not (why the JSON filter exists)', () => {
    const { m } = matcher(spec);
    // the app logs request headers; the attacker sent a header named `ip`
    const line = JSON.stringify({ event: 'auth.login.failed', ip: '203.0.113.7', headers: { ip: '198.51.100.66' } });
    expect(fail(m.match(line)).host).toBe('198.51.100.66');
    const j = matcher(CARTAE).m;
    expect(fail(j.match(line)).host).toBe('203.0.113.7');
  });
});

describe('JSON time values', () => {
  const utc = new ZoneConverter('UTC');
  it('reads epoch seconds, milliseconds, microseconds and ISO 8601 with or without a zone', () => {
    expect(jsonTime(1732345678, utc)).toBe(1732345678);
    expect(jsonTime(1732345678901, utc)).toBeCloseTo(1732345678.901, 6);
    expect(jsonTime(1732345678901234, utc)).toBeCloseTo(1732345678.901234, 6);
    expect(jsonTime('1732345678', utc)).toBe(1732345678);
    expect(jsonTime('2026-11-22T10:00:00+01:00', utc)).toBe(Date.UTC(2026, 10, 22, 9) / 1000);
    expect(jsonTime('2026-11-22T10:00:00', new ZoneConverter('Europe/Zurich'))).toBe(Date.UTC(2026, 10, 22, 9) / 1000);
    expect(jsonTime('yesterday', utc)).toBeNull();
    expect(jsonTime(undefined, utc)).toBeNull();
  });
});
