// The tcp workload of `strata bench` (issue 3's benchmarks): one C client
// (bench/c/tcpload.c, in the lab's client namespace) against every TCP
// server version, each in the server namespace pinned to its own CPU:
//
//   afxdp       the userspace TCP on AF_XDP (strata's XDP program, copy mode on veth)  10.200.0.3
//   tap         the userspace TCP on TAP (routed by the server kernel)                  10.201.0.2
//   kernel      node:net on the kernel's TCP, MTU 1500, TSO/GSO/GRO off on c0 and s0    10.200.0.2
//   kernel-tso  the same with TX checksum offload, TSO, GSO and GRO on (bulk only)
//
// Points: single-connection bulk throughput (discard server; CPU per GiB of
// the server process and of softirq), connection setup rate (connect, 64
// bytes each way through an echo, close; 16 in flight) and a 64-byte
// ping-pong on one connection (p50/p99 from the client's own samples), and
// the same ping-pong in busy-poll mode: the stack's server spins on its
// poll (src/bench/tcp-server.ts --mode busy), the kernel's client sets
// SO_BUSY_POLL (node:net cannot set it on the server's socket).
//
// The kernel versions change offloads on c0 and s0 with ethtool; the state
// found before is put back after each version, and on Ctrl-C. The client
// namespace gets a wide ephemeral port range and tcp_tw_reuse so that the
// connection-rate point is not limited by TIME-WAIT on the client side.
import { existsSync } from 'node:fs';
import type { Lab } from '../lab/topo.js';
import { probeTransports } from '../link/native.js';
import type { ResultRow } from '../report/results.js';
import { isRoot, tryRun } from '../util/run.js';
import type { Workload } from './workload.js';
import {
  clientNote, benchCpus, numOption, pickTransports, addCleanup, checkInterrupted, clearLabXdp, errMsg, interruptAll, isInterrupted, lastJson, medianOf, metric, nodeScript, pinned,
  removeCleanup, resetInterrupt, runClient, startServer, stopServer, tcploadPath, unavailableRow, verdict, type ServerProc,
} from './tcp-measure.js';

export const TCP_TRANSPORTS = ['afxdp', 'tap', 'kernel', 'kernel-tso'] as const;
export type TcpTransport = (typeof TCP_TRANSPORTS)[number];

export const TCP_POINTS = { bulk: 'bulk, 1 connection', crr: 'connect+64 B+close', pingpong: '64 B ping-pong', pingpongBusy: '64 B ping-pong, busy-poll' } as const;
type PointKey = keyof typeof TCP_POINTS;

const DISCARD_PORT = 9;
/** SO_BUSY_POLL on the client's socket for the kernel's busy-poll ping-pong, µs. */
const KERNEL_BUSY_POLL_US = 50;
const ECHO_PORT = 7;

export interface TcpBenchOptions {
  lab: Lab;
  transports: readonly TcpTransport[];
  duration: number;
  /** Connections in flight for the connection-rate point. */
  conc: number;
  cpus: { server: number; client: number };
  nice: number;
  progress: (line: string) => void;
}

// ---- offloads ---------------------------------------------------------------

const FEATURES = { tx: 'tx-checksumming', tso: 'tcp-segmentation-offload', gso: 'generic-segmentation-offload', gro: 'generic-receive-offload' } as const;
type Feature = keyof typeof FEATURES;
type Offloads = Partial<Record<Feature, boolean>>;

/** The offload switches of iface in ns, as ethtool -k reports them. */
export function readOffloads(ns: string, iface: string): Offloads {
  const r = tryRun(['nsenter', `--net=/run/netns/${ns}`, '--', 'ethtool', '-k', iface]);
  const out: Offloads = {};
  if (r.status !== 0) return out;
  for (const [k, name] of Object.entries(FEATURES) as [Feature, string][]) {
    const m = new RegExp(`^${name}: (on|off)`, 'm').exec(r.stdout);
    if (m) out[k] = m[1] === 'on';
  }
  return out;
}

export function setOffloads(ns: string, iface: string, o: Offloads): void {
  const args: string[] = [];
  for (const k of ['tx', 'tso', 'gso', 'gro'] as Feature[]) if (o[k] !== undefined) args.push(k, o[k] ? 'on' : 'off');
  if (args.length) tryRun(['nsenter', `--net=/run/netns/${ns}`, '--', 'ethtool', '-K', iface, ...args]);
}

