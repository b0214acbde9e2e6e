// Connections that leave HTTP/1.1 (RFC 9110 §7.8 Upgrade, §15.2.2 101).
//
// The server's onUpgrade hook gets what node:http's 'upgrade' event gives: the
// request, the socket and the bytes already read past the request (a client
// may pipeline the new protocol's first bytes behind it; RFC 9112 §9.3.2
// pipelining stops at an upgrade). The socket comes paused, with no listener
// of the server's left on it; the taker resumes it or pipes it.
//
// upgradeVia() lets an ordinary Handler serve those requests anyway, which is
// how the proxy keeps one request path: the handler gets an UpgradeResponse,
// a ServerResponse writing straight to the taken socket. Answered normally
// (403, 404, a refused upgrade's 400…) it closes the connection after the
// response, since nothing of HTTP is left to read it. Or the handler calls
// switchProtocols() with a 101 head and owns the connection from then on,
// calling tunnelDone() when it is over; the response's 'finish' (or 'close',
// if the socket died first) fires then, exactly once, so whatever counts
// exchanges in flight counts the tunnel too.
//
// Bytes the client sent past the request stay in `early` and the socket stays
// paused until the handler switches: before a 101 they cannot be given to
// anyone as HTTP.
import type { L7Socket } from '../transport/types.js';
import type { Clock } from '../../util/clock.js';
import { wallClock } from '../../util/clock.js';
import { DateCache } from './date.js';
import { ServerResponse, HttpServerError, type ExchangeOwner, type ServerRequest } from './message.js';

export type UpgradeHandler = (req: ServerRequest, socket: L7Socket, head: Buffer) => void;

type Handler = (req: ServerRequest, res: ServerResponse) => void | Promise<void>;

/** The ExchangeOwner of one taken connection: one exchange, then the end of the connection (or a tunnel). */
class TakenConnection implements ExchangeOwner {
  readonly remoteAddress: string;
  readonly remotePort: number;
  res: UpgradeResponse | null = null;

  constructor(readonly socket: L7Socket, private readonly date: DateCache, private readonly wall: Clock, private readonly onError: (e: Error) => void) {
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
  }

  wantBody(): void { /* upgrade requests are bodiless */ }
  dateLine(): Buffer { return this.date.lineFor(this.wall.now()); }
  mustClose(): boolean { return true; }

  output(res: ServerResponse, chunk: Buffer | string, last: boolean): boolean {
    res.wireBytes += chunk.length;
    // Heads are latin1 on the wire, one byte per char (as the server writes them).
    const ok = chunk.length === 0 ? true : typeof chunk === 'string' ? this.socket.write(chunk, 'latin1') : this.socket.write(chunk);
    if (last) {
      res._done = true;
      this.res?._settle(false);
      this.socket.end();
    }
    return ok;
  }

  abort(_res: ServerResponse, err: Error): void {
    this.onError(err);
    this.socket.destroy();
  }
}

export class UpgradeResponse extends ServerResponse {
  /** Client bytes read past the request (node:http's `head`): the new protocol's, to be sent on once switched. */
  readonly early: Buffer;
  /** The connection, the caller's once switchProtocols() is called. */
  readonly socket: L7Socket;
  private settled = false;
  private switched = false;
  private readonly onSocketClose = (): void => { this._settle(true); };
  private readonly onSocketDrain = (): void => { this._emitDrain(); };

  /** @internal */
  constructor(req: ServerRequest, private readonly taken: TakenConnection, head: Buffer) {
    super(req, taken);
    this.early = head;
    this.socket = taken.socket;
    this.socket.once('close', this.onSocketClose);
    this.socket.on('drain', this.onSocketDrain);
    // A socket error before the switch is the 'close' that follows; after it, the tunnel's.
    this.socket.on('error', noop);
  }

  /** True once switchProtocols() was called. */
  get switchedProtocols(): boolean { return this.switched; }

  /**
   * Writes `statusHead` (a whole 101 head, blank line included) and hands the
   * connection to the caller, who resumes the socket and sends `early` on.
   */
  switchProtocols(statusHead: string): L7Socket {
    if (this.headersSent) throw new HttpServerError('ERR_STRATA_HEADERS_SENT', 'headers already sent');
    this.statusCode = 101;
    this.headersSent = true;
    this.finished = true;
    this.switched = true;
    this.socket.off('close', this.onSocketClose);
    this.socket.off('drain', this.onSocketDrain);
    this.socket.off('error', noop);
    this.wireBytes += statusHead.length;
    this.socket.write(statusHead, 'latin1');
    return this.socket;
  }

  /** The tunnel is over: 'finish' when it ended cleanly, else 'close'. Count bytes sent to the client in wireBytes before. */
  tunnelDone(clean: boolean): void {
    this._done = true;
    this._settle(!clean);
  }

  /** @internal Emits 'finish' or 'close' once. */
  _settle(aborted: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.socket.off('close', this.onSocketClose);
    this.socket.off('drain', this.onSocketDrain);
    this._emitSettled(aborted);
  }
}

function noop(): void { /* see UpgradeResponse */ }

export interface UpgradeViaOptions {
  /** Wall clock for the Date header of responses on taken connections. */
  wallClock?: Clock;
  /** Handler errors (default: none). */
  onError?: (err: Error, req: ServerRequest) => void;
}

/** An onUpgrade that serves upgrade requests through `handler`, each with an UpgradeResponse. */
export function upgradeVia(handler: Handler, opts: UpgradeViaOptions = {}): UpgradeHandler {
  const date = new DateCache();
  const wall = opts.wallClock ?? wallClock;
  return (req, socket, head) => {
    const report = (e: Error): void => { opts.onError?.(e, req); };
    const taken = new TakenConnection(socket, date, wall, report);
    const res = new UpgradeResponse(req, taken, head);
    taken.res = res;
    let r: void | Promise<void>;
    try {
      r = handler(req, res);
    } catch (e) {
      report(e as Error);
      socket.destroy();
      return;
    }
    if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
      (r as Promise<void>).then(undefined, (e: unknown) => { report(e as Error); socket.destroy(); });
    }
  };
}
