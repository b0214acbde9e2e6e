// Shared machinery of the tcp, http, proxy and mtls workloads of `strata
// bench`: starting a server process in the lab's server namespace and waiting
// for its ready line, running a load generator in the client namespace while
// sampling the server's CPU time (/proc/<pid>/stat), the machine's softirq
// time (/proc/stat) and, at the end, the server's RSS (/proc/<pid>/status),
// and ending every child (and the XDP program a killed server may have left)
// on stop or Ctrl-C.
//
// Softirq time is machine-wide: the lab's veth and TAP receive paths run in
// softirq on whichever CPU sent the packet, so there is no per-process
// figure to take. On a shared machine it includes the neighbours' softirq
// work; the rows say so in their notes.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removePins, type Lab } from '../lab/topo.js';
import { repoRoot } from '../link/native.js';
import type { Metric, ResultRow } from '../report/results.js';
import { StrataError } from '../util/errors.js';
import { tryRun } from '../util/run.js';
import { cpuSeconds } from './raw.js';
import os from 'node:os';
import { UsageError } from '../cli/args.js';
import type { BenchContext } from './workload.js';

export const tcploadPath = join(repoRoot, 'bench', 'c', 'tcpload.bin');

const CLK_TCK = (() => {
  const r = tryRun(['getconf', 'CLK_TCK']);
  const v = Number(r.stdout.trim());
  return r.status === 0 && v > 0 ? v : 100;
})();

/** Softirq (and hard irq) seconds spent by all CPUs so far, from the aggregate line of /proc/stat. */
export function irqSeconds(): { softirq: number; irq: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  // cpu  user nice system idle iowait irq softirq steal …
  const f = line.trim().split(/\s+/);
  return { irq: Number(f[6]) / CLK_TCK, softirq: Number(f[7]) / CLK_TCK };
}

/** Resident set size of a process in bytes (VmRSS), or NaN when it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch { return NaN; }
}

/** CPU seconds of a process, or NaN when it is gone. */
export function cpuOf(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try { return cpuSeconds(pid); } catch { return NaN; }
}

export function metric(unit: string, better: 'higher' | 'lower', v: number): Metric {
  return { unit, better, samples: [v] };
}

// ---- children and interrupts ----------------------------------------------

const children = new Set<ChildProcess>();
let interrupted = false;
/** Cleanups to run on interrupt (XDP detach, ethtool restore …), keyed so each runs once. */
const cleanups = new Map<string, () => void>();

export function resetInterrupt(): void { interrupted = false; }
export function isInterrupted(): boolean { return interrupted; }
export function checkInterrupted(): void {
  if (interrupted) throw new StrataError('ERR_STRATA_INTERRUPTED', 'interrupted');
}
export function addCleanup(key: string, fn: () => void): void { cleanups.set(key, fn); }
export function removeCleanup(key: string): void { cleanups.delete(key); }

/** Ends every child this module started and runs the pending cleanups. Idempotent. */
export function interruptAll(): void {
  interrupted = true;
  for (const c of children) { try { c.kill('SIGTERM'); } catch { /* gone */ } }
  for (const [k, fn] of [...cleanups]) { cleanups.delete(k); try { fn(); } catch { /* best effort */ } }
}

/** taskset/nice prefix (both exec, so the child's pid is the program's own). */
export function pinned(cpu: number | undefined, nice: number | undefined): string[] {
  const p: string[] = [];
  if (cpu !== undefined) p.push('taskset', '-c', String(cpu));
  if (nice) p.push('nice', '-n', String(nice));
  return p;
}

/** How to run one of our TypeScript entry points as a separate process: compiled JS under dist/, or the TS source through tsx. */
export function nodeScript(name: string, nodeArgs: readonly string[] = []): string[] {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return [process.execPath, ...nodeArgs, join(here, '..', `${name}.js`)];
  return [process.execPath, ...nodeArgs, '--import', 'tsx', join(here, '..', `${name}.ts`)];
}

/** `strata proxy` as a child process (src/bench/proxy-run.ts runs src/cli/proxy.ts's main(), compiled or through tsx); argv follows. */
export function strataProxyCli(): string[] { return nodeScript('proxy-run'); }

export interface ServerProc {
  child: ChildProcess;
  pid: number;
  out(): string;
  err(): string;
  /** Set once it exited. */
  exited(): boolean;
}

/**
 * Spawns argv and resolves once it is ready: a line matching `ready` on its
 * stdout, or (for servers that print nothing, like nginx) `ready()` true,
 * polled every 100 ms.
 */