/** Sets offloads on both ends of the veth for one kernel version; returns the restore function. */
function withOffloads(lab: Lab, on: boolean): () => void {
  const before = [
    { ns: lab.clientNs, iface: lab.clientIface, o: readOffloads(lab.clientNs, lab.clientIface) },
    { ns: lab.serverNs, iface: lab.serverIface, o: readOffloads(lab.serverNs, lab.serverIface) },
  ];
  const restore = (): void => { for (const b of before) setOffloads(b.ns, b.iface, b.o); removeCleanup('tcp-offloads'); };
  addCleanup('tcp-offloads', restore);
  for (const b of before) setOffloads(b.ns, b.iface, { tx: on ? true : b.iface === lab.clientIface ? false : b.o.tx, tso: on, gso: on, gro: on });
  return restore;
}

// ---- versions -----------------------------------------------------------------

interface Version {
  label: string;
  points: readonly PointKey[];
  target(lab: Lab): string;
  unavailable(): string | null;
  /** Server argv for an app (run inside the server namespace). */
  argv(lab: Lab, app: 'discard' | 'echo', mode: 'event' | 'busy'): string[];
  xdp: boolean;
  offloads?: boolean;
}

function commonUnavailable(): string | null {
  if (!isRoot()) return 'needs root (network namespaces)';
  if (!existsSync(tcploadPath)) return `load generator not built (${tcploadPath}; run \`npm run build\` or \`make -C bench/c\`)`;
  return null;
}

const server = (extra: string[]): string[] => [...nodeScript('tcp-server'), '--proto', 'tcp', ...extra];

const VERSIONS: Record<TcpTransport, Version> = {
  afxdp: {
    label: 'userspace TCP on AF_XDP', points: ['bulk', 'crr', 'pingpong', 'pingpongBusy'], xdp: true,
    target: (lab) => lab.afxdpAddr,
    unavailable: () => commonUnavailable() ?? (probeTransports().afxdp.available ? null : probeTransports().afxdp.reason ?? 'AF_XDP unavailable'),
    argv: (lab, app, mode) => server(['--app', app, '--transport', 'afxdp', '--addr', lab.afxdpAddr, '--port', String(app === 'echo' ? ECHO_PORT : DISCARD_PORT), '--pin-dir', lab.pinDir, '--mode', mode]),
  },
  tap: {
    label: 'userspace TCP on TAP', points: ['bulk', 'crr', 'pingpong', 'pingpongBusy'], xdp: false,
    target: (lab) => lab.tapAddr,
    unavailable: () => commonUnavailable() ?? (probeTransports().tap.available ? null : probeTransports().tap.reason ?? 'TAP unavailable'),
    argv: (lab, app, mode) => server(['--app', app, '--transport', 'tap', '--addr', lab.tapAddr, '--port', String(app === 'echo' ? ECHO_PORT : DISCARD_PORT), '--gateway', lab.tapKernelAddr, '--mode', mode]),
  },
  kernel: {
    label: 'node:net on the kernel TCP, TSO/GSO/GRO off', points: ['bulk', 'crr', 'pingpong', 'pingpongBusy'], xdp: false, offloads: false,
    target: (lab) => lab.kernelAddr,
    unavailable: commonUnavailable,
    argv: (lab, app, _mode) => server(['--app', app, '--impl', 'node', '--transport', 'kernel', '--addr', lab.kernelAddr, '--port', String(app === 'echo' ? ECHO_PORT : DISCARD_PORT)]),
  },
  'kernel-tso': {
    label: 'node:net on the kernel TCP, TSO/GSO/GRO on', points: ['bulk'], xdp: false, offloads: true,
    target: (lab) => lab.kernelAddr,
    unavailable: commonUnavailable,
    argv: (lab, app, _mode) => server(['--app', app, '--impl', 'node', '--transport', 'kernel', '--addr', lab.kernelAddr, '--port', String(app === 'echo' ? ECHO_PORT : DISCARD_PORT)]),
  },
};

interface BulkOut { bytes: number; duration_s: number; bps: number; server_fin: boolean; write_errors: number }
interface CrrOut { completed: number; errors: number; connect_errors: number; stalled: number; duration_s: number; cps: number }
interface PingOut { round_trips: number; errors: number; duration_s: number; rtps: number; p50_us: number; p90_us: number; p99_us: number; p999_us: number; max_us: number }

