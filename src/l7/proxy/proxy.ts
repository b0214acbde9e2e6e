// The routing proxy: an HttpServer handler that matches HTTPRoutes, applies
// their filters and forwards to upstream clusters with retries, timeouts,
// outlier detection and circuit breakers (Envoy's semantics and defaults).
//
// Request path:
//   canonical request (canonical.ts: absolute-form, Host, path normalisation;
//   400 when invalid) → policy (403) → route (404 if none) → filters in order (RequestHeaderModifier, URLRewrite,
//   RequestRedirect answers at once, RequestMirror is fire-and-forget) →
//   weighted backendRef (all weights 0 → 500) → body buffered up to
//   retryBufferBytes so a retry can replay it (a larger body streams to a
//   single try with backpressure; beyond maxBodyBytes → 413) → hop-by-hop headers removed,
//   X-Forwarded-For / Forwarded (RFC 7239) / X-Forwarded-Proto added →
//   tries: host from the LB, connection from the host's pool, per-try
//   timeout; retry on connect failure, reset before a response, and
//   502/503/504, within num_retries, the retry budget and the request
//   timeout (default 15 s, covering every try and backoff), after a
//   jittered backoff → the response streams back with backpressure, its
//   hop-by-hop headers removed and ResponseHeaderModifier applied.
//
// Failures the client sees: 503 when no host is available or a breaker
// overflows or the last try could not connect, 502 for a reset or a bad
// response, 504 for a timeout. Each is counted by reason.
//
// Upgrade requests (WebSocket) take the same path on a dedicated upstream
// connection and become tunnels on a 101 (tunnel.ts; wire the server with
// upgradeServerOptions()). Trailers pass both ways on chunked messages,
// filtered as RFC 9110 §6.5.1 asks (trailers.ts).
import type { Clock } from '../../util/clock.js';
import { turnClock } from '../../util/clock.js';
import { Prng } from '../../util/prng.js';
import type { Handler, ServerRequest, ServerResponse } from '../server/index.js';
import { FixedResponse } from '../server/index.js';
import { Router } from './router.js';
import { applyHeaderFilter, headerGet, headerRemove, modifyPath, pickBackend, redirectTarget, type HeaderList } from './filters.js';
import { canonicalRequest, DEFAULT_ESCAPED_SLASH_ACTION, type CanonicalRequest, type EscapedSlashAction } from './canonical.js';
import { forwardRequestHeaders, forwardResponseHeaders, stripHopByHop } from './headers.js';
import type { HTTPHeaderFilter, HTTPRoute, HTTPRouteRule } from './types.js';
import type { Cluster } from './cluster.js';
import { retryBackoff } from './breakers.js';
import { Timer } from '../../stack/timers.js';
import { TimerDriver } from '../server/timers.js';
import { UpstreamError, type UpstreamConnection, type UpstreamExchange } from './upstream.js';
import type { Host } from './hosts.js';
import { UpgradeResponse, upgradeVia, type HttpServerOptions } from '../server/index.js';
import type { L7Socket } from '../transport/types.js';
import { DEFAULT_TUNNEL_IDLE_MS, DEFAULT_UPGRADE_TYPES, Tunnels, switchHead, switchIssue, upgradeAllowed, type TunnelEnd, type TunnelStats } from './tunnel.js';
import { forwardTrailerAnnouncement, forwardTrailers, trailerLines } from './trailers.js';

export interface ProxyOptions {
  routes: HTTPRoute[];
  clusters: Cluster[];
  clock?: Clock;
  rng?: Prng;
  /**
   * Request bodies up to this size are buffered so a retry can replay them;
   * a larger body streams to one upstream try with backpressure and is never
   * retried (Envoy's per-request buffer limit). Default 64 KiB.
   */
  retryBufferBytes?: number;
  /** Larger request bodies get 413 (default Infinity). */
  maxBodyBytes?: number;
  /** Whole-request timeout when the rule names none (default 15 000 ms, Envoy's route timeout). */
  defaultRequestTimeoutMs?: number;
  /** The scheme clients used to reach us ('http' or 'https'), for redirects and forwarding headers. */
  scheme?: 'http' | 'https';
  /** Our listener port, for redirects that keep the port. */
  listenerPort?: number;
  /** L7 policy: false denies the request with 403 before routing. */
  policy?: PolicyHook | null;
  /** %2F and %5C in paths (Envoy path_with_escaped_slashes_action; default REJECT_REQUEST, canonical.ts). */
  escapedSlashes?: EscapedSlashAction;
  /** Called once per request with what happened (access log). */
  /** Called once per request with its outcome; req lets observers join it to the request's flow record. */
  onLog?: (e: AccessLogEntry, req: ServerRequest) => void;
  /** Upgrade protocols that tunnel (Envoy upgrade_configs; case-insensitive; default ['websocket']; [] for none). */
  upgradeTypes?: readonly string[];
  /** A tunnel with no byte either way for this long is closed (Envoy stream_idle_timeout; default 300 000 ms; 0: never). */
  tunnelIdleTimeoutMs?: number;
}

