import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { dashboardExprs, exportedMetrics, lintExpr, ruleExprs } from './promql-lint.js';

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;
const rules = resolve('deploy/prometheus/aegis-rules.yml');

describe('deploy/: alert rules and dashboard refer only to what Aegis exports', () => {
  const exported = exportedMetrics();

  it('finds the expressions to check', () => {
    expect(ruleExprs().length).toBeGreaterThanOrEqual(8);
    expect(dashboardExprs().length).toBeGreaterThanOrEqual(15);
  });

  it('uses only catalogue metric names and their labels', () => {
    const problems = [...ruleExprs(), ...dashboardExprs()].flatMap((e) => lintExpr(e, exported));
    expect(problems).toEqual([]);
  });

  it('would catch a wrong metric or label', () => {
    expect(lintExpr({ where: 'x', expr: 'rate(aegis_bans{job="aegis"}[5m])' }, exported)).toHaveLength(1);
    expect(lintExpr({ where: 'x', expr: 'sum by (ip) (rate(aegis_bans_total[5m]))' }, exported)).toEqual(['x: label ip is not on the metrics used']);
  });

  it('has the dashboard panels operators asked for', () => {
    const titles = (JSON.parse(readFileSync(resolve('deploy/grafana-aegis.json'), 'utf8')) as { panels: Array<{ title: string }> }).panels.map((p) => p.title);
    for (const t of ['Packets/s: pass vs drop', 'Drops/s by reason', 'Blocklist size', 'Ban rate per jail (bans/min)', 'Banned IPs per jail', 'Log lines/s per jail', 'Ban latency (line read → enforced)', 'Process CPU', 'Process memory']) {
      expect(titles).toContain(t);
    }
  });
});

describe.skipIf(!hasPromtool)('deploy/: promtool', () => {
  it('promtool check rules passes', () => {
    const r = spawnSync('promtool', ['check', 'rules', rules], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toContain('SUCCESS: 10 rules found');
    expect(r.status).toBe(0);
  });

  it('promtool test rules passes (every alert fires when it should and not before)', () => {
    const r = spawnSync('promtool', ['test', 'rules', 'aegis-rules.test.yml'], { encoding: 'utf8', cwd: resolve('deploy/prometheus') });
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  it('the example scrape config passes promtool check config once its files exist', () => {
    const dir = mkdtempSync(join(tmpdir(), `aegis-promcfg-${process.pid}-`));
    try {
      writeFileSync(join(dir, 'aegis.token'), 'x\n');
      writeFileSync(join(dir, 'aegis-ca.crt'), '');
      writeFileSync(join(dir, 'aegis-rules.yml'), readFileSync(rules));
      const cfg = readFileSync(resolve('deploy/prometheus/prometheus.yml'), 'utf8').replaceAll('/etc/prometheus/', `${dir}/`);
      writeFileSync(join(dir, 'prometheus.yml'), cfg);
      const r = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' });
      expect(r.stdout + r.stderr).toContain('SUCCESS');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
