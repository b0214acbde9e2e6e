// The handler's view of one exchange: ServerRequest (method, url, headers and
// a lazily created body stream) and ServerResponse (writeHead/write/end, plus
// sendFixed for preserialized responses). Both are plain objects owned by the
// connection; the body Readable exists only when the handler asks for it, so
// a GET costs no stream.
import { Readable } from 'node:stream';
import { EventEmitter } from 'node:events';
import type { RequestHead } from './decoder.js';
import { statusLine, statusHasNoBody } from './status.js';
import { StrataError } from '../../util/errors.js';
import type { L7Socket } from '../transport/types.js';

export class HttpServerError extends StrataError {}

/** Hooks the connection gives each exchange; one object per connection, not per request. */
export interface ExchangeOwner {
  /** Body wanted: send 100 Continue if pending, resume reading. */
  wantBody(x: ServerRequest): void;
  /** Bytes for the wire, in order; returns false when the caller should wait for 'drain'. */
  output(x: ServerResponse, chunk: Buffer | string, last: boolean): boolean;
  dateLine(): Buffer;
  /** The connection will close after this response (HTTP/1.0, Connection: close, server closing). */
  mustClose(x: ServerResponse): boolean;
  /** The handler failed or abandoned the response. */
  abort(x: ServerResponse, err: Error): void;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly socket: L7Socket;
}

export class ServerRequest {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  /** Flat [name, value, …]: names lowercased, values as received, in order. */
  readonly rawHeaders: string[];
  readonly contentLength: number;
  readonly chunked: boolean;
  /**
   * Trailer fields of a chunked body (RFC 9112 §7.1.2), flat like rawHeaders;
   * filled in before the body stream ends, empty until then and without any.
   */
  rawTrailers: string[] = EMPTY_TRAILERS;
  /**
   * The request failed after it reached the handler (a malformed body, a
   * timeout, the client gone before its end): the body stream errors, now
   * or as soon as it is asked for, and nothing of the body is to be trusted.
   */
  aborted = false;
  /** @internal why it was aborted */ _error: Error | null = null;
  /** @internal */ _body: Readable | null = null;
  /** @internal body chunks that arrived before the handler asked for the body */ _early: Buffer[] | null = null;
  /** @internal */ _earlyBytes = 0;
  /** @internal */ _ended = false;
  /** @internal */ _expectContinue = false;
  /** @internal */ _continueSent = false;
  /** @internal */ _discard = false;
  private _headers: Record<string, string> | null = null;

  constructor(head: RequestHead, private readonly owner: ExchangeOwner) {
    this.method = head.method;
    this.url = head.url;
    this.httpVersionMajor = head.versionMajor;
    this.httpVersionMinor = head.versionMinor;
    this.httpVersion = head.versionMajor === 1 && head.versionMinor === 1 ? '1.1' : `${head.versionMajor}.${head.versionMinor}`;
    this.rawHeaders = head.rawHeaders;
    this.contentLength = head.contentLength;
    this.chunked = head.chunked;
  }

  get remoteAddress(): string { return this.owner.remoteAddress; }
  get remotePort(): number { return this.owner.remotePort; }
  /** The connection's socket (a TLSSocket on TLS listeners). */
  get socket(): L7Socket { return this.owner.socket; }

  /** Whether the request carries a body. */
  get hasBody(): boolean { return this.chunked || this.contentLength > 0; }

  /** First value of a header; `lname` lowercase. No allocation. */
  header(lname: string): string | undefined {
    const h = this.rawHeaders;
    for (let i = 0; i < h.length; i += 2) {
      if (h[i] === lname) return h[i + 1];
    }
    return undefined;
  }