/** Decides on the request's canonical view (target.path, target.authority …), never on its raw target or Host. */
export type PolicyHook = (req: ServerRequest, target: CanonicalRequest) => boolean;

export interface AccessLogEntry {
  /** url: the canonical origin-form target (the received one when it was refused); authority: the canonical host[:port]. */
  method: string; url: string; authority: string; status: number; cluster: string | null; host: string | null; tries: number; reason: string | null; client: string;
  /** A tunnel (status 101), logged when it ends: bytes from the client to the upstream and back. */
  tunnel?: { bytesToUpstream: number; bytesToClient: number };
}

export interface ProxyStats {
  requests: number;
  denied: number;
  /** Requests refused with 400 because their target or Host is not acceptable (failures[code] says why). */
  badTarget: number;
  noRoute: number;
  redirects: number;
  mirrored: number;
  retries: number;
  /**
   * Failures by reason. Final ones: no_healthy_host, overflow, connect_failure, reset, timeout, protocol, no_backend, body_too_large,
   * and the 400s of the canonical request (canonical.ts TargetErrorCode): unsupported_scheme, invalid_target, invalid_authority,
   * missing_host, duplicate_host, invalid_escape, escaped_slash.
   * Why a retriable failure was not retried: retry_budget_exhausted, retries_exhausted.
   */
  failures: Record<string, number>;
  tunnels: TunnelStats;
}

function refsHaveFilters(rule: HTTPRouteRule): boolean {
  const refs = rule.backendRefs;
  if (refs === undefined) return false;
  for (let i = 0; i < refs.length; i++) if (refs[i]!.filters !== undefined && refs[i]!.filters!.length > 0) return true;
  return false;
}

/** bodyLen -1: the body streams chunked (its length is not known yet). */
function serializeHead(method: string, target: string, h: HeaderList, bodyLen: number): string {
  let s = `${method} ${target} HTTP/1.1\r\n`;
  for (let i = 0; i < h.length; i += 2) s += `${h[i]!}: ${h[i + 1]!}\r\n`;
  if (bodyLen < 0) s += 'Transfer-Encoding: chunked\r\n';
  else if (bodyLen > 0 || method === 'POST' || method === 'PUT' || method === 'PATCH') s += `Content-Length: ${bodyLen}\r\n`;
  return `${s}\r\n`;
}

/** A whole request body as one chunk, then the last chunk with trailer fields. */
function chunkWithTrailers(body: Buffer | null, trailers: string[]): Buffer {
  const n = body?.length ?? 0;
  const t = Buffer.from(`0\r\n${trailerLines(trailers)}\r\n`, 'latin1');
  return n === 0 ? t : Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), body!, Buffer.from('\r\n'), t]);
}

/** A request body too large to buffer: what was read so far, and the rest still arriving. */
export interface StreamedBody {
  head: Buffer[];
  rest: import('node:stream').Readable;
  /** Content-Length, or -1 for chunked. */
  length: number;
  total: number;
}

const texts = (status: number, msg: string): FixedResponse => new FixedResponse(status, { 'Content-Type': 'text/plain' }, `${msg}\n`);
const R404 = texts(404, 'no route');
const R500_NO_BACKEND = texts(500, 'no backend');
const R413 = texts(413, 'request body too large');
const R403 = texts(403, 'denied by policy');
const R400_TARGET = texts(400, 'invalid request target or host');