const GiB = 1024 ** 3;

async function measure(o: TcpBenchOptions, t: TcpTransport, srv: ServerProc, point: PointKey): Promise<ResultRow> {
  const v = VERSIONS[t];
  const lab = o.lab;
  const d = String(o.duration);
  const args = point === 'bulk' ? ['bulk', '--dst', v.target(lab), '--port', String(DISCARD_PORT), '--duration', d]
    : point === 'crr' ? ['crr', '--dst', v.target(lab), '--port', String(ECHO_PORT), '--duration', d, '--conc', String(o.conc), '--size', '64']
      : ['pingpong', '--dst', v.target(lab), '--port', String(ECHO_PORT), '--duration', d, '--size', '64',
        ...(point === 'pingpongBusy' && t.startsWith('kernel') ? ['--busy-poll', String(KERNEL_BUSY_POLL_US)] : [])];
  const argv = [...pinned(o.cpus.client, o.nice), ...lab.client([tcploadPath, ...args, '--timeout', '10'])];
  const r = await runClient(argv, srv.pid, true, (o.duration + 40) * 1000);
  const base = { workload: 'tcp', transport: t, point: TCP_POINTS[point] };
  const cpuPct = (r.serverCpu / r.window) * 100;
  const rss = metric('MiB', 'lower', r.rss / 2 ** 20);
  const client = clientNote(r);
  if (point === 'bulk') {
    const j = lastJson<BulkOut>(r.out);
    if (r.code !== 0 || !j || !j.server_fin) throw new Error(`tcpload bulk failed (${r.code}): ${(r.err || r.out).trim().slice(-300)}`);
    const gib = j.bytes / GiB;
    return {
      ...base,
      metrics: {
        'throughput': metric('Gbit/s', 'higher', j.bps / 1e9),
        'CPU/GiB': metric('s', 'lower', r.serverCpu / gib),
        'softirq/GiB': metric('s', 'lower', r.softirq / gib),
        'dataplane CPU': metric('% core', 'lower', cpuPct),
        'RSS': rss,
      },
      note: `${(j.bytes / 2 ** 20).toFixed(0)} MiB in ${j.duration_s.toFixed(2)} s (until the server's FIN); ${client}`,
    };
  }
  if (point === 'crr') {
    const j = lastJson<CrrOut>(r.out);
    if (!j || j.completed === 0) throw new Error(`tcpload crr completed nothing (${r.code}): ${(r.err || r.out).trim().slice(-300)}`);
    return {
      ...base,
      metrics: {
        'conn/s': metric('conn/s', 'higher', j.cps),
        'failed': metric('conn', 'lower', j.errors + j.connect_errors),
        'CPU/conn': metric('µs', 'lower', (r.serverCpu / j.completed) * 1e6),
        'softirq/conn': metric('µs', 'lower', (r.softirq / j.completed) * 1e6),
        'dataplane CPU': metric('% core', 'lower', cpuPct),
        'RSS': rss,
      },
      note: `${j.completed} connections, ${j.errors} failed after connect, ${j.connect_errors} failed to connect, ${j.stalled} stalled at the end; ${o.conc} in flight; ${client}`,
    };
  }
  const j = lastJson<PingOut>(r.out);
  if (!j || j.round_trips === 0) throw new Error(`tcpload pingpong failed (${r.code}): ${(r.err || r.out).trim().slice(-300)}`);
  return {
    ...base,
    metrics: {
      'p50': metric('µs', 'lower', j.p50_us),
      'p99': metric('µs', 'lower', j.p99_us),
      'p99.9': metric('µs', 'lower', j.p999_us),
      'round trips/s': metric('rt/s', 'higher', j.rtps),
      'CPU/rt': metric('µs', 'lower', (r.serverCpu / j.round_trips) * 1e6),
      'softirq/rt': metric('µs', 'lower', (r.softirq / j.round_trips) * 1e6),
      'RSS': rss,
    },
    note: `${j.round_trips} round trips, ${j.errors} errors, max ${j.max_us.toFixed(0)} µs; ${pingMode(t, point)}; ${client}`,
  };
}

function pingMode(t: TcpTransport, point: PointKey): string {
  if (point !== 'pingpongBusy') return 'server waits for readiness (event mode)';
  if (t.startsWith('kernel')) return `busy-poll: SO_BUSY_POLL ${KERNEL_BUSY_POLL_US} µs on the client's socket (node:net cannot set it on the server's; veth has no NAPI to poll without XDP, so this is mostly the client spinning in recv)`;
  return 'busy-poll: the stack is polled on every event-loop turn (the server never sleeps; a whole core by design)';
}

