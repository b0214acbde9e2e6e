// Upstream HTTP/1.1 connections and the per-host pool that keeps them alive.
//
// An UpstreamConnection carries one exchange at a time (no upstream
// pipelining: a failed pipelined request cannot be told apart from the ones
// behind it, so retries would be unsafe). Responses are parsed by the
// project's parser in response mode; the body is handed to the exchange
// chunk by chunk and the socket pauses when the exchange says so
// (downstream backpressure reaches the upstream's TCP window).
//
// The pool keeps idle connections per host (LIFO, so a few stay warm and the
// rest age out), opens new ones within the cluster's max_connections
// breaker, and queues waiters within max_pending_requests.
//
// A dedicated connection (an Upgrade request, tunnel.ts) is opened for one
// exchange and never pooled: on a 101 the socket leaves HTTP and goes to the
// exchange's onUpgrade with the bytes read past the 101 head, still counted
// against max_connections until it closes. Response trailers (RFC 9112
// §7.1.2) reach the exchange with onEnd.
import { Http1Parser, type Http1Handler } from '../http1/parser.js';
import { Cb, Errno, Method, ParserType } from '../http1/constants.js';
import { headerName, latin1Cached, latin1Of } from '../http1/names.js';
import { StrataError } from '../../util/errors.js';
import type { L7Socket, L7Transport } from '../transport/types.js';
import { attachBytes, type ByteConn } from '../transport/bytes.js';
import type { Host } from './hosts.js';
import type { CircuitBreakers } from './breakers.js';
import { turnClock, type Clock } from '../../util/clock.js';

/** Why an upstream try failed before a usable response arrived. */
export type UpstreamFailure = 'connect-failure' | 'reset' | 'timeout' | 'overflow' | 'protocol';

export class UpstreamError extends StrataError {
  constructor(readonly kind: UpstreamFailure, message: string, options?: { cause?: unknown }) {
    super(`ERR_STRATA_UPSTREAM_${kind.toUpperCase().replace('-', '_')}`, message, options);
  }
}

/** What the proxy supplies for one upstream try. */
export interface UpstreamExchange {
  onHead(status: number, rawHeaders: string[], keepAlive: boolean): void;
  /** Return false to pause the upstream socket until resume(). */
  onBody(chunk: Buffer): boolean;
  /** The response is complete; its trailer fields (flat, names lowercased), if a chunked body had any. */
  onEnd(trailers: string[] | null): void;
  onError(err: UpstreamError, responseStarted: boolean): void;
  /** A dedicated connection's 101 (RFC 9110 §15.2.2): the socket (paused) and the bytes after the head are the exchange's. */
  onUpgrade?(rawHeaders: string[], socket: L7Socket, rest: Buffer): void;
}


export class UpstreamConnection implements Http1Handler {
  private readonly parser = new Http1Parser(ParserType.RESPONSE, this);
  private ex: UpstreamExchange | null = null;
  private raw: string[] = [];
  private trailers: string[] | null = null;
  private started = false;
  /** Requests completed on this connection (0: fresh). */
  uses = 0;
  dead = false;
  /** A streamed request body is still being written: the connection cannot be reused before it ends. */
  bodyOpen = false;
  /** When it last went idle in the pool (ms, monotonic). */
  idleSince = 0;
  /** In the pool's idle list now (a second release must not list it twice). */
  pooled = false;
  /** The parser stopped at the end of a final response; onData decides the connection's fate from what follows. */
  private completed = false;
  private keepAlive = false;
  /** Opened for one exchange that may switch protocols: never returned to the pool. */
  dedicated = false;
  /** The socket's bytes (src/l7/transport/bytes.ts); all reads and writes go through it. */
  private readonly io: ByteConn;
  /** Called when a streamed request body may be written again after writeBody() returned false. */
  onWritable: (() => void) | null = null;

  constructor(readonly socket: L7Socket, readonly pool: HostPool) {
    this.io = attachBytes(socket, { onData: this.onData, onEnd: this.onEndOfStream, onError: this.onSocketError, onClose: this.onClose, onDrain: this.onDrain });
  }

