// The admin listener: a small node:http server on a control-plane port
// (kernel TCP on purpose: it must answer when the dataplane does not).
//
//   GET /metrics          Prometheus text (format 0.0.4) from the obs registry:
//                         every layer's families plus the admin's own
//   GET /flows            flow records as JSON lines (application/x-ndjson) or,
//                         with format=cbor, a CBOR sequence (application/cbor-seq,
//                         RFC 8742). Without follow: the retained history (the
//                         last `last` records, default 20, as `hubble observe`),
//                         then the response ends. follow=1: history first, then
//                         records as they are published, until the client goes.
//                         Filters: filter=key=value (repeatable) or key=value for
//                         any filter key (see src/flows/filter.ts).
//   GET /top              JSON snapshot of the busiest flows (n, by=bytes|packets)
//   GET /healthz          200 while the process serves
//   GET /readyz           200 when ready() says so, else 503 with the reason
//
// Cost: a follower subscribes to the flow bus, so records are built only
// while someone follows. `history` > 0 keeps a ring of recent records and so
// keeps the bus active (records are then always built): off by default.
// A follower that cannot keep up loses records (counted, as Hubble's lost
// events) rather than growing memory without bound: its queue is the
// response's own buffer, written to only while write() says there is room
// (the socket's high-water mark, 16 KiB), so at most one record past it.
//
// Trust: the admin port has no authentication (as Envoy's admin). Whoever
// can reach it reads metrics and flow records (addresses, identities, request
// paths; query values redacted unless logging.showQueryStrings). It binds
// loopback by default, and any other bind logs a warning at start. Hostile
// clients are bounded (defaults below): connections in total, follow streams
// in total and per client address, header bytes, no request bodies, header
// and keep-alive timeouts.
import * as http from 'node:http';
import { BlockList, type AddressInfo, type Socket } from 'node:net';
import { Encoder } from 'cbor-x';
import { PROMETHEUS_CONTENT_TYPE, type Metric, type Registry, Registry as RegistryClass } from '../obs/metrics.js';
import { flowBus, type FlowBus, type FlowSink } from '../flows/bus.js';
import { compileFilter, FlowFilterError, type FlowFilter } from '../flows/filter.js';
import { plainAddress, type FlowRecord } from '../flows/record.js';
import { topFlows, type TopOrder, type TopSource } from '../flows/top.js';
import type { Clock } from '../util/clock.js';
import { wallClock } from '../util/clock.js';
import { StrataError } from '../util/errors.js';

export class AdminError extends StrataError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_STRATA_ADMIN', message, options); }
}

export type Readiness = boolean | { ready: boolean; reason?: string };

/** Concurrent /flows?follow=1 streams in total; more get 503. */
export const ADMIN_MAX_FOLLOWERS = 16;
/** Concurrent follow streams from one client address; more get 429 (one client cannot take every slot). */
export const ADMIN_MAX_FOLLOWERS_PER_CLIENT = 4;
/** Open connections to the admin port; more are closed on accept (counted). */
export const ADMIN_MAX_CONNECTIONS = 64;
/** Request head size (node's default, stated here so it is documented). */
export const ADMIN_MAX_HEADER_BYTES = 16 * 1024;
/** Time to receive a complete request head; a connection that sends none (or half of one) gets 408 and is closed. */
export const ADMIN_HEADERS_TIMEOUT_MS = 10_000;
/** How often node looks for connections past that timeout (node's default is 30 s, which would let idle sockets hold slots for 40 s). */
export const ADMIN_TIMEOUT_CHECK_MS = 1_000;
/** An idle keep-alive connection is closed after this. */
export const ADMIN_KEEPALIVE_TIMEOUT_MS = 5_000;

/** Where the admin listener reports what an operator must know (the proxy's Logger fits). */
export interface AdminLog { warn(msg: string, fields?: Record<string, unknown>): void }

const stderrLog: AdminLog = {
  warn(msg, fields) { process.stderr.write(`strata admin: warning: ${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`); },
};