export class Proxy {
  readonly router: Router;
  readonly clusters = new Map<string, Cluster>();
  readonly stats: ProxyStats;
  private readonly clock: Clock;
  private readonly rng: Prng;
  private readonly maxBodyBytes: number;
  private readonly retryBufferBytes: number;
  private readonly defaultTimeoutMs: number;
  private readonly scheme: 'http' | 'https';
  private readonly listenerPort: number | null;
  private readonly onLog: ((e: AccessLogEntry, req: ServerRequest) => void) | null;
  private readonly policy: PolicyHook | null;
  private readonly escapedSlashes: EscapedSlashAction;
  /** @internal The one wheel for request, per-try and backoff timers, on this proxy's clock. */
  readonly timers: TimerDriver;
  /** @internal */ readonly tunnels: Tunnels;
  private readonly upgradeTypes: ReadonlySet<string>;

  constructor(opts: ProxyOptions) {
    this.router = new Router(opts.routes);
    for (const c of opts.clusters) this.clusters.set(c.name, c);
    this.clock = opts.clock ?? turnClock;
    this.rng = opts.rng ?? new Prng((Math.random() * 2 ** 32) >>> 0);
    this.maxBodyBytes = opts.maxBodyBytes ?? Infinity;
    this.retryBufferBytes = opts.retryBufferBytes ?? 64 * 1024;
    this.defaultTimeoutMs = opts.defaultRequestTimeoutMs ?? 15_000;
    this.scheme = opts.scheme ?? 'http';
    this.listenerPort = opts.listenerPort ?? null;
    this.onLog = opts.onLog ?? null;
    this.policy = opts.policy ?? null;
    this.escapedSlashes = opts.escapedSlashes ?? DEFAULT_ESCAPED_SLASH_ACTION;
    this.timers = new TimerDriver(this.clock, 1);
    this.upgradeTypes = new Set((opts.upgradeTypes ?? DEFAULT_UPGRADE_TYPES).map((t) => t.toLowerCase()));
    this.tunnels = new Tunnels(this.timers, opts.tunnelIdleTimeoutMs ?? DEFAULT_TUNNEL_IDLE_MS);
    this.stats = { requests: 0, denied: 0, noRoute: 0, redirects: 0, mirrored: 0, retries: 0, failures: {}, badTarget: 0, tunnels: this.tunnels.stats };
  }

  /** Whether an upgrade request tunnels (its protocols are all allowed); the rest are plain requests. */
  readonly shouldUpgrade = (req: ServerRequest): boolean => upgradeAllowed(this.upgradeTypes, req);

  /** HttpServer options that send this proxy's upgrade requests through `handler` (default this.handler) as tunnels. */
  upgradeServerOptions(handler: Handler = this.handler): Pick<HttpServerOptions, 'onUpgrade' | 'shouldUpgrade'> {
    return { onUpgrade: upgradeVia(handler), shouldUpgrade: (req) => this.shouldUpgrade(req) };
  }

  /** The server handler. */
  readonly handler: Handler = (req, res) => { this.handle(req, res); };

  private fail(reason: string): void { this.stats.failures[reason] = (this.stats.failures[reason] ?? 0) + 1; }

  private log(c: CanonicalRequest, status: number, cluster: string | null, host: Host | null, tries: number, reason: string | null, tunnel?: AccessLogEntry['tunnel']): void {
    if (this.onLog === null) return;
    const req = c.req as ServerRequest;
    this.onLog({ method: req.method, url: c.error === null ? c.target : req.url, authority: c.authority, status, cluster, host: host?.id ?? null, tries, reason, client: req.remoteAddress, ...(tunnel ? { tunnel } : {}) }, req);
  }

