// The http workload of `strata bench` (issue 4's benchmarks): small
// keep-alive GETs with wrk (`wrk -t1 -c50 --latency`, from the lab's client
// namespace) against the hello app in four versions, each in the server
// namespace pinned to its own CPU:
//
//   node    node:http on the kernel's TCP (the baseline)        10.200.0.2:8080
//   kernel  strata's HttpServer on net.Socket                   10.200.0.2:8080
//   tap     strata's HttpServer on the userspace TCP over TAP   10.201.0.2:8080
//   afxdp   strata's HttpServer on the userspace TCP over AF_XDP 10.200.0.3:8080
//
// Every row has the request rate, wrk's p50/p99, errors (socket errors and
// non-2xx), the server's CPU per request (user+sys from /proc) and the
// machine's softirq time per request, and the server's RSS at the end. The
// machinery here (runHttpVersions) is shared by the proxy and mtls workloads.
import { existsSync } from 'node:fs';
import type { Lab } from '../lab/topo.js';
import { probeTransports } from '../link/native.js';
import type { ResultRow } from '../report/results.js';
import { isRoot } from '../util/run.js';
import type { BenchContext, Workload } from './workload.js';
import { serverSummary } from './tcp.js';
import {
  clientNote, lastJson, benchCpus, numOption, pickTransports, addCleanup, checkInterrupted, clearLabXdp, errMsg, interruptAll, isInterrupted, medianOf, metric, nodeScript, pinned, removeCleanup,
  resetInterrupt, startServer, stopServer, unavailableRow, verdict, type ClientRun, type ServerPids, type ServerProc,
} from './tcp-measure.js';
import { runWrk, wrkAvailable } from './wrk.js';

export const HTTP_TRANSPORTS = ['node', 'kernel', 'tap', 'afxdp'] as const;
export const HTTP_PORT = 8080;
export const HTTP_POINT = 'keep-alive GET';

/** One server version: how to start it and where to send requests. */
export interface HttpVersion {
  transport: string;
  label: string;
  url: string;
  unavailable(): string | null;
  start(): Promise<StartedServer>;
}

export interface StartedServer {
  /** The processes whose CPU is the dataplane's. */
  pids: ServerPids;
  stop(): Promise<void>;
  note?: string;
  /** After stop(): the server's own counters over its run, if it reports any. */
  summary?(): string | null;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  run: ClientRun;
  detail: string;
}

/** Drives one version for `duration` seconds and reports. */
export type LoadFn = (url: string, duration: number, server: ServerPids) => Promise<LoadResult>;

export interface HttpRunOptions {
  workload: string;
  point: string;
  duration: number;
  /** Seconds of unmeasured load first (JIT, ARP, connection pools). */
  warmup: number;
  progress: (line: string) => void;
}

export function wrkLoad(lab: Lab, o: { connections: number; cpu: number; nice: number }): LoadFn {
  return async (url, duration, server) => {
    const { report: w, run } = await runWrk(lab, { url, duration, connections: o.connections, cpu: o.cpu, nice: o.nice, server });
    const se = w.socketErrors;
    const errors = se.connect + se.read + se.write + se.timeout + w.non2xx;
    return {
      requests: w.requests, seconds: w.seconds, rps: w.rps, p50: w.latency.p50 ?? NaN, p99: w.latency.p99 ?? NaN, errors, run,
      detail: `wrk -t1 -c${o.connections}: ${w.requests} requests in ${w.seconds.toFixed(2)} s; socket errors connect ${se.connect}, read ${se.read}, write ${se.write}, timeout ${se.timeout}; non-2xx ${w.non2xx}`,
    };
  };
}

