// wrk as the HTTP load generator of the http and proxy workloads: runs it in
// the lab's client namespace (pinned, niced like the server), samples the
// server's CPU, softirq time and RSS around it, and parses its report
// (requests, Requests/sec, the --latency distribution, socket errors and
// non-2xx responses).
import { tryRun } from '../util/run.js';
import type { Lab } from '../lab/topo.js';
import { pinned, runClient, type ClientRun, type ServerPids } from './tcp-measure.js';

export interface WrkReport {
  requests: number;
  seconds: number;
  rps: number;
  /** Latency percentiles in microseconds (50, 75, 90, 99). */
  latency: Partial<Record<'p50' | 'p75' | 'p90' | 'p99', number>>;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  non2xx: number;
}

const UNIT_US: Record<string, number> = { us: 1, ms: 1e3, s: 1e6, m: 60e6, h: 3600e6 };

/** A wrk time ("812.00us", "1.20ms", "2.00s") in microseconds. */
export function wrkTimeUs(s: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(s.trim());
  return m ? Number(m[1]) * UNIT_US[m[2]!]! : NaN;
}

/** Parses wrk's text report; null when it has no request count (wrk failed). */
export function parseWrk(out: string): WrkReport | null {
  const req = /(\d+) requests in ([\d.]+)(us|ms|s|m|h)/.exec(out);
  if (!req) return null;
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const latency: WrkReport['latency'] = {};
  for (const p of [50, 75, 90, 99] as const) {
    const m = new RegExp(`^\\s+${p}(?:\\.000)?%\\s+(\\S+)`, 'm').exec(out);
    if (m) latency[`p${p}`] = wrkTimeUs(m[1]!);
  }
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const n2 = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const seconds = wrkTimeUs(`${req[2]}${req[3]}`) / 1e6;
  return {
    requests: Number(req[1]),
    seconds,
    rps: rps ? Number(rps[1]) : Number(req[1]) / seconds,
    latency,
    socketErrors: se ? { connect: Number(se[1]), read: Number(se[2]), write: Number(se[3]), timeout: Number(se[4]) } : { connect: 0, read: 0, write: 0, timeout: 0 },
    non2xx: n2 ? Number(n2[1]) : 0,
  };
}

export function wrkAvailable(): string | null {
  const r = tryRun(['wrk', '--version']);
  return r.status === null ? 'wrk is not installed' : null;
}

export interface WrkRun { report: WrkReport; run: ClientRun }

/** Runs `wrk -t1 -cN -dD --latency url` in the client namespace. */
export async function runWrk(lab: Lab, o: {
  url: string; duration: number; connections: number; threads?: number; cpu?: number; nice?: number; server: ServerPids;
}): Promise<WrkRun> {
  // wrk takes whole seconds.
  const secs = Math.max(1, Math.round(o.duration));
  const argv = [...pinned(o.cpu, o.nice), ...lab.client(['wrk', `-t${o.threads ?? 1}`, `-c${o.connections}`, `-d${secs}s`, '--timeout', '5s', '--latency', o.url])];
  const run = await runClient(argv, o.server, false, (secs + 30) * 1000);
  const report = parseWrk(run.out);
  if (!report) throw new Error(`wrk failed (${run.code}): ${(run.err || run.out).trim().slice(-300)}`);
  return { report, run };
}
