// The raw-packet workload of `strata bench`: one UDP echo job in four
// versions, driven by one load generator from the lab's client namespace.
//
//   afxdp   the TS pipeline (UdpEcho) on AfXdpLink      target 10.200.0.3
//   tap     the same pipeline on TapLink                target 10.201.0.2 (routed by the server kernel)
//   kernel  a node:dgram socket echo                    target 10.200.0.2
//   cref    bench/c/xdp_echo.bin, C over libxdp         target 10.200.0.3
//
// For each version the echo runs in the server namespace pinned to one CPU
// (taskset), the generator (bench/c/udpgen.bin) in the client namespace on
// the other, and two points are measured: a fixed offered load and
// saturation. The dataplane's CPU time per packet is user + system time from
// /proc/<pid>/stat, sampled when the generator starts and stops sending
// (its "GO"/"END" lines), divided by the packets echoed back to it.
//
// The AF_XDP versions need strata's XDP program: it is attached here, in this
// process, steering the dataplane address (UDP, and its ARP) to the socket of
// queue 0, and detached again in a finally block and on SIGINT/SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../lab/topo.js';
import { probeTransports, repoRoot } from '../link/native.js';
import { summarize, type ResultRow } from '../report/results.js';
import { StrataError } from '../util/errors.js';
import { isRoot, tryRun } from '../util/run.js';
import type { XdpProgram } from '../xdp/program.js';
import { measureEchoAllocations } from './alloc.js';

export const RAW_TRANSPORTS = ['afxdp', 'tap', 'kernel', 'cref'] as const;
export type RawTransport = (typeof RAW_TRANSPORTS)[number];

export interface RawOptions {
  lab: Lab;
  transports: readonly RawTransport[];
  /** Seconds of sending per measured point. */
  duration: number;
  /** The fixed offered load, packets/s. */
  rate: number;
  /** How the echoes wait for packets: 'event' (uv_poll / poll()) or 'busy' (spin). */
  pollMode: 'event' | 'busy';
  /** Frames per burst for the TS pipeline and the C reference. */
  burst: number;
  flows: number;
  payload: number;
  port: number;
  /** Packets for the zero-allocation proof; 0 skips it. */
  allocPackets: number;
  /** CPUs for the dataplane and the generator. */
  cpus: { dataplane: number; generator: number };
  /** Scheduling niceness of the echo and the generator (negative = ahead of background load); 0 leaves it. */
  nice: number;
  progress: (line: string) => void;
}

export const udpgenPath = join(repoRoot, 'bench', 'c', 'udpgen.bin');
export const xdpEchoPath = join(repoRoot, 'bench', 'c', 'xdp_echo.bin');

/** Result of one udpgen run (its JSON line). */
export interface GenResult {
  sent: number; received: number; send_errors: number; bad: number; duration_s: number;
  tx_pps: number; rx_pps: number; loss: number; rate: number; flows: number; payload: number; batch: number;
  interrupted: boolean;
}

// Children alive right now, so an interrupt can end them before we exit.
const children = new Set<ChildProcess>();
const programs = new Set<XdpProgram>();
let interrupted = false;

/** Ends every child and detaches every XDP program this module started. Idempotent. */
export function cleanupRaw(): void {
  for (const c of children) { try { c.kill('SIGTERM'); } catch { /* gone */ } }
  for (const p of programs) { try { p.detach(); } catch { /* already detached */ } }
  programs.clear();
}

/** Marks the run as interrupted (Ctrl-C): no new step starts; cleanupRaw() ends what runs. */
export function interruptRaw(): void { interrupted = true; cleanupRaw(); }

function checkInterrupted(): void {
  if (interrupted) throw new StrataError('ERR_STRATA_INTERRUPTED', 'interrupted');
}

const CLK_TCK = (() => {
  const r = tryRun(['getconf', 'CLK_TCK']);
  const v = Number(r.stdout.trim());
  return r.status === 0 && v > 0 ? v : 100;
})();

