// HTTP/1.1 server over any L7 transport's sockets (RFC 9112).
//
// One Connection per socket drives the request decoder and keeps the
// exchanges in arrival order: pipelined requests are parsed ahead, each
// response is written straight to the socket when it is the oldest one and
// held back otherwise, so responses leave in request order (RFC 9112 §9.3.2).
//
// Backpressure runs both ways. A handler that reads the body slowly stops the
// socket from reading (and so fills the peer's TCP window). So does a client
// that is owed too much: after each request the connection checks how many
// responses it owes (maxPipelined, default 16) and how many response bytes
// the transport has not taken yet (outputHighWaterMark, default 64 KiB; the
// kernel's socket buffer or the stack's send ring is not counted). Past
// either, the decoder stops after that request, keeping the bytes after it,
// and the transport stops reading: node:net pauses the socket, the stack's
// direct mode leaves the bytes in the receive ring, and the client's TCP
// window closes. Reading resumes when the transport drains or responses
// leave. A client that pipelines without reading thus holds at most that
// much of the server's memory, plus the one read the decoder keeps (up to
// 64 KiB on node:net, up to the receive buffer on the stack); stalled with
// no response in progress it is timed by the keep-alive idle timeout, so a
// client that reads nothing for that long is closed. The responses to one
// read are written corked (one write per 16 KiB, not per response).
// res.write() returns the socket's write() result and 'drain' follows the
// socket's.
//
// Timeouts are one Timer per connection on one wheel: the header timeout runs
// from the first byte of a request head to its end (a fixed deadline, not
// reset per byte, so a slowloris client is cut off however slowly it
// trickles), the request timeout from that first byte to the end of the body,
// and the keep-alive idle timeout between requests.
//
// Malformed requests never reach the handler: the decoder's failure maps to
// 400 (including every request-smuggling shape the parser rejects and the
// Host rules of RFC 9112 §3.2, host.ts), 413, 431, 501 or 505, sent with
// Connection: close after the responses already owed; the reason is counted.
// A failure in a body the handler already has (bad chunk framing, a
// timeout) aborts the request (its body stream errors) and, when no byte of
// its response has gone out yet, is answered 400 (408) in the response's
// place; otherwise the connection is reset.
//
// Upgrade (RFC 9110 §7.8), opt-in as node:http's 'upgrade' event: with
// onUpgrade set, a bodiless request carrying Upgrade and the "upgrade"
// connection option (and accepted by shouldUpgrade) is not dispatched. Once
// every earlier pipelined response has left, the connection is handed over
// (upgrade.ts): the request, the socket (paused) and the bytes read past the
// request. From then on the server neither parses nor times it, and close()
// does not wait for or close it. CONNECT stays 501: a reverse proxy need not
// tunnel it (RFC 9110 §9.3.6 is for forward proxies) and Envoy rejects it
// unless configured to.
import type { Clock } from '../../util/clock.js';
import { turnClock, turnWallClock } from '../../util/clock.js';
import { Timer } from '../../stack/timers.js';
import type { L7Listener, L7Socket, L7Transport } from '../transport/types.js';
import { attachBytes, type ByteConn } from '../transport/bytes.js';
import type { DecoderFactory, DecoderLimits, DecodeFailure, DecoderSink, RequestDecoder, RequestHead } from './decoder.js';
import { DateCache } from './date.js';
import { TimerDriver } from './timers.js';
import { FixedResponse, ServerRequest, ServerResponse, HttpServerError, type ExchangeOwner } from './message.js';
import { statusLine } from './status.js';
import type { UpgradeHandler } from './upgrade.js';

export type Handler = (req: ServerRequest, res: ServerResponse) => void | Promise<void>;

