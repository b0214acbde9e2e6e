// Flow records: one per HTTP request and one per L4 flow, joining what every
// layer knows about it, from the link and queue through XDP, conntrack and
// TCP up to TLS, HTTP, routing and policy (issue 5, "Observability across
// layers").
//
// Schema. Where Hubble's flow schema (cilium/cilium api/v1/flow/flow.proto,
// rendered as `hubble observe -o json` renders it: proto field names, enum
// values as their names) has a field for a fact, the record uses that field
// and its spelling: time, uuid, verdict, drop_reason_desc, IP {source,
// destination, ipVersion}, l4 {TCP {source_port, destination_port, flags}},
// source / destination endpoints, Type (L3_L4 | L7), l7 {type, latency_ns,
// http {code, method, url, protocol, headers}}, is_reply, traffic_direction,
// trace_observation_point, interface {index, name}, node_name, Summary.
// Facts Hubble has no field for live under `strata`, versioned by
// `strata.version` so readers can tell schema generations apart.
//
// Contract: a builder is only ever called by the FlowBus after it checked that
// someone listens (bus.ts), so building may allocate freely. Builders never
// read a clock: the times come in the facts. A fact that is not known is
// null, never guessed: e.g. TCP facts of the kernel transport (Node exposes
// no TCP_INFO), or the XDP verdict on the TAP path.
import { randomUUID } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { TcpInfo } from '../stack/tcp/connection.js';
import type { CtEntryInfo } from '../stack/conntrack/table.js';
import { REDACTED, targetFor, type QueryMode } from './redact.js';

export { REDACTED } from './redact.js';

export const FLOW_SCHEMA_VERSION = 1;

/** Hubble's Verdict enum names. */
export type FlowVerdict = 'VERDICT_UNKNOWN' | 'FORWARDED' | 'DROPPED' | 'ERROR' | 'AUDIT' | 'REDIRECTED' | 'TRACED' | 'TRANSLATED';
/** Hubble's FlowType. */
export type FlowType = 'L3_L4' | 'L7';
/** Hubble's L7FlowType. */
export type L7FlowType = 'REQUEST' | 'RESPONSE' | 'SAMPLE';
/** Hubble's TrafficDirection. */
export type TrafficDirection = 'TRAFFIC_DIRECTION_UNKNOWN' | 'INGRESS' | 'EGRESS';
/** The subset of Hubble's TraceObservationPoint that strata can be at. */
export type TraceObservationPoint = 'UNKNOWN_POINT' | 'TO_PROXY' | 'FROM_PROXY' | 'TO_STACK' | 'FROM_STACK' | 'FROM_NETWORK' | 'TO_NETWORK';
export type TransportName = 'kernel' | 'tap' | 'afxdp' | 'mem';

/** Hubble's TCPFlags: only the set bits are present. */
export interface TcpFlags { FIN?: true; SYN?: true; RST?: true; PSH?: true; ACK?: true; URG?: true; ECE?: true; CWR?: true }

export interface FlowIP { source: string; destination: string; ipVersion: 'IPv4' | 'IPv6' }
export interface FlowL4 {
  TCP?: { source_port: number; destination_port: number; flags?: TcpFlags };
  UDP?: { source_port: number; destination_port: number };
  ICMPv4?: { type: number; code: number };
}
/** Hubble's Endpoint, as far as strata knows one: SPIFFE identities become labels ("spiffe://…"). */
export interface FlowEndpoint { labels: string[] }
export interface HttpHeader { key: string; value: string }
export interface FlowHttp { code: number; method: string; url: string; protocol: string; headers: HttpHeader[] }
export interface FlowL7 { type: L7FlowType; latency_ns: number; http: FlowHttp }

/** TCP facts at the moment the record was built (strata's stack; null for the kernel transport). */
export interface StrataTcp {
  state: string;
  srtt_us: number;
  rttvar_us: number;
  rto_us: number;
  /** Bytes (Linux reports segments; divide by mss). */
  cwnd: number;
  ssthresh: number;
  mss: number;
  retransmits: number;
  fast_retransmits: number;
  rto_expirations: number;
  /** Segments received out of order (each new hole filled counts once). */
  ooo_events: number;
  /** SACK blocks received. */
  sack_events: number;
  zero_window_stalls: number;
  zero_window_probes: number;
  dup_acks_in: number;
  bytes_in: number;
  bytes_out: number;
  segs_in: number;
  segs_out: number;
  cc: string;
}

export interface StrataConntrack {
  id: number;
  state: string;
  packets: { original: number; reply: number };
  bytes: { original: number; reply: number };
}

