/**
 * Test helpers shared by the Prometheus tests (60-prometheus, 63-alert-rules): the PromQL
 * expressions of deploy/ and a static check of the metric and label names they use against a
 * fresh catalogue.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Registry } from 'prom-client';
import { createMetrics } from '../../../src/metrics/catalog.js';

export interface NamedExpr {
  readonly where: string;
  readonly expr: string;
}

/** `expr:` values of the rules file (single line or `|` block), by alert name. */
export function ruleExprs(path = resolve('deploy/prometheus/aegis-rules.yml')): NamedExpr[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const out: NamedExpr[] = [];
  let alert = '?';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const a = /^\s*- alert: (\S+)/.exec(line);
    if (a) alert = a[1] as string;
    const m = /^(\s*)expr: (.*)$/.exec(line);
    if (!m) continue;
    const indent = (m[1] as string).length;
    if ((m[2] as string).trim() !== '|') {
      out.push({ where: `rule ${alert}`, expr: (m[2] as string).trim() });
      continue;
    }
    const body: string[] = [];
    while (i + 1 < lines.length && ((lines[i + 1] as string).trim() === '' || /^\s*/.exec(lines[i + 1] as string)![0].length > indent)) {
      body.push((lines[++i] as string).trim());
    }
    out.push({ where: `rule ${alert}`, expr: body.join(' ').trim() });
  }
  return out;
}

interface Panel {
  title?: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

/** Panel target expressions of the Grafana dashboard, with Grafana variables made concrete. */
export function dashboardExprs(path = resolve('deploy/grafana-aegis.json'), rateInterval = '1m'): NamedExpr[] {
  const dash = JSON.parse(readFileSync(path, 'utf8')) as { panels: Panel[] };
  const out: NamedExpr[] = [];
  const walk = (ps: Panel[]): void => {
    for (const p of ps) {
      for (const t of p.targets ?? []) {
        if (t.expr === undefined) continue;
        out.push({
          where: `panel "${p.title ?? '?'}"`,
          expr: t.expr.replaceAll('$__rate_interval', rateInterval).replaceAll('$instance', '.*'),
        });
      }
      walk(p.panels ?? []);
    }
  };
  walk(dash.panels);
  return out;
}

/** metric name → label names, for every metric a fresh catalogue (plus defaults) exports. */
export function exportedMetrics(): Map<string, readonly string[]> {
  const registry = new Registry();
  const { processRegistry } = createMetrics(registry, { version: 'lint' });
  const out = new Map<string, readonly string[]>();
  for (const m of [...registry.getMetricsAsArray(), ...processRegistry.getMetricsAsArray()]) {
    const labelNames = (m as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
    out.set(m.name, labelNames);
  }
  return out;
}

const FUNCS = new Set([
  'sum', 'rate', 'increase', 'histogram_quantile', 'avg_over_time', 'absent', 'max', 'min', 'avg', 'by', 'without',
  'and', 'or', 'unless', 'offset', 'count', 'irate', 'delta', 'label_values', 'vector', 'bool', 'on', 'ignoring',
  'group_left', 'group_right', 'topk', 'bottomk', 'deriv', 'changes', 'resets', 'max_over_time', 'min_over_time',
]);

/** Problems (unknown metric, unknown label) in one expression; empty when clean. */
export function lintExpr(e: NamedExpr, exported: Map<string, readonly string[]>): string[] {
  const problems: string[] = [];
  const noStrings = e.expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const metrics = new Set<string>();
  for (const m of noStrings.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b\s*(?=\{|\[|\)|$|\s|>|<|=|\*)/g)) {
    const name = m[1] as string;
    if (FUNCS.has(name) || /^\d/.test(name) || /^(s|m|h|d|w|le|e)$/.test(name)) continue;
    if (!/_/.test(name) && name !== 'up') continue; // a label inside by (...) or a keyword
    metrics.add(name);
  }
  const labelsAllowed = new Set<string>(['job', 'instance', '__name__']);
  for (const raw of metrics) {
    if (raw === 'up') continue;
    const base = raw.replace(/_(bucket|sum|count)$/, '');
    const labels = exported.get(raw) ?? exported.get(base);
    if (labels === undefined) {
      // a label name used in by (...) looks like a metric to the regex above; checked below
      if (isLabelOnly(noStrings, raw)) continue;
      problems.push(`${e.where}: metric ${raw} is not exported by Aegis`);
      continue;
    }
    for (const l of labels) labelsAllowed.add(l);
    if (raw.endsWith('_bucket')) labelsAllowed.add('le');
  }
  const used = new Set<string>();
  for (const m of noStrings.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) for (const l of (m[1] as string).split(',')) used.add(l.trim());
  for (const m of noStrings.matchAll(/\{([^}]*)\}/g)) {
    for (const part of (m[1] as string).split(',')) {
      const k = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/.exec(part);
      if (k) used.add(k[1] as string);
    }
  }
  for (const l of used) if (l !== '' && !labelsAllowed.has(l)) problems.push(`${e.where}: label ${l} is not on the metrics used`);
  return problems;
}

function isLabelOnly(expr: string, name: string): boolean {
  for (const m of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) if ((m[1] as string).split(',').map((s) => s.trim()).includes(name)) return true;
  return false;
}

/** Metric names an expression refers to (for checking them against a live scrape). */
export function metricNames(e: NamedExpr, exported: Map<string, readonly string[]>): string[] {
  const out = new Set<string>();
  for (const m of e.expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').matchAll(/\b([a-z_][a-z0-9_]*)\b/g)) {
    const n = m[1] as string;
    if (n === 'up' || exported.has(n) || exported.has(n.replace(/_(bucket|sum|count)$/, ''))) out.add(n);
  }
  return [...out];
}