  /** Sends a request; the exchange hears the outcome. */
  send(method: string, head: string, body: Buffer | null, ex: UpstreamExchange): void {
    this.ex = ex;
    this.started = false;
    this.raw = [];
    // A previous exchange may have paused reading for downstream backpressure.
    this.io.resume();
    const m = (Method as Record<string, number>)[method];
    this.parser.expectResponseTo(m ?? Method.GET);
    if (body !== null && body.length > 0) {
      this.io.cork();
      this.io.write(head);
      this.io.write(body);
      this.io.uncork();
    } else this.io.write(head);
  }

  resume(): void { if (!this.dead) this.io.resume(); }

  /** Writes a piece of a streamed request body (chunk-framed when chunked); false: wait for onWritable. */
  writeBody(c: Buffer, chunked: boolean): boolean {
    if (this.dead || c.length === 0) return !this.dead;
    if (!chunked) return this.io.write(c);
    this.io.cork();
    this.io.write(`${c.length.toString(16)}\r\n`);
    this.io.write(c);
    const ok = this.io.write('\r\n');
    this.io.uncork();
    return ok;
  }

  /** Ends a streamed request body; `trailerLines` (serialized field lines) go in the last chunk (RFC 9112 §7.1.2). */
  endBody(chunked: boolean, trailerLines = ''): void {
    this.bodyOpen = false;
    if (!this.dead && chunked) this.io.write(`0\r\n${trailerLines}\r\n`);
  }

  /** Hands the rest of the current response to another sink (e.g. to drain a response being retried). */
  setExchange(ex: UpstreamExchange): void { this.ex = ex; this.io.resume(); }

  /** Abandons the exchange (timeout, client gone): the connection cannot be reused. */
  abort(): void {
    this.ex = null;
    this.destroy();
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    this.io.destroy();
  }

  // ---- parser events -------------------------------------------------------
  onMessageBegin(): void { this.raw = []; this.trailers = null; }
  onHeader(n: Uint8Array, ns: number, ne: number, v: Uint8Array, vs: number, ve: number): void {
    this.raw.push(headerName(n, ns, ne), latin1Cached(v, vs, ve));
  }
  onTrailer(n: Uint8Array, ns: number, ne: number, v: Uint8Array, vs: number, ve: number): void {
    (this.trailers ??= []).push(headerName(n, ns, ne), latin1Of(v, vs, ve));
  }
  onHeadersComplete(): void {
    const st = this.parser.statusCode;
    if (st >= 100 && st < 200) return; // interim: the final response follows
    this.started = true;
    this.keepAlive = this.parser.keepAlive;
    this.ex?.onHead(st, this.raw, this.keepAlive);
  }
  onBody(b: Uint8Array, s: number, e: number): void {
    const ex = this.ex;
    if (ex === null) return;
    const chunk = Buffer.isBuffer(b) ? b.subarray(s, e) : Buffer.from(b.subarray(s, e));
    if (!ex.onBody(chunk)) this.io.pause();
  }
  onMessageComplete(): number {
    const st = this.parser.statusCode;
    if (st >= 100 && st < 200) return Cb.OK;
    // Stop here: whatever follows in this chunk answers no request of ours,
    // and must be seen before the connection goes back to the pool.
    this.completed = true;
    return Cb.PAUSE;
  }

  /**
   * The final response is whole: the connection goes back to the pool (or is
   * retired) before the exchange hears onEnd. extraBytes: the upstream sent
   * more after it with no request outstanding (a confused or hostile
   * upstream); parsing that as the next response would hand it to whoever
   * sends next on this connection, so it is never reused.
   */
  private complete(extraBytes: boolean): void {
    this.completed = false;
    const ex = this.ex;
    this.ex = null;
    this.uses++;
    if (extraBytes) this.pool.unsolicited++;
    const reusable = this.keepAlive && !this.dead && !this.bodyOpen && !extraBytes && !this.dedicated;
    if (reusable) this.pool.release(this);
    else this.pool.forget(this);
    ex?.onEnd(this.trailers);
    if (!reusable) this.destroy();
  }