/** User + system CPU seconds of a process, from /proc/<pid>/stat (fields 14 and 15). */
export function cpuSeconds(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

interface EchoProc {
  child: ChildProcess;
  pid: number;
  /** Everything the process printed on stdout. */
  out(): string;
  err(): string;
}

/** Spawns argv and waits for a "READY" line on its stdout. */
async function startEcho(argv: string[], readyTimeoutMs = 15_000): Promise<EchoProc> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: repoRoot });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '', err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new StrataError('ERR_STRATA_BENCH', `echo did not become ready in ${readyTimeoutMs} ms: ${err.trim() || out.trim()}`)); }, readyTimeoutMs);
    const onData = (): void => { if (/^READY$/m.test(out)) { cleanup(); resolve(); } };
    const onExit = (code: number | null, sig: string | null): void => {
      cleanup();
      reject(new StrataError('ERR_STRATA_BENCH', `echo exited (${code ?? sig}) before it was ready: ${err.trim() || out.trim()}`));
    };
    const cleanup = (): void => { clearTimeout(timer); child.stdout!.off('data', onData); child.off('exit', onExit); };
    child.stdout!.on('data', onData);
    child.on('exit', onExit);
  });
  return { child, pid: child.pid!, out: () => out, err: () => err };
}

/** SIGTERM, wait for exit (SIGKILL after a grace period); returns the last JSON line it printed, if any. */
async function stopEcho(p: EchoProc): Promise<Record<string, unknown> | null> {
  if (p.child.exitCode === null && p.child.signalCode === null) {
    const exited = new Promise<void>((r) => p.child.once('exit', () => r()));
    p.child.kill('SIGTERM');
    const t = setTimeout(() => p.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
  const last = p.out().trim().split('\n').filter((l) => l.startsWith('{')).pop();
  let stats: Record<string, unknown> | null = null;
  try { stats = last ? JSON.parse(last) as Record<string, unknown> : null; } catch { /* no stats */ }
  const gc = gcAfterReady(p.out());
  if (stats && gc) stats.gcAfterReady = gc;
  return stats;
}

/** Counts the GCs a node echo (run with --trace-gc) did after it printed READY; null if it was not traced. */
export function gcAfterReady(out: string): { scavenges: number; markCompacts: number } | null {
  if (!/\[\d+:0x[0-9a-f]+\]/.test(out)) return null;
  const after = out.slice(Math.max(0, out.indexOf('READY\n')));
  return {
    scavenges: (after.match(/: (Scavenge|Minor Mark-Sweep)/g) ?? []).length,
    markCompacts: (after.match(/: Mark-Compact/g) ?? []).length,
  };
}

export interface PointResult {
  gen: GenResult;
  /** Dataplane CPU seconds between GO and END. */
  cpu: number;
  /** Length of that window, seconds (the generator's own measure). */
  window: number;
}

/** Runs the generator once; samples the echo's CPU time at GO and END. */
export async function runGenerator(lab: Lab, target: string, o: {
  rate: number; duration: number; flows: number; payload: number; port: number; cpu?: number; echoPid?: number; drain?: number; basePort?: number;
  nice?: number;
}): Promise<PointResult> {
  const gen = [udpgenPath, '--dst', target, '--port', String(o.port), '--rate', String(o.rate), '--duration', String(o.duration),
    '--flows', String(o.flows), '--payload', String(o.payload), '--drain', String(o.drain ?? 0.3)];
  if (o.basePort) gen.push('--base-port', String(o.basePort));
  const argv = [...pinned(o.cpu, o.nice), ...lab.client(gen)];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '', err = '', buf = '';
  let cpu0 = NaN, cpu1 = NaN;
  const sample = (): number => {
    if (o.echoPid === undefined) return NaN;
    try { return cpuSeconds(o.echoPid); } catch { return NaN; }
  };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith('GO ')) cpu0 = sample();
      else if (line.startsWith('END ')) cpu1 = sample();
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => { children.delete(child); r(c); }));
  checkInterrupted();
  const json = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (code !== 0 || !json) throw new StrataError('ERR_STRATA_BENCH', `udpgen failed (${code}): ${err.trim() || out.trim()}`);
  const g = JSON.parse(json) as GenResult;
  return { gen: g, cpu: cpu1 - cpu0, window: g.duration_s };
}

