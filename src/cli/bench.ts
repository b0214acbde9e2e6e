// `strata bench`: runs workloads in the lab and prints one Markdown table per
// workload from one run, saved (JSON + Markdown) under --out.
//
//   strata bench [--workloads raw,tcp,http,proxy,mtls] [--quick] [--duration S] [--transports afxdp,tap,kernel,cref]
//                [--rate PPS] [--mode event|busy] [--burst N] [--flows N] [--payload BYTES]
//                [--alloc-packets N] [--nice N] [--conc N] [--connections N] [--repeat N] [--out DIR] [--json]
//
// --conc: connections in flight for tcp's connection-rate point (16);
// --connections: HTTP connections for http, proxy and mtls (wrk -c, 50).
//
// --repeat N runs every workload N times and keeps every sample, so the table
// shows median [min–max]: on a shared machine one run is not a measurement.
//
// The default lab (strata-client / strata-server) is brought up if it is not
// already, and taken down again afterwards if this command made it. Ctrl-C
// ends the echo processes and detaches XDP before exiting.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Lab } from '../lab/topo.js';
import { repoRoot } from '../link/native.js';
import { RESULTS_SCHEMA, collectMeta, type ResultRow, type ResultSet } from '../report/results.js';
import { renderMarkdown } from '../report/render.js';
import { isRoot } from '../util/run.js';
import { loadWorkload, workloadNames, type Workload } from '../bench/workload.js';
import { parseArgs, UsageError } from './args.js';

const USAGE = `usage: strata bench [--workloads raw,tcp,http,proxy,mtls] [--quick] [--duration S] [--transports LIST]
                    [--rate PPS] [--mode event|busy] [--burst N] [--flows N] [--payload BYTES]
                    [--alloc-packets N] [--nice N] [--conc N] [--connections N] [--repeat N] [--out DIR] [--json]
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
    strings: ['duration', 'out', 'rate', 'mode', 'burst', 'flows', 'payload', 'alloc-packets', 'nice', 'repeat', 'conc', 'connections'],
    lists: ['workloads', 'transports'],
  });
  if (a.flags.has('help')) { process.stdout.write(USAGE); return 0; }
  if (a.positionals.length) throw new UsageError(`unexpected argument '${a.positionals[0]}'\n${USAGE}`);
  const quick = a.flags.has('quick');
  const duration = a.values.has('duration') ? Number(a.values.get('duration')) : quick ? 3 : 10;
  if (!Number.isFinite(duration) || duration <= 0 || duration > 3600) throw new UsageError('--duration must be a number of seconds in (0, 3600]');
  const repeat = Number(a.values.get('repeat') ?? 1);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 100) throw new UsageError('--repeat must be an integer in [1, 100]');
  const names = list(a.listValues.get('workloads')) ?? ['raw'];
  const workloads: Workload[] = [];
  for (const n of names) {
    const w = await loadWorkload(n);
    if (!w) throw new UsageError(`unknown workload '${n}' (known: ${workloadNames().join(', ')})`);
    workloads.push(w);
  }
  const outDir = resolve(a.values.get('out') ?? join(repoRoot, 'results'));
  const progress = (line: string): void => { process.stderr.write(`${line}\n`); };

  const lab = new Lab();
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
  const mdPath = join(outDir, `bench-${stamp}.md`);
  writeFileSync(jsonPath, `${JSON.stringify(rs, null, 2)}\n`);
  writeFileSync(mdPath, md);
  process.stdout.write(a.flags.has('json') ? `${JSON.stringify(rs)}\n` : md);
  progress(`bench: results saved to ${jsonPath} and ${mdPath}`);
  return 0;
}
