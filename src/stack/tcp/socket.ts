// node:net-shaped sockets over strata's TCP: TcpServer and TcpSocket.
//
// TcpSocket is a real stream.Duplex, so tls.TLSSocket, stream.pipeline and
// anything stream-based run over it unchanged. Backpressure is end to end:
//   - receive: when push() returns false the socket stops taking bytes from
//     the connection's receive ring; the ring fills and the advertised window
//     closes (the peer then probes a zero window). _read() resumes.
//   - send: _write's callback runs only once the chunk is wholly inside the
//     send ring, so writable.write() returns false exactly when the ring and
//     the stream's highWaterMark are full.
// The stream layer copies once per chunk (ring -> Buffer).
//
// Direct mode (attachReceiver) is L7's fast path: the same socket without the
// stream machinery in between. Received bytes are handed to a SocketReceiver
// by plain calls (still one copy out of the ring, into a Buffer the receiver
// may keep), and writeDirect() copies straight into the send ring: no
// Writable state, no callback per write, no nextTick. The stack sends what
// was written when it flushes, so writes in one tick leave together without
// cork(). 'close' is still emitted, so observers of the socket keep working;
// 'data', 'end' and 'error' go to the receiver instead. detachReceiver()
// hands the socket back to the stream (an upgraded connection given to a
// tunnel), queued direct writes first.
//
// Urgent data (RFC 9293 §3.8.5) stays inline, as with SO_OOBINLINE: 'urgent'
// (pending count) says the peer's urgent pointer moved past what was read,
// urgentPending how many bytes up to it remain unread, and writeUrgent()
// sends bytes that end at a new urgent pointer. There is no recv(MSG_OOB):
// no byte is ever taken out of the stream (RFC 6093 §5).
//
// Errors carry node's errno codes (ECONNRESET, ECONNREFUSED, ETIMEDOUT …) and
// destroy the stream; nothing is thrown into the event loop.
import { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import { ip4FromString, ip4ToString } from '../registration.js';
import { InvalidArgumentError } from '../../util/errors.js';
import type { Tcp } from './tcp.js';
import type { TcpConnection, TcpHandler, TcpInfo } from './connection.js';
import type { TcpListener } from './listener.js';
import { TcpError } from './errors.js';

export interface TcpSocketOptions {
  /** Keep the writable side open after the peer's FIN (node:net allowHalfOpen). Default false. */
  allowHalfOpen?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  highWaterMark?: number;
}

export interface AddressInfo { address: string; family: 'IPv4'; port: number }

/** The receiving side of a socket in direct mode (see the top of this file). */
export interface SocketReceiver {
  /** Received bytes, in a fresh Buffer the receiver may keep. */
  onData(chunk: Buffer): void;
  /** The peer's FIN, after every byte before it. */
  onEnd(): void;
  /** The send buffer took everything writeDirect() had to queue. */
  onDrain(): void;
  /** The connection failed (reset, timeout, …); 'close' follows. */
  onError(err: Error): void;
}

/** Strings written directly are header text: latin1, one byte per char (as node:http writes heads). */
let scratch = Buffer.allocUnsafe(4096);
function latin1Into(s: string): number {
  if (s.length > scratch.length) scratch = Buffer.allocUnsafe(Math.max(s.length, scratch.length * 2));
  return scratch.write(s, 0, 'latin1');
}

function parseHost(host: string | undefined): number {
  if (host === undefined || host === '' || host === '0.0.0.0') return 0;
  const h = host === 'localhost' ? '127.0.0.1' : host;
  const a = ip4FromString(h);
  if (a < 0) throw new InvalidArgumentError(`not an IPv4 address: ${host}`);
  return a;
}

export class TcpSocket extends Duplex {
  private conn: TcpConnection | null = null;
  private readStopped = false;
  private pendingChunk: Uint8Array | null = null;
  private pendingCb: ((err?: Error | null) => void) | null = null;
  private connected = false;
  private readonly opts: TcpSocketOptions;
  bytesRead = 0;
  bytesWritten = 0;
  private readonly handler: TcpHandler;
  // Idle timeout (node:net setTimeout). It lives on the event loop, not the
  // stack's wheel: it is an application-level timer with no protocol effect.
  private idleTimer: NodeJS.Timeout | null = null;
  // Direct mode: the receiver, its pause flag, and what the send ring could not take yet.
  private rx: SocketReceiver | null = null;
  private rxPaused = false;
  private txQueue: Uint8Array[] | null = null;
  private txQueued = 0;
  private endAfterQueue = false;
  // Urgent data: chunks written by writeUrgent() until _write takes them, whether
  // the pending chunk is one, and where the peer's urgent data ends in bytesRead terms.
  private urgentChunks: WeakSet<Uint8Array> | null = null;
  private pendingUrgent = false;
  private urgentMark = -1;

  constructor(readonly tcp: Tcp, opts: TcpSocketOptions = {}, conn?: TcpConnection) {
    super({ allowHalfOpen: opts.allowHalfOpen ?? false, highWaterMark: opts.highWaterMark, decodeStrings: true });
    this.opts = opts;
    const self = this;
    this.handler = {
      onConnect() { self.onConnect(); },
      onData(_c, buf, off, len) { return self.onData(buf, off, len); },
      onEnd() { if (self.rx !== null) self.rx.onEnd(); else self.push(null); },
      onDrain() { self.onDrain(); },
      onClose(_c, err) { self.onConnClose(err); },
      onUrgent(_c, pending) { self.urgentMark = self.bytesRead + pending; self.emit('urgent', self.urgentPending); },
    };
    if (conn !== undefined) this.attach(conn, true);
  }

  private attach(conn: TcpConnection, established: boolean): void {
    this.conn = conn;
    conn.handler = this.handler;
    if (this.opts.noDelay) conn.setNoDelay(true);
    if (this.opts.keepAlive) conn.setKeepAlive(true, this.opts.keepAliveInitialDelay || undefined);
    if (established) this.connected = true;
    this.tcp.markDirty(conn);
  }

  /** Opens a connection (node:net socket.connect(port, host, cb)). */
  connect(port: number, host?: string | (() => void), cb?: () => void): this {
    if (typeof host === 'function') { cb = host; host = undefined; }
    if (cb) this.once('connect', cb);
    try {
      const remote = parseHost(host ?? '127.0.0.1');
      const c = this.tcp.connect(remote, port, { handler: this.handler });
      this.attach(c, false);
    } catch (e) {
      process.nextTick(() => this.destroy(e as Error));
    }
    return this;
  }

  private onConnect(): void {
    this.connected = true;
    this.emit('connect');
    this.emit('ready');
  }

  private onData(buf: Uint8Array, off: number, len: number): number {
    if (this.destroyed) return 0;
    const rx = this.rx;
    if (rx !== null) {
      if (this.rxPaused) return 0; // stays in the ring; the window closes as it fills
      this.idleTimer?.refresh();
      const chunk = Buffer.allocUnsafe(len);
      chunk.set(buf.subarray(off, off + len));
      this.bytesRead += len;
      rx.onData(chunk);
      return len;
    }
    if (this.readStopped) return 0;
    this.idleTimer?.refresh();
    const chunk = Buffer.allocUnsafe(len);
    chunk.set(buf.subarray(off, off + len));
    this.bytesRead += len;
    if (!this.push(chunk)) this.readStopped = true;
    return len;
  }

  // ---- direct mode (L7's fast path) -------------------------------------------

  /**
   * Enters direct mode: bytes go to r from now on (any the stream already
   * holds go first), writeDirect() bypasses the Writable. The stream's
   * pause()/resume() no longer gate delivery: pauseDirect()/resumeDirect() do.
   */
  attachReceiver(r: SocketReceiver): void {
    this.rx = r;
    for (let c = this.read() as Buffer | null; c !== null && this.rx === r; c = this.read() as Buffer | null) r.onData(c);
    if (this.readStopped) { this.readStopped = false; this.conn?.resumeReading(); }
  }

  /** Back to the stream: bytes still in the ring flow as 'data' once read; queued direct writes leave before any stream write. */
  detachReceiver(): void {
    this.rx = null;
    if (this.rxPaused) { this.rxPaused = false; this.conn?.resumeReading(); }
  }

  get direct(): boolean { return this.rx !== null; }

  /** Bytes written directly that the send ring could not take yet (0 once onDrain() was heard). */
  get directQueued(): number { return this.txQueued; }

  pauseDirect(): void { this.rxPaused = true; }

  resumeDirect(): void {
    if (!this.rxPaused) return;
    this.rxPaused = false;
    this.conn?.resumeReading();
  }

  /**
   * Writes into the send ring now (strings as latin1). false: part of it is
   * queued and the receiver hears onDrain() once the ring has taken it all;
   * also false when the connection no longer sends (its close reports why).
   */
  writeDirect(chunk: Uint8Array | string): boolean {
    const c = this.conn;
    if (c === null || this.destroyed || this.endAfterQueue) return false;
    const str = typeof chunk === 'string';
    if (this.txQueue !== null) {
      this.txQueue.push(str ? Buffer.from(chunk, 'latin1') : chunk);
      this.txQueued += chunk.length;
      return false;
    }
    const n = str ? latin1Into(chunk) : chunk.length;
    const src = str ? scratch : chunk;
    const w = c.write(src, 0, n);
    this.bytesWritten += w;
    this.idleTimer?.refresh();
    if (w === n) return true;
    if (c.state === 'CLOSED' || c.finQueued) return false;
    this.txQueue = [str ? Buffer.from(src.subarray(w, n)) : src.subarray(w, n)];
    this.txQueued = n - w;
    return false;
  }

  /** FIN once everything written directly has gone into the ring. */
  endDirect(): void {
    if (this.txQueue !== null) { this.endAfterQueue = true; return; }
    this.conn?.end();
  }

  /** Moves queued direct writes into the ring; true when the queue is empty. */
  private flushTxQueue(): boolean {
    const q = this.txQueue!;
    const c = this.conn;
    while (q.length > 0 && c !== null) {
      const b = q[0]!;
      const w = c.write(b, 0, b.length);
      this.bytesWritten += w;
      this.txQueued -= w;
      if (w < b.length) { q[0] = b.subarray(w); return false; }
      q.shift();
    }
    this.txQueue = null;
    this.txQueued = 0;
    if (this.endAfterQueue) { this.endAfterQueue = false; c?.end(); }
    return true;
  }

  override _read(): void {
    if (this.readStopped) {
      this.readStopped = false;
      this.conn?.resumeReading();
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const c = this.conn;
    if (c === null) { cb(new TcpError('EPIPE', 'socket is not connected')); return; }
    const urgent = this.urgentChunks !== null && this.urgentChunks.delete(chunk);
    this.pendingUrgent = urgent;
    // Direct writes still queued (a socket just detached) leave first.
    if (this.txQueue !== null) { this.pendingChunk = chunk; this.pendingCb = cb; return; }
    const n = urgent ? c.writeUrgent(chunk, 0, chunk.length) : c.write(chunk, 0, chunk.length);
    this.bytesWritten += n;
    this.idleTimer?.refresh();
    if (n === chunk.length) { cb(); return; }
    if (c.state === 'CLOSED' || c.finQueued) { cb(c.error ?? new TcpError('EPIPE', 'write after end')); return; }
    this.pendingChunk = chunk.subarray(n);
    this.pendingCb = cb;
  }

  /**
   * Writes like write(), as urgent data (RFC 9293 §3.8.5): once these bytes
   * are in the send buffer the urgent pointer points just past them, and
   * segments carry URG until the peer has acknowledged them. Strings are UTF-8.
   * The peer's kernel, by default, takes only the last urgent byte out of
   * band; with SO_OOBINLINE it reads every byte inline, the mark at that byte.
   */
  writeUrgent(chunk: Uint8Array | string, cb?: (err?: Error | null) => void): boolean {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    (this.urgentChunks ??= new WeakSet()).add(b);
    return this.write(b, cb);
  }

  /**
   * Urgent bytes not yet read from this socket (MUST-33): from the next byte
   * 'data' (or read()) will give up to the peer's urgent pointer; 0 when none.
   */
  get urgentPending(): number {
    if (this.urgentMark < 0) return 0;
    const d = this.urgentMark - (this.bytesRead - this.readableLength);
    return d > 0 ? d : 0;
  }

  private onDrain(): void {
    if (this.txQueue !== null) {
      if (!this.flushTxQueue()) return;
      this.rx?.onDrain();
    }
    const c = this.conn;
    const chunk = this.pendingChunk;
    if (c === null || chunk === null) return;
    const n = this.pendingUrgent ? c.writeUrgent(chunk, 0, chunk.length) : c.write(chunk, 0, chunk.length);
    this.bytesWritten += n;
    if (n === chunk.length) {
      const cb = this.pendingCb!;
      this.pendingChunk = null;
      this.pendingCb = null;
      cb();
    } else {
      this.pendingChunk = chunk.subarray(n);
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.conn?.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const c = this.conn;
    this.txQueue = null;
    this.txQueued = 0;
    if (this.idleTimer !== null) { clearTimeout(this.idleTimer); this.idleTimer = null; }
    if (this.pendingCb) { const p = this.pendingCb; this.pendingCb = null; this.pendingChunk = null; p(err ?? new TcpError('EPIPE', 'socket destroyed')); }
    if (c !== null && c.state !== 'CLOSED' && c.state !== 'TIME-WAIT') {
      c.handler = {};
      // Like close(2) on a socket: FIN, or RST when received data was left unread.
      c.close();
    }
    cb(err);
  }

  private onConnClose(err: TcpError | null): void {
    const rx = this.rx;
    if (rx !== null) {
      // The receiver hears the failure; the stream is only closed ('close' for observers), never errored.
      this.txQueue = null;
      if (err !== null) {
        if (this.pendingCb) { const p = this.pendingCb; this.pendingCb = null; this.pendingChunk = null; p(err); }
        rx.onError(err);
      }
      this.destroy();
      return;
    }
    if (err !== null) {
      if (this.pendingCb) { const p = this.pendingCb; this.pendingCb = null; this.pendingChunk = null; p(err); }
      this.destroy(err);
      return;
    }
    // Orderly end (TIME-WAIT, LAST-ACK done, FIN-WAIT-2 timeout): the stream
    // ends by itself once read and written out (autoDestroy).
    if (!this.readableEnded) this.push(null);
  }

  /** RST now (node:net resetAndDestroy). */
  resetAndDestroy(): this {
    const c = this.conn;
    if (c !== null && c.state !== 'CLOSED') { c.handler = {}; c.reset(); }
    this.destroy();
    return this;
  }

  setNoDelay(noDelay = true): this { this.opts.noDelay = noDelay; this.conn?.setNoDelay(noDelay); return this; }

  setKeepAlive(enable = false, initialDelay = 0): this {
    this.opts.keepAlive = enable;
    this.opts.keepAliveInitialDelay = initialDelay;
    this.conn?.setKeepAlive(enable, initialDelay > 0 ? initialDelay : undefined);
    return this;
  }

  /** Emits 'timeout' after ms without reads or writes (node:net semantics: the socket stays open). 0 disables. */
  setTimeout(ms: number, cb?: () => void): this {
    if (this.idleTimer !== null) { clearTimeout(this.idleTimer); this.idleTimer = null; }
    if (ms > 0) {
      if (cb) this.once('timeout', cb);
      this.idleTimer = setTimeout(() => this.emit('timeout'), ms);
      this.idleTimer.unref();
    } else if (cb) {
      this.removeListener('timeout', cb);
    }
    return this;
  }

  get connecting(): boolean { return this.conn !== null && !this.connected && this.conn.state === 'SYN-SENT'; }
  get pending(): boolean { return !this.connected; }
  get readyState(): string {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }
  get remoteAddress(): string | undefined { return this.conn ? ip4ToString(this.conn.remoteAddr) : undefined; }
  get remotePort(): number | undefined { return this.conn?.remotePort; }
  get remoteFamily(): string | undefined { return this.conn ? 'IPv4' : undefined; }
  get localAddress(): string | undefined { return this.conn ? ip4ToString(this.conn.localAddr) : undefined; }
  get localPort(): number | undefined { return this.conn?.localPort; }
  address(): AddressInfo | Record<string, never> {
    return this.conn ? { address: ip4ToString(this.conn.localAddr), family: 'IPv4', port: this.conn.localPort } : {};
  }
  /** The underlying connection (for TCP facts and the fast path). */
  get connection(): TcpConnection | null { return this.conn; }
  info(): TcpInfo | null { return this.conn?.info() ?? null; }
}

export interface TcpServerOptions extends TcpSocketOptions {
  backlog?: number;
}

/** A node:net-shaped server: 'listening', 'connection', 'close', 'error'. */
export class TcpServer extends EventEmitter {
  private listener: TcpListener | null = null;
  private readonly sockets = new Set<TcpSocket>();
  private closing = false;

  constructor(readonly tcp: Tcp, private readonly opts: TcpServerOptions = {}, connectionListener?: (s: TcpSocket) => void) {
    super();
    if (connectionListener) this.on('connection', connectionListener);
  }

  listen(port: number, host?: string | (() => void), backlog?: number | (() => void), cb?: () => void): this {
    if (typeof host === 'function') { cb = host; host = undefined; }
    if (typeof backlog === 'function') { cb = backlog; backlog = undefined; }
    if (cb) this.once('listening', cb);
    try {
      const l = this.tcp.listen(port, parseHost(host), backlog ?? this.opts.backlog ?? 511);
      this.listener = l;
      l.onAcceptable = () => this.acceptAll();
      process.nextTick(() => this.emit('listening'));
    } catch (e) {
      process.nextTick(() => this.emit('error', e));
    }
    return this;
  }

  private acceptAll(): void {
    const l = this.listener;
    if (l === null) return;
    for (let c = l.accept(); c !== null; c = l.accept()) {
      const s = new TcpSocket(this.tcp, this.opts, c);
      this.sockets.add(s);
      s.once('close', () => { this.sockets.delete(s); this.maybeClosed(); });
      this.emit('connection', s);
    }
  }

  address(): AddressInfo | null {
    const l = this.listener;
    return l ? { address: ip4ToString(l.localAddr), family: 'IPv4', port: l.localPort } : null;
  }

  get listening(): boolean { return this.listener !== null; }

  /** Stops accepting; 'close' once every connection has closed (node:net semantics). */
  close(cb?: (err?: Error) => void): this {
    if (cb) this.once('close', cb);
    if (this.listener) { this.listener.close(); this.listener = null; }
    this.closing = true;
    this.maybeClosed();
    return this;
  }

  getConnections(cb: (err: Error | null, n: number) => void): void { process.nextTick(() => cb(null, this.sockets.size)); }

  private maybeClosed(): void {
    if (this.closing && this.sockets.size === 0) { this.closing = false; process.nextTick(() => this.emit('close')); }
  }
}

/** node:net.createServer over strata's TCP. */
export function createServer(tcp: Tcp, opts?: TcpServerOptions | ((s: TcpSocket) => void), listener?: (s: TcpSocket) => void): TcpServer {
  if (typeof opts === 'function') return new TcpServer(tcp, {}, opts);
  return new TcpServer(tcp, opts ?? {}, listener);
}

/** node:net.connect over strata's TCP. */
export function connect(tcp: Tcp, port: number, host?: string, cb?: () => void, opts?: TcpSocketOptions): TcpSocket {
  return new TcpSocket(tcp, opts).connect(port, host, cb);
}
