// The byte seam of L7's hot paths: the HTTP server's connections and the
// proxy's upstream connections read and write through a ByteConn made by
// attachBytes(), never through the socket's stream methods directly.
//
// On the userspace stack the ByteConn is the TcpSocket's direct mode (see
// src/stack/tcp/socket.ts): bytes arrive as calls and writes land in the send
// ring with no stream machinery in between, the "lower-level callback
// interface without stream overhead" L7 runs on. On node:net, TLS or any
// other Duplex it is the socket's own events and write(): the best each
// transport offers, behind one interface, so the L7 code above is the same
// for all three transports.
//
// Strings written are header text and go out as latin1 (one byte per char),
// as node:http writes heads; bodies are Buffers.
import type { Duplex } from 'node:stream';
import type { L7Socket } from './types.js';

export interface ByteReceiver {
  /** Received bytes; the receiver may keep the Buffer. */
  onData(chunk: Buffer): void;
  /** The peer ended its side. */
  onEnd(): void;
  /** write() returned false earlier and everything has been taken since. */
  onDrain(): void;
  /** The connection failed; onClose follows. */
  onError(err: Error): void;
  /** The connection is gone (once). */
  onClose(): void;
}

export interface ByteConn {
  readonly socket: L7Socket;
  /** false: wait for onDrain (the bytes are queued, not lost). */
  write(chunk: Uint8Array | string): boolean;
  /** Writes in one tick leave together without cork() (the stack's direct mode sends at its next flush): callers may skip corking. */
  readonly coalesces: boolean;
  /** Holds writes until uncork() (one writev); a no-op where the transport batches by itself. */
  cork(): void;
  uncork(): void;
  /**
   * Bytes written and not yet taken by the transport's own bounded buffer:
   * the stream's queue on node:net and TLS (the kernel's socket buffer is
   * not counted), the direct-write queue beyond the send ring on the stack.
   * Once write() returned false, onDrain() comes when this is back to 0.
   */
  readonly unsent: number;
  /** Stops delivery (the transport's window closes as its buffer fills) until resume(). */
  pause(): void;
  resume(): void;
  /** Half-close after everything written. */
  end(): void;
  destroy(): void;
  /** Stops delivering to the receiver and hands the socket back as a plain Duplex (e.g. to a tunnel). */
  detach(): void;
}

/** The stack's TcpSocket in direct mode (structural: L7 does not import the stack). */
export interface DirectSocket extends Duplex {
  attachReceiver(r: Omit<ByteReceiver, 'onClose'>): void;
  detachReceiver(): void;
  writeDirect(chunk: Uint8Array | string): boolean;
  /** Bytes writeDirect() queued beyond the send ring. */
  readonly directQueued: number;
  endDirect(): void;
  pauseDirect(): void;
  resumeDirect(): void;
}

export function isDirect(s: L7Socket): s is L7Socket & DirectSocket {
  return typeof (s as Partial<DirectSocket>).attachReceiver === 'function';
}

/** Attaches r to socket; from now on read and write it through the returned ByteConn. */
export function attachBytes(socket: L7Socket, r: ByteReceiver): ByteConn {
  return isDirect(socket) ? new DirectConn(socket, r) : new StreamConn(socket, r);
}

class DirectConn implements ByteConn {
  readonly coalesces = true;
  constructor(readonly socket: L7Socket & DirectSocket, private readonly r: ByteReceiver) {
    // Failures reach r.onError from the socket itself; 'error' events come
    // only from someone destroying the Duplex with an error, so listen anyway.
    socket.on('error', r.onError);
    socket.on('close', r.onClose);
    socket.attachReceiver(r);
  }

  write(chunk: Uint8Array | string): boolean { return this.socket.writeDirect(chunk); }
  get unsent(): number { return this.socket.directQueued; }
  cork(): void { /* the stack sends at its next flush: writes in one tick already leave together */ }
  uncork(): void { /* see cork() */ }
  pause(): void { this.socket.pauseDirect(); }
  resume(): void { this.socket.resumeDirect(); }
  end(): void { this.socket.endDirect(); }
  destroy(): void { this.socket.destroy(); }

  detach(): void {
    this.socket.detachReceiver();
    this.socket.off('error', this.r.onError);
    this.socket.off('close', this.r.onClose);
  }
}

/** Corked pieces up to this many bytes in all are joined into one write (StreamConn). */
const JOIN_MAX = 16384;

class StreamConn implements ByteConn {
  readonly coalesces = false;
  constructor(readonly socket: L7Socket, private readonly r: ByteReceiver) {
    socket.on('data', r.onData);
    socket.on('end', r.onEnd);
    socket.on('error', r.onError);
    socket.on('close', r.onClose);
    socket.on('drain', r.onDrain);
  }

  write(chunk: Uint8Array | string): boolean {
    const h = this.held;
    if (h !== null) {
      if (this.heldBytes + chunk.length <= JOIN_MAX) { h.push(chunk); this.heldBytes += chunk.length; return true; }
      this.flushHeld();
    }
    return this.send(chunk);
  }

  get unsent(): number { return this.socket.writableLength + this.heldBytes; }

  /**
   * Small pieces written while corked (a head and a short body) leave as one
   * Buffer at uncork(): one write, one TLS record, no writev bookkeeping per
   * piece; past JOIN_MAX bytes they go out as they come, in order.
   */
  cork(): void { if (this.corks++ === 0) this.held = this.pieces; }
  uncork(): void {
    if (this.corks === 0) return;
    if (--this.corks === 0) { this.flushHeld(); this.held = null; }
  }
  pause(): void { this.socket.pause(); }
  resume(): void { this.socket.resume(); }
  end(): void { this.flushHeld(); this.socket.end(); }
  destroy(): void { this.pieces.length = 0; this.heldBytes = 0; this.socket.destroy(); }

  /** While corked: `pieces` (one array for the connection's life, emptied at each flush); null otherwise. */
  private held: (Uint8Array | string)[] | null = null;
  private readonly pieces: (Uint8Array | string)[] = [];
  private heldBytes = 0;
  private corks = 0;

  private send(chunk: Uint8Array | string): boolean {
    return typeof chunk === 'string' ? this.socket.write(chunk, 'latin1') : this.socket.write(chunk);
  }

  private flushHeld(): void {
    const h = this.held;
    if (h === null || h.length === 0) return;
    const n = this.heldBytes;
    this.heldBytes = 0;
    if (h.length === 1) { const c = h[0]!; h.length = 0; this.send(c); return; }
    const b = Buffer.allocUnsafe(n);
    let o = 0;
    for (const c of h) {
      if (typeof c === 'string') o += b.write(c, o, 'latin1');
      else { b.set(c, o); o += c.length; }
    }
    h.length = 0;
    this.socket.write(b);
  }

  detach(): void {
    this.flushHeld();
    this.held = null;
    this.corks = 0;
    const s = this.socket, r = this.r;
    s.off('data', r.onData);
    s.off('end', r.onEnd);
    s.off('error', r.onError);
    s.off('close', r.onClose);
    s.off('drain', r.onDrain);
  }
}