export interface AdminServerOptions {
  /** Default 127.0.0.1: the admin port is not for the world. */
  host?: string;
  /** Default 9901 (Envoy's admin port); 0 picks a free one. */
  port?: number;
  registry?: Registry;
  bus?: FlowBus;
  /** Sources for /top (conntrack tables, RecordTop); a function is asked at each request. */
  top?: readonly TopSource[] | (() => readonly TopSource[]);
  ready?: () => Readiness;
  /** Records retained for /flows without follow (default 0: none; see the module comment). */
  history?: number;
  /** Concurrent /flows?follow=1 streams (default ADMIN_MAX_FOLLOWERS); more get 503. */
  maxFollowers?: number;
  /** Concurrent follow streams per client address (default ADMIN_MAX_FOLLOWERS_PER_CLIENT); more get 429. */
  maxFollowersPerClient?: number;
  /** Open connections (default ADMIN_MAX_CONNECTIONS). */
  maxConnections?: number;
  /** Time to receive a request head (default ADMIN_HEADERS_TIMEOUT_MS). */
  headersTimeoutMs?: number;
  /** Warnings (a non-loopback bind); default: a line on stderr. */
  log?: AdminLog;
  wall?: Clock;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** True for 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopback(address: string): boolean {
  const a = plainAddress(address);
  return LOOPBACK.check(a, a.includes(':') ? 'ipv6' : 'ipv4');
}

const ROUTES = ['/metrics', '/flows', '/top', '/healthz', '/readyz', '/', 'other'] as const;
const RESERVED = new Set(['follow', 'last', 'format', 'filter']);

/** Keeps the last n records. */
class Ring implements FlowSink {
  private readonly buf: (FlowRecord | undefined)[];
  private next = 0;
  private count = 0;
  constructor(readonly size: number) { this.buf = new Array<FlowRecord | undefined>(size); }
  write(r: FlowRecord): void {
    this.buf[this.next] = r;
    this.next = (this.next + 1) % this.size;
    if (this.count < this.size) this.count++;
  }
  /** Oldest first. */
  items(): FlowRecord[] {
    const out: FlowRecord[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.buf[(this.next - this.count + i + this.size) % this.size]!);
    return out;
  }
}

export class AdminServer {
  readonly registry: Registry;
  readonly bus: FlowBus;
  private readonly server: http.Server;
  private readonly ring: Ring | null;
  private removeRing: (() => void) | null = null;
  private readonly followers = new Set<http.ServerResponse>();
  /** Follow streams per client address. */
  private readonly perClient = new Map<string, number>();
  private readonly own: Metric[] = [];
  private readonly requests: Record<(typeof ROUTES)[number], { inc(): void }>;
  private readonly lost: { inc(): void };
  private readonly refused: { total: { inc(): void }; perClient: { inc(): void }; body: { inc(): void } };
  private readonly dropped: { inc(): void };
  private readonly maxFollowers: number;
  private readonly maxPerClient: number;
  private readonly log: AdminLog;
  private readonly wall: Clock;
  private bound: AddressInfo | null = null;
  private open = 0;

  constructor(private readonly opts: AdminServerOptions = {}) {
    this.registry = opts.registry ?? new RegistryClass();
    this.bus = opts.bus ?? flowBus;
    this.maxFollowers = opts.maxFollowers ?? ADMIN_MAX_FOLLOWERS;
    this.maxPerClient = opts.maxFollowersPerClient ?? ADMIN_MAX_FOLLOWERS_PER_CLIENT;
    this.log = opts.log ?? stderrLog;
    this.wall = opts.wall ?? wallClock;
    const h = opts.history ?? 0;
    this.ring = h > 0 ? new Ring(h) : null;
    const reqs = this.registry.counter('strata_admin_requests_total', 'Admin listener requests by endpoint.', ['path']);
    this.own.push(reqs);
    this.requests = Object.fromEntries(ROUTES.map((r) => [r, reqs.labels(r)])) as unknown as Record<(typeof ROUTES)[number], { inc(): void }>;
    const lost = this.registry.counter('strata_admin_flows_lost_total', 'Flow records not sent to a /flows follower that could not keep up.');
    this.own.push(lost);
    this.lost = lost.labels();
    this.own.push(this.registry.gaugeFunc('strata_admin_flow_followers', 'Open /flows?follow=1 streams.', () => this.followers.size));
    const refused = this.registry.counter('strata_admin_requests_refused_total', 'Admin requests refused by a limit: follow streams in total (503) or per client (429), request bodies (413).', ['reason']);
    this.own.push(refused);
    this.refused = { total: refused.labels('followers_total'), perClient: refused.labels('followers_per_client'), body: refused.labels('request_body') };
    const dropped = this.registry.counter('strata_admin_connections_dropped_total', 'Admin connections closed on accept because maxConnections were open.');
    this.own.push(dropped);
    this.dropped = dropped.labels();
    const headersTimeout = opts.headersTimeoutMs ?? ADMIN_HEADERS_TIMEOUT_MS;
    this.server = http.createServer({
      maxHeaderSize: ADMIN_MAX_HEADER_BYTES, headersTimeout, connectionsCheckingInterval: Math.min(ADMIN_TIMEOUT_CHECK_MS, headersTimeout),
    }, (req, res) => this.route(req, res));
    this.server.maxConnections = opts.maxConnections ?? ADMIN_MAX_CONNECTIONS;
    this.server.on('drop', () => this.dropped.inc());
    this.server.on('connection', (sock: Socket) => { this.open++; sock.once('close', () => { this.open--; }); });
    // A follow stream may stay open for hours: no request timeout on the admin port
    // (slots are bounded instead); the head and idle keep-alive are timed.
    this.server.requestTimeout = 0;
    this.server.keepAliveTimeout = ADMIN_KEEPALIVE_TIMEOUT_MS;
  }

