#!/usr/bin/env node
// Runs every bench/*.bench.js (or those whose name contains an argument) and prints one table:
// the figure, the peer measured in the same run, and their ratio. Not part of `npm test`.
//   npm run bench                 all benchmarks
//   npm run bench -- pipeline     only bench/pipeline.bench.js
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();

const fmt = (v) => {
  if (v === undefined || v === null || Number.isNaN(v)) return '';
  if (typeof v !== 'number') return String(v);
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toPrecision(3);
};

const rows = [];
let failed = 0;
for (const f of files) {
  const started = Date.now();
  process.stderr.write(`# ${f} …\n`);
  try {
    const mod = await import(join(here, f));
    const out = await mod.default();
    for (const r of out) rows.push({ file: f, ...r });
    process.stderr.write(`# ${f} done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  } catch (e) {
    failed++;
    process.stderr.write(`# ${f} FAILED: ${e && e.stack ? e.stack : e}\n`);
    rows.push({ file: f, benchmark: `${f}: failed`, aegis: NaN, unit: '', note: String(e && e.message ? e.message : e) });
  }
}

const header = ['benchmark', 'aegis', 'unit', 'peer', 'peer value', 'ratio', 'note'];
const table = rows.map((r) => [
  r.benchmark,
  fmt(r.aegis),
  r.unit ?? '',
  r.peer ?? '',
  fmt(r.peerValue),
  r.ratio === undefined ? '' : `${fmt(r.ratio)}×`,
  r.note ?? '',
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => String(t[i]).length)));
const line = (cells) => '| ' + cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ') + ' |';
console.log(line(header));
console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
for (const t of table) console.log(line(t));
process.exitCode = failed > 0 ? 1 : 0;