/** taskset/nice prefix (both exec, so the child's pid is the program's own). */
function pinned(cpu: number | undefined, nice: number | undefined): string[] {
  const p: string[] = [];
  if (cpu !== undefined) p.push('taskset', '-c', String(cpu));
  if (nice) p.push('nice', '-n', String(nice));
  return p;
}

interface Version {
  transport: RawTransport;
  label: string;
  target: (lab: Lab) => string;
  /** Why it cannot run here, or null. */
  unavailable: () => string | null;
  needsXdp: boolean;
  argv: (lab: Lab, o: RawOptions) => string[];
}

/** How to run one of our TypeScript entry points as a separate process: compiled JS under dist/, or the TS source through tsx. */
function nodeScript(name: string): string[] {
  const here = fileURLToPath(import.meta.url);
  // --trace-gc: every GC the echo runs is printed, so the run can show that
  // the real links, too, move packets without allocating (see gcAfterReady).
  if (here.endsWith('.js')) return [process.execPath, '--trace-gc', join(here, '..', `${name}.js`)];
  return [process.execPath, '--trace-gc', '--import', 'tsx', join(here, '..', `${name}.ts`)];
}

function commonUnavailable(): string | null {
  if (!isRoot()) return 'needs root (network namespaces)';
  if (!existsSync(udpgenPath)) return `load generator not built (${udpgenPath}; run \`npm run build\`)`;
  return null;
}

const VERSIONS: Record<RawTransport, Version> = {
  afxdp: {
    transport: 'afxdp', label: 'TS pipeline on AF_XDP', needsXdp: true,
    target: (lab) => lab.afxdpAddr,
    unavailable: () => commonUnavailable() ?? (probeTransports().afxdp.available ? null : probeTransports().afxdp.reason ?? 'AF_XDP unavailable'),
    argv: (lab, o) => [...nodeScript('echo-server'), '--transport', 'afxdp', '--iface', lab.serverIface, '--addr', lab.afxdpAddr,
      '--pin-dir', lab.pinDir, '--mode', o.pollMode, '--burst', String(o.burst)],
  },
  tap: {
    transport: 'tap', label: 'TS pipeline on TAP', needsXdp: false,
    target: (lab) => lab.tapAddr,
    unavailable: () => commonUnavailable() ?? (probeTransports().tap.available ? null : probeTransports().tap.reason ?? 'TAP unavailable'),
    argv: (lab, o) => [...nodeScript('echo-server'), '--transport', 'tap', '--iface', lab.tapIface, '--addr', lab.tapAddr,
      '--mode', o.pollMode, '--burst', String(o.burst)],
  },
  kernel: {
    transport: 'kernel', label: 'node:dgram (kernel UDP)', needsXdp: false,
    target: (lab) => lab.kernelAddr,
    unavailable: commonUnavailable,
    argv: (lab, o) => [...nodeScript('echo-server'), '--transport', 'kernel', '--addr', lab.kernelAddr, '--port', String(o.port)],
  },
  cref: {
    transport: 'cref', label: 'C reference on AF_XDP (libxdp)', needsXdp: true,
    target: (lab) => lab.afxdpAddr,
    unavailable: () => commonUnavailable()
      ?? (existsSync(xdpEchoPath) ? null : `C reference not built (${xdpEchoPath}; run \`npm run build\`)`)
      ?? (probeTransports().afxdp.available ? null : probeTransports().afxdp.reason ?? 'AF_XDP unavailable'),
    argv: (lab, o) => [xdpEchoPath, '--iface', lab.serverIface, '--addr', lab.afxdpAddr, '--xsks-map', `${lab.pinDir}/xsks_map`,
      '--mode', o.pollMode === 'busy' ? 'busy' : 'poll', '--batch', String(o.burst)],
  },
};