export interface HttpServerOptions {
  /** Makes the request decoder; default: the project's HTTP/1.1 parser. */
  decoder?: DecoderFactory;
  /** From the first byte of a request to the end of its head (default 20 000 ms). */
  headersTimeoutMs?: number;
  /** From the first byte of a request to the end of its body (default 300 000 ms, as node:http). */
  requestTimeoutMs?: number;
  /** Keep-alive idle time between requests (default 5 000 ms, as node:http). */
  keepAliveTimeoutMs?: number;
  /** Requests on one connection before it is closed (default 0: unlimited). */
  maxRequestsPerSocket?: number;
  /** Requests owed a response (parsed, not yet wholly written) at which the connection stops reading (default 16, DEFAULT_MAX_PIPELINED). */
  maxPipelined?: number;
  /**
   * Response bytes written but not yet taken by the transport (node's
   * socket queue, the stack's queue beyond its send ring, plus responses
   * held back for pipelining order) above which the connection stops reading
   * requests; it reads again once the transport drains (default 64 KiB,
   * DEFAULT_OUTPUT_HIGH_WATER_MARK).
   */
  outputHighWaterMark?: number;
  /** Larger bodies get 413 (default Infinity). */
  maxBodySize?: number;
  /** Bytes of request line plus header section, and apart of the trailer section: larger gets 431 (default 16 KiB). */
  maxHeaderSize?: number;
  /** Header (and trailer) field lines per request: more gets 431 (default 100). */
  maxHeaders?: number;
  /** Monotonic clock for timeouts (default turnClock: performance.now() read once per task). */
  clock?: Clock;
  /** Wall clock for the Date header (default turnWallClock: read once per task). */
  wallClock?: Clock;
  /** Connections beyond this are closed on accept and counted (default Infinity). */
  maxConnections?: number;
  /** graceful close(): connections still busy after this are destroyed (default 30 000 ms). */
  closeTimeoutMs?: number;
  /** Handler errors are reported here (default: none; the exchange gets 500 or is reset). */
  onError?: (err: Error, req: ServerRequest | null) => void;
  /** Takes over connections whose request asks to switch protocols (default none: they stay in HTTP). */
  onUpgrade?: UpgradeHandler | null;
  /** With onUpgrade: which upgrade requests it gets; the others are served as plain HTTP (default all). */
  shouldUpgrade?: (req: ServerRequest) => boolean;
}

/** Why connections or requests were dropped: counters, never exceptions. */
export interface ServerStats {
  connections: number;
  /** Connections refused because maxConnections were open. */
  rejectedConnections: number;
  requests: number;
  parseErrors: Record<string, number>;
  headerTimeouts: number;
  requestTimeouts: number;
  idleTimeouts: number;
  handlerErrors: number;
  /** Connections handed to onUpgrade (no longer the server's). */
  upgrades: number;
  /** Times a connection stopped reading because the client was owed too much (maxPipelined, outputHighWaterMark). */
  readStalls: number;
}

/** Requests owed a response at which a connection stops reading (HttpServerOptions.maxPipelined). */
export const DEFAULT_MAX_PIPELINED = 16;
/** Unsent response bytes above which a connection stops reading (HttpServerOptions.outputHighWaterMark): 64 KiB. */
export const DEFAULT_OUTPUT_HIGH_WATER_MARK = 64 * 1024;

const enum Phase { IDLE, HEAD, BODY, WAIT }

const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
/** The request of the server's own error responses (no handler sees it). */
const ERROR_HEAD: RequestHead = { method: 'GET', url: '', versionMajor: 1, versionMinor: 1, rawHeaders: [], keepAlive: false, contentLength: 0, chunked: false, upgrade: false };

class Connection implements DecoderSink, ExchangeOwner {
  readonly decoder: RequestDecoder;
  readonly timer: Timer;
  readonly remoteAddress: string;
  readonly remotePort: number;
  private phase = Phase.IDLE;
  private headStart = 0;
  /** Exchanges in request order; [0] owns the socket's output. */
  private readonly queue: ServerResponse[] = [];
  /** Held output of exchanges that are not yet at the head of the queue. */
  private readonly held = new Map<ServerResponse, (Buffer | string)[]>();
  /** The exchange whose request is being received. */
  private current: ServerRequest | null = null;
  private currentRes: ServerResponse | null = null;
  private readPausedBody = false;
  /** The decoder is stopped and the transport paused: too much is owed to this client (owesTooMuch). */
  private stalled = false;
  /** The peer's FIN came while requests it sent before were kept unparsed: it is taken once they are served. */
  private endPending = false;
  /** The decoder failed (counted, answered): it is dead. */
  private decoderFailed = false;
  /** Bytes in `held`. */
  private heldBytes = 0;
  private requests = 0;
  /** No further requests are read (close requested, error, or server closing). */
  closing = false;
  private dead = false;
  private waitingDrain = false;
  /** An upgrade request taken for onUpgrade, and the bytes after it once it is complete. */
  private upgradeReq: ServerRequest | null = null;
  private upgradeRest: Buffer | null = null;

