// HTTP/1.1 wire format: the incremental parser, its constant tables, and the
// serializer. The server (src/l7/server) and the proxy (src/l7/proxy) build on
// these; nothing here does I/O.
//
// Typical use on a connection (one parser and one handler per connection,
// both made once):
//
//   const p = new Http1Parser(ParserType.REQUEST, handler, { maxHeaderSize, maxHeaders });
//   onData(buf):  let off = 0;
//                 while (off < buf.length) {
//                   off += p.feed(buf, off, buf.length - off);
//                   if (p.errno === Errno.OK) break;
//                   if (p.errno === Errno.PAUSED) { keep buf[off..]; stop reading; on drain: p.resume(), feed the rest, even if empty }
//                   else if (p.errno === Errno.PAUSED_UPGRADE) { hand buf[off..] and the socket to the new protocol }
//                   else { answer statusForErrno(p.errno) with Connection: close; destroy with new Http1ParseError(...) }
//                 }
//   onEnd():      p.finish() (completes a read-until-close response; an error means a truncated message)
//
// Handler callbacks return Cb.PAUSE to apply backpressure (e.g. onBody when
// the upstream is full), Cb.SKIP_BODY / Cb.UPGRADE from onHeadersComplete.
// Spans passed to callbacks are only valid during the callback.

import { StrataError } from '../../util/errors.js';
import { Errno, ErrnoName } from './constants.js';

export * from './constants.js';
export { Http1Parser, State, type Http1Handler, type Http1ParserOptions } from './parser.js';
export { headerName, requestTargetForm, TargetForm } from './names.js';
export {
  Http1Writer, STATUS_REASONS, writeRequest, writeResponse,
  type HeaderList, type Http1WriterOptions, type RequestInit, type ResponseInit,
} from './serializer.js';

/**
 * A parse failure, for a server or proxy that destroys a stream with it
 * (undici's habit). `errno` is the parser's number, `status` the HTTP status
 * to answer with before closing.
 */
export class Http1ParseError extends StrataError {
  readonly errno: number;
  readonly reason: string;
  readonly status: number;
  constructor(errno: number, reason: string, readonly offset = -1) {
    super('ERR_STRATA_HTTP1_PARSE', `${ErrnoName[errno] ?? `HPE_${errno}`}: ${reason}`);
    this.errno = errno;
    this.reason = reason;
    this.status = statusForErrno(errno);
  }
}

/**
 * The status a server answers a parse error with: 431 for an oversized header
 * section or too many fields (RFC 6585 §5), 400 for everything else (RFC 9112
 * §§2.2, 5, 6.3). The parser accepts HTTP/0.9 and HTTP/2.0 start lines as
 * llhttp does; a server answers those with 505 itself after onHeadersComplete
 * (check versionMajor/versionMinor and protocol).
 */
export function statusForErrno(errno: number): number {
  switch (errno) {
    case Errno.HEADER_OVERFLOW:
    case Errno.TOO_MANY_HEADERS:
      return 431;
    default:
      return 400;
  }
}