/** Lets the client namespace open connections fast: wide port range, TIME-WAIT reuse (per-namespace sysctls). */
function tuneClientNs(lab: Lab): void {
  tryRun(lab.client(['sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535']));
  tryRun(lab.client(['sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1']));
}

export async function runTcp(o: TcpBenchOptions): Promise<ResultRow[]> {
  resetInterrupt();
  const rows: ResultRow[] = [];
  const lab = o.lab;
  tuneClientNs(lab);
  for (const t of o.transports) {
    checkInterrupted();
    const v = VERSIONS[t];
    const why = v.unavailable();
    if (why) {
      o.progress(`tcp: ${t}: unavailable: ${why}`);
      for (const p of v.points) rows.push(unavailableRow('tcp', t, TCP_POINTS[p], why));
      continue;
    }
    const restore = v.offloads !== undefined ? withOffloads(lab, v.offloads) : null;
    try {
      const groups: { app: 'discard' | 'echo'; mode: 'event' | 'busy'; points: PointKey[] }[] = [
        { app: 'discard', mode: 'event', points: ['bulk'] },
        { app: 'echo', mode: 'event', points: ['crr', 'pingpong'] },
        // The kernel's busy-poll variant is a client socket option: the same event-mode server serves it.
        { app: 'echo', mode: v.xdp || t === 'tap' ? 'busy' : 'event', points: ['pingpongBusy'] },
      ];
      for (const { app, mode, points } of groups) {
        const pts = v.points.filter((p) => points.includes(p));
        if (pts.length === 0) continue;
        let srv: ServerProc | undefined;
        try {
          o.progress(`tcp: ${t}: starting ${v.label} (${app}${mode === 'busy' ? ', busy-poll' : ''}) on CPU ${o.cpus.server} …`);
          if (v.xdp) addCleanup('tcp-xdp', () => clearLabXdp(lab));
          srv = await startServer([...pinned(o.cpus.server, o.nice), ...lab.server(v.argv(lab, app, mode))], /^READY$/m);
          for (const p of pts) {
            checkInterrupted();
            try {
              const row = await measure(o, t, srv, p);
              rows.push(row);
              o.progress(`tcp: ${t}: ${row.point}: ${Object.entries(row.metrics).map(([k, m]) => `${k} ${fmt(m.samples[0]!)} ${m.unit}`).join(', ')}`);
            } catch (e) {
              if (isInterrupted()) throw e;
              o.progress(`tcp: ${t}: ${TCP_POINTS[p]}: failed: ${errMsg(e)}`);
              rows.push(unavailableRow('tcp', t, TCP_POINTS[p], `failed: ${errMsg(e)}`));
            }
          }
        } catch (e) {
          if (isInterrupted()) throw e;
          o.progress(`tcp: ${t}: ${app} server failed: ${errMsg(e)}`);
          for (const p of pts) if (!rows.some((r) => r.transport === t && r.point === TCP_POINTS[p])) rows.push(unavailableRow('tcp', t, TCP_POINTS[p], `failed: ${errMsg(e)}`));
        } finally {
          if (srv) {
            await stopServer(srv);
            // The stack's own account of the run (segments, retransmits, drops by reason, AF_XDP ring drops) on every row it served.
            const summary = serverSummary(lastJson<Record<string, unknown>>(srv.out()));
            if (summary) for (const r of rows) if (r.transport === t && pts.some((p) => TCP_POINTS[p] === r.point) && !r.unavailable) r.note = `${r.note ?? ''}; server over its whole run: ${summary}`;
          }
          if (v.xdp) { if (existsSync(lab.pinDir)) clearLabXdp(lab); removeCleanup('tcp-xdp'); }
        }
      }
    } finally {
      restore?.();
    }
  }
  return rows;
}

