// `strata bench`: runs workloads in the lab and prints one Markdown table per
// workload from one run, saved (JSON + Markdown) under --out.
//
//   strata bench [--workloads raw,tcp,http,proxy,mtls] [--quick] [--duration S] [--transports afxdp,tap,kernel,cref]
//                [--rate PPS] [--mode event|busy] [--burst N] [--flows N] [--payload BYTES]
//                [--alloc-packets N] [--nice N] [--conc N] [--connections N] [--upstream local|wire|both] [--repeat N] [--out DIR] [--json]
//
// --conc: connections in flight for tcp's connection-rate point (16);
// --connections: HTTP connections for http, proxy and mtls (wrk -c, 50).
// --upstream: where proxy's upstream stands, on loopback (local), across the
// veth (wire) or both (default), each its own point; see src/bench/proxy.ts.
//
// --repeat N runs every workload N times and keeps every sample, so the table
// shows median [min–max]: on a shared machine one run is not a measurement.
//
// The default lab (strata-client / strata-server) is brought up if it is not
// already, and taken down again afterwards if this command made it. Ctrl-C
// ends the echo processes and detaches XDP before exiting.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { encode as encodeCbor, decode as decodeCbor } from 'cbor-x';
import { join, resolve } from 'node:path';
import { Lab, chooseLab, labLine } from '../lab/topo.js';
import { repoRoot } from '../link/native.js';
import { RESULTS_SCHEMA, collectMeta, type ResultRow, type ResultSet } from '../report/results.js';
import { compare, renderComparison, renderHtml, renderMarkdown } from '../report/render.js';
import { isRoot } from '../util/run.js';
import { loadWorkload, workloadNames, type Workload } from '../bench/workload.js';
import { parseArgs, UsageError } from './args.js';

const USAGE = `usage: strata bench compare A.json|A.cbor B.json|B.cbor
       strata bench [--workloads raw,tcp,http,proxy,mtls] [--quick] [--duration S] [--transports LIST]
                    [--rate PPS] [--mode event|busy] [--burst N] [--flows N] [--payload BYTES]
                    [--alloc-packets N] [--nice N] [--conc N] [--connections N] [--upstream local|wire|both] [--repeat N] [--out DIR] [--json]
`;

function list(v: string[] | undefined): string[] | null {
  if (!v) return null;
  return v.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
}

/** Appends the samples of a repeated run to the rows of earlier runs (same workload, transport and point). */
export function mergeRows(into: ResultRow[], more: readonly ResultRow[]): void {
  for (const r of more) {
    const prev = into.find((x) => x.workload === r.workload && x.transport === r.transport && x.point === r.point);
    if (!prev) { into.push({ ...r, metrics: Object.fromEntries(Object.entries(r.metrics).map(([k, m]) => [k, { ...m, samples: [...m.samples] }])) }); continue; }
    if (prev.unavailable && !r.unavailable) { prev.unavailable = undefined; }
    for (const [k, m] of Object.entries(r.metrics)) {
      const pm = prev.metrics[k];
      if (pm) pm.samples.push(...m.samples);
      else prev.metrics[k] = { ...m, samples: [...m.samples] };
    }
    if (r.note) prev.note = r.note; // the last run's counters
  }
}