  private readonly onData = (buf: Buffer): void => {
    if (this.ex === null) {
      // Bytes with no request outstanding: the upstream is confused; drop the connection.
      this.pool.unsolicited++;
      this.destroy();
      return;
    }
    const n = this.parser.feed(buf, 0, buf.length);
    if (this.completed) {
      this.parser.resume();
      this.complete(n < buf.length);
      return;
    }
    const e = this.parser.errno;
    if (e === Errno.PAUSED_UPGRADE && this.parser.statusCode === 101 && this.dedicated && this.ex?.onUpgrade !== undefined) {
      this.switchProtocols(buf.subarray(n));
      return;
    }
    if (e !== Errno.OK && e !== Errno.PAUSED) {
      const ex = this.ex;
      this.ex = null;
      this.destroy();
      ex?.onError(new UpstreamError('protocol', `bad response from ${this.pool.host.id}: ${this.parser.reason}`), this.started);
    }
  };

  private readonly onDrain = (): void => { this.onWritable?.(); };

  /** The 101 arrived: the socket leaves this connection for the exchange; the breaker slot is freed when it closes. */
  private switchProtocols(rest: Buffer): void {
    const ex = this.ex!;
    this.ex = null;
    this.io.pause();
    this.io.detach();
    this.socket.once('close', () => { this.dead = true; this.pool.forget(this); });
    // Copied: the transport may reuse its buffer once this call returns.
    ex.onUpgrade!(this.raw, this.socket, Buffer.from(rest));
  }

  private readonly onEndOfStream = (): void => {
    if (this.ex !== null) {
      this.parser.finish(); // completes a read-until-close body
      if (this.completed) { this.parser.resume(); this.complete(false); }
      if (this.ex !== null) {
        const ex = this.ex;
        this.ex = null;
        ex.onError(new UpstreamError('reset', `${this.pool.host.id} closed the connection`), this.started);
      }
    }
    this.destroy();
  };

