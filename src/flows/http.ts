// Flow records for the HTTP server: observeHttp() wraps a server Handler so
// every exchange yields one L7 record, and (optionally) every connection one
// L3_L4 record when it closes, without touching the server itself.
//
// With nobody listening (bus.active false) the wrapper calls the handler
// directly: one property read per request, nothing allocated. When someone
// listens, it notes the start, the first response byte (the first write(),
// end() or sendFixed() on the response) and the end ('finish', emitted once
// the last byte is handed to the socket), then gathers what each layer knows
// at that moment: the socket's TCP facts (strata's stack; none for node:net),
// TLS version, cipher and peer SPIFFE ID, the conntrack entry of the
// connection's tuple, and whatever the caller adds through enrich() (policy
// verdict, upstream, XDP verdict).
//
// Times come from the clocks given (a VirtualClock in simulations); the
// record's `time` from the wall clock. Bytes per request are the HTTP bytes
// read and written on the connection since the previous exchange on it
// ended (exact for serial exchanges; pipelined ones share theirs), counted
// from the first request we observed on the connection.
import type { Handler, ServerRequest, ServerResponse } from '../l7/server/index.js';
import { peerIdentity } from '../l7/tls/mtls.js';
import type { Conntrack } from '../stack/conntrack/table.js';
import type { CtEntryInfo } from '../stack/conntrack/table.js';
import type { Clock } from '../util/clock.js';
import { monotonicClock, wallClock } from '../util/clock.js';
import { flowBus, type FlowBus } from './bus.js';
import { buildHttpRecord, buildL4Record, findTcpInfo, isTlsSocket, plainAddress, underlyingStream, type FlowContext, type HttpFlowFacts, type UpstreamLike, type VerdictLike } from './record.js';

export interface HttpObserveOptions {
  bus?: FlowBus;
  ctx: FlowContext;
  /** Monotonic ms for timings (default performance.now()). */
  clock?: Clock;
  /** Wall-clock ms since the epoch for the record's time. */
  wall?: Clock;
  /** The conntrack table the connections pass through (stack transports). */
  conntrack?: Conntrack | null;
  /** Emit one L3_L4 record per connection when it closes (default true). */
  l4?: boolean;
  /** Adds facts only the caller knows (policy verdict, upstream, XDP verdict) just before the record is built. */
  enrich?: (req: ServerRequest, res: ServerResponse, facts: HttpFlowFacts) => void;
}


function ip4Num(s: string): number {
  const p = s.split('.');
  if (p.length !== 4) return -1;
  let a = 0;
  for (const x of p) { const o = Number(x); if (!Number.isInteger(o) || o < 0 || o > 255) return -1; a = a * 256 + o; }
  return a;
}

/** The conntrack entry of a TCP connection seen from its server side (client -> us is the original direction). */
function ctEntry(ct: Conntrack | null | undefined, src: string, sport: number, dst: string, dport: number): CtEntryInfo | null {
  if (!ct) return null;
  const s = ip4Num(src), d = ip4Num(dst);
  if (s < 0 || d < 0) return null;
  const id = ct.lookup(6, s, d, sport, dport);
  return id > 0 ? ct.get(id) ?? null : null;
}

type Endpointish = { remoteAddress?: string; remotePort?: number; localAddress?: string; localPort?: number };

/** What the observer keeps per connection: the transport stream under any TLS, and byte marks. */
interface ConnState {
  base: Endpointish;
  /** HTTP bytes into this connection since we started watching it (streams without bytesRead), and the count at the last exchange's end. */
  inBytes: number;
  inMark: number;
}

