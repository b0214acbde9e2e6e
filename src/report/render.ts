// Renders a result set as a Markdown table and as a self-contained HTML page
// with charts (Chart.js, inlined so the page opens offline), and compares two
// result sets with noise bands.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { summarize, type ResultRow, type ResultSet, type Summary } from './results.js';

/** Formats a number compactly with its unit: 1.23 M, 45.6 k, 0.812. */
export function fmt(v: number, unit = ''): string {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  let s: string;
  if (a >= 1e9) s = `${(v / 1e9).toFixed(2)} G`;
  else if (a >= 1e6) s = `${(v / 1e6).toFixed(2)} M`;
  else if (a >= 1e4) s = `${(v / 1e3).toFixed(1)} k`;
  else if (a >= 100) s = v.toFixed(0);
  else if (a >= 1) s = v.toFixed(2);
  else s = v.toPrecision(3);
  return unit ? `${s} ${unit}`.replace(/ $/, '') : s;
}

function cell(s: Summary, unit: string): string {
  if (s.n === 0) return '–';
  if (s.n === 1 || s.min === s.max) return fmt(s.median, unit);
  return `${fmt(s.median, unit)} [${fmt(s.min)}–${fmt(s.max)}]`;
}

function workloads(rs: ResultSet): string[] {
  return [...new Set(rs.rows.map((r) => r.workload))];
}

function metricNames(rows: readonly ResultRow[]): string[] {
  const names: string[] = [];
  for (const r of rows) for (const k of Object.keys(r.metrics)) if (!names.includes(k)) names.push(k);
  return names;
}

/** One Markdown table per workload; cells show the median and, with repeats, [min–max]. */
export function renderMarkdown(rs: ResultSet): string {
  const out: string[] = [];
  const repeats = Math.max(1, ...rs.rows.flatMap((r) => Object.values(r.metrics).map((m) => m.samples.length)));
  out.push(`strata bench — ${rs.meta.startedAt} — ${rs.meta.kernel}, ${rs.meta.cores} cores, node ${rs.meta.node}, commit ${rs.meta.gitCommit ?? 'n/a'}`);
  if (repeats > 1) out.push(`(${repeats} repeats: median [min–max])`);
  for (const w of workloads(rs)) {
    const rows = rs.rows.filter((r) => r.workload === w);
    const names = metricNames(rows);
    out.push('', `### ${w}`, '');
    out.push(`| transport | point | ${names.map((n) => `${n}${unitOf(rows, n) ? ` (${unitOf(rows, n)})` : ''}`).join(' | ')} |`);
    out.push(`|---|---|${names.map(() => '---:').join('|')}|`);
    for (const r of rows) {
      if (r.unavailable) {
        out.push(`| ${r.transport} | ${r.point} | ${names.map((_, i) => (i === 0 ? `unavailable: ${r.unavailable}` : '')).join(' | ')} |`);
        continue;
      }
      out.push(`| ${r.transport} | ${r.point} | ${names.map((n) => (r.metrics[n] ? cell(summarize(r.metrics[n]!.samples), '') : '–')).join(' | ')} |`);
    }
    const notes = rows.filter((r) => r.note).map((r) => `- ${r.transport} ${r.point}: ${r.note}`);
    if (notes.length) out.push('', ...notes);
  }
  return `${out.join('\n')}\n`;
}

function unitOf(rows: readonly ResultRow[], name: string): string {
  for (const r of rows) if (r.metrics[name]) return r.metrics[name]!.unit;
  return '';
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]!));
}

let chartJsSource: string | null = null;
function chartJs(): string {
  if (chartJsSource === null) {
    const req = createRequire(import.meta.url);
    // chart.js's exports map hides dist/: find the package root from its manifest.
    const main = req.resolve('chart.js'); // …/chart.js/dist/chart.cjs
    chartJsSource = readFileSync(join(dirname(main), 'chart.umd.min.js'), 'utf8');
  }
  return chartJsSource;
}

/**
 * A self-contained HTML report: the metadata, the tables, and one bar chart
 * per workload and metric (bars at the median, a floating bar for the
 * min–max band when there are repeats). Chart.js is inlined.
 */