  /** The socket's bytes (src/l7/transport/bytes.ts): every read and write of this connection goes through it. */
  private readonly io: ByteConn;

  constructor(readonly server: HttpServer, readonly socket: L7Socket) {
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.decoder = server.decoderFactory(this, server.limits);
    this.timer = new Timer(this.onTimer);
    this.io = attachBytes(socket, { onData: this.onData, onEnd: this.onPeerEnd, onError: this.onSocketError, onClose: this.onClose, onDrain: this.onDrain });
    this.armIdle();
  }

  get idle(): boolean { return this.queue.length === 0 && this.phase === Phase.IDLE; }

  // ---- input ---------------------------------------------------------------

  private readonly onData = (buf: Buffer): void => {
    // Past an upgrade request every byte is the new protocol's, even those a resume lets in before the hand-over.
    if (this.upgradeRest !== null) { this.upgradeRest = Buffer.concat([this.upgradeRest, buf]); return; }
    if (this.dead || this.closing && this.current === null) return;
    if (!this.stalled && (this.phase === Phase.IDLE || this.phase === Phase.WAIT) && this.current === null) this.beginHead();
    // What handlers answer while one read is parsed (a pipeline) leaves joined: a write per JOIN_MAX bytes, not per response.
    this.io.cork();
    const fail = this.decoder.feed(buf);
    this.io.uncork();
    if (fail !== null) { this.reject(fail); return; }
    this.settle();
  };

  /** After the decoder ran: stop reading if it stopped, and arm the timer for what the connection now waits for. */
  private settle(): void {
    if (this.upgradeRest !== null) { this.takeoverWhenDue(); return; }
    if (this.decoder.stopped && !this.stalled) {
      this.stalled = true;
      this.server.stats.readStalls++;
      this.io.pause();
    }
    if (this.current !== null) return;
    // Stalled, the next requests wait in the decoder whole or in part: the
    // client is waited for (to read), as between requests, not timed as a
    // request head.
    if (!this.stalled && !this.decoder.idle) { if (this.phase !== Phase.HEAD) this.beginHead(); }
    else if (this.phase === Phase.WAIT && this.queue.length === 0 && !this.closing) this.armIdle();
  }

  /**
   * Whether the connection must stop taking requests: maxPipelined
   * responses owed, or more than outputHighWaterMark bytes of them not yet
   * taken by the transport. Checked once per request (onEnd), so a client
   * that pipelines and does not read holds at most that much of the
   * server's memory, plus one response and the read chunk in the decoder.
   */
  private owesTooMuch(): boolean {
    const s = this.server;
    // io.unsent, not waitingDrain: writes joined while corked report true, and their flush's false is the transport's own.
    return this.queue.length >= s.maxPipelined || this.io.unsent + this.heldBytes > s.outputHighWaterMark;
  }

  /** Takes requests again once the client read enough (drain) or responses left (completeHead). */
  private unstall(): void {
    if (!this.stalled || this.dead || this.owesTooMuch()) return;
    this.stalled = false;
    if (this.closing) { this.maybeResume(); return; } // nothing more is parsed: what the decoder kept is dropped with it
    if (!this.decoder.idle && (this.phase === Phase.IDLE || this.phase === Phase.WAIT) && this.current === null) this.beginHead();
    this.io.cork();
    const fail = this.decoder.resume();
    this.io.uncork();
    if (fail !== null) { this.reject(fail); return; }
    this.settle();
    if (this.stalled) return;
    if (this.endPending) { this.endPending = false; this.onPeerEnd(); return; }
    this.maybeResume();
  }

