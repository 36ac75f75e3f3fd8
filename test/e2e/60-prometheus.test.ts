import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { dashboardExprs, exportedMetrics, metricNames, ruleExprs } from '../unit/metrics/promql-lint.js';
import { hasDaemon, hasPrometheus, startAegis, startPrometheus, waitFor, type AegisInstance, type PrometheusInstance } from '../unit/metrics/harness.js';

/**
 * A real Prometheus (Debian's `prometheus`) scrapes the built aegisd once a second with the
 * bearer token over TLS; then every PromQL expression of deploy/ is evaluated against it.
 */
const why = !hasDaemon ? 'dist/cli/aegisd.js not built' : !hasPrometheus ? 'prometheus not installed (apt-get install prometheus)' : '';
if (why) console.log(`skipping 60-prometheus: ${why}`);

describe.skipIf(why !== '')('a real Prometheus scrapes Aegis', () => {
  let aegis: AegisInstance;
  let prom: PrometheusInstance;

  beforeAll(async () => {
    aegis = await startAegis();
    prom = await startPrometheus(aegis, [resolve('deploy/prometheus/aegis-rules.yml')]);
  });
  afterAll(async () => {
    await prom?.stop();
    await aegis?.stop();
  });

  it('sees the target up over TLS with the bearer token', async () => {
    const up = await waitFor('up{job="aegis"} == 1', async () => {
      const r = await prom.query('up{job="aegis"}');
      return r.data?.result[0]?.value[1] === '1' ? r : undefined;
    }, 30_000, 500);
    expect(up.data?.result[0]?.metric.instance).toBe(`127.0.0.1:${aegis.metricsPort}`);
    const targets = (await prom.get('/api/v1/targets')) as { data: { activeTargets: Array<{ health: string; scrapeUrl: string; lastError: string }> } };
    expect(targets.data.activeTargets[0]).toMatchObject({ health: 'up', lastError: '', scrapeUrl: `https://127.0.0.1:${aegis.metricsPort}/metrics` });
  });

  it('shows aegis_bans_total rising after a ban driven by log lines', async () => {
    const before = Number((await prom.query('sum(aegis_bans_total{job="aegis"}) or vector(0)')).data?.result[0]?.value[1] ?? '0');
    const now = Math.floor(Date.now() / 1000);
    aegis.append(
      'x',
      Array.from({ length: 5 }, (_, i) => JSON.stringify({ time: now, event: 'auth.login.failed', ip: '198.18.7.7', user: `u${i}` })),
    );
    await waitFor('aegis-ban to list the ban', async () => aegis.ctl(['banned', '198.18.7.7']).status === 0, 20_000);
    const after = await waitFor('aegis_bans_total to rise in Prometheus', async () => {
      const v = Number((await prom.query('sum(aegis_bans_total{job="aegis"})')).data?.result[0]?.value[1] ?? 'NaN');
      return v > before ? v : undefined;
    }, 20_000, 500);
    expect(after).toBe(before + 1);
    const byJail = await prom.query('aegis_bans_total{job="aegis", jail="x", source="auto"}');
    expect(byJail.data?.result[0]?.value[1]).toBe('1');
    const failures = await waitFor('failures', async () => {
      const r = await prom.query('aegis_failures_total{job="aegis", jail="x"}');
      return r.data?.result[0]?.value[1] === '5' ? r : undefined;
    });
    expect(failures.status).toBe('success');
  });

  it('evaluates every PromQL expression of the rules and the dashboard without error', async () => {
    const exprs = [...ruleExprs(), ...dashboardExprs()];
    expect(exprs.length).toBeGreaterThan(20);
    const errors: string[] = [];
    for (const e of exprs) {
      const r = await prom.query(e.expr);
      if (r.status !== 'success') errors.push(`${e.where}: ${r.error ?? r.status} in ${e.expr}`);
    }
    expect(errors).toEqual([]);
    // Prometheus loaded the rules and evaluates them without error.
    const rules = (await prom.get('/api/v1/rules')) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> } };
    const all = rules.data.groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThanOrEqual(8);
    await waitFor('rules evaluated', async () => {
      const rr = (await prom.get('/api/v1/rules')) as typeof rules;
      return rr.data.groups.flatMap((g) => g.rules).every((x) => x.health === 'ok');
    }, 15_000, 500);
  });

  it('every metric name those expressions use is in the live scrape', async () => {
    const exported = exportedMetrics();
    const scrape = await aegis.scrape();
    expect(scrape.status).toBe(200);
    const families = new Set([...scrape.body.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string));
    const missing: string[] = [];
    for (const e of [...ruleExprs(), ...dashboardExprs()]) {
      for (const n of metricNames(e, exported)) {
        if (n === 'up') continue;
        const base = n.replace(/_(bucket|sum|count)$/, '');
        if (!families.has(n) && !families.has(base)) missing.push(`${e.where}: ${n}`);
      }
    }
    expect(missing).toEqual([]);
    // promtool's linter finds nothing in the daemon's own metrics (prom-client's three
    // nodejs_active_*_total gauges aside, a library naming choice).
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: scrape.body, encoding: 'utf8' });
    const problems = (lint.stdout + lint.stderr).split('\n').filter((l) => l.trim() !== '' && !/^nodejs_active_(handles|requests|resources)_total non-counter/.test(l));
    expect(problems).toEqual([]);
    // While Prometheus ran, Aegis never went down in its eyes, and the alert "AegisDown" is silent.
    const down = await prom.query('ALERTS{alertname="AegisDown"}');
    expect(down.data?.result).toEqual([]);
  });
});