  private handle(req: ServerRequest, res: ServerResponse): void {
    this.stats.requests++;
    // One view of the target for everything below: policy, routes, filters, log, flows, upstream.
    const c = canonicalRequest(req, this.scheme, this.escapedSlashes);
    if (c.error !== null) { this.stats.badTarget++; this.fail(c.error); this.log(c, 400, null, null, 0, c.error); res.sendFixed(R400_TARGET); return; }
    if (c.redirect) {
      // UNESCAPE_AND_REDIRECT: the client asks again for the unambiguous path (Envoy answers 307 too).
      this.stats.redirects++;
      res.statusCode = 307;
      res.setHeader('Location', c.target);
      this.log(c, 307, null, null, 0, 'escaped_slash_redirect');
      res.end();
      return;
    }
    if (this.policy !== null && !this.policy(req, c)) { this.stats.denied++; this.log(c, 403, null, null, 0, 'policy_denied'); res.sendFixed(R403); return; }
    const m = this.router.match(c);
    if (m === null) { this.stats.noRoute++; this.log(c, 404, null, null, 0, 'no_route'); res.sendFixed(R404); return; }
    const rule = m.rule;
    // Filters that edit headers work on a copy; without them the received list is read as is.
    const headers = rule.filters !== undefined && rule.filters.length > 0 || refsHaveFilters(rule) ? req.rawHeaders.slice() : req.rawHeaders;
    let path = c.path;
    const query = c.query;
    let hostHeader = c.authority;
    let respFilters: HTTPHeaderFilter[] | null = null;
    const mirrors: string[] = [];
    for (const f of rule.filters ?? []) {
      switch (f.type) {
        case 'RequestHeaderModifier': applyHeaderFilter(headers, f.requestHeaderModifier); break;
        case 'ResponseHeaderModifier': (respFilters ??= []).push(f.responseHeaderModifier); break;
        case 'URLRewrite':
          if (f.urlRewrite.hostname) hostHeader = f.urlRewrite.hostname;
          if (f.urlRewrite.path) path = modifyPath(path, f.urlRewrite.path, m.matchedPrefix);
          break;
        case 'RequestRedirect': {
          const r = redirectTarget({ scheme: this.scheme, host: c.host, port: this.listenerPort, path: c.path, query }, f.requestRedirect, m.matchedPrefix);
          this.stats.redirects++;
          res.statusCode = r.status;
          res.setHeader('Location', r.location);
          this.log(c, r.status, null, null, 0, 'redirect');
          res.end();
          return;
        }
        case 'RequestMirror': {
          const pct = f.requestMirror.percent ?? 100;
          if (pct >= 100 || this.rng.float() * 100 < pct) mirrors.push(f.requestMirror.backendRef.name);
          break;
        }
      }
    }
    const refs = rule.backendRefs ?? [];
    const ref = pickBackend(refs, this.rng.float());
    const cluster = ref === null ? undefined : this.clusters.get(ref.name);
    if (cluster === undefined) { this.fail('no_backend'); this.log(c, 500, ref?.name ?? null, null, 0, 'no_backend'); res.sendFixed(R500_NO_BACKEND); return; }
    if (ref!.filters) {
      for (const f of ref!.filters) {
        if (f.type === 'RequestHeaderModifier') applyHeaderFilter(headers, f.requestHeaderModifier);
        else if (f.type === 'ResponseHeaderModifier') (respFilters ??= []).push(f.responseHeaderModifier);
      }
    }
    const fwd = forwardRequestHeaders(headers, hostHeader, req.remoteAddress, this.scheme, c.authority);
    // An upgrade keeps what forwarding strips as hop-by-hop: the offer and the option naming it (RFC 9110 §7.8).
    const upgrade = res instanceof UpgradeResponse;
    if (upgrade) fwd.push('connection', 'upgrade', 'upgrade', req.headers['upgrade']!);
    const upstreamTarget = path === c.path ? c.target : query.length > 0 ? `${path}?${query}` : path;
    const deadline = this.clock.now() + (ruleTimeout(rule) ?? this.defaultTimeoutMs);
    const perTry = rule.timeouts?.backendRequest ?? cluster.retry.perTryTimeoutMs;

    const go = (body: Buffer | null, streamed: StreamedBody | null): void => {
      // A chunked request's trailers go on with it (RFC 9112 §7.1.2): a buffered body is then re-chunked around them.
      const trailers = req.chunked && streamed === null ? forwardTrailers(req.rawTrailers, req.rawHeaders) : null;
      const rechunk = trailers !== null && trailers.length > 0;
      if (rechunk) body = chunkWithTrailers(body, trailers);
      if (req.chunked && (rechunk || streamed !== null)) { const t = forwardTrailerAnnouncement(req.rawHeaders); if (t !== null) fwd.push('trailer', t); }
      const head = serializeHead(req.method, upstreamTarget, fwd, streamed !== null ? streamed.length : rechunk ? -1 : body?.length ?? 0);
      if (streamed === null && !upgrade) for (const name of mirrors) this.mirror(name, req.method, head, body);
      new Forward(this, cluster, c, req, res, head, body, streamed, deadline, perTry, respFilters).start();
    };
    if (!req.hasBody) { go(null, null); return; }
    if (req.contentLength > this.maxBodyBytes) { this.tooLarge(c, res, cluster.name); return; }
    const parts: Buffer[] = [];
    let n = 0;
    let streaming = false;
    const body = req.body;
    const onData = (chunk: Buffer): void => {
      n += chunk.length;
      if (n > this.maxBodyBytes) { body.destroy(); this.tooLarge(c, res, cluster.name); return; }
      parts.push(chunk);
      if (n > this.retryBufferBytes) {
        // Too large to replay: hand what we have and the rest of the stream to one try.
        streaming = true;
        body.off('data', onData);
        body.off('end', onEnd);
        body.pause();
        go(null, { head: parts, rest: body, length: req.chunked ? -1 : req.contentLength, total: n });
      }
    };
    const onEnd = (): void => { if (!streaming) go(parts.length === 1 ? parts[0]! : Buffer.concat(parts, n), null); };
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', () => { /* the client went away; nothing to forward */ });
  }