  /** Lowercased names; repeated fields joined with ", " (set-cookie never appears in requests). */
  get headers(): Record<string, string> {
    if (this._headers === null) {
      const o: Record<string, string> = Object.create(null) as Record<string, string>;
      const h = this.rawHeaders;
      for (let i = 0; i < h.length; i += 2) {
        const k = h[i]!;
        const prev = o[k];
        o[k] = prev === undefined ? h[i + 1]! : `${prev}, ${h[i + 1]!}`;
      }
      this._headers = o;
    }
    return this._headers;
  }

  /**
   * The request body as a stream. Reading it sends 100 Continue when the
   * client asked for one; a slow reader stops the connection from reading
   * (backpressure into TCP).
   */
  get body(): Readable {
    if (this._body === null) {
      const self = this;
      const r = new Readable({
        highWaterMark: 64 * 1024,
        read() { self.owner.wantBody(self); },
      });
      this._body = r;
      if (this._error !== null) { r.destroy(this._error); return r; }
      if (this._early !== null) {
        for (const c of this._early) r.push(c);
        this._early = null;
        this._earlyBytes = 0;
      }
      if (this._ended) r.push(null);
      else if (!this.hasBody) { this._ended = true; r.push(null); }
    }
    return this._body;
  }

  /** @internal The request failed (see aborted): the body errors with err. */
  _abort(err: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this._error = err;
    this._early = null;
    if (this._body !== null) this._body.destroy(err);
  }

  /** Collects the whole body (up to `limit` bytes, else rejects). */
  async text(limit = 1 << 20): Promise<string> { return (await this.buffer(limit)).toString('utf8'); }

  async buffer(limit = 1 << 20): Promise<Buffer> {
    const parts: Buffer[] = [];
    let n = 0;
    for await (const c of this.body) {
      n += (c as Buffer).length;
      if (n > limit) throw new HttpServerError('ERR_STRATA_BODY_TOO_LARGE', `request body exceeds ${limit} bytes`);
      parts.push(c as Buffer);
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }
}

/**
 * A response preserialized once: status line and headers (with
 * Content-Length) and body. Per second, the Date line is spliced in and the
 * whole response cached as one buffer, so serving it allocates nothing.
 */
export class FixedResponse {
  readonly status: number;
  private readonly pre: Buffer;
  private readonly post: Buffer; // "\r\n" + body
  private readonly preClose: Buffer;
  private readonly preKeepAlive: Buffer;
  private cachedDate: Buffer | null = null;
  private full: Buffer = Buffer.alloc(0);
  private headOnly: Buffer = Buffer.alloc(0);

  constructor(status: number, headers: Record<string, string>, body: string | Uint8Array = '') {
    this.status = status;
    const b = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
    let h = statusLine(status);
    for (const [k, v] of Object.entries(headers)) {
      if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) throw new HttpServerError('ERR_STRATA_INVALID_HEADER', `invalid header ${k}`);
      h += `${k}: ${v}\r\n`;
    }
    if (!statusHasNoBody(status)) h += `Content-Length: ${b.length}\r\n`;
    this.pre = Buffer.from(h, 'latin1');
    this.preClose = Buffer.from(`${h}Connection: close\r\n`, 'latin1');
    this.preKeepAlive = Buffer.from(`${h}Connection: keep-alive\r\n`, 'latin1');
    this.post = Buffer.concat([Buffer.from('\r\n'), statusHasNoBody(status) ? Buffer.alloc(0) : b]);
  }

  /** The full response for this Date line (cached while the second lasts). */
  bytes(dateLine: Buffer, close: boolean, head: boolean, http10 = false): Buffer {
    if (close || http10) return Buffer.concat([close ? this.preClose : this.preKeepAlive, dateLine, head ? this.post.subarray(0, 2) : this.post]);
    if (dateLine !== this.cachedDate) {
      this.cachedDate = dateLine;
      this.full = Buffer.concat([this.pre, dateLine, this.post]);
      this.headOnly = this.full.subarray(0, this.pre.length + dateLine.length + 2);
    }
    return head ? this.headOnly : this.full;
  }
}

const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';
const EMPTY_TRAILERS: string[] = [];