  private beginHead(): void {
    this.phase = Phase.HEAD;
    this.headStart = this.server.timers.now();
    this.server.timers.arm(this.timer, this.headStart + this.server.headersTimeoutMs);
  }

  onHead(head: RequestHead): void {
    if (this.phase !== Phase.HEAD) this.beginHead();
    this.server.stats.requests++;
    this.requests++;
    const req = new ServerRequest(head, this);
    // RFC 9110 §7.8: an Upgrade in an HTTP/1.0 request is ignored.
    if (head.upgrade && head.method !== 'CONNECT' && head.versionMinor >= 1 && !(head.chunked || head.contentLength > 0) && this.server.upgradeWanted(req)) {
      // Not dispatched: the request is complete and the connection leaves HTTP after it (onUpgrade below).
      this.upgradeReq = req;
      req._ended = true;
      this.closing = true;
      this.afterRequest();
      return;
    }
    const res = new ServerResponse(req, this);
    if (!head.keepAlive) res._close = true;
    const max = this.server.maxRequestsPerSocket;
    if (max > 0 && this.requests >= max) res._close = true;
    this.queue.push(res);
    const hasBody = head.chunked || head.contentLength > 0;
    if (hasBody) {
      this.current = req;
      this.currentRes = res;
      this.phase = Phase.BODY;
      this.server.timers.arm(this.timer, this.headStart + this.server.requestTimeoutMs);
    } else {
      req._ended = true;
      this.afterRequest();
    }
    if (res._close) this.closing = true; // nothing after a closing request is read
    const expect = req.header('expect');
    if (expect !== undefined) {
      if (expect.toLowerCase() === '100-continue' && head.versionMinor >= 1) {
        if (hasBody) req._expectContinue = true;
      } else {
        res._close = true;
        this.closing = true;
        this.fail(res, 417);
        return;
      }
    }
    if (head.upgrade && head.method === 'CONNECT') { res._close = true; this.closing = true; this.fail(res, 501); return; }
    if (hasBody && head.contentLength > this.server.maxBodySize) {
      res._close = true; this.closing = true;
      this.server.countParseError('BODY_TOO_LARGE');
      this.fail(res, 413);
      return;
    }
    this.server.dispatch(req, res);
  }

  onBody(chunk: Buffer): void {
    const req = this.current;
    if (req === null || req._discard) return;
    if (req._body !== null) {
      if (!req._body.push(chunk)) this.pauseForBody();
      return;
    }
    if (req._early === null) req._early = [];
    req._early.push(chunk);
    req._earlyBytes += chunk.length;
    if (req._earlyBytes >= 64 * 1024) this.pauseForBody();
  }

  onEnd(trailers: string[] | null): boolean {
    const req = this.current;
    if (req !== null) {
      if (trailers !== null) req.rawTrailers = trailers;
      req._ended = true;
      if (req._body !== null && !req._discard) req._body.push(null);
      this.current = null;
      this.currentRes = null;
      if (this.readPausedBody) { this.readPausedBody = false; this.maybeResume(); }
      this.afterRequest();
    }
    // The next request is parsed only while the client is not owed too much (an upgrade ends parsing anyway).
    return this.upgradeReq !== null || !this.owesTooMuch();
  }

  onUpgrade(rest: Buffer): boolean {
    if (this.upgradeReq === null) return false;
    this.upgradeRest = rest;
    this.io.pause();
    return true;
  }

  /** Hands the connection to onUpgrade once the responses owed before the upgrade have left (RFC 9112 §9.3.2 order). */
  private takeoverWhenDue(): void {
    if (this.queue.length === 0) process.nextTick(this.takeover);
  }

  private readonly takeover = (): void => {
    const req = this.upgradeReq, rest = this.upgradeRest;
    if (req === null || rest === null || this.dead || this.queue.length > 0) return;
    if (this.server.closingAll) { this.destroy(); return; }
    this.upgradeReq = null;
    this.upgradeRest = null;
    // dead: nothing of this Connection acts on the socket again (timers, uncork, close()).
    this.dead = true;
    this.server.timers.cancel(this.timer);
    if (this.corked) { this.corked = false; this.io.uncork(); }
    // The socket goes back to being a plain Duplex, paused, for the taker.
    this.io.detach();
    this.socket.pause();
    this.server.connectionUpgraded(this, req, rest);
  };