export interface StrataExtension {
  version: number;
  transport: TransportName | null;
  /** NIC queue of the AF_XDP socket, or null. */
  queue: number | null;
  /** XDP program's verdict reason (src/xdp/shared.ts REASON names, e.g. "redirected"), or null. */
  xdp_verdict: string | null;
  conntrack: StrataConntrack | null;
  tcp: StrataTcp | null;
  tls: { version: string | null; cipher: string | null; peer_spiffe_id: string | null } | null;
  http: { authority: string; path: string } | null;
  upstream: { cluster: string | null; endpoint: string | null; retries: number; reason: string | null } | null;
  timings: { first_byte_ns: number | null; upstream_ns: number | null; total_ns: number | null };
  policy: { verdict: 'allow' | 'deny'; rule: string; policy: string | null; reason: string } | null;
  bytes: { request: number | null; response: number | null };
  /** L4 records: the flow's life as conntrack saw it. */
  flow: { packets: { original: number; reply: number }; bytes: { original: number; reply: number }; duration_ns: number | null; end: string | null } | null;
}

export interface FlowRecord {
  time: string;
  uuid: string;
  verdict: FlowVerdict;
  drop_reason_desc?: string;
  IP: FlowIP | null;
  l4: FlowL4 | null;
  source: FlowEndpoint | null;
  destination: FlowEndpoint | null;
  Type: FlowType;
  node_name: string;
  l7: FlowL7 | null;
  is_reply: boolean;
  traffic_direction: TrafficDirection;
  trace_observation_point: TraceObservationPoint;
  interface: { index: number; name: string } | null;
  Summary: string;
  strata: StrataExtension;
}

// ---- facts the builders take ------------------------------------------------------

/** The minimal shape of a verdict (src/l7/policy Verdict). */
export interface VerdictLike { readonly action: 'allow' | 'deny'; readonly rule: string; readonly policy: string | null; readonly reason: string }
/** The proxy's access-log entry (src/l7/proxy AccessLogEntry). */
export interface UpstreamLike {
  cluster: string | null; host: string | null; tries: number; reason: string | null;
  /** The proxy's canonical target and authority (src/l7/proxy/canonical.ts): what policy and routes decided on. */
  url?: string; authority?: string;
}
/** A request as the server hands it to the handler (src/l7/server ServerRequest). */
export interface RequestLike {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly rawHeaders: readonly string[];
}

/** Where the dataplane sits: the same for every record of one process/listener. */
export interface FlowContext {
  transport: TransportName | null;
  nodeName?: string;
  iface?: { index: number; name: string } | null;
  queue?: number | null;
  /** Direction of the connections this listener accepts (default INGRESS). */
  direction?: TrafficDirection;
  /** "http" or "https" for the l7.http.url. */
  scheme?: 'http' | 'https';
  /**
   * The XDP verdict every packet of this listener's flows got: on the AF_XDP
   * transport, reaching the dataplane at all means the program redirected it
   * (the program's counters are per reason, not per flow).
   */
  xdpVerdict?: string | null;
  /** Header handling: 'redacted' (default) keeps names and hides credential values, as Hubble's redaction does. */
  headers?: 'none' | 'redacted' | 'all';
  /** Query strings: 'redacted' (default) keeps parameter names and hides values (src/flows/redact.ts); 'all' shows them (logging.showQueryStrings). */
  query?: QueryMode;
}

export interface HttpFlowFacts {
  ctx: FlowContext;
  /** Wall-clock time of the response's end, ms since the epoch. */
  wallMs: number;
  req: RequestLike;
  /** Behind the proxy: the canonical authority and origin-form target it decided on (src/l7/proxy/canonical.ts). */
  target?: { authority: string; path: string };
  /** 0 when no response was sent. */
  status: number;
  /** Response not completed (reset, handler error after headers). */
  aborted?: boolean;
  src: { address: string; port: number };
  dst: { address: string; port: number };
  tcp?: TcpInfo | null;
  tls?: TLSSocket | { version: string | null; cipher: string | null; peerSpiffeId: string | null } | null;
  /** The peer identity when known without the TLS socket (e.g. taken from it earlier). */
  identity?: string | null;
  conntrack?: CtEntryInfo | null;
  xdpVerdict?: string | null;
  upstream?: UpstreamLike | null;
  policy?: VerdictLike | null;
  /** Nanoseconds since the request began (its first byte or head). */
  timings?: { firstByteNs?: number | null; upstreamNs?: number | null; totalNs?: number | null };
  bytes?: { request?: number | null; response?: number | null };
}