export class ServerResponse extends EventEmitter {
  statusCode = 200;
  statusMessage: string | null = null;
  headersSent = false;
  finished = false;
  /** @internal set by the connection once every byte is handed to the socket */ _done = false;
  /** @internal */ _close = false;
  /** @internal The server answered in this response's place (see Connection.answerAndClose): writes are dropped. */ _cutOff = false;
  /** Bytes of this response handed to the connection so far: head, body and chunk framing (what the wire carries for it). */
  wireBytes = 0;
  /**
   * @internal One in-process listener each, without an EventEmitter listener
   * per request (the node proxy's hot path): _onSettled runs just before
   * 'finish' or 'close' (exactly one of the two fires), _onDrain just before 'drain'.
   */
  _onSettled: (() => void) | null = null;
  /** @internal see _onSettled */ _onDrain: (() => void) | null = null;
  /** @internal The client went away before the response was done: runs just before 'close'. */
  _onClose: (() => void) | null = null;

  /** @internal 'finish' (every byte handed to the connection) or 'close' (the connection died first), hooks first. Whoever settles a response calls this once. */
  _emitSettled(aborted: boolean): void {
    this._onSettled?.();
    if (aborted) { this._onClose?.(); this.emit('close'); } else this.emit('finish');
  }

  /** @internal The connection takes writes again. */
  _emitDrain(): void {
    this._onDrain?.();
    this.emit('drain');
  }
  private readonly names: string[] = [];
  private readonly values: string[] = [];
  private chunkedOut = false;
  /** Trailer field lines for the last chunk, already serialized; null without trailers. */
  private trailerLines: string | null = null;
  private contentLength = -1;
  private written = 0;
  private readonly noBody: boolean;

  constructor(readonly req: ServerRequest, private readonly owner: ExchangeOwner) {
    super();
    this.noBody = req.method === 'HEAD';
  }

  setHeader(name: string, value: string | number | readonly string[]): this {
    if (this.headersSent) throw new HttpServerError('ERR_STRATA_HEADERS_SENT', 'headers already sent');
    this.removeHeader(name);
    if (Array.isArray(value)) for (const v of value) this.addHeader(name, String(v));
    else this.addHeader(name, String(value));
    return this;
  }

  /** @internal Appends a field line already validated by our parser (a proxied response's headers). */
  _addTrusted(name: string, value: string): void {
    this.names.push(name);
    this.values.push(value);
  }

  /** Appends a field line (repeats allowed, e.g. Set-Cookie). */
  addHeader(name: string, value: string): this {
    if (this.headersSent) throw new HttpServerError('ERR_STRATA_HEADERS_SENT', 'headers already sent');
    if (!isToken(name)) throw new HttpServerError('ERR_STRATA_INVALID_HEADER', `invalid header name ${JSON.stringify(name)}`);
    // Heads go out as latin1 (as node:http's do): a char above U+00FF has no byte, so it is refused like CR/LF/NUL.
    if (/[\r\n\0\u0100-\uffff]/.test(value)) throw new HttpServerError('ERR_STRATA_INVALID_HEADER', `invalid value for header ${name}`);
    this.names.push(name);
    this.values.push(value);
    return this;
  }

  getHeader(name: string): string | undefined {
    const l = name.toLowerCase();
    for (let i = 0; i < this.names.length; i++) if (this.names[i]!.toLowerCase() === l) return this.values[i];
    return undefined;
  }

  hasHeader(name: string): boolean { return this.getHeader(name) !== undefined; }

  removeHeader(name: string): void {
    const l = name.toLowerCase();
    for (let i = this.names.length - 1; i >= 0; i--) {
      if (this.names[i]!.toLowerCase() === l) { this.names.splice(i, 1); this.values.splice(i, 1); }
    }
  }