export function loadRow(workload: string, transport: string, point: string, l: LoadResult): ResultRow {
  const r = l.run;
  const n = Math.max(1, l.requests);
  return {
    workload, transport, point,
    metrics: {
      'req/s': metric('req/s', 'higher', l.rps),
      'p50': metric('µs', 'lower', l.p50),
      'p99': metric('µs', 'lower', l.p99),
      'errors': metric('', 'lower', l.errors),
      'CPU/req': metric('µs', 'lower', (r.serverCpu / n) * 1e6),
      'softirq/req': metric('µs', 'lower', (r.softirq / n) * 1e6),
      'dataplane CPU': metric('% core', 'lower', (r.serverCpu / r.window) * 100),
      'RSS': metric('MiB', 'lower', r.rss / 2 ** 20),
    },
    note: `${l.detail}; ${clientNote(r)}; softirq is machine-wide`,
  };
}

/** Runs every version in turn: start, warm up, measure, stop. A failing version becomes an `unavailable` row. */
export async function runHttpVersions(versions: readonly HttpVersion[], load: LoadFn, o: HttpRunOptions): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  for (const v of versions) {
    checkInterrupted();
    const why = v.unavailable();
    if (why) {
      o.progress(`${o.workload}: ${v.transport}: unavailable: ${why}`);
      rows.push(unavailableRow(o.workload, v.transport, o.point, why));
      continue;
    }
    let s: StartedServer | undefined;
    try {
      o.progress(`${o.workload}: ${v.transport}: starting ${v.label} …`);
      s = await v.start();
      if (o.warmup > 0) await load(v.url, o.warmup, s.pids);
      checkInterrupted();
      const l = await load(v.url, o.duration, s.pids);
      if (l.requests === 0) throw new Error(`no request completed (${l.detail})`);
      const row = loadRow(o.workload, v.transport, o.point, l);
      if (s.note) row.note = `${s.note}; ${row.note}`;
      rows.push(row);
      o.progress(`${o.workload}: ${v.transport}: ${Math.round(l.rps)} req/s, p50 ${l.p50.toFixed(0)} µs, p99 ${l.p99.toFixed(0)} µs, ${l.errors} errors, `
        + `CPU ${row.metrics['CPU/req']!.samples[0]!.toFixed(1)} µs/req, softirq ${row.metrics['softirq/req']!.samples[0]!.toFixed(1)} µs/req, RSS ${row.metrics.RSS!.samples[0]!.toFixed(0)} MiB`);
    } catch (e) {
      if (isInterrupted()) throw e;
      o.progress(`${o.workload}: ${v.transport}: failed: ${errMsg(e)}`);
      rows.push(unavailableRow(o.workload, v.transport, o.point, `failed: ${errMsg(e)}`));
    } finally {
      if (s) {
        await s.stop();
        const sum = s.summary?.() ?? null;
        const row = rows[rows.length - 1];
        if (sum && row && row.transport === v.transport && !row.unavailable) row.note = `${row.note ?? ''}; server over its whole run: ${sum}`;
      }
    }
  }
  return rows;
}

// ---- the hello servers ----------------------------------------------------------

export function httpUnavailable(): string | null {
  if (!isRoot()) return 'needs root (network namespaces)';
  return wrkAvailable();
}

export function stackUnavailable(kind: 'tap' | 'afxdp'): string | null {
  const p = probeTransports()[kind];
  return p.available ? null : p.reason ?? `${kind} unavailable`;
}

export interface TlsFiles { cert: string; key: string; ca: string }

/** Starts a tcp-server.ts process in the server namespace; for AF_XDP, makes sure nothing of its XDP program outlives it. */
export async function startBenchServer(lab: Lab, args: readonly string[], o: { cpu: number; nice: number; xdp: boolean }): Promise<StartedServer> {
  if (o.xdp) addCleanup('http-xdp', () => clearLabXdp(lab));
  let p: ServerProc;
  try {
    p = await startServer([...pinned(o.cpu, o.nice), ...lab.server([...nodeScript('tcp-server'), ...args])], /^READY$/m);
  } catch (e) {
    if (o.xdp) { if (existsSync(lab.pinDir)) clearLabXdp(lab); removeCleanup('http-xdp'); }
    throw e;
  }
  return {
    pids: p.pid,
    async stop() {
      await stopServer(p);
      if (o.xdp) { if (existsSync(lab.pinDir)) clearLabXdp(lab); removeCleanup('http-xdp'); }
    },
    summary: () => serverSummary(lastJson<Record<string, unknown>>(p.out())),
  };
}