export async function main(argv: string[]): Promise<number> {
  const a = parseArgs(argv, {
    booleans: ['quick', 'json', 'help'],
    strings: ['duration', 'out', 'rate', 'mode', 'burst', 'flows', 'payload', 'alloc-packets', 'nice', 'repeat', 'conc', 'connections', 'upstream'],
    lists: ['workloads', 'transports'],
  });
  if (a.flags.has('help')) { process.stdout.write(USAGE); return 0; }
  if (a.positionals[0] === 'compare') return compareCommand(a.positionals.slice(1));
  if (a.positionals.length) throw new UsageError(`unexpected argument '${a.positionals[0]}'\n${USAGE}`);
  const quick = a.flags.has('quick');
  const duration = a.values.has('duration') ? Number(a.values.get('duration')) : quick ? 3 : 10;
  if (!Number.isFinite(duration) || duration <= 0 || duration > 3600) throw new UsageError('--duration must be a number of seconds in (0, 3600]');
  const repeat = Number(a.values.get('repeat') ?? 1);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 100) throw new UsageError('--repeat must be an integer in [1, 100]');
  // Every workload by default: the full comparison (issue 5); --workloads narrows it.
  const names = list(a.listValues.get('workloads')) ?? workloadNames();
  const workloads: Workload[] = [];
  for (const n of names) {
    const w = await loadWorkload(n);
    if (!w) throw new UsageError(`unknown workload '${n}' (known: ${workloadNames().join(', ')})`);
    workloads.push(w);
  }
  const outDir = resolve(a.values.get('out') ?? join(repoRoot, 'results'));
  const progress = (line: string): void => { process.stderr.write(`${line}\n`); };

  const choice = chooseLab(undefined);
  const lab = new Lab({ prefix: choice.prefix });
  progress(`bench: ${labLine(choice)}`);
  let madeLab = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    progress(`bench: ${sig}: stopping, cleaning up …`);
    for (const w of workloads) w.interrupt?.();
    if (madeLab) lab.down();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const settings: Record<string, unknown> = { quick, duration, workloads: names, transports: list(a.listValues.get('transports')) };
  for (const [k, v] of a.values) if (k !== 'out' && k !== 'duration') settings[k] = v;
  const rs: ResultSet = { schema: RESULTS_SCHEMA, meta: collectMeta(settings, repoRoot), rows: [] };
  const targets: string[] = [];
  try {
    if (isRoot() && !lab.isUp()) {
      progress(`bench: bringing the lab up (${lab.clientNs}, ${lab.serverNs})`);
      lab.up();
      madeLab = true;
    }
    for (const w of workloads) {
      const rows: ResultRow[] = [];
      for (let i = 1; i <= repeat; i++) {
        progress(`bench: workload ${w.name}${repeat > 1 ? ` (run ${i} of ${repeat})` : ''}: ${w.summary}; ${duration} s per point`);
        const got = await w.run({ lab, quick, duration, transports: list(a.listValues.get('transports')), options: a.values, progress });
        mergeRows(rows, got);
      }
      rs.rows.push(...rows);
      if (w.targets) targets.push(`### ${w.name}: targets${repeat > 1 ? ' (medians)' : ''}`, '', ...w.targets(rows), '');
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (madeLab) { progress('bench: taking the lab down'); lab.down(); }
  }
  rs.meta.finishedAt = new Date().toISOString();
  const md = `${renderMarkdown(rs)}${targets.length ? `\n${targets.join('\n')}` : ''}`;
  mkdirSync(outDir, { recursive: true });
  const stamp = rs.meta.startedAt.replace(/[:.]/g, '-');
  const jsonPath = join(outDir, `bench-${stamp}.json`);
  const cborPath = join(outDir, `bench-${stamp}.cbor`);
  const mdPath = join(outDir, `bench-${stamp}.md`);
  const htmlPath = join(outDir, `bench-${stamp}.html`);
  writeFileSync(jsonPath, `${JSON.stringify(rs, null, 2)}\n`);
  writeFileSync(cborPath, encodeCbor(rs));
  writeFileSync(mdPath, md);
  writeFileSync(htmlPath, renderHtml(rs));
  process.stdout.write(a.flags.has('json') ? `${JSON.stringify(rs)}\n` : md);
  progress(`bench: results saved to ${jsonPath} and ${cborPath}`);
  process.stdout.write(`\nreport: ${htmlPath}\n`);
  return 0;
}

/** Reads a result set written by `strata bench` (.json or .cbor). */
export function readResultSet(path: string): ResultSet {
  const buf = readFileSync(path);
  const rs = (path.endsWith('.cbor') ? decodeCbor(buf) : JSON.parse(buf.toString('utf8'))) as ResultSet;
  if (rs?.schema !== RESULTS_SCHEMA) throw new UsageError(`${path}: not a strata bench result set (schema ${String(rs?.schema)})`);
  return rs;
}

/** `strata bench compare A B`: B against A, flagging only differences outside the noise bands. */
function compareCommand(args: string[]): number {
  if (args.length !== 2) throw new UsageError('usage: strata bench compare A.json|A.cbor B.json|B.cbor');
  const [pa, pb] = args as [string, string];
  const ra = readResultSet(pa), rb = readResultSet(pb);
  const diffs = compare(ra, rb);
  process.stdout.write(`A: ${pa} (${ra.meta.startedAt}, ${ra.meta.gitCommit ?? 'no git'})\nB: ${pb} (${rb.meta.startedAt}, ${rb.meta.gitCommit ?? 'no git'})\n\n`);
  process.stdout.write(renderComparison(diffs));
  const flagged = diffs.filter((d) => d.significant);
  const unbanded = diffs.filter((d) => !d.banded).length;
  process.stdout.write(`\n${flagged.length} of ${diffs.length} figures differ beyond the noise band`
    + `${flagged.length ? `: ${flagged.map((d) => `${d.workload}/${d.transport}/${d.point}/${d.metric} ${d.improved ? 'better' : 'worse'}`).join(', ')}` : ''}`
    + `${unbanded ? `; ${unbanded} have no band (run with --repeat 2 or more)` : ''}\n`);
  return 0;
}