export interface L4FlowFacts {
  ctx: FlowContext;
  wallMs: number;
  proto: number;
  src: { address: string; port: number };
  dst: { address: string; port: number };
  /** TCP flags seen (union), if known. */
  tcpFlags?: number;
  tcp?: TcpInfo | null;
  conntrack?: CtEntryInfo | null;
  /** Why the flow ended (conntrack's CT_END name, or "closed"). */
  end?: string | null;
  xdpVerdict?: string | null;
  identity?: string | null;
  /** The flow was denied (conntrack policy, XDP deny list). */
  denied?: boolean;
  dropReason?: string;
}

// ---- helpers ----------------------------------------------------------------------

export function ip4String(a: number): string {
  return `${(a >>> 24) & 255}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** Strips the IPv4-mapped IPv6 prefix node:net reports on dual-stack sockets. */
export function plainAddress(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

function ipVersion(a: string): 'IPv4' | 'IPv6' { return a.includes(':') ? 'IPv6' : 'IPv4'; }

export function tcpFlagsObject(bits: number): TcpFlags {
  const f: TcpFlags = {};
  if (bits & 0x01) f.FIN = true;
  if (bits & 0x02) f.SYN = true;
  if (bits & 0x04) f.RST = true;
  if (bits & 0x08) f.PSH = true;
  if (bits & 0x10) f.ACK = true;
  if (bits & 0x20) f.URG = true;
  if (bits & 0x40) f.ECE = true;
  if (bits & 0x80) f.CWR = true;
  return f;
}

/** strata TCP facts from a TcpInfo (times in the stack are ms; the record uses µs as Linux's tcp_info does). */
export function tcpFacts(i: TcpInfo): StrataTcp {
  return {
    state: i.state,
    srtt_us: Math.round(i.srtt * 1000), rttvar_us: Math.round(i.rttvar * 1000), rto_us: Math.round(i.rto * 1000),
    cwnd: i.cwnd, ssthresh: i.ssthresh, mss: i.mss,
    retransmits: i.retransmits, fast_retransmits: i.fastRetransmits, rto_expirations: i.rtoExpirations,
    ooo_events: i.outOfOrder, sack_events: i.sackBlocksIn,
    zero_window_stalls: i.zeroWindowStalls, zero_window_probes: i.zeroWindowProbes, dup_acks_in: i.dupAcksIn,
    bytes_in: i.bytesIn, bytes_out: i.bytesOut, segs_in: i.segsIn, segs_out: i.segsOut, cc: i.cc,
  };
}

interface InfoCarrier { info?: () => TcpInfo | null }

/**
 * The stream a TLS socket runs over: node keeps a wrapped net.Socket as the
 * TLS handle's `_parentWrap`, and any other Duplex (strata's TcpSocket) as
 * `_parentWrap.stream` (a JSStreamSocket). null for anything else, or once the
 * TLS socket is destroyed (take it early if you need it after close).
 */
export function underlyingStream(s: unknown): object | null {
  if (s == null || typeof s !== 'object') return null;
  const p = (s as { _parent?: unknown })._parent;
  if (p != null && typeof p === 'object' && typeof (p as { on?: unknown }).on === 'function') return p;
  const w = (s as { _handle?: { _parentWrap?: { stream?: unknown } } | null })._handle?._parentWrap;
  if (w == null) return null;
  const inner = (w as { stream?: unknown }).stream;
  return (inner != null && typeof inner === 'object' ? inner : w) as object;
}

/**
 * The TCP facts behind a socket, when strata's stack carries it: a TcpSocket
 * (info()), or a TLSSocket over one. node:net sockets give null: Node
 * exposes no TCP_INFO.
 */
export function findTcpInfo(socket: unknown): TcpInfo | null {
  let s: unknown = socket;
  for (let depth = 0; depth < 3 && s != null; depth++) {
    const c = s as InfoCarrier;
    if (typeof c.info === 'function') {
      const i = c.info();
      if (i !== null && typeof i === 'object' && typeof (i as TcpInfo).srtt === 'number') return i;
    }
    s = underlyingStream(s);
  }
  return null;
}

/** True for a tls.TLSSocket (duck-typed so this module never loads node:tls). */
export function isTlsSocket(s: unknown): s is TLSSocket {
  return s != null && typeof (s as TLSSocket).getCipher === 'function' && typeof (s as TLSSocket).getProtocol === 'function';
}

const REDACT = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']);

function headersOf(raw: readonly string[], mode: 'none' | 'redacted' | 'all', query: QueryMode | undefined): HttpHeader[] {
  const out: HttpHeader[] = [];
  if (mode === 'none') return out;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i]!;
    const lkey = key.toLowerCase();
    let value = raw[i + 1]!;
    if (mode === 'redacted' && REDACT.has(lkey)) value = REDACTED;
    // A Referer is a URL too: its query is hidden as the request's own is.
    else if (lkey === 'referer') value = targetFor(value, query);
    out.push({ key, value });
  }
  return out;
}

function headerValue(raw: readonly string[], lname: string): string | undefined {
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === lname) return raw[i + 1];
  return undefined;
}

function rfc3339(ms: number): string {
  // Hubble prints RFC 3339 with nanoseconds; we keep the microseconds we have.
  const whole = Math.floor(ms);
  const iso = new Date(whole).toISOString(); // …T12:34:56.789Z
  const micros = Math.round((ms - whole) * 1000) % 1000;
  return `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}