export async function startServer(argv: readonly string[], ready: RegExp | (() => boolean), env: NodeJS.ProcessEnv = {}, readyTimeoutMs = 45_000): Promise<ServerProc> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: repoRoot, env: { ...process.env, ...env } });
  children.add(child);
  let out = '', err = '', gone = false;
  child.once('exit', () => { gone = true; children.delete(child); });
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; if (err.length > 65536) err = err.slice(-32768); });
  const p: ServerProc = { child, pid: child.pid ?? -1, out: () => out, err: () => err, exited: () => gone };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { done(); reject(new StrataError('ERR_STRATA_BENCH', `server did not become ready in ${readyTimeoutMs} ms: ${tail(err || out)}`)); }, readyTimeoutMs);
      const isReady = typeof ready === 'function' ? ready : (): boolean => ready.test(out);
      const onData = (): void => { if (isReady()) { done(); resolve(); } };
      const poller = typeof ready === 'function' ? setInterval(onData, 100) : null;
      const onExit = (code: number | null, sig: string | null): void => {
        done();
        reject(new StrataError('ERR_STRATA_BENCH', `server exited (${code ?? sig}) before it was ready: ${tail(err || out)}`));
      };
      const done = (): void => { clearTimeout(timer); if (poller) clearInterval(poller); child.stdout!.off('data', onData); child.off('exit', onExit); };
      child.stdout!.on('data', onData);
      child.on('exit', onExit);
      onData();
    });
  } catch (e) {
    await stopServer(p);
    throw e;
  }
  return p;
}

function tail(s: string): string {
  const t = s.trim();
  return t.length > 600 ? `…${t.slice(-600)}` : t;
}

/** SIGTERM, wait for exit (SIGKILL after a grace period). */
export async function stopServer(p: ServerProc, graceMs = 5000): Promise<void> {
  if (p.exited() || p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.child.once('exit', () => r()));
  p.child.kill('SIGTERM');
  const t = setTimeout(() => { try { p.child.kill('SIGKILL'); } catch { /* gone */ } }, graceMs);
  await exited;
  clearTimeout(t);
}

/** After a server that attached XDP on the lab's veth has exited: nothing of it may stay behind. */
export function clearLabXdp(lab: Lab, pinDir: string = lab.pinDir): void {
  tryRun(lab.server(['ip', 'link', 'set', 'dev', lab.serverIface, 'xdp', 'off']));
  if (existsSync(pinDir)) removePins(pinDir);
}

/** The processes whose CPU time is the dataplane's: one pid, several, or a function (nginx's workers). */
export type ServerPids = number | readonly number[] | (() => readonly number[]) | undefined;

/** pid and its direct children (/proc/<pid>/task/<pid>/children). */
export function withChildren(pid: number): number[] {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return [pid, ...(kids ? kids.split(/\s+/).map(Number) : [])];
  } catch { return [pid]; }
}

export interface ClientRun {
  /** The client's stdout (its JSON line is the last line starting with '{'). */
  out: string;
  err: string;
  code: number | null;
  /** Server CPU seconds, softirq seconds and wall seconds between GO and END (or spawn and exit without markers). */
  serverCpu: number;
  softirq: number;
  window: number;
  /** The client's own CPU seconds over its whole run (to show it was not the bottleneck). */
  clientCpu: number;
  /** Server RSS at END, bytes. */
  rss: number;
}

/**
 * Runs a load generator to completion. With markers, the server's CPU and the
 * softirq time are sampled at its "GO"/"END" lines; without, at spawn and exit.
 */