  /** The request is fully received: wait for the response, or for the next request. */
  private afterRequest(): void {
    this.phase = Phase.WAIT;
    this.server.timers.cancel(this.timer);
  }

  private pauseForBody(): void {
    if (!this.readPausedBody) { this.readPausedBody = true; this.io.pause(); }
  }

  private maybeResume(): void {
    if (!this.readPausedBody && !this.stalled && !this.dead) this.io.resume();
  }

  wantBody(req: ServerRequest): void {
    if (req._expectContinue && !req._continueSent && !req._ended) {
      req._continueSent = true;
      const res = this.queue.find((r) => r.req === req);
      if (res !== undefined && !res.headersSent) this.output(res, CONTINUE, false);
    }
    if (req === this.current && this.readPausedBody) { this.readPausedBody = false; this.maybeResume(); }
  }

  // ---- output --------------------------------------------------------------

  dateLine(): Buffer { return this.server.date.lineFor(this.server.wall.now()); }

  mustClose(res: ServerResponse): boolean {
    if (res._close) return true;
    if (this.server.closingAll) return true;
    // The handler answered without reading a body it never asked for with 100 Continue:
    // the client may or may not send it, so the connection cannot be reused.
    const req = res.req;
    if (req._expectContinue && !req._continueSent && !req._ended) return true;
    return false;
  }

  output(res: ServerResponse, chunk: Buffer | string, last: boolean): boolean {
    if (this.dead || res._cutOff) return false;
    res.wireBytes += chunk.length; // strings are latin1 on the wire: one byte per char
    let ok = true;
    if (this.queue[0] === res) {
      // Several pieces of one response in one tick (head, body, last chunk)
      // leave in one writev, as node:http does; a one-piece response
      // (sendFixed, end() of a bodiless one) is written directly, and so is
      // everything on a transport that coalesces by itself (the stack).
      if (!last && !this.corked && !this.io.coalesces) {
        this.corked = true;
        this.io.cork();
        process.nextTick(this.uncork);
      }
      if (chunk.length > 0) ok = this.io.write(chunk);
      if (!ok) this.waitingDrain = true;
    } else {
      let h = this.held.get(res);
      if (h === undefined) this.held.set(res, (h = []));
      if (chunk.length > 0) { h.push(chunk); this.heldBytes += chunk.length; }
      ok = h.length < 64 && this.heldBytes <= this.server.outputHighWaterMark;
    }
    if (last) {
      res._done = true;
      if (this.queue[0] === res) this.completeHead();
    }
    return ok;
  }