/** One line from the stack server's final counters: TCP segments and retransmits, non-zero drops, AF_XDP ring losses. */
export function serverSummary(j: Record<string, unknown> | null): string | null {
  if (!j || typeof j.tcp !== 'object' || j.tcp === null) return null;
  const tcp = j.tcp as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of ['segsIn', 'segsOut', 'retransSegs', 'passiveOpens', 'estabResets']) if (typeof tcp[k] === 'number') parts.push(`${k} ${tcp[k]}`);
  const nz = (o: unknown): string[] => Object.entries((o ?? {}) as Record<string, unknown>).filter(([, v]) => typeof v === 'number' && v > 0).map(([k, v]) => `${k} ${v}`);
  const tcpDrops = nz(tcp.drops);
  if (tcpDrops.length) parts.push(`tcp drops: ${tcpDrops.join(', ')}`);
  const stackDrops = nz((j.stack as Record<string, unknown> | undefined)?.drops);
  if (stackDrops.length) parts.push(`stack drops: ${stackDrops.join(', ')}`);
  const xsk = j.xsk as Record<string, unknown> | undefined;
  if (xsk) {
    const x = ['rxDropped', 'rxRingFull', 'rxFillRingEmptyDescs', 'txRingFull', 'txRingEmptyDescs'].filter((k) => typeof xsk[k] === 'number' && (xsk[k] as number) > 0);
    parts.push(x.length ? `AF_XDP socket counters: ${x.map((k) => `${k} ${xsk[k]}`).join(', ')}` : 'AF_XDP socket counters all zero');
  }
  return parts.join(', ');
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** Issue 3's targets, checked against the rows. */
export function tcpTargets(rows: readonly ResultRow[]): string[] {
  const lines: string[] = [];
  const x = medianOf(rows, 'tcp', 'afxdp', TCP_POINTS.bulk, 'throughput');
  const k = medianOf(rows, 'tcp', 'kernel', TCP_POINTS.bulk, 'throughput');
  if (Number.isFinite(x) && Number.isFinite(k) && k > 0) {
    lines.push(`- AF_XDP single-connection throughput vs the kernel's (MTU 1500, TSO/GRO off): ${(100 * x / k).toFixed(0)} % (target >= 50 %): ${verdict(x >= 0.5 * k)}`);
  } else lines.push('- AF_XDP single-connection throughput vs the kernel\'s: not measured here');
  // The kernel's figure is the better of its two modes: SO_BUSY_POLL on a veth
  // without NAPI only makes the client spin, and a target met against a
  // handicapped kernel would prove nothing.
  const xp = medianOf(rows, 'tcp', 'afxdp', TCP_POINTS.pingpongBusy, 'p99');
  const kb = medianOf(rows, 'tcp', 'kernel', TCP_POINTS.pingpongBusy, 'p99');
  const ke = medianOf(rows, 'tcp', 'kernel', TCP_POINTS.pingpong, 'p99');
  const kp = Math.min(Number.isFinite(kb) ? kb : Infinity, Number.isFinite(ke) ? ke : Infinity);
  if (Number.isFinite(xp) && Number.isFinite(kp)) {
    lines.push(`- AF_XDP 64-byte ping-pong p99 (stack busy-polling) vs the kernel's best (busy-poll ${fmt(kb)} µs, event ${fmt(ke)} µs): `
      + `${xp.toFixed(0)} µs vs ${kp.toFixed(0)} µs (target: no worse): ${verdict(xp <= kp)}`);
  } else lines.push('- AF_XDP 64-byte ping-pong p99 vs the kernel\'s, busy-poll: not measured here');
  const xe = medianOf(rows, 'tcp', 'afxdp', TCP_POINTS.pingpong, 'p99');
  if (Number.isFinite(xe) && Number.isFinite(ke)) lines.push(`- (event mode on both sides: AF_XDP p99 ${xe.toFixed(0)} µs vs the kernel's ${ke.toFixed(0)} µs)`);
  return lines;
}



export const tcpWorkload: Workload = {
  name: 'tcp',
  summary: 'TCP: single-connection bulk (CPU/GiB), connection rate, 64 B ping-pong; stack on AF_XDP and TAP vs the kernel (TSO/GRO off and on)',
  transports: TCP_TRANSPORTS,
  async run(ctx) {
    const transports = pickTransports(ctx, TCP_TRANSPORTS, 'tcp') as TcpTransport[];
    return runTcp({
      lab: ctx.lab,
      transports,
      duration: ctx.duration,
      conc: numOption(ctx, 'conc', 16, 1, 1024),
      cpus: benchCpus(),
      nice: numOption(ctx, 'nice', -10, -20, 19),
      progress: ctx.progress,
    });
  },
  targets: tcpTargets,
  interrupt: interruptAll,
};