export async function runClient(argv: readonly string[], server: ServerPids, markers: boolean, timeoutMs: number): Promise<ClientRun> {
  const pids = (): readonly number[] => (server === undefined ? [] : typeof server === 'number' ? [server] : typeof server === 'function' ? server() : server);
  const serverCpu = (): number => { const p = pids(); return p.length ? p.reduce((s, x) => s + cpuOf(x), 0) : NaN; };
  const serverRss = (): number => { const p = pids(); return p.length ? p.reduce((s, x) => s + rssBytes(x), 0) : NaN; };
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: repoRoot });
  children.add(child);
  let out = '', err = '', buf = '';
  type Sample = { cpu: number; soft: number; t: number };
  const sample = (): Sample => ({ cpu: serverCpu(), soft: irqSeconds().softirq, t: performance.now() / 1000 });
  let a: Sample | null = markers ? null : sample();
  let b: Sample | null = null;
  let rss = NaN;
  let clientCpu = NaN;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (!markers) return;
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith('GO ')) a = sample();
      else if (line.startsWith('END ')) { b = sample(); rss = serverRss(); clientCpu = cpuOf(child.pid); }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  // Without markers the end is sampled when the client exits; its own CPU just before (via polling).
  const poll = !markers ? setInterval(() => { const c = cpuOf(child.pid); if (Number.isFinite(c)) clientCpu = c; rss = serverRss(); }, 200) : null;
  const killer = setTimeout(() => { try { child.kill('SIGTERM'); } catch { /* gone */ } }, timeoutMs);
  const code = await new Promise<number | null>((r) => {
    child.once('exit', (c) => { if (!markers) { b = sample(); } children.delete(child); r(c); });
    child.once('error', (e) => { err += String(e.message); children.delete(child); r(null); });
  });
  clearTimeout(killer);
  if (poll) clearInterval(poll);
  checkInterrupted();
  const s0 = a as Sample | null, s1 = b as Sample | null;
  return {
    out, err, code,
    serverCpu: s0 && s1 ? s1.cpu - s0.cpu : NaN,
    softirq: s0 && s1 ? s1.soft - s0.soft : NaN,
    window: s0 && s1 ? s1.t - s0.t : NaN,
    clientCpu,
    rss,
  };
}

/**
 * The client's CPU over the window, flagged when it used (nearly) a whole
 * core: then the generator, not the server, may have set the rate.
 */
export function clientNote(r: ClientRun): string {
  const pct = (r.clientCpu / r.window) * 100;
  if (!Number.isFinite(pct)) return 'client CPU not measured';
  return `client CPU ${pct.toFixed(0)} % of a core${pct >= 90 ? ' (CLIENT-BOUND: the generator used a whole core; the server may be faster than this row)' : ''}`;
}

/** The last JSON object a generator printed. */
export function lastJson<T>(out: string): T | null {
  const l = out.trim().split('\n').filter((x) => x.startsWith('{')).pop();
  if (!l) return null;
  try { return JSON.parse(l) as T; } catch { return null; }
}

/** A row that could not be measured, with the reason. */
export function unavailableRow(workload: string, transport: string, point: string, why: string): ResultRow {
  return { workload, transport, point, metrics: {}, unavailable: why };
}

/** The median of a row's metric, NaN when absent. */
export function medianOf(rows: readonly ResultRow[], workload: string, transport: string, point: string, name: string): number {
  const r = rows.find((x) => x.workload === workload && x.transport === transport && x.point === point && !x.unavailable);
  const s = r?.metrics[name]?.samples.filter((v) => Number.isFinite(v)).sort((x, y) => x - y);
  if (!s || s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function verdict(ok: boolean): string { return ok ? 'met' : 'MISSED'; }

export function errMsg(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}

// ---- options shared by the workloads ----------------------------------------

export function numOption(ctx: BenchContext, key: string, dflt: number, min: number, max: number): number {
  const s = ctx.options.get(key);
  if (s === undefined) return dflt;
  const v = Number(s);
  if (!Number.isFinite(v) || v < min || v > max) throw new UsageError(`--${key} must be a number in [${min}, ${max}]`);
  return v;
}

/** CPUs for the server and the client: the last one and the one before (the same if there is only one). */
export function benchCpus(): { server: number; client: number } {
  const n = os.cpus().length;
  return { server: n - 1, client: Math.max(0, n - 2) };
}

/** Baselines and peers on the kernel path: selected along with `kernel`. */
export const KERNEL_PEERS = ['node', 'nginx', 'kernel-tso'] as const;

/**
 * The transports asked for, checked against the known ones. The kernel-path
 * peers (node:http, nginx, the kernel with TSO) come with `kernel`: issue 5's
 * `--transports kernel,tap,afxdp` must still measure the baselines the
 * targets compare against.
 */
export function pickTransports(ctx: Pick<BenchContext, 'transports' | 'progress'>, known: readonly string[], workload: string): string[] {
  if (!ctx.transports) return [...known];
  const want = new Set(ctx.transports);
  if (want.has('kernel')) for (const peer of KERNEL_PEERS) want.add(peer);
  for (const t of ctx.transports) if (!known.includes(t)) ctx.progress(`${workload}: no transport '${t}' (known: ${known.join(', ')}); skipped`);
  return known.filter((t) => want.has(t));
}