  /** The head exchange has written its last byte: retire it and flush the next ones. */
  private completeHead(): void {
    while (this.queue.length > 0 && this.queue[0]!._done) {
      const res = this.queue.shift()!;
      const req = res.req;
      res._emitSettled(false);
      if (res._close || this.server.closingAll) { this.shutdown(); return; }
      if (!req._ended) {
        // The handler did not read the whole body: drop the rest and keep going.
        req._discard = true;
        if (req._body !== null) req._body.destroy();
        req._early = null;
        if (this.readPausedBody) { this.readPausedBody = false; this.maybeResume(); }
      }
      const next = this.queue[0];
      if (next !== undefined) {
        const h = this.held.get(next);
        if (h !== undefined) {
          this.held.delete(next);
          if (h.length > 1) this.io.cork();
          for (const c of h) { this.heldBytes -= c.length; if (!this.io.write(c)) this.waitingDrain = true; }
          if (h.length > 1) this.io.uncork();
        }
        if (!this.waitingDrain) next._emitDrain();
      }
    }
    if (this.queue.length === 0) {
      if (this.server.closingAll) { this.shutdown(); return; }
      if (this.upgradeRest !== null) { this.takeoverWhenDue(); return; }
      if (this.phase === Phase.WAIT && this.current === null && (this.decoder.idle || this.stalled)) this.armIdle();
    }
    if (this.stalled) this.unstall();
  }

  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    if (!this.dead) this.io.uncork();
  };

  private readonly onDrain = (): void => {
    this.waitingDrain = false;
    const head = this.queue[0];
    if (head !== undefined) head._emitDrain();
    if (this.stalled) this.unstall();
  };

  private armIdle(): void {
    this.phase = Phase.IDLE;
    this.server.timers.arm(this.timer, this.server.timers.now() + this.server.keepAliveTimeoutMs);
  }

  /** Sends an error response for res (in order) and closes after it. */
  private fail(res: ServerResponse, status: number): void {
    if (res.headersSent) { this.destroy(); return; }
    res._close = true;
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/plain');
    res.end(`${statusLine(status).slice(9, -2)}\n`);
  }

  /** A decode failure: the bad request never reaches the handler. */
  private reject(f: DecodeFailure): void {
    this.server.countParseError(f.code);
    this.decoderFailed = true;
    this.answerAndClose(f.status, f.reason, 'ERR_STRATA_BAD_REQUEST');
  }

  private readonly onTimer = (): void => {
    switch (this.phase) {
      case Phase.IDLE: this.server.stats.idleTimeouts++; this.destroy(); return;
      case Phase.HEAD:
        this.server.stats.headerTimeouts++;
        this.answerAndClose(408, 'Request Timeout', 'ERR_STRATA_REQUEST_TIMEOUT');
        return;
      case Phase.BODY:
        this.server.stats.requestTimeouts++;
        this.answerAndClose(408, 'Request Timeout', 'ERR_STRATA_REQUEST_TIMEOUT');
        return;
      default: return;
    }
  };

  /**
   * The connection ends with `status` (a decode failure or a timeout), sent
   * in order after every response already owed, then closed. A request
   * being received fails: its body stream errors (req.aborted). If its
   * response has not started, the status goes out in its place and the
   * handler's response is cut off ('close', later writes dropped), so a
   * proxy stops forwarding; once its head went out, the connection is
   * reset instead: the client must not take a cut response for a whole one.
   */
  private answerAndClose(status: number, reason: string, code: string): void {
    if (this.dead) return;
    this.closing = true;
    this.server.timers.cancel(this.timer);
    const req = this.current;
    this.current = null;
    let slot = this.queue.length;
    if (req !== null) {
      req._abort(new HttpServerError(code, reason));
      const res = this.currentRes;
      this.currentRes = null;
      slot = res === null ? -1 : this.queue.indexOf(res);
      if (slot < 0) { this.shutdown(); return; } // answered in full already: nothing owed, nothing to add
      if (res!.headersSent) { this.destroy(); return; }
      this.cutOff(res!);
    }
    const text = `${statusLine(status)}Content-Type: text/plain\r\nContent-Length: ${reason.length + 1}\r\nConnection: close\r\n${this.dateLine().toString('latin1')}\r\n${reason}\n`;
    if (this.queue.length === 0) {
      this.io.write(text);
      this.shutdown();
      return;
    }
    const tail = new ServerResponse(new ServerRequest(ERROR_HEAD, this), this);
    tail._close = true;
    tail.headersSent = true;
    tail.finished = true;
    if (slot < this.queue.length) this.queue[slot] = tail;
    else this.queue.push(tail);
    this.output(tail, text, true);
  }

  /** The handler's response leaves the queue unsent: writes to it are dropped from now on, and it settles as aborted. */
  private cutOff(res: ServerResponse): void {
    res._cutOff = true;
    const h = this.held.get(res);
    if (h !== undefined) { for (const c of h) this.heldBytes -= c.length; this.held.delete(res); }
    res._emitSettled(true);
  }

  abort(res: ServerResponse, err: Error): void {
    this.server.reportError(err, res.req);
    this.destroy();
  }

  /** Half-close after pending output; the peer's FIN (or a short timer) finishes it. */
  shutdown(): void {
    if (this.dead) return;
    this.closing = true;
    this.server.timers.cancel(this.timer);
    this.io.end();
    // A peer that never closes its side is not allowed to hold the socket.
    this.phase = Phase.IDLE;
    this.server.timers.arm(this.timer, this.server.timers.now() + Math.min(this.server.keepAliveTimeoutMs, 2000));
  }

  /** Closes an idle keep-alive connection (graceful server close). */
  closeIfIdle(): boolean {
    // Stalled, what the decoder kept is dropped: the client gets what it was owed, then the close.
    if (this.idle && this.current === null && (this.decoder.idle || this.stalled)) { this.shutdown(); return true; }
    return false;
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    this.server.timers.cancel(this.timer);
    this.io.destroy();
  }

  private readonly onPeerEnd = (): void => {
    // Requests the client sent before its FIN still wait in the decoder: they are served first (unstall).
    if (this.stalled && !this.closing && !this.dead) { this.endPending = true; return; }
    // A client gone before its upgrade was handed over: no tunnel, the upgrade is forgotten.
    // A decoder that failed was counted then: the client's FIN after the 400 is no second failure.
    const f = this.upgradeReq !== null || this.decoderFailed ? null : this.decoder.finish();
    this.upgradeReq = null;
    this.upgradeRest = null;
    if (f !== null) this.server.countParseError(f.code);
    if (this.current !== null && !this.current._ended) this.current._abort(new HttpServerError('ERR_STRATA_ABORTED', 'client closed mid-request'));
    this.closing = true;
    if (this.queue.length === 0) this.destroy();
    // Otherwise the responses owed still go out (a half-closed client may read them).
  };

  private readonly onSocketError = (): void => { this.destroy(); };

  private readonly onClose = (): void => {
    this.dead = true;
    this.server.timers.cancel(this.timer);
    for (const res of this.queue) {
      if (!res._done) res._emitSettled(true);
      const req = res.req;
      if (!req._ended) req._abort(new HttpServerError('ERR_STRATA_ABORTED', 'connection closed'));
    }
    this.queue.length = 0;
    this.held.clear();
    this.heldBytes = 0;
    this.server.connectionClosed(this);
  };
}