  private tooLarge(c: CanonicalRequest, res: ServerResponse, cluster: string): void {
    if (res.headersSent) return;
    this.fail('body_too_large');
    this.log(c, 413, cluster, null, 0, 'body_too_large');
    res.sendFixed(R413);
  }

  /** Fire-and-forget copy of the request; the response is read and dropped. */
  private mirror(clusterName: string, method: string, head: string, body: Buffer | null): void {
    const c = this.clusters.get(clusterName);
    if (c === undefined) return;
    const host = c.pick(null, this.clock.now());
    if (host === null) return;
    this.stats.mirrored++;
    const pool = c.pool(host);
    pool.acquire().then((conn) => {
      conn.send(method, head, body, { onHead() {}, onBody: () => true, onEnd() {}, onError() {} });
    }, () => { /* mirror failures never affect the request */ });
  }

  /** @internal */ noteRetry(): void { this.stats.retries++; }
  /** @internal */ noteFailure(reason: string): void { this.fail(reason); }
  /** @internal */ logFor(c: CanonicalRequest, status: number, cluster: string, host: Host | null, tries: number, reason: string | null, tunnel?: AccessLogEntry['tunnel']): void { this.log(c, status, cluster, host, tries, reason, tunnel); }
  /** @internal */ now(): number { return this.clock.now(); }
  /** @internal */ random(): Prng { return this.rng; }

  /** @internal A Forward's 101: the exchange becomes a tunnel; `onEnd` releases what the try held. */
  openTunnel(res: UpgradeResponse, upstream: L7Socket, head: string, upstreamEarly: Buffer, onEnd: (end: TunnelEnd, toUpstream: number, toClient: number) => void): void {
    this.tunnels.open({ res, upstream, head, upstreamEarly, onEnd });
  }

  close(): void {
    this.tunnels.closeAll();
    for (const c of this.clusters.values()) c.close();
    this.timers.stop();
  }
}

function ruleTimeout(rule: HTTPRouteRule): number | undefined {
  const t = rule.timeouts?.request;
  return t === undefined || t === 0 ? undefined : t;
}

/** Where a retried response's body goes. */
const DISCARD: UpstreamExchange = { onHead() {}, onBody: () => true, onEnd() {}, onError() {} };

const STATUS_FOR: Record<string, number> = { 'connect-failure': 503, reset: 502, protocol: 502, timeout: 504, overflow: 503 };

/** One proxied request: its tries, its timers and the response stream. */
class Forward implements UpstreamExchange {
  private tries = 0;
  private retries = 0;
  private host: Host | null = null;
  /** The host of the previous try, which a retry avoids. */
  private lastHost: Host | null = null;
  private conn: UpstreamConnection | null = null;
  // Timers on the proxy's one wheel (no setTimeout per request); armed and re-armed, never reallocated.
  // The per-try and backoff timers are made when first armed (most requests have neither).
  private readonly totalTimer = new Timer(() => this.onTimeout(true));
  private tryTimer: Timer | null = null;
  private backoffTimer: Timer | null = null;
  private done = false;
  private retryPending = false;
  private holdingRequest = false;
  private holdingRetry = false;
  private streaming = false;
  /** A streamed request body has started to flow: no retry can replay it. */
  private bodyStarted = false;
  /** The response's header section, for its trailers' Connection options. */
  private upstreamHeaders: string[] = [];

