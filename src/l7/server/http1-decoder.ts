// The server's request decoder over the project's HTTP/1.1 parser
// (src/l7/http1). One parser and one handler object per connection; per
// message only the head's strings are built (method is interned by the
// parser, header names and values are latin1 slices), body spans are handed
// on as zero-copy subarrays of the socket's buffer.
//
// Error mapping: version errors and non-HTTP protocols → 505, header section
// too large or too many fields → 431, everything else the parser refuses →
// 400. That includes the request-smuggling shapes (CL+TE, TE not ending in
// chunked, obfuscated TE, duplicate Content-Length), which therefore never
// reach a handler or an upstream. An Upgrade request (RFC 9110 §7.8) is
// offered to the sink once it is complete: taken, the bytes after it leave
// HTTP with the connection; refused, parsing carries on in HTTP. CONNECT is
// reported as an upgrade and answered 501 by the server.
import { Http1Parser, type Http1Handler } from '../http1/parser.js';
import { Errno, ErrnoName, Flags, ParserType, Protocol } from '../http1/constants.js';
import { headerName, latin1Cached, latin1Of, requestTargetForm, TargetForm } from '../http1/names.js';
import type { DecodeFailure, DecoderLimits, DecoderSink, RequestDecoder, RequestHead } from './decoder.js';


function statusFor(errno: number, reason: string): number {
  switch (errno) {
    // A well-formed but unsupported version is 505; a malformed start line
    // that the parser reports at the version (e.g. a bare LF after it) is 400.
    case Errno.INVALID_VERSION: return reason === 'Invalid HTTP version' ? 505 : 400;
    case Errno.HEADER_OVERFLOW:
    case Errno.TOO_MANY_HEADERS: return 431;
    default: return 400;
  }
}

class Http1RequestDecoder implements RequestDecoder, Http1Handler {
  private readonly parser: Http1Parser;
  private url = '';
  private raw: string[] = [];
  /** Trailer fields of the current message (RFC 9112 §7.1.2); null until one arrives. */
  private trailers: string[] | null = null;
  private failure: DecodeFailure | null = null;

  constructor(private readonly sink: DecoderSink, limits: DecoderLimits) {
    this.parser = new Http1Parser(ParserType.REQUEST, this, { maxHeaderSize: limits.maxHeaderSize, maxHeaders: limits.maxHeaders });
  }

  get idle(): boolean { return this.parser.idle; }

  onMessageBegin(): void { this.url = ''; this.raw = []; this.trailers = null; }

  onUrl(b: Uint8Array, s: number, e: number): number | void {
    // RFC 9112 §3.2: the target's form must fit the method (authority-form
    // only for CONNECT, '*' only for OPTIONS); anything else is 400.
    if (requestTargetForm(this.parser.method, b, s, e) === TargetForm.INVALID) {
      this.failure = { code: 'HPE_INVALID_URL', reason: 'Invalid request-target', status: 400 };
      return Errno.USER;
    }
    this.url = latin1Cached(b, s, e);
  }

  /** Names are lowercased (common ones interned, no allocation): every comparison above is then a plain ===. */
  onHeader(n: Uint8Array, ns: number, ne: number, v: Uint8Array, vs: number, ve: number): void {
    this.raw.push(headerName(n, ns, ne), latin1Cached(v, vs, ve));
  }

  onHeadersComplete(): number | void {
    const p = this.parser;
    if (p.protocol !== Protocol.HTTP || p.versionMajor !== 1) {
      this.failure = { code: 'HPE_INVALID_VERSION', reason: 'HTTP version not supported', status: 505 };
      return Errno.USER;
    }
    const chunked = (p.flags & Flags.CHUNKED) !== 0;
    // The parser refuses a request whose Transfer-Encoding does not end in
    // chunked only after this callback; refuse it here so the handler never
    // sees it (RFC 9112 §6.3 rule 4, the TE.TE smuggling family).
    if ((p.flags & Flags.TRANSFER_ENCODING) !== 0 && !chunked) {
      this.failure = { code: 'HPE_INVALID_TRANSFER_ENCODING', reason: 'Request has invalid `Transfer-Encoding`', status: 400 };
      return Errno.USER;
    }
    const head: RequestHead = {
      method: p.methodName,
      url: this.url,
      versionMajor: p.versionMajor,
      versionMinor: p.versionMinor,
      rawHeaders: this.raw,
      keepAlive: p.keepAlive,
      contentLength: chunked ? -1 : Math.max(0, p.contentLength),
      chunked,
      upgrade: p.upgrade,
    };
    this.sink.onHead(head);
  }

  onBody(b: Uint8Array, s: number, e: number): void {
    this.sink.onBody(Buffer.isBuffer(b) ? b.subarray(s, e) : Buffer.from(b.subarray(s, e)));
  }

  onTrailer(n: Uint8Array, ns: number, ne: number, v: Uint8Array, vs: number, ve: number): void {
    (this.trailers ??= []).push(headerName(n, ns, ne), latin1Of(v, vs, ve));
  }

  onMessageComplete(): void { this.sink.onEnd(this.trailers); }

  feed(buf: Buffer): DecodeFailure | null {
    let off = 0;
    for (;;) {
      const n = this.parser.feed(buf, off, buf.length - off);
      off += n;
      const errno = this.parser.errno;
      if (errno === Errno.OK) return null;
      if (errno === Errno.PAUSED_UPGRADE) {
        if (this.parser.methodName === 'CONNECT') return null; // the server answers 501 and closes
        // Copied: the transport may reuse its buffer, and the taker keeps these bytes.
        if (this.sink.onUpgrade(Buffer.from(buf.subarray(off)))) return null; // the parser stays paused for good
        this.parser.resumeAfterUpgrade(); // refused: stay in HTTP
        if (off >= buf.length) return null;
        continue;
      }
      if (errno === Errno.PAUSED) { this.parser.resume(); if (off >= buf.length) return null; continue; }
      if (this.failure !== null) return this.failure;
      this.failure = { code: ErrnoName[errno] ?? `HPE_${errno}`, reason: this.parser.reason || 'Bad Request', status: statusFor(errno, this.parser.reason) };
      return this.failure;
    }
  }

  finish(): DecodeFailure | null {
    const e = this.parser.finish();
    if (e === Errno.OK) return null;
    return { code: ErrnoName[e] ?? `HPE_${e}`, reason: this.parser.reason, status: 400 };
  }
}

export function http1RequestDecoder(sink: DecoderSink, limits: DecoderLimits): RequestDecoder {
  return new Http1RequestDecoder(sink, limits);
}