  private readonly onSocketError = (e: Error): void => {
    const ex = this.ex;
    this.ex = null;
    this.destroy();
    ex?.onError(new UpstreamError('reset', `${this.pool.host.id}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { cause: e }), this.started);
  };

  private readonly onClose = (): void => {
    this.dead = true;
    this.pool.forget(this);
    const ex = this.ex;
    this.ex = null;
    ex?.onError(new UpstreamError('reset', `${this.pool.host.id} closed the connection`), this.started);
  };
}

export interface PoolOptions {
  maxIdle: number;
  connectTimeoutMs: number;
  /** Idle connections older than this are closed instead of reused (0: never). */
  idleTimeoutMs: number;
  /** Wraps a fresh socket (upstream mTLS); default none. */
  wrap?: ((s: L7Socket) => Promise<L7Socket>) | null;
  /** For idle ages (default turnClock, src/util/clock.ts). */
  clock?: Clock;
}

interface Waiter { resolve(c: UpstreamConnection): void; reject(e: Error): void; settled: boolean }

export class HostPool {
  private readonly idle: UpstreamConnection[] = [];
  private readonly all = new Set<UpstreamConnection>();
  private readonly waiters: Waiter[] = [];
  private closed = false;
  /** Connections dropped because the upstream sent bytes that answered no request. */
  unsolicited = 0;

  private readonly clock: Clock;

  constructor(readonly host: Host, private readonly transport: L7Transport, private readonly breakers: CircuitBreakers, private readonly opts: PoolOptions) {
    this.clock = opts.clock ?? turnClock;
  }

  get size(): number { return this.all.size; }
  get idleCount(): number { return this.idle.length; }

  /** A connection for one exchange: idle, new, or the next one released. */
  acquire(now = this.clock.now()): Promise<UpstreamConnection> {
    const c = this.takeIdle(now);
    if (c !== null) return Promise.resolve(c);
    if (this.breakers.canConnect()) return this.connect();
    this.breakers.noteConnectionOverflow();
    if (!this.breakers.tryPending()) return Promise.reject(new UpstreamError('overflow', `cluster pending requests overflow (${this.breakers.maxPendingRequests})`));
    return new Promise((resolve, reject) => { this.waiters.push({ resolve, reject, settled: false }); });
  }

  /**
   * An idle connection now, or null: the synchronous part of acquire(), so
   * the common case (a warm pool) costs no promise and no microtask, and the
   * request leaves in the same turn as the one that brought it.
   */
  takeIdle(now = this.clock.now()): UpstreamConnection | null {
    while (this.idle.length > 0) {
      const c = this.idle.pop()!;
      c.pooled = false;
      if (c.dead) continue;
      // Idle too long: the upstream may be about to close it; don't race it.
      if (this.opts.idleTimeoutMs > 0 && now - c.idleSince > this.opts.idleTimeoutMs) { this.forget(c); c.destroy(); continue; }
      return c;
    }
    return null;
  }

  /**
   * A fresh connection for one exchange that may switch protocols; never
   * pooled. Within max_connections, else an overflow (no waiting: a tunnel
   * would hold the slot it waited for indefinitely).
   */
  dedicated(): Promise<UpstreamConnection> {
    if (!this.breakers.canConnect()) {
      this.breakers.noteConnectionOverflow();
      return Promise.reject(new UpstreamError('overflow', `cluster connections overflow (${this.breakers.maxConnections})`));
    }
    return this.connect().then((c) => { c.dedicated = true; return c; });
  }

  private async connect(): Promise<UpstreamConnection> {
    this.breakers.connectionOpened();
    let sock: L7Socket;
    try {
      sock = await this.withConnectTimeout(this.transport.connect(this.host.port, this.host.address));
      if (this.opts.wrap) sock = await this.withConnectTimeout(this.opts.wrap(sock), sock);
    } catch (e) {
      this.breakers.connectionClosed();
      throw new UpstreamError('connect-failure', `connect ${this.host.id}: ${(e as Error).message}`, { cause: e });
    }
    const c = new UpstreamConnection(sock, this);
    this.all.add(c);
    return c;
  }

  /** The cluster's connect timeout over a connect (or TLS handshake); a late socket is destroyed. */
  private withConnectTimeout(p: Promise<L7Socket>, owned?: L7Socket): Promise<L7Socket> {
    const ms = this.opts.connectTimeoutMs;
    if (!(ms > 0)) return p;
    return new Promise((resolve, reject) => {
      let late = false;
      const t = setTimeout(() => { late = true; owned?.destroy(); reject(new Error(`timed out after ${ms} ms`)); }, ms);
      p.then((s) => { clearTimeout(t); if (late) s.destroy(); else resolve(s); }, (e: unknown) => { clearTimeout(t); if (!late) reject(e as Error); });
    });
  }

  /** A finished, reusable connection comes back. */
  release(c: UpstreamConnection): void {
    if (c.dead) { this.forget(c); return; }
    if (c.pooled) return; // already idle: listing it twice would lend it to two requests at once
    const w = this.waiters.shift();
    if (w !== undefined) { this.breakers.releasePending(); w.resolve(c); return; }
    if (this.closed || this.idle.length >= this.opts.maxIdle) { this.forget(c); c.destroy(); return; }
    c.idleSince = this.clock.now();
    c.pooled = true;
    this.idle.push(c);
  }

  /** A connection is gone (closed or not reusable). */
  forget(c: UpstreamConnection): void {
    if (!this.all.delete(c)) return;
    this.breakers.connectionClosed();
    const i = this.idle.indexOf(c);
    if (i >= 0) { this.idle.splice(i, 1); c.pooled = false; }
    // A slot freed up: a waiter may open a new connection.
    const w = this.waiters.shift();
    if (w !== undefined) {
      this.breakers.releasePending();
      this.connect().then(w.resolve, w.reject);
    }
  }

  close(): void {
    this.closed = true;
    for (const c of [...this.all]) c.destroy();
    for (const w of this.waiters.splice(0)) { this.breakers.releasePending(); w.reject(new UpstreamError('overflow', 'pool closed')); }
  }
}