export class HttpServer {
  readonly timers: TimerDriver;
  readonly date = new DateCache();
  readonly wall: Clock;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxRequestsPerSocket: number;
  readonly maxPipelined: number;
  readonly outputHighWaterMark: number;
  readonly maxBodySize: number;
  readonly limits: DecoderLimits;
  readonly decoderFactory: DecoderFactory;
  readonly stats: ServerStats = { connections: 0, rejectedConnections: 0, requests: 0, parseErrors: {}, headerTimeouts: 0, requestTimeouts: 0, idleTimeouts: 0, handlerErrors: 0, upgrades: 0, readStalls: 0 };
  closingAll = false;
  private readonly conns = new Set<Connection>();
  private readonly listeners: L7Listener[] = [];
  private readonly closeTimeoutMs: number;
  private readonly maxConnections: number;
  private readonly onError: ((err: Error, req: ServerRequest | null) => void) | null;
  private readonly onUpgrade: UpgradeHandler | null;
  private readonly shouldUpgrade: ((req: ServerRequest) => boolean) | null;
  private drained: (() => void) | null = null;
  private readonly internalError = new FixedResponse(500, { 'Content-Type': 'text/plain' }, 'Internal Server Error\n');

  constructor(readonly handler: Handler, opts: HttpServerOptions & { decoder: DecoderFactory }) {
    this.decoderFactory = opts.decoder;
    this.headersTimeoutMs = opts.headersTimeoutMs ?? 20_000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 300_000;
    this.keepAliveTimeoutMs = opts.keepAliveTimeoutMs ?? 5_000;
    this.maxRequestsPerSocket = opts.maxRequestsPerSocket ?? 0;
    this.maxPipelined = Math.max(1, opts.maxPipelined ?? DEFAULT_MAX_PIPELINED);
    this.outputHighWaterMark = opts.outputHighWaterMark ?? DEFAULT_OUTPUT_HIGH_WATER_MARK;
    this.maxBodySize = opts.maxBodySize ?? Infinity;
    this.limits = { maxHeaderSize: opts.maxHeaderSize ?? 16 * 1024, maxHeaders: opts.maxHeaders ?? 100 };
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 30_000;
    this.maxConnections = opts.maxConnections ?? Infinity;
    this.onError = opts.onError ?? null;
    this.onUpgrade = opts.onUpgrade ?? null;
    this.shouldUpgrade = opts.shouldUpgrade ?? null;
    const clock = opts.clock ?? turnClock;
    this.wall = opts.wallClock ?? turnWallClock;
    this.timers = new TimerDriver(clock);
  }