  constructor(
    private readonly proxy: Proxy,
    private readonly cluster: Cluster,
    private readonly canon: CanonicalRequest,
    private readonly req: ServerRequest,
    private readonly res: ServerResponse,
    private readonly head: string,
    private readonly body: Buffer | null,
    private readonly streamed: StreamedBody | null,
    private readonly deadline: number,
    private readonly perTryMs: number,
    private readonly respFilters: HTTPHeaderFilter[] | null,
  ) {}

  start(): void {
    if (!this.cluster.breakers.tryRequest()) { this.finishError('overflow', 503); return; }
    this.holdingRequest = true;
    const left = this.deadline - this.proxy.now();
    this.proxy.timers.arm(this.totalTimer, this.proxy.now() + Math.max(0, left));
    this.res._onClose = this.onClientGone;
    this.attempt();
  }

  private attempt(): void {
    if (this.done) return;
    this.tries++;
    const now = this.proxy.now();
    const key = this.cluster.hashPolicy.length > 0 ? this.cluster.hashKey((n) => this.req.header(n), this.req.remoteAddress) : null;
    let host = this.cluster.pick(key, now);
    // A retry avoids the host that just failed when another is available
    // (Envoy's previous_hosts retry predicate, up to 3 re-picks).
    for (let i = 0; i < 3 && host !== null && host === this.lastHost && this.cluster.set.available.length > 1; i++) host = this.cluster.pick(key, now);
    if (host === null) { this.finishError('no_healthy_host', 503); return; }
    this.host = host;
    this.lastHost = host;
    host.active++;
    host.requests++;
    if (this.perTryMs > 0) this.proxy.timers.arm(this.tryTimer ??= new Timer(() => this.onTimeout(false)), now + this.perTryMs);
    const pool = this.cluster.pool(host);
    const upgrade = this.res instanceof UpgradeResponse;
    // A warm pool answers at once: no promise, and the request leaves in this turn.
    const idle = upgrade ? null : pool.takeIdle();
    if (idle !== null) { this.use(idle, host); return; }
    (upgrade ? pool.dedicated() : pool.acquire()).then((conn) => this.use(conn, host),
      (e: UpstreamError) => this.onError(e instanceof UpstreamError ? e : new UpstreamError('connect-failure', String(e)), false));
  }

  /** Sends this try on conn, unless the request ended or moved on while conn was being found. */
  private use(conn: UpstreamConnection, host: Host): void {
    if (this.done || this.host !== host) { this.cluster.pool(host).release(conn); return; }
    this.conn = conn;
    if (this.streamed === null) { conn.send(this.req.method, this.head, this.body, this); return; }
    // The body goes out as it arrives: this try is the only one.
    this.bodyStarted = true;
    conn.send(this.req.method, this.head, null, this);
    this.pumpBody(conn, this.streamed);
  }

  /** Streams the request body to conn with backpressure both ways; chunked when the length is unknown. */
  private pumpBody(conn: UpstreamConnection, b: StreamedBody): void {
    const chunked = b.length < 0;
    const write = (c: Buffer): boolean => conn.writeBody(c, chunked);
    conn.bodyOpen = true;
    for (const c of b.head) write(c);
    const rest = b.rest;
    conn.onWritable = () => { rest.resume(); };
    rest.on('data', (c: Buffer) => { if (!write(c)) rest.pause(); });
    rest.once('end', () => { conn.onWritable = null; conn.endBody(chunked, chunked ? trailerLines(forwardTrailers(this.req.rawTrailers, this.req.rawHeaders)) : ''); });
    rest.once('error', () => { conn.onWritable = null; conn.abort(); });
    rest.resume();
  }

  private endTry(): void {
    if (this.tryTimer !== null) this.proxy.timers.cancel(this.tryTimer);
    if (this.host !== null) { this.host.active--; }
  }