function metric(unit: string, better: 'higher' | 'lower', v: number) {
  return { unit, better, samples: [v] };
}

function pointRow(transport: RawTransport, point: string, p: PointResult): ResultRow {
  const g = p.gen;
  const cpuPerPkt = g.received > 0 ? (p.cpu / g.received) * 1e9 : NaN;
  return {
    workload: 'raw', transport, point,
    metrics: {
      'offered': metric('pps', 'higher', g.tx_pps),
      'echoed': metric('pps', 'higher', g.rx_pps),
      'loss': metric('%', 'lower', g.loss * 100),
      'CPU/pkt': metric('ns', 'lower', cpuPerPkt),
      'dataplane CPU': metric('% core', 'lower', (p.cpu / p.window) * 100),
    },
  };
}

/** The lab's client namespace sends with checksum offload over a veth, so UDP
 * checksums would stay partial (CHECKSUM_PARTIAL) in frames an AF_XDP socket
 * sees and echoes back: the client kernel then drops the replies. A real NIC
 * completes checksums on the wire; turning TX checksum offload off on c0
 * makes the veth behave like one. */
export function completeChecksumsOnWire(lab: Lab): void {
  tryRun(lab.client(['ethtool', '-K', lab.clientIface, 'tx', 'off']));
}

export interface RunningVersion {
  /** The echo process (its CPU time is the dataplane's). */
  pid: number;
  /** Set when XDP had to fall back to generic mode. */
  xdpNote?: string;
  /** Stops the echo (and detaches XDP); returns its final counters. Idempotent. */
  stop(): Promise<Record<string, unknown> | null>;
}

/** Why a version cannot run here, or null. */
export function versionUnavailable(t: RawTransport): string | null { return VERSIONS[t].unavailable(); }
/** The address the generator sends to for a version. */
export function versionTarget(t: RawTransport, lab: Lab): string { return VERSIONS[t].target(lab); }

/**
 * Starts one echo version in the lab's server namespace, pinned to
 * o.cpus.dataplane; for the AF_XDP versions, attaches strata's XDP program
 * and steers the dataplane address (UDP and its ARP) to queue 0 first.
 */
export async function startVersion(t: RawTransport, lab: Lab, o: Pick<RawOptions, 'pollMode' | 'burst' | 'port' | 'cpus'> & { nice?: number }): Promise<RunningVersion> {
  const v = VERSIONS[t];
  let prog: XdpProgram | undefined;
  let echo: EchoProc | undefined;
  let xdpNote: string | undefined;
  const stop = async (): Promise<Record<string, unknown> | null> => {
    let stats: Record<string, unknown> | null = null;
    try {
      if (echo) stats = await stopEcho(echo);
    } finally {
      echo = undefined;
      if (prog) { try { prog.detach(); } catch { /* already gone */ } programs.delete(prog); prog = undefined; }
    }
    return stats;
  };
  try {
    if (v.needsXdp) {
      const { XdpProgram } = await import('../xdp/program.js');
      prog = XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir });
      programs.add(prog);
      prog.steer({ addr: lab.afxdpAddr, proto: 'udp' });
      if (prog.mode !== 'native') xdpNote = `XDP in ${prog.mode} mode${prog.fallbackReason ? ` (${prog.fallbackReason})` : ''}`;
    }
    echo = await startEcho([...pinned(o.cpus.dataplane, o.nice), ...lab.server(v.argv(lab, o as RawOptions))]);
  } catch (e) {
    await stop();
    throw e;
  }
  return { pid: echo.pid, xdpNote, stop };
}

