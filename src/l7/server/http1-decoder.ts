// The server's request decoder over the project's HTTP/1.1 parser
// (src/l7/http1). One parser and one handler object per connection; per
// message only the head's strings are built (method is interned by the
// parser, header names and values are latin1 slices), body spans are handed
// on as zero-copy subarrays of the socket's buffer.
//
// Error mapping: version errors and non-HTTP protocols → 505, header section
// too large or too many fields → 431, everything else the parser refuses →
// 400. That includes the request-smuggling shapes (CL+TE, TE not ending in
// chunked, obfuscated TE, duplicate Content-Length) and the Host rules of
// RFC 9112 §3.2 (host.ts), which therefore never reach a handler or an
// upstream. The sink can stop the decoder after any message (its onEnd
// returns false): the rest stays unparsed until resume(), which is how the
// server stops taking pipelined requests (server.ts). An Upgrade request (RFC 9110 §7.8) is
// offered to the sink once it is complete: taken, the bytes after it leave
// HTTP with the connection; refused, parsing carries on in HTTP. CONNECT is
// reported as an upgrade and answered 501 by the server.
import { Http1Parser, type Http1Handler } from '../http1/parser.js';
import { Cb, Errno, ErrnoName, Flags, ParserType, Protocol } from '../http1/constants.js';
import { headerName, latin1Cached, latin1Of, requestTargetForm, TargetForm } from '../http1/names.js';
import type { DecodeFailure, DecoderLimits, DecoderSink, RequestDecoder, RequestHead } from './decoder.js';
import { HostIssue, isValidHost } from './host.js';


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

const enum Stop { NO, ASKED, STOPPED }

const HOST_REASON: Record<HostIssue, string> = {
  [HostIssue.MISSING]: 'Missing Host header',
  [HostIssue.REPEATED]: 'More than one Host header',
  [HostIssue.INVALID]: 'Invalid Host header',
};

class Http1RequestDecoder implements RequestDecoder, Http1Handler {
  private readonly parser: Http1Parser;
  private url = '';
  private raw: string[] = [];
  /** Trailer fields of the current message (RFC 9112 §7.1.2); null until one arrives. */
  private trailers: string[] | null = null;
  private failure: DecodeFailure | null = null;
  /** Stopped by the sink after a message (see RequestDecoder.feed), and the bytes kept meanwhile. */
  private stop: Stop = Stop.NO;
  private kept: Buffer | null = null;
  /** The last Host value found valid on this connection. */
  private validHost = '';

  constructor(private readonly sink: DecoderSink, limits: DecoderLimits) {
    this.parser = new Http1Parser(ParserType.REQUEST, this, { maxHeaderSize: limits.maxHeaderSize, maxHeaders: limits.maxHeaders });
  }

  get idle(): boolean { return this.parser.idle && this.kept === null; }
  get stopped(): boolean { return this.stop !== Stop.NO; }

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
    // RFC 9112 §3.2 (host.ts): one valid Host, required in HTTP/1.1.
    const hosts = p.hostCount;
    const hostIssue = hosts === 1 ? this.checkHost() : hosts > 1 ? HostIssue.REPEATED : p.versionMinor >= 1 ? HostIssue.MISSING : null;
    if (hostIssue !== null) {
      this.failure = { code: hostIssue, reason: HOST_REASON[hostIssue], status: 400 };
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

  /** The one Host value's issue, or null; the last valid value is remembered (keep-alive requests repeat it). */
  private checkHost(): HostIssue | null {
    const h = this.raw;
    for (let i = 0; i < h.length; i += 2) {
      if (h[i] !== 'host') continue;
      const v = h[i + 1]!;
      if (v === this.validHost) return null;
      if (!isValidHost(v)) return HostIssue.INVALID;
      this.validHost = v;
      return null;
    }
    return HostIssue.MISSING; // not reached: the parser counted one
  }

  onBody(b: Uint8Array, s: number, e: number): void {
    this.sink.onBody(Buffer.isBuffer(b) ? b.subarray(s, e) : Buffer.from(b.subarray(s, e)));
  }

  onTrailer(n: Uint8Array, ns: number, ne: number, v: Uint8Array, vs: number, ve: number): void {
    (this.trailers ??= []).push(headerName(n, ns, ne), latin1Of(v, vs, ve));
  }

  onMessageComplete(): number | void {
    if (this.sink.onEnd(this.trailers)) return;
    this.stop = Stop.ASKED;
    return Cb.PAUSE;
  }

  feed(buf: Buffer): DecodeFailure | null {
    if (this.stop === Stop.STOPPED) {
      // Whoever stopped us also stopped the transport's reads; a chunk already on its way is kept with the rest.
      this.kept = this.kept === null ? buf : Buffer.concat([this.kept, buf]);
      return null;
    }
    return this.parse(buf);
  }

  resume(): DecodeFailure | null {
    if (this.stop !== Stop.STOPPED) return null;
    this.stop = Stop.NO;
    const k = this.kept;
    this.kept = null;
    return k === null ? null : this.parse(k);
  }

  private parse(buf: Buffer): DecodeFailure | null {
    let off = 0;
    for (;;) {
      const n = this.parser.feed(buf, off, buf.length - off);
      off += n;
      const errno = this.parser.errno;
      if (errno === Errno.OK) return null;
      if (errno === Errno.PAUSED_UPGRADE) {
        this.stop = Stop.NO; // an upgrade ends HTTP parsing (or resumes it, refused): nothing to keep
        if (this.parser.methodName === 'CONNECT') return null; // the server answers 501 and closes
        // Copied: the transport may reuse its buffer, and the taker keeps these bytes.
        if (this.sink.onUpgrade(Buffer.from(buf.subarray(off)))) return null; // the parser stays paused for good
        this.parser.resumeAfterUpgrade(); // refused: stay in HTTP
        if (off >= buf.length) return null;
        continue;
      }
      if (errno === Errno.PAUSED) {
        this.parser.resume();
        if (this.stop === Stop.ASKED) {
          this.stop = Stop.STOPPED;
          if (off < buf.length) this.kept = buf.subarray(off);
          return null;
        }
        if (off >= buf.length) return null;
        continue;
      }
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