  /** Retry if policy, budget and time allow; returns false when the caller must answer now. */
  private maybeRetry(kind: string): boolean {
    const p = this.cluster.retry;
    const allowed = kind === 'connect-failure' ? p.connectFailure : kind === 'reset' ? p.reset : kind === 'timeout' ? true : kind.startsWith('status') ? true : false;
    if (!allowed) return false;
    if (this.bodyStarted) return false;
    if (this.retries >= p.numRetries) { this.proxy.noteFailure('retries_exhausted'); return false; }
    const now = this.proxy.now();
    if (now >= this.deadline) return false;
    if (!this.cluster.breakers.tryRetry()) { this.proxy.noteFailure('retry_budget_exhausted'); return false; }
    if (this.holdingRetry) this.cluster.breakers.releaseRetry();
    this.holdingRetry = true;
    this.retries++;
    this.proxy.noteRetry();
    const wait = Math.min(retryBackoff(this.retries, this.proxy.random(), p.backoff.baseMs, p.backoff.maxMs), Math.max(0, this.deadline - now));
    this.retryPending = true;
    this.proxy.timers.arm(this.backoffTimer ??= new Timer(() => { this.retryPending = false; this.attempt(); }), now + wait);
    return true;
  }

  // ---- upstream events -----------------------------------------------------

  onHead(status: number, raw: string[], _keepAlive: boolean): void {
    if (this.done) return;
    this.upstreamHeaders = raw;
    const host = this.host!;
    this.cluster.report(host, status, this.proxy.now());
    if (this.cluster.retry.statusCodes.includes(status) && this.maybeRetryStatus(status)) {
      // Read and drop this response's body; the connection goes back to the pool at its end.
      this.conn?.setExchange(DISCARD);
      this.conn = null;
      return;
    }
    if (this.tryTimer !== null) this.proxy.timers.cancel(this.tryTimer);
    const res = this.res;
    res.statusCode = status;
    if (this.respFilters === null) {
      // The common case: one pass, names and values already validated by our parser.
      // Our parser hands names lowercased (src/l7/http1/names.ts), so they compare as they are.
      let cl: string | undefined, te = false;
      for (let i = 0; i < raw.length; i += 2) {
        const n = raw[i]!;
        if (n === 'content-length') cl = raw[i + 1];
        else if (n === 'transfer-encoding') te = true;
      }
      forwardResponseHeaders(raw, res);
      if (cl !== undefined && !te) res._addTrusted('content-length', cl);
      else if (te) { const t = forwardTrailerAnnouncement(raw); if (t !== null) res._addTrusted('trailer', t); }
    } else {
      const h = raw.slice();
      stripHopByHop(h);
      for (const f of this.respFilters) applyHeaderFilter(h, f);
      const cl = headerGet(raw, 'content-length');
      try {
        for (let i = 0; i < h.length; i += 2) res.addHeader(h[i]!, h[i + 1]!);
        if (cl !== undefined && headerGet(raw, 'transfer-encoding') === undefined) res.setHeader('Content-Length', cl);
        else if (headerGet(raw, 'transfer-encoding') !== undefined) { const t = forwardTrailerAnnouncement(raw); if (t !== null) res.setHeader('Trailer', t); }
      } catch {
        this.onError(new UpstreamError('protocol', 'invalid header in a response filter'), false);
        return;
      }
    }
    this.streaming = true;
    res._onDrain = this.onDrain;
  }

  /** The upstream switched protocols on the dedicated connection of an upgrade: the exchange becomes a tunnel (tunnel.ts). */
  onUpgrade(raw: string[], socket: L7Socket, early: Buffer): void {
    if (this.done) { socket.destroy(); return; }
    this.conn = null;
    const issue = switchIssue(this.req.headers['upgrade'], headerGet(raw, 'upgrade'));
    if (issue !== null) { socket.destroy(); this.onError(new UpstreamError('protocol', `${this.host!.id}: ${issue}`), false); return; }
    const host = this.host!;
    this.cluster.report(host, 101, this.proxy.now());
    // The request's timers and breakers end here; the host stays busy (least_request) until the tunnel ends.
    this.done = true;
    this.release();
    const h = raw.slice();
    stripHopByHop(h);
    if (this.respFilters !== null) for (const f of this.respFilters) applyHeaderFilter(h, f);
    const tries = this.tries;
    this.proxy.openTunnel(this.res as UpgradeResponse, socket, switchHead(h, headerGet(raw, 'upgrade')!), early, (end, toUpstream, toClient) => {
      host.active--;
      this.proxy.logFor(this.canon, 101, this.cluster.name, host, tries, end, { bytesToUpstream: toUpstream, bytesToClient: toClient });
    });
  }