  writeHead(status: number, headers?: Record<string, string | number | readonly string[]> | readonly string[]): this {
    if (this.headersSent) throw new HttpServerError('ERR_STRATA_HEADERS_SENT', 'headers already sent');
    if (!Number.isInteger(status) || status < 200 || status > 999) throw new HttpServerError('ERR_STRATA_INVALID_STATUS', `invalid status ${status}`);
    this.statusCode = status;
    if (Array.isArray(headers)) for (let i = 0; i + 1 < headers.length; i += 2) this.addHeader(headers[i]!, headers[i + 1]!);
    else if (headers) for (const [k, v] of Object.entries(headers as Record<string, string | number | readonly string[]>)) this.setHeader(k, v);
    return this;
  }

  private head(endBody: Buffer | null): string {
    const status = this.statusCode;
    let h = this.statusMessage === null ? statusLine(status) : `HTTP/1.1 ${status} ${this.statusMessage}\r\n`;
    let hasCl = false, hasTe = false, hasDate = false;
    for (let i = 0; i < this.names.length; i++) {
      const n = this.names[i]!;
      const l = n.length === 14 || n.length === 17 || n.length === 10 || n.length === 4 ? n.toLowerCase() : '';
      if (l === 'date') hasDate = true; // e.g. a proxied response keeps its origin's Date (RFC 9110 §6.6.1)
      if (l === 'content-length') { hasCl = true; this.contentLength = Number(this.values[i]); }
      else if (l === 'transfer-encoding') { hasTe = true; continue; } // we frame the body ourselves
      else if (l === 'connection') continue; // persistence is ours to decide
      h += `${n}: ${this.values[i]!}\r\n`;
    }
    const noBodyStatus = statusHasNoBody(status);
    if (!noBodyStatus) {
      if (hasCl) { /* the handler's Content-Length stands; write() checks it */ }
      else if (endBody !== null && (this.trailerLines === null || !this.http11)) { this.contentLength = endBody.length; h += `Content-Length: ${endBody.length}\r\n`; }
      else if (this.http11) { this.chunkedOut = true; h += 'Transfer-Encoding: chunked\r\n'; }
      else this._close = true; // HTTP/1.0 without a length: the close delimits the body
      void hasTe;
    }
    if (this._close || this.owner.mustClose(this)) { this._close = true; h += 'Connection: close\r\n'; }
    else if (this.req.httpVersionMinor === 0) h += 'Connection: keep-alive\r\n';
    this.headersSent = true;
    return hasDate ? h + CRLF : h + this.owner.dateLine().toString('latin1') + CRLF;
  }

  /** Writes a body chunk; false means wait for 'drain'. */
  write(chunk: string | Uint8Array): boolean {
    if (this.finished) throw new HttpServerError('ERR_STRATA_WRITE_AFTER_END', 'write after end');
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let ok = true;
    if (!this.headersSent) ok = this.owner.output(this, this.head(null), false);
    if (b.length === 0 || this.noBody || statusHasNoBody(this.statusCode)) return ok;
    this.written += b.length;
    if (this.contentLength >= 0 && this.written > this.contentLength) {
      const e = new HttpServerError('ERR_STRATA_CONTENT_LENGTH_MISMATCH', `wrote ${this.written} bytes, Content-Length is ${this.contentLength}`);
      this.owner.abort(this, e);
      throw e;
    }
    if (this.chunkedOut) {
      this.owner.output(this, b.length.toString(16) + CRLF, false);
      this.owner.output(this, b, false);
      return this.owner.output(this, CRLF, false);
    }
    return this.owner.output(this, b, false);
  }

