// What node's TLS runs over on the userspace stack.
//
// tls.TLSSocket drives any stream that is not a net.Socket with a native
// handle through node's JSStreamSocket, which uses a small part of the
// Duplex interface: 'data', 'end', 'error' and 'close' events, pause() and
// resume(), cork(), write(buf, cb) and uncork(), end(cb), destroy(), and the
// readable/writable flags. Handing it the TcpSocket itself sends every TLS
// record through the Readable and Writable machinery as well (push, buffer,
// nextTick per write callback) on top of JSStreamSocket's own. The carrier
// serves exactly that part from the TcpSocket's direct mode (bytes as calls,
// writes straight into the send ring, see bytes.ts), so TLS on the stack
// costs what TLS on a kernel socket costs plus JSStreamSocket, not plus a
// second stream. Transport facts that observers read through the TLS
// socket's underlying stream (addresses, TCP info, byte counts) are the
// TcpSocket's.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { isDirect, type DirectSocket } from './bytes.js';
import type { L7Socket } from './types.js';

const epipe = (message: string): Error => Object.assign(new Error(message), { code: 'EPIPE' });

/** The stream TLS should wrap for `socket`: a carrier on the stack's TcpSocket, the socket itself anywhere else. */
export function tlsCarrier(socket: Duplex): Duplex {
  const s = socket as unknown as L7Socket;
  return isDirect(s) ? new DirectTlsCarrier(s) as unknown as Duplex : socket;
}

export class DirectTlsCarrier extends EventEmitter {
  readonly readableObjectMode = false;
  readable = true;
  writable = true;
  /** Bytes that arrived while paused (JSStreamSocket pauses until TLS starts reading), and the peer's end behind them. */
  private held: Buffer[] = [];
  private endHeld = false;
  private paused = true;
  private flushing = false;
  /** Write callbacks waiting for the send ring to take queued bytes. */
  private waiting: ((err?: Error | null) => void)[] = [];

  constructor(readonly socket: L7Socket & DirectSocket) {
    super();
    socket.pauseDirect();
    socket.on('error', this.onError);
    socket.once('close', this.onClose);
    socket.attachReceiver({ onData: this.onData, onEnd: this.onEnd, onDrain: this.onDrain, onError: this.onError });
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.paused) { this.held.push(chunk); return; }
    this.emit('data', chunk);
  };

  private readonly onEnd = (): void => {
    if (this.paused) { this.endHeld = true; return; }
    this.readable = false;
    this.emit('end');
  };

  private readonly onDrain = (): void => {
    const w = this.waiting;
    this.waiting = [];
    for (const cb of w) cb();
  };

  private readonly onError = (err: Error): void => { this.emit('error', err); };

  private readonly onClose = (): void => {
    this.readable = false;
    this.writable = false;
    this.socket.off('error', this.onError);
    const w = this.waiting;
    this.waiting = [];
    for (const cb of w) cb(epipe('socket closed'));
    this.emit('close');
  };

  pause(): this {
    this.paused = true;
    this.socket.pauseDirect();
    return this;
  }

  /** Delivery goes on; what was held is handed over on the next tick (as a Readable does), never inside the caller (TLS's readStart). */
  resume(): this {
    if (!this.paused) return this;
    this.paused = false;
    if (this.held.length === 0 && !this.endHeld) { this.socket.resumeDirect(); return this; }
    if (!this.flushing) { this.flushing = true; process.nextTick(this.flushHeld); }
    return this;
  }

  private readonly flushHeld = (): void => {
    this.flushing = false;
    while (this.held.length > 0 && !this.paused) this.emit('data', this.held.shift()!);
    if (this.paused) return;
    if (this.endHeld) { this.endHeld = false; this.onEnd(); return; }
    this.socket.resumeDirect();
  };

  /** The stack sends what one tick wrote together (its next flush): nothing to hold. */
  cork(): void { /* see above */ }
  uncork(): void { /* see cork() */ }

  /** Into the send ring now; cb once the ring holds all of it (at once, or at the drain after a full ring). */
  write(chunk: Uint8Array | string, cb?: (err?: Error | null) => void): boolean {
    if (!this.writable) {
      const e = epipe('write after end');
      if (cb) process.nextTick(cb, e);
      return false;
    }
    const ok = this.socket.writeDirect(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    if (cb) {
      if (ok) cb();
      else if (this.socket.destroyed) process.nextTick(cb, epipe('socket closed'));
      else this.waiting.push(cb);
    }
    return ok;
  }

  /** FIN after everything written. */
  end(cb?: () => void): this {
    if (this.writable) {
      this.writable = false;
      this.socket.endDirect();
    }
    if (cb) process.nextTick(cb);
    return this;
  }

  destroy(err?: Error): this {
    this.socket.destroy(err);
    return this;
  }

  get destroyed(): boolean { return this.socket.destroyed; }

  // ---- the TcpSocket's facts, for whoever reads them through the TLS socket ----
  get remoteAddress(): string | undefined { return this.socket.remoteAddress; }
  get remotePort(): number | undefined { return this.socket.remotePort; }
  get remoteFamily(): string | undefined { return (this.socket as { remoteFamily?: string }).remoteFamily; }
  get localAddress(): string | undefined { return this.socket.localAddress; }
  get localPort(): number | undefined { return this.socket.localPort; }
  get bytesRead(): number { return (this.socket as { bytesRead?: number }).bytesRead ?? 0; }
  get bytesWritten(): number { return (this.socket as { bytesWritten?: number }).bytesWritten ?? 0; }
  info(): unknown { return (this.socket as { info?: () => unknown }).info?.() ?? null; }
  setNoDelay(noDelay?: boolean): this { (this.socket as { setNoDelay?: (v?: boolean) => unknown }).setNoDelay?.(noDelay); return this; }
  setKeepAlive(enable?: boolean, delay?: number): this { (this.socket as { setKeepAlive?: (e?: boolean, d?: number) => unknown }).setKeepAlive?.(enable, delay); return this; }
}