export function observeHttp(handler: Handler, opts: HttpObserveOptions): Handler {
  const bus = opts.bus ?? flowBus;
  const clock = opts.clock ?? monotonicClock;
  const wall = opts.wall ?? wallClock;
  const l4 = opts.l4 ?? true;
  const conns = new WeakMap<object, ConnState>();

  const identityOf = (sock: unknown): string | null => (isTlsSocket(sock) ? peerIdentity(sock)?.spiffeId ?? null : null);

  const watchConnection = (sock: object): ConnState => {
    // Taken now: a TLS socket lets go of its transport, and node:net of its addresses, once closed.
    const base = (isTlsSocket(sock) ? underlyingStream(sock) ?? sock : sock) as Endpointish;
    const st: ConnState = { base, inBytes: 0, inMark: 0 };
    conns.set(sock, st);
    // Bytes are counted where HTTP meets the transport. Out: the server counts
    // each response's own bytes (head, body, chunk framing) as it hands them
    // over (res.wireBytes), so nothing depends on when the transport sends
    // them or on what a TLS socket's transport counts (records, not HTTP).
    // In: a stream's own bytesRead (node:net, TLS, strata's TcpSocket) is
    // exact, since reads are not deferred, and covers what was read before we
    // looked; any other stream is counted from its 'data'.
    const es = sock as NodeJS.EventEmitter & { bytesRead?: unknown };
    if (typeof es.bytesRead !== 'number') es.on('data', (c: Buffer | string) => { st.inBytes += typeof c === 'string' ? Buffer.byteLength(c) : c.length; });
    if (!l4) return st;
    const src = plainAddress(base.remoteAddress ?? ''), dst = plainAddress(base.localAddress ?? '');
    const sport = base.remotePort ?? 0, dport = base.localPort ?? 0;
    (sock as NodeJS.EventEmitter).once('close', () => {
      if (!bus.active) return;
      bus.emit1(buildL4Record, {
        ctx: opts.ctx, wallMs: wall.now(), proto: 6,
        src: { address: src, port: sport }, dst: { address: dst, port: dport },
        tcp: findTcpInfo(base), conntrack: ctEntry(opts.conntrack, src, sport, dst, dport),
        identity: identityOf(sock), xdpVerdict: opts.ctx.xdpVerdict ?? null, end: 'closed',
      });
    });
    return st;
  };

  const observed = (req: ServerRequest, res: ServerResponse): void | Promise<void> => {
    const sock = req.socket as unknown as object;
    const st = conns.get(sock) ?? watchConnection(sock);
    const t0 = clock.now();
    let firstByte = -1;
    const mark = (): void => { if (firstByte < 0) firstByte = clock.now(); };
    const w = res.write, e = res.end, f = res.sendFixed;
    res.write = function (this: ServerResponse, c) { mark(); return w.call(this, c); };
    res.end = function (this: ServerResponse, c) { mark(); return e.call(this, c); };
    res.sendFixed = function (this: ServerResponse, x) { mark(); return f.call(this, x); };
    let done = false;
    const finish = (aborted: boolean): void => {
      if (done) return;
      done = true;
      (sock as NodeJS.EventEmitter).off('close', onClose);
      if (!bus.active) return;
      const now = clock.now();
      const t = st.base;
      const br = (sock as { bytesRead?: unknown }).bytesRead;
      const inNow = typeof br === 'number' ? br : st.inBytes;
      const reqBytes = inNow - st.inMark, resBytes = res.wireBytes;
      st.inMark = inNow;
      const src = plainAddress(req.remoteAddress), dst = plainAddress(t.localAddress ?? '');
      const sport = req.remotePort, dport = t.localPort ?? 0;
      const facts: HttpFlowFacts = {
        ctx: opts.ctx, wallMs: wall.now(), req, status: res.headersSent ? res.statusCode : 0, aborted,
        src: { address: src, port: sport }, dst: { address: dst, port: dport },
        tcp: findTcpInfo(t),
        tls: isTlsSocket(sock) ? sock : null,
        xdpVerdict: opts.ctx.xdpVerdict ?? null,
        identity: identityOf(sock),
        conntrack: ctEntry(opts.conntrack, src, sport, dst, dport),
        timings: { firstByteNs: firstByte < 0 ? null : Math.round((firstByte - t0) * 1e6), totalNs: Math.round((now - t0) * 1e6) },
        bytes: { request: reqBytes, response: resBytes },
      };
      opts.enrich?.(req, res, facts);
      bus.emit1(buildHttpRecord, facts);
    };
    const onClose = (): void => finish(true);
    (sock as NodeJS.EventEmitter).once('close', onClose);
    res.once('finish', () => finish(false));
    return handler(req, res);
  };

  return (req, res) => (bus.active ? observed(req, res) : handler(req, res));
}

/**
 * Joins facts that other layers learn during a request to its record:
 * the proxy's access-log entry (upstream cluster, endpoint, tries) and the
 * policy verdict. Layers note them against the request; the observer's
 * enrich() picks them up when the record is built. Entries live in WeakMaps
 * keyed by the request, so nothing outlives it, and noting is skipped
 * entirely while the bus is idle.
 *
 *   const join = new FlowJoin(bus);
 *   const proxy = new Proxy({ …, onLog: (e, req) => join.noteUpstream(req, e) });
 *   const handler = observeHttp(proxy.handler, { ctx, enrich: join.enrich });
 */
export class FlowJoin {
  private readonly upstreams = new WeakMap<object, UpstreamLike>();
  private readonly verdicts = new WeakMap<object, VerdictLike>();
  private readonly upstreamNs = new WeakMap<object, number>();
  constructor(private readonly bus: FlowBus = flowBus) {}
  noteUpstream(req: object | undefined, e: UpstreamLike): void { if (req !== undefined && this.bus.active) this.upstreams.set(req, e); }
  notePolicy(req: object, v: VerdictLike): void { if (this.bus.active) this.verdicts.set(req, v); }
  /** Time spent waiting on the upstream for this request (ns), as the proxy measured it. */
  noteUpstreamTime(req: object, ns: number): void { if (this.bus.active) this.upstreamNs.set(req, ns); }
  readonly enrich = (req: ServerRequest, _res: ServerResponse, f: HttpFlowFacts): void => {
    const u = this.upstreams.get(req);
    if (u !== undefined) {
      f.upstream = u;
      // The proxy's canonical view of the request (what policy, routes and the upstream saw).
      if (u.authority !== undefined && u.url !== undefined) f.target = { authority: u.authority, path: u.url };
    }
    const v = this.verdicts.get(req);
    if (v !== undefined) f.policy = v;
    const ns = this.upstreamNs.get(req);
    if (ns !== undefined) f.timings = { ...f.timings, upstreamNs: ns };
  };
}