function emptyStrata(ctx: FlowContext): StrataExtension {
  return {
    version: FLOW_SCHEMA_VERSION, transport: ctx.transport, queue: ctx.queue ?? null, xdp_verdict: null,
    conntrack: null, tcp: null, tls: null, http: null, upstream: null,
    timings: { first_byte_ns: null, upstream_ns: null, total_ns: null }, policy: null,
    bytes: { request: null, response: null }, flow: null,
  };
}

function ctFacts(e: CtEntryInfo): StrataConntrack {
  return { id: e.id, state: e.state, packets: { original: e.packets[0], reply: e.packets[1] }, bytes: { original: e.bytes[0], reply: e.bytes[1] } };
}

function tlsFacts(t: NonNullable<HttpFlowFacts['tls']>, identity: string | null): NonNullable<StrataExtension['tls']> {
  if (isTlsSocket(t)) {
    const c = t.getCipher();
    return { version: t.getProtocol() ?? null, cipher: c?.standardName ?? c?.name ?? null, peer_spiffe_id: identity };
  }
  return { version: t.version, cipher: t.cipher, peer_spiffe_id: t.peerSpiffeId ?? identity };
}

function endpoint(identity: string | null | undefined): FlowEndpoint {
  return { labels: identity ? [identity] : [] };
}

function fmtLatency(ns: number | null): string {
  if (ns === null) return '-';
  if (ns < 1e6) return `${(ns / 1e3).toFixed(0)}µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)}ms`;
  return `${(ns / 1e9).toFixed(2)}s`;
}

// ---- builders ----------------------------------------------------------------------

/** The record of one HTTP exchange (Type L7, l7.type RESPONSE, or REQUEST when no response was sent). */
export function buildHttpRecord(f: HttpFlowFacts): FlowRecord {
  const ctx = f.ctx;
  const src = plainAddress(f.src.address);
  const dst = plainAddress(f.dst.address);
  const raw = f.req.rawHeaders;
  // Behind the proxy, the canonical view it decided on; the received Host and target otherwise.
  const authority = f.target?.authority ?? headerValue(raw, 'host') ?? '';
  // Redacted here, where the target enters the record, so every output (JSON, CBOR, Summary, filters, exporters) agrees.
  const path = targetFor(f.target?.path ?? f.req.url, ctx.query);
  const scheme = ctx.scheme ?? (f.tls ? 'https' : 'http');
  const url = path.startsWith('/') || path === '*' ? `${scheme}://${authority || dst}${path === '*' ? '' : path}` : path;
  const identity = f.identity ?? (f.tls && !isTlsSocket(f.tls) ? f.tls.peerSpiffeId : null) ?? null;
  const s = emptyStrata(ctx);
  s.xdp_verdict = f.xdpVerdict ?? ctx.xdpVerdict ?? null;
  s.conntrack = f.conntrack ? ctFacts(f.conntrack) : null;
  s.tcp = f.tcp ? tcpFacts(f.tcp) : null;
  s.tls = f.tls ? tlsFacts(f.tls, identity) : identity ? { version: null, cipher: null, peer_spiffe_id: identity } : null;
  s.http = { authority, path };
  if (f.upstream) s.upstream = { cluster: f.upstream.cluster, endpoint: f.upstream.host, retries: Math.max(0, f.upstream.tries - 1), reason: f.upstream.reason };
  const t = f.timings ?? {};
  s.timings = { first_byte_ns: t.firstByteNs ?? null, upstream_ns: t.upstreamNs ?? null, total_ns: t.totalNs ?? null };
  if (f.policy) s.policy = { verdict: f.policy.action, rule: f.policy.rule, policy: f.policy.policy, reason: f.policy.reason };
  s.bytes = { request: f.bytes?.request ?? null, response: f.bytes?.response ?? null };
  const denied = f.policy?.action === 'deny';
  const verdict: FlowVerdict = denied ? 'DROPPED' : f.aborted || f.status === 0 ? 'ERROR' : 'FORWARDED';
  const latency = s.timings.total_ns;
  const rec: FlowRecord = {
    time: rfc3339(f.wallMs),
    uuid: randomUUID(),
    verdict,
    IP: { source: src, destination: dst, ipVersion: ipVersion(src) },
    l4: { TCP: { source_port: f.src.port, destination_port: f.dst.port } },
    source: endpoint(identity),
    destination: { labels: [] },
    Type: 'L7',
    node_name: ctx.nodeName ?? '',
    l7: {
      type: f.status > 0 ? 'RESPONSE' : 'REQUEST',
      latency_ns: latency ?? 0,
      http: { code: f.status, method: f.req.method, url, protocol: `HTTP/${f.req.httpVersion}`, headers: headersOf(raw, ctx.headers ?? 'redacted', ctx.query) },
    },
    is_reply: f.status > 0,
    traffic_direction: ctx.direction ?? 'INGRESS',
    trace_observation_point: 'TO_PROXY',
    interface: ctx.iface ?? null,
    Summary: `HTTP/${f.req.httpVersion} ${f.status || '-'} ${fmtLatency(latency)} ${f.req.method} ${url}`,
    strata: s,
  };
  if (denied) rec.drop_reason_desc = 'POLICY_DENIED';
  return rec;
}

