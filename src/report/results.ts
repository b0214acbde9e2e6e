// The benchmark result set: what `strata bench` writes (as CBOR and JSON) and
// what the report and `strata bench compare` read. Every figure keeps all of
// its samples (one per --repeat), so a reader can always recompute the noise
// band (min, median, max) instead of trusting a single number.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export const RESULTS_SCHEMA = 'strata-bench/1';

export interface Metric {
  unit: string;
  /** Which direction is an improvement. */
  better: 'higher' | 'lower';
  /** One value per repeat. */
  samples: number[];
}

export interface ResultRow {
  /** raw, tcp, http, proxy, mtls … */
  workload: string;
  /** afxdp, tap, kernel, cref, nginx … */
  transport: string;
  /** The measured point within the workload: 'saturation', '100 kpps', 'keep-alive GET' … */
  point: string;
  metrics: Record<string, Metric>;
  /** Set when the row could not be measured here, with the reason. */
  unavailable?: string;
  note?: string;
}

export interface ResultMeta {
  startedAt: string;
  finishedAt?: string;
  hostname: string;
  kernel: string;
  cpu: string;
  cores: number;
  memoryBytes: number;
  node: string;
  strata: string;
  gitCommit: string | null;
  versions: Record<string, string>;
  settings: Record<string, unknown>;
}

export interface ResultSet {
  schema: typeof RESULTS_SCHEMA;
  meta: ResultMeta;
  rows: ResultRow[];
}

export interface Summary { min: number; median: number; max: number; n: number }

export function summarize(samples: readonly number[]): Summary {
  const s = samples.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return { min: NaN, median: NaN, max: NaN, n: 0 };
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { min: s[0]!, median, max: s[s.length - 1]!, n: s.length };
}

function firstLine(path: string, re: RegExp): string | null {
  try {
    const m = readFileSync(path, 'utf8').match(re);
    return m ? m[1]!.trim() : null;
  } catch { return null; }
}

function tool(argv: string[], re: RegExp): string | null {
  try {
    const out = execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
    const m = out.match(re);
    return m ? m[1]!.trim() : null;
  } catch { return null; }
}

/** Collects the machine and software facts that make a result set comparable. */
export function collectMeta(settings: Record<string, unknown>, root: string): ResultMeta {
  let strata = 'unknown';
  try { strata = JSON.parse(readFileSync(`${root}/package.json`, 'utf8')).version; } catch { /* keep unknown */ }
  let gitCommit: string | null = null;
  try {
    gitCommit = execFileSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (dirty) gitCommit += '-dirty';
  } catch { /* not a checkout */ }
  const versions: Record<string, string> = { node: process.versions.node, v8: process.versions.v8, openssl: process.versions.openssl };
  const add = (k: string, v: string | null) => { if (v) versions[k] = v; };
  add('wrk', tool(['wrk', '--version'], /wrk\s+([^\s]+)/));
  add('nginx', tool(['sh', '-c', 'nginx -v 2>&1'], /nginx\/([^\s]+)/));
  add('libxdp', tool(['dpkg-query', '-W', '-f=${Version}', 'libxdp1'], /(.+)/));
  add('libbpf', tool(['dpkg-query', '-W', '-f=${Version}', 'libbpf1'], /(.+)/));
  add('clang', tool(['clang', '--version'], /version\s+([^\s]+)/));
  return {
    startedAt: new Date().toISOString(),
    hostname: os.hostname(),
    kernel: `${os.type()} ${os.release()}`,
    cpu: firstLine('/proc/cpuinfo', /model name\s*:\s*(.+)/) ?? os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryBytes: os.totalmem(),
    node: process.version,
    strata,
    gitCommit,
    versions,
    settings,
  };
}