export function renderHtml(rs: ResultSet): string {
  const charts: { id: string; title: string; labels: string[]; median: number[]; band: [number, number][]; unit: string }[] = [];
  const sections: string[] = [];
  for (const w of workloads(rs)) {
    const rows = rs.rows.filter((r) => r.workload === w);
    const names = metricNames(rows);
    const table: string[] = [];
    table.push(`<table><thead><tr><th>transport</th><th>point</th>${names.map((n) => `<th>${esc(n)}${unitOf(rows, n) ? ` (${esc(unitOf(rows, n))})` : ''}</th>`).join('')}</tr></thead><tbody>`);
    for (const r of rows) {
      const cells = r.unavailable
        ? `<td colspan="${names.length}" class="na">unavailable: ${esc(r.unavailable)}</td>`
        : names.map((n) => `<td>${r.metrics[n] ? esc(cell(summarize(r.metrics[n]!.samples), '')) : '–'}</td>`).join('');
      table.push(`<tr><td>${esc(r.transport)}</td><td>${esc(r.point)}</td>${cells}</tr>`);
    }
    table.push('</tbody></table>');
    const canv: string[] = [];
    for (const n of names) {
      const avail = rows.filter((r) => !r.unavailable && r.metrics[n]);
      if (avail.length === 0) continue;
      const id = `c${charts.length}`;
      const sums = avail.map((r) => summarize(r.metrics[n]!.samples));
      charts.push({
        id, title: `${w}: ${n}`, unit: unitOf(rows, n),
        labels: avail.map((r) => `${r.transport} · ${r.point}`),
        median: sums.map((s) => s.median), band: sums.map((s) => [s.min, s.max]),
      });
      canv.push(`<div class="chart"><canvas id="${id}"></canvas></div>`);
    }
    sections.push(`<section><h2>${esc(w)}</h2>${table.join('')}<div class="charts">${canv.join('')}</div></section>`);
  }
  const m = rs.meta;
  const metaRows = [
    ['started', m.startedAt], ['finished', m.finishedAt ?? ''], ['host', m.hostname], ['kernel', m.kernel], ['cpu', `${m.cpu} × ${m.cores}`],
    ['memory', `${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB`], ['node', m.node], ['strata', `${m.strata} (${m.gitCommit ?? 'no git'})`],
    ['versions', Object.entries(m.versions).map(([k, v]) => `${k} ${v}`).join(', ')], ['settings', JSON.stringify(m.settings)],
  ].map(([k, v]) => `<tr><th>${esc(k!)}</th><td>${esc(v!)}</td></tr>`).join('');
  const data = JSON.stringify(charts).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>strata bench report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 8px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0} th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:right} th{background:#f6f8fa}
td:first-child,td:nth-child(2),th:first-child{text-align:left} td.na{color:#9a6700;text-align:left}
.meta th{text-align:left} .charts{display:flex;flex-wrap:wrap;gap:16px} .chart{width:460px;height:300px}
</style></head><body>
<h1>strata bench report</h1>
<table class="meta">${metaRows}</table>
${sections.join('\n')}
<script>${chartJs()}</script>
<script>
const charts = ${data};
for (const c of charts) {
  new Chart(document.getElementById(c.id), {
    type: 'bar',
    data: { labels: c.labels, datasets: [
      { label: 'median' + (c.unit ? ' (' + c.unit + ')' : ''), data: c.median, backgroundColor: '#0969da' },
      { label: 'min–max', data: c.band, backgroundColor: 'rgba(191,135,0,0.35)' },
    ] },
    options: { animation: false, maintainAspectRatio: false, plugins: { title: { display: true, text: c.title } },
      scales: { x: { stacked: false }, y: { beginAtZero: true } } },
  });
}
</script>
</body></html>
`;
}

export interface Difference {
  workload: string;
  transport: string;
  point: string;
  metric: string;
  unit: string;
  a: Summary;
  b: Summary;
  /** (b.median - a.median) / a.median. */
  change: number;
  /** The two min–max bands do not overlap: a difference beyond the noise. */
  significant: boolean;
  /** Whether the change is an improvement (given the metric's direction); meaningful when significant. */
  improved: boolean;
  /** Both sides have at least two samples, so a noise band exists. */
  banded: boolean;
}

/** Compares B against A row by row. Only differences whose noise bands do not overlap are flagged. */
export function compare(a: ResultSet, b: ResultSet): Difference[] {
  const out: Difference[] = [];
  for (const rb of b.rows) {
    const ra = a.rows.find((r) => r.workload === rb.workload && r.transport === rb.transport && r.point === rb.point);
    if (!ra || ra.unavailable || rb.unavailable) continue;
    for (const [name, mb] of Object.entries(rb.metrics)) {
      const ma = ra.metrics[name];
      if (!ma) continue;
      const sa = summarize(ma.samples), sb = summarize(mb.samples);
      if (sa.n === 0 || sb.n === 0) continue;
      const banded = sa.n > 1 && sb.n > 1;
      // Without repeats there is no band to be outside of: nothing is flagged.
      const significant = banded && (sb.min > sa.max || sb.max < sa.min);
      const change = sa.median === 0 ? (sb.median === 0 ? 0 : Infinity) : (sb.median - sa.median) / Math.abs(sa.median);
      out.push({
        workload: rb.workload, transport: rb.transport, point: rb.point, metric: name, unit: mb.unit, a: sa, b: sb,
        change, significant, improved: mb.better === 'higher' ? sb.median > sa.median : sb.median < sa.median,
        banded,
      });
    }
  }
  return out;
}

export function renderComparison(diffs: readonly Difference[]): string {
  const lines = ['| workload | transport | point | metric | A median [min–max] | B median [min–max] | change | verdict |', '|---|---|---|---|---:|---:|---:|---|'];
  for (const d of diffs) {
    const verdict = !d.banded ? 'no noise band (use --repeat ≥ 2)' : d.significant ? (d.improved ? 'better (outside noise)' : 'WORSE (outside noise)') : 'within noise';
    const pct = Number.isFinite(d.change) ? `${d.change >= 0 ? '+' : ''}${(d.change * 100).toFixed(1)}%` : '–';
    lines.push(`| ${d.workload} | ${d.transport} | ${d.point} | ${d.metric} (${d.unit}) | ${cell(d.a, '')} | ${cell(d.b, '')} | ${pct} | ${verdict} |`);
  }
  return `${lines.join('\n')}\n`;
}