const PROTO_NAMES: Record<number, string> = { 1: 'ICMPv4', 6: 'TCP', 17: 'UDP' };

/** The record of one L4 flow (Type L3_L4), typically built when it ends. */
export function buildL4Record(f: L4FlowFacts): FlowRecord {
  const ctx = f.ctx;
  const src = plainAddress(f.src.address);
  const dst = plainAddress(f.dst.address);
  const s = emptyStrata(ctx);
  s.xdp_verdict = f.xdpVerdict ?? null;
  s.conntrack = f.conntrack ? ctFacts(f.conntrack) : null;
  s.tcp = f.tcp ? tcpFacts(f.tcp) : null;
  if (f.identity) s.tls = { version: null, cipher: null, peer_spiffe_id: f.identity };
  const ct = f.conntrack;
  if (ct) {
    s.flow = {
      packets: { original: ct.packets[0], reply: ct.packets[1] },
      bytes: { original: ct.bytes[0], reply: ct.bytes[1] },
      duration_ns: Math.max(0, Math.round((ct.lastSeen - ct.firstSeen) * 1e6)),
      end: f.end ?? null,
    };
  } else if (f.tcp) {
    s.flow = { packets: { original: f.tcp.segsIn, reply: f.tcp.segsOut }, bytes: { original: f.tcp.bytesIn, reply: f.tcp.bytesOut }, duration_ns: null, end: f.end ?? null };
  }
  let l4: FlowL4 | null = null;
  if (f.proto === 6) l4 = { TCP: { source_port: f.src.port, destination_port: f.dst.port, ...(f.tcpFlags !== undefined ? { flags: tcpFlagsObject(f.tcpFlags) } : {}) } };
  else if (f.proto === 17) l4 = { UDP: { source_port: f.src.port, destination_port: f.dst.port } };
  else if (f.proto === 1) l4 = { ICMPv4: { type: f.src.port, code: 0 } };
  const denied = f.denied === true || (ct?.denied ?? false);
  const pname = PROTO_NAMES[f.proto] ?? `proto ${f.proto}`;
  const rec: FlowRecord = {
    time: rfc3339(f.wallMs),
    uuid: randomUUID(),
    verdict: denied ? 'DROPPED' : 'FORWARDED',
    IP: { source: src, destination: dst, ipVersion: ipVersion(src) },
    l4,
    source: endpoint(f.identity),
    destination: { labels: [] },
    Type: 'L3_L4',
    node_name: ctx.nodeName ?? '',
    l7: null,
    is_reply: false,
    traffic_direction: ctx.direction ?? 'INGRESS',
    trace_observation_point: 'TO_STACK',
    interface: ctx.iface ?? null,
    Summary: `${pname} ${src}:${f.src.port} -> ${dst}:${f.dst.port}${ct ? ` ${ct.state}` : f.tcp ? ` ${f.tcp.state}` : ''}${f.end ? ` (${f.end})` : ''}`,
    strata: s,
  };
  if (denied) rec.drop_reason_desc = f.dropReason ?? 'POLICY_DENIED';
  return rec;
}