  /** Serves connections accepted by transport on host:port; resolves with the bound listener. */
  async listen(transport: L7Transport, port: number, host: string): Promise<L7Listener> {
    const l = await transport.listen(port, host, (s) => this.accept(s));
    this.listeners.push(l);
    return l;
  }

  /** Adopts an already-connected socket (e.g. after TLS or from another acceptor). */
  accept(socket: L7Socket): void {
    if (this.closingAll) { socket.destroy(); return; }
    if (this.conns.size >= this.maxConnections) { this.stats.rejectedConnections++; socket.destroy(); return; }
    this.stats.connections++;
    this.conns.add(new Connection(this, socket));
  }

  get connectionCount(): number { return this.conns.size; }

  /** @internal */
  dispatch(req: ServerRequest, res: ServerResponse): void {
    let r: void | Promise<void>;
    try {
      r = this.handler(req, res);
    } catch (e) {
      this.handlerFailed(e as Error, req, res);
      return;
    }
    if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
      (r as Promise<void>).then(undefined, (e: unknown) => this.handlerFailed(e as Error, req, res));
    }
  }

  private handlerFailed(e: Error, req: ServerRequest, res: ServerResponse): void {
    this.stats.handlerErrors++;
    this.reportError(e, req);
    if (!res.headersSent) { res._close = true; res.sendFixed(this.internalError); }
    else if (!res.finished) res.emit('error', e);
  }

  /** @internal */
  reportError(e: Error, req: ServerRequest | null): void {
    if (this.onError !== null) this.onError(e, req);
  }

  /** @internal */
  countParseError(code: string): void {
    this.stats.parseErrors[code] = (this.stats.parseErrors[code] ?? 0) + 1;
  }

  /** @internal Whether onUpgrade takes this upgrade request. */
  upgradeWanted(req: ServerRequest): boolean {
    if (this.onUpgrade === null) return false;
    if (this.shouldUpgrade === null) return true;
    try { return this.shouldUpgrade(req); } catch (e) { this.reportError(e as Error, req); return false; }
  }

  /** @internal The connection is onUpgrade's now: not counted, timed or closed by the server. */
  connectionUpgraded(c: Connection, req: ServerRequest, rest: Buffer): void {
    this.conns.delete(c);
    this.stats.upgrades++;
    if (this.conns.size === 0 && this.drained !== null) this.drained();
    try {
      this.onUpgrade!(req, c.socket, rest);
    } catch (e) {
      this.stats.handlerErrors++;
      this.reportError(e as Error, req);
      c.socket.destroy();
    }
  }

  /** @internal */
  connectionClosed(c: Connection): void {
    this.conns.delete(c);
    if (this.conns.size === 0 && this.drained !== null) this.drained();
  }

  /**
   * Graceful close: stop accepting, close idle keep-alive connections, let
   * in-flight exchanges finish (their responses carry Connection: close), and
   * resolve once every connection is gone. Connections still busy after
   * closeTimeoutMs are destroyed.
   */
  async close(): Promise<void> {
    this.closingAll = true;
    // The listeners stop accepting now; node:net's close() settles only once
    // every connection it accepted is gone, so it is awaited after those are
    // closed, not before (idle keep-alive ones would hold it until their
    // idle timeout), and not at all once a connection went to onUpgrade:
    // those are not ours, and may outlive the server.
    const stopped = Promise.all(this.listeners.splice(0).map((l) => l.close()));
    for (const c of this.conns) { c.closing = true; c.closeIfIdle(); }
    if (this.conns.size > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { for (const c of this.conns) c.destroy(); }, this.closeTimeoutMs);
        t.unref();
        this.drained = () => { clearTimeout(t); resolve(); };
      });
    }
    if (this.stats.upgrades === 0) await stopped;
    else stopped.then(undefined, () => { /* nothing left to stop */ });
    this.timers.stop();
  }
}