/** The hello server versions (with tls: each requires a client certificate from the CA). */
export function helloVersions(lab: Lab, o: { cpu: number; nice: number; tls?: TlsFiles; only?: readonly string[] }): HttpVersion[] {
  const scheme = o.tls ? 'https' : 'http';
  const tlsArgs = o.tls ? ['--tls', '--cert', o.tls.cert, '--key', o.tls.key, '--ca', o.tls.ca] : [];
  const mk = (transport: string, label: string, addr: string, args: string[], unavailable: () => string | null, xdp = false): HttpVersion => ({
    transport, label, url: `${scheme}://${addr}:${HTTP_PORT}/`, unavailable,
    start: () => startBenchServer(lab, ['--proto', 'http', '--app', 'hello', '--addr', addr, '--port', String(HTTP_PORT), ...args, ...tlsArgs], { cpu: o.cpu, nice: o.nice, xdp }),
  });
  const all = [
    mk('node', o.tls ? 'node:https (kernel), client certificate required' : 'node:http (kernel)', lab.kernelAddr, ['--impl', 'node', '--transport', 'kernel'], httpUnavailable),
    mk('kernel', 'strata HttpServer on net.Socket', lab.kernelAddr, ['--impl', 'strata', '--transport', 'kernel'], httpUnavailable),
    mk('tap', 'strata HttpServer on the userspace TCP over TAP', lab.tapAddr, ['--impl', 'strata', '--transport', 'tap', '--gateway', lab.tapKernelAddr],
      () => httpUnavailable() ?? stackUnavailable('tap')),
    mk('afxdp', 'strata HttpServer on the userspace TCP over AF_XDP', lab.afxdpAddr, ['--impl', 'strata', '--transport', 'afxdp', '--pin-dir', lab.pinDir],
      () => httpUnavailable() ?? stackUnavailable('afxdp'), true),
  ];
  return o.only ? all.filter((v) => o.only!.includes(v.transport)) : all;
}


export function warmupFor(ctx: BenchContext): number { return ctx.duration >= 10 ? 2 : 1; }

/** Issue 4's server target. */
export function httpTargets(rows: readonly ResultRow[], workload = 'http', point = HTTP_POINT): string[] {
  const x = medianOf(rows, workload, 'afxdp', point, 'req/s');
  const n = medianOf(rows, workload, 'node', point, 'req/s');
  const label = workload === 'mtls' ? 'with mTLS, ' : '';
  if (Number.isFinite(x) && Number.isFinite(n) && n > 0) {
    return [`- ${label}our server on AF_XDP vs node:${workload === 'mtls' ? 'https' : 'http'} on the kernel: ${(x / n).toFixed(2)}x (target >= 2x): ${verdict(x >= 2 * n)}`];
  }
  return [`- ${label}our server on AF_XDP vs node:http on the kernel: not measured here`];
}

export const httpWorkload: Workload = {
  name: 'http',
  summary: 'HTTP: small keep-alive GETs with wrk -c50 against node:http and strata\'s server on the kernel, TAP and AF_XDP',
  transports: HTTP_TRANSPORTS,
  async run(ctx) {
    resetInterrupt();
    const cpus = benchCpus();
    const nice = numOption(ctx, 'nice', -10, -20, 19);
    const connections = numOption(ctx, 'connections', 50, 1, 10000);
    const versions = helloVersions(ctx.lab, { cpu: cpus.server, nice, only: pickTransports(ctx, HTTP_TRANSPORTS, 'http') });
    return runHttpVersions(versions, wrkLoad(ctx.lab, { connections, cpu: cpus.client, nice }), {
      workload: 'http', point: HTTP_POINT, duration: ctx.duration, warmup: warmupFor(ctx), progress: ctx.progress,
    });
  },
  targets: (rows) => httpTargets(rows, 'http'),
  interrupt: interruptAll,
};