  /** Binds; resolves with the address (port 0 → the kernel's choice). */
  async listen(): Promise<AddressInfo> {
    const host = this.opts.host ?? '127.0.0.1';
    const port = this.opts.port ?? 9901;
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error): void => reject(new AdminError(`admin listener on ${host}:${port}: ${e.message}`, { cause: e }));
      this.server.once('error', onErr);
      this.server.listen(port, host, () => { this.server.off('error', onErr); resolve(); });
    });
    if (this.ring !== null) this.removeRing = this.bus.addSink(this.ring);
    this.bound = this.server.address() as AddressInfo;
    if (!isLoopback(this.bound.address)) {
      this.log.warn('admin listener is not on loopback: /metrics, /flows and /top are open, with no authentication, to anyone who can reach this address; bind 127.0.0.1 (admin.address) or firewall the port', {
        address: this.bound.address, port: this.bound.port, exposes: ['/metrics', '/flows', '/top', '/healthz', '/readyz'], authentication: 'none',
      });
    }
    return this.bound;
  }

  get address(): AddressInfo | null { return this.bound; }

  /** Open connections (at most maxConnections). */
  get connections(): number { return this.open; }

  /** Open /flows?follow=1 streams. */
  get followerCount(): number { return this.followers.size; }

  /** Ends follow streams, stops listening, detaches from the bus and the registry. */
  async close(): Promise<void> {
    for (const r of this.followers) r.end();
    this.followers.clear();
    this.perClient.clear();
    this.removeRing?.();
    this.removeRing = null;
    for (const m of this.own) this.registry.unregister(m);
    this.server.closeIdleConnections();
    await new Promise<void>((resolve) => { if (!this.server.listening) resolve(); else this.server.close(() => resolve()); });
    this.server.closeAllConnections();
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const known = (ROUTES as readonly string[]).includes(path) ? path as (typeof ROUTES)[number] : 'other';
    this.requests[known].inc();
    if (req.method !== 'GET' && req.method !== 'HEAD') { this.text(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' }); return; }
    // No admin endpoint takes a body: refuse one rather than read (and discard) whatever a client streams.
    if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) {
      this.refused.body.inc();
      res.shouldKeepAlive = false;
      this.text(res, 413, 'admin requests take no body\n', { connection: 'close' });
      return;
    }
    try {
      switch (known) {
        case '/metrics': this.send(res, 200, PROMETHEUS_CONTENT_TYPE, this.registry.render()); return;
        case '/flows': this.flows(url, req, res); return;
        case '/top': this.top(url, res); return;
        case '/healthz': this.text(res, 200, 'ok\n'); return;
        case '/readyz': this.readyz(res); return;
        case '/': this.text(res, 200, 'strata admin\n  /metrics\n  /flows[?follow=1&filter=k=v&last=N&format=json|cbor]\n  /top[?n=N&by=bytes|packets]\n  /healthz\n  /readyz\n'); return;
        default: this.text(res, 404, 'not found\n');
      }
    } catch (e) {
      if (e instanceof FlowFilterError || e instanceof AdminError) { this.text(res, 400, `${e.message}\n`); return; }
      if (!res.headersSent) this.text(res, 500, `${(e as Error).message}\n`);
      else res.destroy(e as Error);
    }
  }

  private send(res: http.ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...extra });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }

  private text(res: http.ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
    this.send(res, status, 'text/plain; charset=utf-8', body, extra);
  }

  private readyz(res: http.ServerResponse): void {
    const r = this.opts.ready?.() ?? true;
    const ready = typeof r === 'boolean' ? r : r.ready;
    const reason = typeof r === 'boolean' ? '' : r.reason ?? '';
    if (ready) this.text(res, 200, 'ready\n');
    else this.text(res, 503, `not ready${reason ? `: ${reason}` : ''}\n`);
  }

  private top(url: URL, res: http.ServerResponse): void {
    const n = intParam(url, 'n', 20, 1, 10_000);
    const byRaw = url.searchParams.get('by') ?? 'bytes';
    if (byRaw !== 'bytes' && byRaw !== 'packets') throw new AdminError(`by must be bytes or packets, got ${byRaw}`);
    const t = this.opts.top;
    const sources = typeof t === 'function' ? t() : t ?? [];
    const snap = topFlows(sources, n, byRaw as TopOrder, this.wall);
    this.send(res, 200, 'application/json', `${JSON.stringify(snap)}\n`);
  }

  private flows(url: URL, req: http.IncomingMessage, res: http.ServerResponse): void {
    const terms = url.searchParams.getAll('filter');
    for (const [k, v] of url.searchParams) if (!RESERVED.has(k) && k !== 'n') terms.push(`${k}=${v}`);
    const filter: FlowFilter = compileFilter(terms);
    const follow = ['1', 'true', 'yes'].includes(url.searchParams.get('follow') ?? '');
    const last = intParam(url, 'last', 20, 0, 1_000_000);
    const format = url.searchParams.get('format') ?? 'json';
    if (format !== 'json' && format !== 'cbor') throw new AdminError(`format must be json or cbor, got ${format}`);
    const client = plainAddress((req.socket as Socket).remoteAddress ?? '');
    if (follow && this.followers.size >= this.maxFollowers) {
      this.refused.total.inc();
      this.text(res, 503, `too many flow followers (limit ${this.maxFollowers} in total)\n`, { 'retry-after': '5' });
      return;
    }
    if (follow && (this.perClient.get(client) ?? 0) >= this.maxPerClient) {
      this.refused.perClient.inc();
      this.text(res, 429, `too many flow followers from ${client} (limit ${this.maxPerClient} per client address)\n`, { 'retry-after': '5' });
      return;
    }
    const enc = format === 'cbor' ? new Encoder({ sequential: true, useRecords: true }) : null;
    const encode = (r: FlowRecord): string | Buffer => (enc !== null ? enc.encode(r) : `${JSON.stringify(r)}\n`);
    res.writeHead(200, {
      'content-type': format === 'cbor' ? 'application/cbor-seq' : 'application/x-ndjson',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    if (req.method === 'HEAD') { res.end(); return; }
    const past = this.ring?.items().filter((r) => filter.match(r)) ?? [];
    for (const r of past.slice(Math.max(0, past.length - last))) res.write(encode(r));
    if (!follow) { res.end(); return; }
    // Headers out now, so a client sees the stream open before the first record.
    res.flushHeaders();
    this.followers.add(res);
    this.perClient.set(client, (this.perClient.get(client) ?? 0) + 1);
    let blocked = false;
    // A CBOR follower may not lose records: a lost record could hold a shape
    // definition later records refer to. It is cut off instead.
    const onRecord = (r: FlowRecord): void => {
      if (!filter.match(r)) return;
      if (blocked) {
        this.lost.inc();
        if (enc !== null) res.destroy();
        return;
      }
      if (!res.write(encode(r))) blocked = true;
    };
    res.on('drain', () => { blocked = false; });
    const unsubscribe = this.bus.subscribe(onRecord);
    const done = (): void => {
      unsubscribe();
      if (!this.followers.delete(res)) return;
      const n = (this.perClient.get(client) ?? 1) - 1;
      if (n > 0) this.perClient.set(client, n); else this.perClient.delete(client);
    };
    res.once('close', done);
    req.once('close', done);
  }
}

function intParam(url: URL, name: string, dflt: number, min: number, max: number): number {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new AdminError(`${name} must be an integer in [${min}, ${max}], got ${v}`);
  return n;
}

/** Starts an admin listener; resolves once it is bound. */
export async function startAdminServer(opts: AdminServerOptions = {}): Promise<AdminServer> {
  const s = new AdminServer(opts);
  await s.listen();
  return s;
}