  end(chunk?: string | Uint8Array): void {
    if (this.finished) return;
    const b = chunk === undefined ? null : typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (!this.headersSent) {
      const head = this.head(b ?? Buffer.alloc(0));
      if (this.chunkedOut) {
        // Only trailers make a body given whole chunked (RFC 9112 §7.1.2): its chunk, then the last chunk with them.
        this.owner.output(this, head, false);
        if (b !== null && b.length > 0) this.write(b);
        this.finished = true;
        this.owner.output(this, this.noBody ? '' : this.lastChunk(), true);
        return;
      }
      this.finished = true;
      if (b !== null && b.length > 0 && !this.noBody && !statusHasNoBody(this.statusCode)) {
        if (this.contentLength >= 0 && b.length !== this.contentLength) {
          const e = new HttpServerError('ERR_STRATA_CONTENT_LENGTH_MISMATCH', `body is ${b.length} bytes, Content-Length is ${this.contentLength}`);
          this.owner.abort(this, e);
          throw e;
        }
        this.owner.output(this, head, false);
        this.owner.output(this, b, true);
      } else this.owner.output(this, head, true);
      return;
    }
    if (b !== null && b.length > 0) this.write(b);
    this.finished = true;
    if (this.contentLength >= 0 && this.written !== this.contentLength && !this.noBody && !statusHasNoBody(this.statusCode)) {
      this.owner.abort(this, new HttpServerError('ERR_STRATA_CONTENT_LENGTH_MISMATCH', `wrote ${this.written} bytes, Content-Length is ${this.contentLength}`));
      return;
    }
    this.owner.output(this, this.chunkedOut && !this.noBody ? this.lastChunk() : '', true);
  }

  private get http11(): boolean { return this.req.httpVersionMajor === 1 && this.req.httpVersionMinor >= 1; }

  private lastChunk(): string { return this.trailerLines === null ? LAST_CHUNK : `0\r\n${this.trailerLines}\r\n`; }

  /**
   * Trailer fields sent after the last chunk (node:http's addTrailers; flat
   * [name, value, …] or a record). They go out only with chunked framing,
   * which a response then gets even for a body given whole to end(); a
   * response framed by Content-Length, or to HTTP/1.0, drops them (RFC 9112
   * §7.1.2: trailers exist only in the chunked coding). Which fields may be
   * trailers is the caller's business (RFC 9110 §6.5.1; the proxy filters).
   */
  addTrailers(fields: Readonly<Record<string, string>> | readonly string[]): void {
    if (this.finished) throw new HttpServerError('ERR_STRATA_WRITE_AFTER_END', 'trailers after end');
    const flat = Array.isArray(fields) ? fields as readonly string[] : Object.entries(fields).flat();
    let s = this.trailerLines ?? '';
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const n = flat[i]!, v = flat[i + 1]!;
      if (!isToken(n)) throw new HttpServerError('ERR_STRATA_INVALID_HEADER', `invalid trailer name ${JSON.stringify(n)}`);
      if (/[\r\n\0]/.test(v)) throw new HttpServerError('ERR_STRATA_INVALID_HEADER', `invalid value for trailer ${n}`);
      s += `${n}: ${v}\r\n`;
    }
    if (s.length > 0) this.trailerLines = s;
  }

  /** Abandons the response: the connection is reset so the client cannot take a partial body for a whole one. */
  destroy(err?: Error): void {
    if (this._done) return;
    this.finished = true;
    this.owner.abort(this, err ?? new HttpServerError('ERR_STRATA_RESPONSE_ABORTED', 'response aborted'));
  }

  /** Sends a preserialized response (the fast path): one buffer, no allocation. */
  sendFixed(f: FixedResponse): void {
    if (this.headersSent) throw new HttpServerError('ERR_STRATA_HEADERS_SENT', 'headers already sent');
    this.statusCode = f.status;
    this.headersSent = true;
    this.finished = true;
    const close = this.owner.mustClose(this);
    this._close = close;
    this.owner.output(this, f.bytes(this.owner.dateLine(), close, this.noBody, this.req.httpVersionMinor === 0), true);
  }
}

const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TOKEN[c] = 1;
for (let c = 65; c <= 90; c++) TOKEN[c] = 1;
for (let c = 97; c <= 122; c++) TOKEN[c] = 1;

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) { const c = s.charCodeAt(i); if (c >= 128 || TOKEN[c] === 0) return false; }
  return true;
}
