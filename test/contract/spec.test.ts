/**
 * The contract as data: metric names and labels, exit codes and error codes must agree with
 * SPEC.md (beside the repository as ../shared/SPEC.md) and the README.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { createMetrics, METRIC_NAMES } from '../../src/metrics/catalog.js';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { ErrorCode } from '../../src/errors.js';

const specPath = new URL('../../../shared/SPEC.md', import.meta.url);
const hasSpec = existsSync(specPath);
const spec = hasSpec ? readFileSync(specPath, 'utf8') : '';
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** rows of SPEC's metrics table: name → labels */
function specMetrics(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of spec.split('\n')) {
    const m = /^\|\s*`(aegis_[a-z_]+)`\s*\|\s*(\w+)\s*\|\s*(.*?)\s*\|\s*$/.exec(line);
    if (!m) continue;
    // the column is prose: `jail, source (\`auto\`/\`manual\`)`, `reason: what detected it — …, or …`
    const labels = (m[3] ?? '')
      .replace(/\([^)]*\)/g, '')
      .replace(/`[^`]*`/g, '')
      .split(',')
      .map((seg) => /^\s*([a-z_]+)\s*(?:[:—].*)?$/.exec(seg)?.[1])
      .filter((l): l is string => l !== undefined);
    out.set(m[1] as string, labels);
  }
  return out;
}

describe('contract', () => {
  it.skipIf(!hasSpec)('every SPEC metric exists with exactly its labels, and nothing else is aegis_*', async () => {
    const want = specMetrics();
    expect(want.size).toBeGreaterThan(10);
    const registry = new Registry();
    createMetrics(registry, { version: 'test' });
    const got = new Map<string, string[]>();
    for (const m of await registry.getMetricsAsJSON()) {
      if (!m.name.startsWith('aegis_')) continue;
      const labels = new Set<string>();
      const lm = registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] };
      for (const l of lm.labelNames ?? []) labels.add(l);
      got.set(m.name, [...labels].sort());
    }
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, labels] of want) expect(got.get(name), name).toEqual([...labels].sort());
    expect([...METRIC_NAMES].sort()).toEqual([...want.keys()].sort());
  });

  it.skipIf(!hasSpec)('exit codes are SPEC\'s: 0 ok, 1 did not apply, 2 usage or configuration, 3 unreachable', () => {
    expect(spec).toMatch(/0 ok, 1 the operation did not apply, 2 usage or configuration error,\s*3 daemon unreachable/);
    expect(ExitCode).toEqual({ OK: 0, NOT_APPLIED: 1, USAGE: 2, UNREACHABLE: 3 });
  });

  it('every error code is documented in the README', () => {
    for (const code of Object.values(ErrorCode)) expect(readme, code).toContain(code);
  });
});