  private maybeRetryStatus(status: number): boolean {
    const ok = this.maybeRetry(`status-${status}`);
    if (ok) this.endTry();
    return ok;
  }

  private readonly onDrain = (): void => { this.conn?.resume(); };

  onBody(chunk: Buffer): boolean {
    if (this.done) return true;
    return this.res.write(chunk);
  }

  onEnd(trailers: string[] | null): void {
    if (this.done) return;
    this.endTry();
    this.conn = null;
    this.res._onDrain = null;
    // Sent only if the response goes out chunked, as it does whenever the upstream's was (RFC 9112 §7.1.2).
    if (trailers !== null) { const t = forwardTrailers(trailers, this.upstreamHeaders); if (t.length > 0) this.res.addTrailers(t); }
    // Log before ending: observers (flow records) are built when the response finishes.
    this.finish(this.res.statusCode, null);
    this.res.end();
  }

  onError(err: UpstreamError, responseStarted: boolean): void {
    if (this.done) return;
    const host = this.host;
    this.endTry();
    this.conn = null;
    if (host !== null && err.kind !== 'overflow') this.cluster.report(host, 0, this.proxy.now());
    if (responseStarted || this.streaming) {
      // Too late to answer with an error: cut the client's response short.
      this.proxy.noteFailure(err.kind);
      this.done = true;
      this.release();
      this.abortClient(err);
      return;
    }
    if (this.maybeRetry(err.kind)) return;
    this.finishError(err.kind === 'connect-failure' ? 'connect_failure' : err.kind, STATUS_FOR[err.kind] ?? 502);
  }

  private onTimeout(total: boolean): void {
    if (this.done) return;
    if (total) {
      this.conn?.abort();
      this.conn = null;
      if (this.streaming) { this.done = true; this.release(); this.abortClient(new UpstreamError('timeout', 'request timeout')); this.proxy.noteFailure('timeout'); return; }
      this.endTryIfActive();
      this.finishError('timeout', 504);
      return;
    }
    // Per-try timeout: this try is abandoned and counts as a failure of the host.
    if (this.streaming) return; // the response has started: only the request timeout applies now
    const c = this.conn;
    this.conn = null;
    c?.abort();
    const host = this.host;
    if (host !== null) { host.active--; this.cluster.report(host, 0, this.proxy.now()); this.host = null; }
    if (this.retryPending || this.maybeRetry('timeout')) return;
    this.finishError('timeout', 504);
  }

  private endTryIfActive(): void {
    if (this.tryTimer !== null) this.proxy.timers.cancel(this.tryTimer);
    if (this.host !== null) { this.host.active--; this.host = null; }
  }

  private readonly onClientGone = (): void => {
    if (this.done) return;
    this.done = true;
    this.conn?.abort();
    this.conn = null;
    this.endTryIfActive();
    this.release();
  };

  /** The response cannot be completed: the client's connection is reset so it cannot mistake it for whole. */
  private abortClient(err: Error): void {
    this.res.destroy(err);
  }

  private finishError(reason: string, status: number): void {
    if (this.done) return;
    this.done = true;
    this.proxy.noteFailure(reason);
    this.release();
    this.proxy.logFor(this.canon, status, this.cluster.name, this.host, this.tries, reason);
    if (!this.res.headersSent) {
      this.res.statusCode = status;
      this.res.setHeader('Content-Type', 'text/plain');
      this.res.setHeader('X-Strata-Failure', reason);
      this.res.end(`${reason.replace(/_/g, ' ')}\n`);
    }
  }

  private finish(status: number, reason: string | null): void {
    this.done = true;
    this.release();
    this.proxy.logFor(this.canon, status, this.cluster.name, this.host, this.tries, reason);
  }

  private release(): void {
    this.proxy.timers.cancel(this.totalTimer);
    if (this.backoffTimer !== null) this.proxy.timers.cancel(this.backoffTimer);
    if (this.tryTimer !== null) this.proxy.timers.cancel(this.tryTimer);
    if (this.holdingRetry) { this.cluster.breakers.releaseRetry(); this.holdingRetry = false; }
    if (this.holdingRequest) { this.cluster.breakers.releaseRequest(); this.holdingRequest = false; }
  }
}

export { headerRemove };