/** Runs the raw workload; returns one row per (transport, point), plus the allocation proof. */
export async function runRaw(o: RawOptions): Promise<ResultRow[]> {
  interrupted = false;
  const rows: ResultRow[] = [];
  const lab = o.lab;
  const points: { name: string; rate: number }[] = [
    { name: `${fmtRate(o.rate)} offered`, rate: o.rate },
    { name: 'saturation', rate: 0 },
  ];

  for (const t of o.transports) {
    checkInterrupted();
    const v = VERSIONS[t];
    const why = v.unavailable();
    if (why) {
      o.progress(`raw: ${t}: unavailable: ${why}`);
      for (const p of points) rows.push({ workload: 'raw', transport: t, point: p.name, metrics: {}, unavailable: why });
      continue;
    }
    let running: RunningVersion | undefined;
    try {
      o.progress(`raw: ${t}: starting ${v.label} (${o.pollMode} mode, burst ${o.burst}) on CPU ${o.cpus.dataplane} …`);
      running = await startVersion(t, lab, o);
      if (running.xdpNote) o.progress(`raw: ${t}: ${running.xdpNote}`);
      // Warm-up: resolves ARP, lets the JIT settle, fills the rings once.
      await runGenerator(lab, v.target(lab), { rate: Math.min(o.rate, 50_000), duration: 0.5, flows: o.flows, payload: o.payload, port: o.port, cpu: o.cpus.generator, nice: o.nice });
      for (const p of points) {
        checkInterrupted();
        const r = await runGenerator(lab, v.target(lab), {
          rate: p.rate, duration: o.duration, flows: o.flows, payload: o.payload, port: o.port, cpu: o.cpus.generator, echoPid: running.pid, nice: o.nice,
        });
        const row = pointRow(t, p.name, r);
        rows.push(row);
        o.progress(`raw: ${t}: ${p.name}: sent ${fmtRate(r.gen.tx_pps)} pps, echoed ${fmtRate(r.gen.rx_pps)} pps, loss ${(r.gen.loss * 100).toFixed(2)} %, `
          + `CPU ${row.metrics['CPU/pkt']!.samples[0]!.toFixed(0)} ns/pkt (${row.metrics['dataplane CPU']!.samples[0]!.toFixed(0)} % of a core)`);
      }
      const stats = await running.stop();
      running = undefined;
      const sat = rows[rows.length - 1]!;
      if (stats) {
        sat.note = summarizeEchoStats(stats);
        o.progress(`raw: ${t}: ${sat.note}`);
      }
    } catch (e) {
      if (interrupted) throw e;
      const msg = e instanceof Error ? e.message : String(e);
      o.progress(`raw: ${t}: failed: ${msg}`);
      for (const p of points) {
        if (!rows.some((r) => r.transport === t && r.point === p.name)) rows.push({ workload: 'raw', transport: t, point: p.name, metrics: {}, unavailable: `failed: ${msg.split('\n')[0]}` });
      }
    } finally {
      if (running) await running.stop();
    }
  }
  if (o.allocPackets > 0) {
    o.progress(`raw: zero-allocation check: ${fmtRate(o.allocPackets)} packets through the TS echo pipeline in-process …`);
    const a = await measureEchoAllocations({ packets: o.allocPackets, burst: o.burst });
    o.progress(`raw: alloc: ${a.packets} packets, ${a.gcInLoop.total} GCs during the loop (${a.gcInLoop.minor} scavenges), heap ${a.heapGrowth >= 0 ? '+' : ''}${(a.heapGrowth / 1024).toFixed(1)} KiB (${a.bytesPerPacket.toFixed(4)} B/packet), ${a.goodReplies} exact echoes, ${fmtRate(a.pps)} pps in-process`);
    rows.push({
      workload: 'raw', transport: 'ts-pipeline', point: `alloc proof, ${fmtRate(a.packets)} pkts in-process`,
      metrics: {
        'echoed': metric('pps', 'higher', a.pps),
        'GCs in loop': metric('', 'lower', a.gcInLoop.total),
        'heap growth': metric('B/pkt', 'lower', a.bytesPerPacket),
      },
      note: `${a.packets} packets through UdpEcho over GenLink: ${a.gcInLoop.total} GCs (${a.gcInLoop.minor} scavenges) while the loop ran, heap ${a.heapGrowth} B, ${a.badReplies} bad echoes`,
    });
  }
  return rows;
}

