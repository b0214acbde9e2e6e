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
// record's `time` from the wall clock. Bytes per request on a keep-alive
// connection are the socket's byte-count deltas since the previous exchange
// on it finished (exact for serial exchanges; pipelined ones share theirs).
import type { Handler, ServerRequest, ServerResponse } from '../l7/server/index.js';
import { peerIdentity } from '../l7/tls/mtls.js';
import type { Conntrack } from '../stack/conntrack/table.js';
import type { CtEntryInfo } from '../stack/conntrack/table.js';
import type { Clock } from '../util/clock.js';
import { monotonicClock, wallClock } from '../util/clock.js';
import { flowBus, type FlowBus } from './bus.js';
import { buildHttpRecord, buildL4Record, findTcpInfo, isTlsSocket, plainAddress, type FlowContext, type HttpFlowFacts } from './record.js';

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

interface Marks { read: number; written: number }
interface ByteCounted { bytesRead?: number; bytesWritten?: number }

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

/** The underlying stream of a TLS socket (node keeps the wrapped Duplex as _parent), else the socket itself. */
function transportSocket(s: unknown): ByteCounted & { remoteAddress?: string; remotePort?: number; localAddress?: string; localPort?: number } {
  const p = (s as { _parent?: unknown })._parent;
  return (isTlsSocket(s) && p != null ? p : s) as ByteCounted;
}

export function observeHttp(handler: Handler, opts: HttpObserveOptions): Handler {
  const bus = opts.bus ?? flowBus;
  const clock = opts.clock ?? monotonicClock;
  const wall = opts.wall ?? wallClock;
  const l4 = opts.l4 ?? true;
  const marks = new WeakMap<object, Marks>();
  const seen = new WeakSet<object>();

  const identityOf = (sock: unknown): string | null => (isTlsSocket(sock) ? peerIdentity(sock)?.spiffeId ?? null : null);

  const watchConnection = (sock: object): void => {
    seen.add(sock);
    if (!l4) return;
    // node:net forgets its addresses once closed: take them now.
    const t = transportSocket(sock);
    const src = plainAddress(t.remoteAddress ?? ''), dst = plainAddress(t.localAddress ?? '');
    const sport = t.remotePort ?? 0, dport = t.localPort ?? 0;
    (sock as NodeJS.EventEmitter).once('close', () => {
      if (!bus.active) return;
      bus.emit1(buildL4Record, {
        ctx: opts.ctx, wallMs: wall.now(), proto: 6,
        src: { address: src, port: sport }, dst: { address: dst, port: dport },
        tcp: findTcpInfo(sock), conntrack: ctEntry(opts.conntrack, src, sport, dst, dport),
        identity: identityOf(sock), end: 'closed',
      });
    });
  };

  const observed = (req: ServerRequest, res: ServerResponse): void | Promise<void> => {
    const sock = req.socket as unknown as object;
    if (!seen.has(sock)) { watchConnection(sock); marks.set(sock, { read: 0, written: 0 }); }
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
      const t = transportSocket(sock);
      const m = marks.get(sock);
      const read = t.bytesRead ?? 0, written = t.bytesWritten ?? 0;
      let reqBytes: number | null = null, resBytes: number | null = null;
      if (m !== undefined && t.bytesRead !== undefined) { reqBytes = read - m.read; resBytes = written - m.written; m.read = read; m.written = written; }
      const src = plainAddress(req.remoteAddress), dst = plainAddress(t.localAddress ?? '');
      const sport = req.remotePort, dport = t.localPort ?? 0;
      const facts: HttpFlowFacts = {
        ctx: opts.ctx, wallMs: wall.now(), req, status: res.headersSent ? res.statusCode : 0, aborted,
        src: { address: src, port: sport }, dst: { address: dst, port: dport },
        tcp: findTcpInfo(sock),
        tls: isTlsSocket(sock) ? sock : null,
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
