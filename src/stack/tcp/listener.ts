// A listening endpoint (RFC 9293 LISTEN) with Linux's two queues: the SYN
// queue (half-open connections in SYN-RECEIVED, bounded by synBacklog; SYN
// cookies take over when it is full) and the accept queue (ESTABLISHED
// connections not yet taken by the application, bounded by backlog; a SYN is
// dropped while it is full, as Linux does).
import type { TcpConnection, TcpHandler } from './connection.js';
import type { Tcp } from './tcp.js';

export class TcpListener {
  /** Half-open connections (SYN-RECEIVED). */
  synQueued = 0;
  readonly acceptQueue: TcpConnection[] = [];
  /** Called when the accept queue gains a connection; the application then calls accept(). */
  onAcceptable: ((l: TcpListener) => void) | null = null;
  closed = false;
  /** Handler given to new children until the application takes them. */
  childHandler: TcpHandler = {};

  constructor(
    readonly tcp: Tcp,
    readonly localAddr: number,
    readonly localPort: number,
    public backlog: number,
    public synBacklog: number,
  ) {}

  /** A child reached ESTABLISHED: it moves from the SYN queue to the accept queue. */
  established(c: TcpConnection, now: number): void {
    if (this.synQueued > 0 && !c.userData) this.synQueued--;
    if (this.closed) { c.listener = null; c.reset(now); return; }
    this.enqueue(c);
  }

  /** A child made from a SYN cookie (never in the SYN queue). */
  enqueue(c: TcpConnection): void {
    c.userData = 'queued';
    this.acceptQueue.push(c);
    this.onAcceptable?.(this);
  }

  /** A child died before being accepted. */
  forget(c: TcpConnection): void {
    if (c.listener !== this) return;
    const i = this.acceptQueue.indexOf(c);
    if (i >= 0) this.acceptQueue.splice(i, 1);
    else if (c.userData !== 'queued' && this.synQueued > 0) this.synQueued--;
    c.listener = null;
  }

  /** Takes the oldest established connection, or null. The caller sets its handler. */
  accept(handler?: TcpHandler): TcpConnection | null {
    const c = this.acceptQueue.shift();
    if (c === undefined) return null;
    c.listener = null;
    c.userData = null;
    if (handler !== undefined) c.handler = handler;
    this.tcp.markDirty(c); // deliver data that arrived before accept()
    return c;
  }

  get acceptFull(): boolean { return this.acceptQueue.length >= this.backlog; }
  get synFull(): boolean { return this.synQueued >= this.synBacklog; }

  /** Stops listening; connections not yet accepted are reset (as Linux does on close of a listener). */
  close(now?: number): void {
    if (this.closed) return;
    this.closed = true;
    this.tcp.unlisten(this);
    for (const c of this.acceptQueue.splice(0)) { c.listener = null; c.reset(now); }
  }
}