function summarizeEchoStats(s: Record<string, unknown>): string {
  const e = s.echo as Record<string, unknown> | undefined;
  const parts: string[] = [];
  const src = e ?? s;
  for (const k of ['rx', 'echoed', 'arpReplies', 'arp_replies', 'txDropped', 'sendErrors', 'polls', 'emptyPolls']) if (typeof src[k] === 'number') parts.push(`${k} ${src[k]}`);
  const drops = (src.drops ?? {}) as Record<string, number>;
  const nz = Object.entries(drops).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
  if (nz.length) parts.push(`drops: ${nz.join(', ')}`);
  // Where the kernel lost packets before the socket saw them (XDP_STATISTICS).
  const x = s.xsk as Record<string, unknown> | undefined;
  if (x) {
    const k = ['rxDropped', 'rxRingFull', 'rxFillRingEmptyDescs', 'txRingFull', 'txRingEmptyDescs'].filter((n) => typeof x[n] === 'number' && (x[n] as number) > 0);
    parts.push(k.length ? `socket: ${k.map((n) => `${n} ${x[n]}`).join(', ')}` : 'socket: no ring drops');
  }
  const gc = s.gcAfterReady as { scavenges: number; markCompacts: number } | undefined;
  if (gc) parts.push(`GCs in the echo process while serving: ${gc.scavenges} scavenges, ${gc.markCompacts} mark-compacts`);
  return `echo counters over the whole run: ${parts.join(', ')}`;
}

export function fmtRate(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(v >= 1e5 ? 0 : 1)} k`;
  return v.toFixed(0);
}

/** The issue's targets, checked against the rows of one run: lines for the report. */
export function rawTargets(rows: readonly ResultRow[]): string[] {
  const get = (t: string, m: string): number => {
    const r = rows.find((x) => x.workload === 'raw' && x.transport === t && x.point === 'saturation' && !x.unavailable);
    const samples = r?.metrics[m]?.samples;
    return samples && samples.length ? summarize(samples).median : NaN;
  };
  const lines: string[] = [];
  const ts = get('afxdp', 'echoed'), c = get('cref', 'echoed'), tap = get('tap', 'echoed');
  const tsCpu = get('afxdp', 'CPU/pkt'), cCpu = get('cref', 'CPU/pkt');
  const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
  if (Number.isFinite(ts) && Number.isFinite(c) && c > 0) {
    lines.push(`- TS on AF_XDP vs C reference, saturation pps: ${(100 * ts / c).toFixed(0)} % (target >= 90 %): ${verdict(ts >= 0.9 * c)}`);
  } else lines.push('- TS on AF_XDP vs C reference, saturation pps: not measured here');
  if (Number.isFinite(tsCpu) && Number.isFinite(cCpu) && cCpu > 0) {
    lines.push(`- TS on AF_XDP vs C reference, CPU per packet: ${(tsCpu / cCpu).toFixed(2)}x (target <= 1.5x): ${verdict(tsCpu <= 1.5 * cCpu)}`);
  } else lines.push('- TS on AF_XDP vs C reference, CPU per packet: not measured here');
  if (Number.isFinite(ts) && Number.isFinite(tap) && tap > 0) {
    lines.push(`- AF_XDP vs TAP, saturation pps: ${(ts / tap).toFixed(2)}x (target >= 2x): ${verdict(ts >= 2 * tap)}`);
  } else lines.push('- AF_XDP vs TAP, saturation pps: not measured here');
  const alloc = rows.find((r) => r.transport === 'ts-pipeline');
  if (alloc) {
    const g = Math.max(...alloc.metrics['GCs in loop']!.samples);
    lines.push(`- zero allocations per packet: ${g === 0 ? 'met' : 'MISSED'} (${alloc.note})`);
  }
  return lines;
}

