// Incremental HTTP/1.1 parser for requests and responses (RFC 9112 message
// syntax, RFC 9110 semantics), written after llhttp: named states, numbered
// errors, flags and leniency bits in `as const` tables (constants.ts), one
// handler object created once per connection, and all per-call context in
// fields rather than closures.
//
// Contract
// - feed(buf, off, len) may be called with any split of the stream; it returns
//   the bytes consumed. Fewer than `len` means the parser stopped: look at
//   `errno` (PAUSED -> resume() then feed the rest; PAUSED_UPGRADE /
//   PAUSED_H2_UPGRADE -> the rest belongs to another protocol; anything else
//   is a parse error, the connection must be answered 400/431 and closed).
// - Spans are (buffer, start, end) over the caller's input and valid only
//   during the callback. Body bytes are never copied. A start-line token, a
//   header name or value, or a chunk extension is copied into a per-parser
//   scratch buffer only when it straddles a feed() boundary or a pause.
// - Strict by default. Where llhttp is more lenient than RFC 9112 and we are
//   not, the difference is noted at the point of the check (obs-fold).
// - Identical duplicate Content-Length headers are rejected like llhttp does
//   (RFC 9110 §8.6 allows accepting them; rejecting is the smuggling-safe
//   choice and what Node, llhttp and Envoy's default do).

import {
  Cb, Errno, Flags, Lenient, LENIENT_IMPLEMENTED, Method, METHOD_NAMES, METHODS_HTTP, METHODS_RTSP, ParserType, Protocol,
} from './constants.js';
import { InvalidArgumentError } from '../../util/errors.js';
import { requestTargetForm, TargetForm } from './names.js';

/** Events. Every callback may return Cb.PAUSE; any other non-zero value fails with HPE_USER. */
export interface Http1Handler {
  onMessageBegin?(): number | void;
  /** Request: the method is known (parser.method, parser.methodName). */
  onMethod?(): number | void;
  /** Request target, whole. */
  onUrl?(buf: Uint8Array, start: number, end: number): number | void;
  /** Protocol and version are known (parser.protocol, versionMajor, versionMinor). */
  onVersion?(): number | void;
  /** Response: reason phrase (status code is parser.statusCode). */
  onStatus?(buf: Uint8Array, start: number, end: number): number | void;
  /** One header field line, name and value whole; the value has no leading or trailing OWS. */
  onHeader?(name: Uint8Array, ns: number, ne: number, value: Uint8Array, vs: number, ve: number): number | void;
  /** May return Cb.SKIP_BODY, Cb.UPGRADE or Cb.PAUSE. */
  onHeadersComplete?(): number | void;
  onBody?(buf: Uint8Array, start: number, end: number): number | void;
  /** Chunk size line parsed (size 0 is the last chunk; trailers follow). */
  onChunkHeader?(size: number): number | void;
  /** One chunk extension; a missing value is an empty span. A quoted value keeps its quotes. */
  onChunkExtension?(name: Uint8Array, ns: number, ne: number, value: Uint8Array, vs: number, ve: number): number | void;
  onChunkComplete?(): number | void;
  /** One trailer field line after the last chunk. */
  onTrailer?(name: Uint8Array, ns: number, ne: number, value: Uint8Array, vs: number, ve: number): number | void;
  onMessageComplete?(): number | void;
}

export interface Http1ParserOptions {
  /** Bytes of start line plus header section (and, separately, of the trailer section). Default 16 KiB, like Node. */
  maxHeaderSize?: number;
  /** Header field lines per message (and trailer lines). Default 100, like Envoy. */
  maxHeaders?: number;
  /** Bytes of chunk extensions per chunk. Default 16 KiB. */
  maxChunkExtensionSize?: number;
  /** Bit set of Lenient.*; 0 (strict) by default. */
  lenient?: number;
}

/** Named parser states (RFC 9112 grammar positions). */
export const State = {
  START: 0, // between messages; CR/LF tolerated (RFC 9112 §2.2)
  REQ_METHOD: 1,
  REQ_URL_START: 2,
  REQ_URL: 3,
  PROTOCOL: 4,
  VERSION_MAJOR: 5,
  VERSION_DOT: 6,
  VERSION_MINOR: 7,
  REQ_LINE_CR: 8,
  REQ_LINE_LF: 9,
  RES_SP_AFTER_VERSION: 10,
  RES_STATUS: 11,
  RES_AFTER_STATUS: 12,
  RES_REASON: 13,
  RES_LINE_LF: 14,
  FIELD_START: 15,
  FIELD_NAME: 16,
  FIELD_VALUE_START: 17,
  FIELD_VALUE: 18,
  FIELD_VALUE_LF: 19,
  HEADERS_LF: 20,
  BODY_IDENTITY: 21,
  BODY_EOF: 22,
  CHUNK_SIZE_START: 23,
  CHUNK_SIZE: 24,
  CHUNK_SIZE_OWS: 25,
  CHUNK_EXT_NAME_START: 26,
  CHUNK_EXT_NAME: 27,
  CHUNK_EXT_VALUE_START: 28,
  CHUNK_EXT_VALUE: 29,
  CHUNK_EXT_QUOTED: 30,
  CHUNK_EXT_QUOTED_ESC: 31,
  CHUNK_EXT_AFTER_QUOTED: 32,
  CHUNK_SIZE_LF: 33,
  CHUNK_DATA: 34,
  CHUNK_DATA_CR: 35,
  CHUNK_DATA_LF: 36,
  CLOSED: 37, // message done, connection not persistent
  DEAD: 38, // error or upgrade: feed() refuses input
  MESSAGE_DONE: 39, // all bytes of the message seen; onMessageComplete not yet called
  PRI_PREFACE: 40, // "PRI * HTTP/2.0" seen: the rest of the HTTP/2 connection preface
  FIELD_EMPTY_VALUE_LF: 41, // "name:" OWS CR seen
} as const;
type State = (typeof State)[keyof typeof State];

const CR = 0x0d, LF = 0x0a, SP = 0x20, HTAB = 0x09, COLON = 0x3a, SEMI = 0x3b, EQ = 0x3d,
  DQUOTE = 0x22, BSLASH = 0x5c, SLASH = 0x2f, DOT = 0x2e;

// Character classes, one byte per code point.
const TOKEN = new Uint8Array(256); // tchar, RFC 9110 §5.6.2
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  TOKEN[c] = c < 128 && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(ch) ? 1 : 0;
}
const VALUE = new Uint8Array(256); // field-vchar / SP / HTAB (RFC 9110 §5.5)
const VALUE_LENIENT = new Uint8Array(256); // anything but CR, LF, NUL
const URL = new Uint8Array(256); // visible ASCII (RFC 9112 §3.2: request-target has no SP/CTL)
const REASON = new Uint8Array(256); // HTAB / SP / VCHAR / obs-text
const QDTEXT = new Uint8Array(256);
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 256; c++) {
  VALUE[c] = c === HTAB || (c >= 0x20 && c !== 0x7f) ? 1 : 0;
  VALUE_LENIENT[c] = c !== CR && c !== LF && c !== 0 ? 1 : 0;
  URL[c] = c > 0x20 && c < 0x7f ? 1 : 0;
  REASON[c] = VALUE[c]!;
  QDTEXT[c] = c === HTAB || c === SP || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80 ? 1 : 0;
}
for (let c = 0x30; c <= 0x39; c++) HEX[c] = c - 0x30;
for (let c = 0x61; c <= 0x66; c++) HEX[c] = c - 0x61 + 10;
for (let c = 0x41; c <= 0x46; c++) HEX[c] = c - 0x41 + 10;

// Method lookup: byte strings grouped by length, compared without building a string.
const METHOD_BYTES: Uint8Array[] = METHOD_NAMES.map((n) => Uint8Array.from(n, (ch) => ch.charCodeAt(0)));
const METHODS_BY_LEN: number[][] = [];
METHOD_BYTES.forEach((b, i) => { (METHODS_BY_LEN[b.length] ??= []).push(i); });
const MAX_METHOD_LEN = 16;
const HTTP_METHOD_SET = new Uint8Array(64);
for (const m of METHODS_HTTP) HTTP_METHOD_SET[m] = 1;
const RTSP_METHOD_SET = new Uint8Array(64);
for (const m of METHODS_RTSP) RTSP_METHOD_SET[m] = 1;

function lookupMethod(b: Uint8Array, s: number, e: number): number {
  const cands = METHODS_BY_LEN[e - s];
  if (cands === undefined) return -1;
  outer: for (let k = 0; k < cands.length; k++) {
    const m = METHOD_BYTES[cands[k]!]!;
    for (let i = 0; i < m.length; i++) if (b[s + i] !== m[i]) continue outer;
    return cands[k]!;
  }
  return -1;
}

// Header names whose values drive framing, matched case-insensitively.
const H_OTHER = 0, H_CONTENT_LENGTH = 1, H_TRANSFER_ENCODING = 2, H_CONNECTION = 3, H_UPGRADE = 4, H_HOST = 5;
const bytesOf = (s: string): Uint8Array => Uint8Array.from(s, (ch) => ch.charCodeAt(0));
const N_CONTENT_LENGTH = bytesOf('content-length');
const N_TRANSFER_ENCODING = bytesOf('transfer-encoding');
const N_CONNECTION = bytesOf('connection');
const N_PROXY_CONNECTION = bytesOf('proxy-connection');
const N_UPGRADE = bytesOf('upgrade');
const N_HOST = bytesOf('host');
const T_CHUNKED = bytesOf('chunked');
const T_CLOSE = bytesOf('close');
const T_KEEP_ALIVE = bytesOf('keep-alive');
const T_UPGRADE = bytesOf('upgrade');

/** Case-insensitive equality of b[s..e) with a lowercase ASCII pattern (tchar input only). */
function ieq(b: Uint8Array, s: number, e: number, lower: Uint8Array): boolean {
  if (e - s !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if ((b[s + i]! | 0x20) !== lower[i]) return false;
  return true;
}

function headerKind(b: Uint8Array, s: number, e: number): number {
  switch (e - s) {
    case 14: return ieq(b, s, e, N_CONTENT_LENGTH) ? H_CONTENT_LENGTH : H_OTHER;
    case 17: return ieq(b, s, e, N_TRANSFER_ENCODING) ? H_TRANSFER_ENCODING : H_OTHER;
    case 10: return ieq(b, s, e, N_CONNECTION) ? H_CONNECTION : H_OTHER;
    // llhttp treats Proxy-Connection like Connection; so do we, for keep-alive only.
    case 16: return ieq(b, s, e, N_PROXY_CONNECTION) ? H_CONNECTION : H_OTHER;
    case 7: return ieq(b, s, e, N_UPGRADE) ? H_UPGRADE : H_OTHER;
    case 4: return ieq(b, s, e, N_HOST) ? H_HOST : H_OTHER;
    default: return H_OTHER;
  }
}

/**
 * A token that is a span of the current input, or of the scratch buffer once
 * it straddled a feed boundary. One instance per role, made once per parser.
 */
class Token {
  start = 0;
  stop = 0;
  active = false;
  done = false;
  inScratch = false;
  scratch = new Uint8Array(0);
  slen = 0;
  // view after finish()
  vb: Uint8Array = this.scratch;
  vs = 0;
  ve = 0;

  begin(p: number): void {
    this.start = p;
    this.active = true;
    this.done = false;
    this.inScratch = false;
    this.slen = 0;
  }

  private append(b: Uint8Array, s: number, e: number): void {
    const n = e - s;
    if (n <= 0) return;
    if (this.slen + n > this.scratch.length) {
      // grow in page-sized steps
      const grown = new Uint8Array((this.slen + n + 4095) & ~4095);
      grown.set(this.scratch.subarray(0, this.slen));
      this.scratch = grown;
    }
    this.scratch.set(b.subarray(s, e), this.slen);
    this.slen += n;
  }

  /** The input buffer is going away at `end`: keep what we have. */
  spill(b: Uint8Array, end: number): void {
    if (!this.active) return;
    if (this.done) {
      if (!this.inScratch) {
        this.slen = 0;
        this.append(b, this.start, this.stop);
        this.inScratch = true;
        this.vb = this.scratch;
        this.vs = 0;
        this.ve = this.slen;
      }
      return;
    }
    if (!this.inScratch) this.slen = 0;
    this.append(b, this.start, end);
    this.inScratch = true;
  }

  /** A new input buffer starts at `off`. */
  rebase(off: number): void {
    if (this.active && !this.done && this.inScratch) this.start = off;
  }

  finish(b: Uint8Array, p: number): void {
    this.done = true;
    if (this.inScratch) {
      this.append(b, this.start, p);
      this.vb = this.scratch;
      this.vs = 0;
      this.ve = this.slen;
    } else {
      this.stop = p;
      this.vb = b;
      this.vs = this.start;
      this.ve = p;
    }
  }

  /** Length so far (for bounds); valid while active. */
  lengthAt(p: number): number {
    return this.inScratch ? this.slen + (this.done ? 0 : p - this.start) : (this.done ? this.stop : p) - this.start;
  }

  clear(): void {
    this.active = false;
    this.done = false;
    this.inScratch = false;
  }
}

const EMPTY = new Uint8Array(0);
const PRI_REST = bytesOf('\r\nSM\r\n\r\n');
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

export class Http1Parser {
  readonly type: ParserType;
  handler: Http1Handler;
  lenient: number;
  readonly maxHeaderSize: number;
  readonly maxHeaders: number;
  readonly maxChunkExtensionSize: number;

  // --- outcome of the last feed() ---
  errno: number = Errno.OK;
  reason = '';
  /** Offset in the last feed()'s buffer where the error or pause happened. */
  errorOffset = -1;

  // --- the current message ---
  state: State = State.START;
  method = -1;
  methodName = '';
  protocol: Protocol = Protocol.HTTP;
  versionMajor = 0;
  versionMinor = 0;
  statusCode = 0;
  flags = 0;
  /** Declared Content-Length, or -1 when absent. */
  contentLength = -1;
  /** Set at headers complete: the connection may carry another message after this one. */
  keepAlive = false;
  /** Set at headers complete: the bytes after this message are another protocol (CONNECT, 101, Upgrade). */
  upgrade = false;
  headerCount = 0;
  /**
   * Host field lines seen (requests). RFC 9112 §3.2: a server answers 400 to an
   * HTTP/1.1 request with no Host or more than one; that check is the server's,
   * the count is here so it costs nothing extra.
   */
  hostCount = 0;
  /** Messages completed since construction or reset(). */
  messages = 0;

  private remaining = 0;
  private headBytes = 0;
  private headMark = 0; // offset in the current buffer where head counting resumed
  private inHead = false;
  private protoCode = 0;
  private protoLen = 0;
  private statusDigits = 0;
  private chunkExtBytes = 0;
  private teCodings = 0; // transfer codings named across Transfer-Encoding lines
  private inTrailer = false;
  private sawHeaderLine = false;
  private buf: Uint8Array = EMPTY;
  /** Response parsing: methods of the requests awaiting a response (FIFO ring). */
  private reqMethods = new Int16Array(64);
  private reqHead = 0;
  private reqCount = 0;

  // tokens: start-line tokens and header names share `a`; values and chunk-ext values use `b`.
  private readonly a = new Token();
  private readonly b = new Token();

  constructor(type: ParserType, handler: Http1Handler = {}, opts: Http1ParserOptions = {}) {
    this.type = type;
    this.handler = handler;
    this.lenient = opts.lenient ?? 0;
    if (this.lenient & ~LENIENT_IMPLEMENTED) {
      // A leniency we do not implement must not be silently ignored: the caller
      // would believe it accepts what we reject (or the reverse).
      throw new InvalidArgumentError(`lenient flags 0x${(this.lenient & ~LENIENT_IMPLEMENTED).toString(16)} are not implemented`);
    }
    this.maxHeaderSize = opts.maxHeaderSize ?? 16 * 1024;
    this.maxHeaders = opts.maxHeaders ?? 100;
    this.maxChunkExtensionSize = opts.maxChunkExtensionSize ?? 16 * 1024;
  }

  /** Back to the start of a stream; keeps type, handler and options. */
  reset(): void {
    this.errno = Errno.OK;
    this.reason = '';
    this.errorOffset = -1;
    this.state = State.START;
    this.messages = 0;
    this.reqHead = 0;
    this.reqCount = 0;
    this.a.clear();
    this.b.clear();
    this.inHead = false;
    this.resetMessage();
  }

  /**
   * Response parsing: record the method of a request sent on this connection,
   * in order. HEAD makes the matching response bodiless; a 2xx to CONNECT is a
   * tunnel. Without a recorded method the response is read as if to GET.
   */
  expectResponseTo(method: number): void {
    if (this.reqCount === this.reqMethods.length) {
      const grown = new Int16Array(this.reqMethods.length * 2);
      for (let i = 0; i < this.reqCount; i++) grown[i] = this.reqMethods[(this.reqHead + i) % this.reqMethods.length]!;
      this.reqMethods = grown;
      this.reqHead = 0;
    }
    this.reqMethods[(this.reqHead + this.reqCount) % this.reqMethods.length] = method;
    this.reqCount++;
  }

  /**
   * Clear a PAUSED state; then call feed() with the unconsumed bytes, even
   * when there are none: an event held back by the pause (onMessageComplete
   * after the last body byte) is delivered by that call.
   */
  resume(): void {
    if (this.errno === Errno.PAUSED) {
      this.errno = Errno.OK;
      this.reason = '';
      this.errorOffset = -1;
    }
  }

  /** After PAUSED_UPGRADE: go on parsing HTTP (e.g. the upgrade was refused). */
  resumeAfterUpgrade(): void {
    if (this.errno === Errno.PAUSED_UPGRADE) {
      this.errno = Errno.OK;
      this.reason = '';
      this.errorOffset = -1;
      this.state = State.START;
      this.resetMessage();
    }
  }

  /** True when the input so far ends on a message boundary (or in the middle of nothing). */
  get idle(): boolean {
    return this.state === State.START || this.state === State.CLOSED;
  }

  /**
   * Body bytes still expected: of the Content-Length body, or of the current
   * chunk. 0 outside a body; -1 for a body that runs until close.
   */
  get bodyRemaining(): number {
    if (this.state === State.BODY_IDENTITY || this.state === State.CHUNK_DATA) return this.remaining;
    return this.state === State.BODY_EOF ? -1 : 0;
  }

  /** True when the current message's body runs until the connection closes (RFC 9112 §6.3 rule 8). */
  get bodyUntilEof(): boolean {
    return this.state === State.BODY_EOF;
  }

  /**
   * The peer closed the stream. Completes a read-until-close body; returns
   * Errno.OK when the stream ended cleanly, INVALID_EOF_STATE when it ended
   * inside a message.
   */
  finish(): number {
    if (this.errno !== Errno.OK) return this.errno;
    switch (this.state) {
      case State.START:
      case State.CLOSED:
        return Errno.OK;
      case State.MESSAGE_DONE: // paused right before onMessageComplete
      {
        this.messageComplete(-1);
        const e: number = this.errno; // set by messageComplete (upgrade, pause, user error)
        return e === Errno.PAUSED_UPGRADE || e === Errno.PAUSED ? Errno.OK : e;
      }
      case State.BODY_EOF: {
        this.state = State.CLOSED;
        this.messages++;
        const r = this.handler.onMessageComplete?.();
        if (r && r !== Cb.PAUSE) return this.setError(Errno.USER, 'onMessageComplete failed', -1);
        return Errno.OK;
      }
      default:
        return this.setError(Errno.INVALID_EOF_STATE, 'Invalid EOF state', -1);
    }
  }

  private setError(code: number, reason: string, at: number): number {
    this.errno = code;
    this.reason = reason;
    this.errorOffset = at;
    this.state = State.DEAD;
    return code;
  }

  private resetMessage(): void {
    this.method = -1;
    this.methodName = '';
    this.protocol = Protocol.HTTP;
    this.versionMajor = 0;
    this.versionMinor = 0;
    this.statusCode = 0;
    this.flags = 0;
    this.contentLength = -1;
    this.keepAlive = false;
    this.upgrade = false;
    this.headerCount = 0;
    this.hostCount = 0;
    this.teCodings = 0;
    this.remaining = 0;
    this.headBytes = 0;
    this.protoCode = 0;
    this.protoLen = 0;
    this.statusDigits = 0;
    this.inTrailer = false;
    this.sawHeaderLine = false;
  }

  /**
   * Parse `len` bytes of `buf` from `off`. Returns the number consumed; fewer
   * than `len` only when errno is set (error, PAUSED, or an upgrade).
   */
  feed(buf: Uint8Array, off = 0, len: number = buf.length - off): number {
    if (this.errno !== Errno.OK) return 0;
    this.buf = buf;
    this.a.rebase(off);
    this.b.rebase(off);
    this.headMark = off;
    const end = off + len;
    const p = this.run(buf, off, end);
    // Suspend: keep straddling tokens and account the head bytes seen.
    if (this.inHead && this.state !== State.DEAD) {
      this.headBytes += p - this.headMark;
      if (this.headBytes > this.maxHeaderSize && this.errno === Errno.OK) {
        this.setError(Errno.HEADER_OVERFLOW, 'Header section too large', p);
        return p - off;
      }
    }
    if (this.state !== State.DEAD) {
      this.a.spill(buf, p);
      this.b.spill(buf, p);
    }
    this.buf = EMPTY;
    return p - off;
  }

  /** Stop with an error at p; returns p so the caller reports bytes consumed. */
  private fail(code: number, reason: string, p: number): number {
    this.setError(code, reason, p);
    return p;
  }

  /** A callback's return value at p (the offset after the event); -1 means carry on. */
  private cbResult(r: number | void, p: number, what: string): number {
    if (!r) return -1;
    if (r === Cb.PAUSE) {
      this.errno = Errno.PAUSED;
      this.reason = `Paused in ${what}`;
      this.errorOffset = p;
      return p;
    }
    return this.fail(Errno.USER, `User callback error in ${what}`, p);
  }

  private enterHead(p: number): void {
    this.inHead = true;
    this.headBytes = 0;
    this.headMark = p;
  }

  /** Leave the head at p; false (with the error set) when it was too large. */
  private leaveHead(p: number): boolean {
    this.inHead = false;
    this.headBytes += p - this.headMark;
    if (this.headBytes > this.maxHeaderSize) {
      this.setError(Errno.HEADER_OVERFLOW, 'Header section too large', p);
      return false;
    }
    return true;
  }

  private run(buf: Uint8Array, p: number, end: number): number {
    const h = this.handler;
    let r: number;
    while (p < end || this.state === State.MESSAGE_DONE) {
      switch (this.state) {
        case State.MESSAGE_DONE: {
          if ((r = this.messageComplete(p)) >= 0) return r;
          break;
        }

        case State.START: {
          const c = buf[p]!;
          if (c === CR || c === LF) { p++; break; }
          this.resetMessage();
          this.enterHead(p);
          this.state = this.type === ParserType.REQUEST ? State.REQ_METHOD : State.PROTOCOL;
          this.a.begin(p);
          if ((r = this.cbResult(h.onMessageBegin?.(), p, 'onMessageBegin')) >= 0) return r;
          break;
        }

        case State.CLOSED: {
          // Stray CR/LF after the last message are tolerated like between messages (llhttp does too).
          if (buf[p] === CR || buf[p] === LF) { p++; break; }
          if (this.lenient & (Lenient.KEEP_ALIVE | Lenient.DATA_AFTER_CLOSE)) { this.state = State.START; break; }
          return this.fail(Errno.CLOSED_CONNECTION, 'Data after `Connection: close`', p);
        }

        case State.DEAD:
          return p;

        // ---- request line: method SP request-target SP HTTP-version CRLF ----
        case State.REQ_METHOD: {
          while (p < end && TOKEN[buf[p]!]) p++;
          if (p === end) {
            if (this.a.lengthAt(p) > MAX_METHOD_LEN) return this.fail(Errno.INVALID_METHOD, 'Invalid method', p);
            return p;
          }
          if (buf[p] !== SP) return this.fail(Errno.INVALID_METHOD, 'Expected space after method', p);
          this.a.finish(buf, p);
          const m = lookupMethod(this.a.vb, this.a.vs, this.a.ve);
          this.a.clear();
          if (m < 0) return this.fail(Errno.INVALID_METHOD, 'Invalid method', p);
          this.method = m;
          this.methodName = METHOD_NAMES[m]!;
          p++;
          this.state = State.REQ_URL_START;
          if ((r = this.cbResult(h.onMethod?.(), p, 'onMethod')) >= 0) return r;
          break;
        }

        case State.REQ_URL_START: {
          const c = buf[p]!;
          if (!URL[c]) {
            // llhttp skips extra spaces and takes an empty target for CONNECT; RFC 9112 §3 does not.
            if (c === SP) return this.fail(Errno.INVALID_URL, 'Unexpected space before request-target', p);
            if (c === CR || c === LF) return this.fail(Errno.INVALID_URL, 'Empty request-target', p);
            return this.fail(Errno.INVALID_URL, 'Invalid char in url', p);
          }
          this.a.begin(p);
          this.state = State.REQ_URL;
          break;
        }

        case State.REQ_URL: {
          while (p < end && URL[buf[p]!]) p++;
          if (p === end) return p;
          const c = buf[p]!;
          if (c === LF) {
            // llhttp takes a bare LF here as the end of an HTTP/0.9 request line
            // and parses what follows as headers; RFC 9112 §2.2 lets us refuse.
            return this.fail(Errno.INVALID_URL, 'Bare LF after request-target', p);
          }
          if (c !== SP && c !== CR) return this.fail(Errno.INVALID_URL, 'Invalid char in url path', p);
          this.a.finish(buf, p);
          const u = this.a;
          // RFC 9112 §3.2: origin-form or absolute-form; authority-form only
          // for CONNECT. Asterisk-form is accepted for any method here, as
          // llhttp does (PRI's HTTP/2 preface and SSDP's M-SEARCH use it); a
          // server wanting RFC 9112's OPTIONS-only rule applies requestTargetForm().
          if (requestTargetForm(this.method, u.vb, u.vs, u.ve) === TargetForm.INVALID &&
              !(u.ve - u.vs === 1 && u.vb[u.vs] === 0x2a)) {
            return this.fail(Errno.INVALID_URL, this.method === Method.CONNECT ? 'CONNECT needs authority-form host:port' : 'Invalid request-target form', p);
          }
          const rr = h.onUrl?.(u.vb, u.vs, u.ve);
          this.a.clear();
          if (c === SP) {
            p++;
            this.state = State.PROTOCOL;
            this.a.begin(p);
          } else {
            // HTTP/0.9 simple-request form, as llhttp accepts it; a server should answer 505.
            this.versionMajor = 0;
            this.versionMinor = 9;
            p++;
            this.state = State.REQ_LINE_LF;
          }
          if ((r = this.cbResult(rr, p, 'onUrl')) >= 0) return r;
          break;
        }

        case State.PROTOCOL: {
          // Fast path for the common "HTTP/1.1" and "HTTP/1.0" in one buffer:
          // same checks as the byte-wise states below, one dispatch instead of ten.
          if (this.protoLen === 0 && end - p >= 8 && buf[p] === 0x48 && buf[p + 1] === 0x54 && buf[p + 2] === 0x54 &&
              buf[p + 3] === 0x50 && buf[p + 4] === SLASH && buf[p + 5] === 0x31 && buf[p + 6] === DOT &&
              (buf[p + 7] === 0x31 || buf[p + 7] === 0x30) &&
              (this.type === ParserType.RESPONSE || HTTP_METHOD_SET[this.method])) {
            this.protocol = Protocol.HTTP;
            this.versionMajor = 1;
            this.versionMinor = buf[p + 7]! - 0x30;
            this.a.clear();
            p += 8;
            this.state = this.type === ParserType.REQUEST ? State.REQ_LINE_CR : State.RES_SP_AFTER_VERSION;
            if ((r = this.cbResult(h.onVersion?.(), p, 'onVersion')) >= 0) return r;
            break;
          }
          const c = buf[p]!;
          if (c === SP && this.protoLen === 0) {
            // llhttp skips extra spaces here; RFC 9112 §3 has exactly one SP.
            return this.fail(Errno.INVALID_CONSTANT, 'Unexpected space before HTTP-version', p);
          }
          if (c === SLASH) {
            let proto = -1;
            if (this.protoLen === 4 && this.protoCode === 0x48545450) proto = Protocol.HTTP;
            else if (this.protoLen === 4 && this.protoCode === 0x52545350) proto = Protocol.RTSP;
            else if (this.protoLen === 3 && this.protoCode === 0x494345) proto = Protocol.ICE;
            if (proto < 0) return this.fail(Errno.INVALID_CONSTANT, 'Expected HTTP/, RTSP/ or ICE/', p);
            if (this.type === ParserType.REQUEST) {
              const m = this.method;
              if (proto === Protocol.ICE && m !== Method.SOURCE) return this.fail(Errno.INVALID_CONSTANT, 'Expected SOURCE method for ICE/x.x request', p);
              if (proto === Protocol.RTSP && !RTSP_METHOD_SET[m]) return this.fail(Errno.INVALID_CONSTANT, 'Invalid method for RTSP/x.x request', p);
              if (proto === Protocol.HTTP && !HTTP_METHOD_SET[m]) return this.fail(Errno.INVALID_CONSTANT, 'Invalid method for HTTP/x.x request', p);
            }
            this.protocol = proto as Protocol;
            this.a.clear();
            p++;
            this.state = State.VERSION_MAJOR;
            break;
          }
          if (c < 0x41 || c > 0x5a || this.protoLen >= 4) return this.fail(Errno.INVALID_CONSTANT, 'Expected HTTP/, RTSP/ or ICE/', p);
          this.protoCode = (this.protoCode << 8) | c;
          this.protoLen++;
          p++;
          break;
        }

        case State.VERSION_MAJOR: {
          const c = buf[p]!;
          if (c < 0x30 || c > 0x39) return this.fail(Errno.INVALID_VERSION, 'Invalid major version', p);
          this.versionMajor = c - 0x30;
          p++;
          this.state = State.VERSION_DOT;
          break;
        }

        case State.VERSION_DOT: {
          if (buf[p] !== DOT) return this.fail(Errno.INVALID_VERSION, 'Expected dot', p);
          p++;
          this.state = State.VERSION_MINOR;
          break;
        }

        case State.VERSION_MINOR: {
          const c = buf[p]!;
          if (c < 0x30 || c > 0x39) return this.fail(Errno.INVALID_VERSION, 'Invalid minor version', p);
          this.versionMinor = c - 0x30;
          const M = this.versionMajor, m = this.versionMinor;
          if (!(this.lenient & Lenient.VERSION) && !((M === 1 && m <= 1) || (M === 0 && m === 9) || (M === 2 && m === 0))) {
            return this.fail(Errno.INVALID_VERSION, 'Invalid HTTP version', p);
          }
          p++;
          this.state = this.type === ParserType.REQUEST ? State.REQ_LINE_CR : State.RES_SP_AFTER_VERSION;
          if ((r = this.cbResult(h.onVersion?.(), p, 'onVersion')) >= 0) return r;
          break;
        }

        case State.REQ_LINE_CR: {
          if (buf[p] !== CR) return this.fail(Errno.INVALID_VERSION, 'Expected CRLF after version', p);
          p++;
          this.state = State.REQ_LINE_LF;
          break;
        }

        case State.REQ_LINE_LF: {
          if (buf[p] !== LF) return this.fail(Errno.STRICT, 'Expected CRLF after version', p);
          p++;
          if (this.method === Method.PRI) {
            // The HTTP/2 connection preface (RFC 9113 §3.4): PRI is not an HTTP/1
            // method; like llhttp we match the rest of the preface and hand over.
            this.statusDigits = 0;
            this.state = State.PRI_PREFACE;
            break;
          }
          this.state = State.FIELD_START;
          break;
        }

        case State.PRI_PREFACE: {
          if (buf[p] !== PRI_REST[this.statusDigits]) return this.fail(Errno.INVALID_CONSTANT, 'Expected HTTP/2 Connection Preface', p);
          p++;
          if (++this.statusDigits === PRI_REST.length) {
            this.leaveHead(p);
            this.state = State.DEAD;
            this.errno = Errno.PAUSED_H2_UPGRADE;
            this.reason = 'Pause on PRI/Upgrade';
            this.errorOffset = p;
            return p;
          }
          break;
        }

        // ---- status line: HTTP-version SP status-code SP [reason-phrase] CRLF ----
        case State.RES_SP_AFTER_VERSION: {
          if (buf[p] !== SP) return this.fail(Errno.INVALID_VERSION, 'Expected space after version', p);
          p++;
          this.state = State.RES_STATUS;
          break;
        }

        case State.RES_STATUS: {
          const c = buf[p]!;
          if (c < 0x30 || c > 0x39) return this.fail(Errno.INVALID_STATUS, 'Invalid status code', p);
          this.statusCode = this.statusCode * 10 + (c - 0x30);
          p++;
          if (++this.statusDigits === 3) this.state = State.RES_AFTER_STATUS;
          break;
        }

        case State.RES_AFTER_STATUS: {
          const c = buf[p]!;
          if (c === SP) {
            p++;
            this.a.begin(p);
            this.state = State.RES_REASON;
          } else if (c === CR) {
            this.a.begin(p);
            this.state = State.RES_REASON; // empty reason phrase
          } else if (c === LF) {
            return this.fail(Errno.CR_EXPECTED, 'Missing expected CR after response line', p);
          } else {
            return this.fail(Errno.INVALID_STATUS, 'Invalid status code', p);
          }
          break;
        }

        case State.RES_REASON: {
          while (p < end && REASON[buf[p]!]) p++;
          if (p === end) return p;
          const c = buf[p]!;
          if (c === LF) return this.fail(Errno.CR_EXPECTED, 'Missing expected CR after response line', p);
          if (c !== CR) return this.fail(Errno.INVALID_STATUS, 'Invalid character in reason phrase', p);
          this.a.finish(buf, p);
          const rr = h.onStatus?.(this.a.vb, this.a.vs, this.a.ve);
          this.a.clear();
          p++;
          this.state = State.RES_LINE_LF;
          if ((r = this.cbResult(rr, p, 'onStatus')) >= 0) return r;
          break;
        }

        case State.RES_LINE_LF: {
          if (buf[p] !== LF) return this.fail(Errno.STRICT, 'Expected LF after CR', p);
          p++;
          this.state = State.FIELD_START;
          break;
        }

        // ---- field lines (headers and trailers): field-name ":" OWS field-value OWS CRLF ----
        case State.FIELD_START: {
          const c = buf[p]!;
          if (c === CR) { p++; this.state = State.HEADERS_LF; break; }
          if (TOKEN[c]) {
            if (this.headerCount >= this.maxHeaders) return this.fail(Errno.TOO_MANY_HEADERS, 'Too many header fields', p);
            // Fast path: a whole, well-formed field line in this buffer is taken
            // in one scan instead of five state changes. Anything else (the line
            // runs past the buffer, a bad byte) leaves no trace and goes through
            // the states below, which accept and reject exactly as before.
            const q = this.fieldLineAt(buf, p, end);
            if (q > 0) {
              p = q;
              this.sawHeaderLine = true;
              this.headerCount++;
              if (this.inHead && this.headBytes + (p - this.headMark) > this.maxHeaderSize) {
                this.a.clear();
                this.b.clear();
                return this.fail(Errno.HEADER_OVERFLOW, 'Header section too large', p);
              }
              const rr = this.fieldLine(p);
              if (rr >= 0) return rr;
              break;
            }
            this.a.begin(p);
            this.state = State.FIELD_NAME;
            p++;
            break;
          }
          if (c === SP || c === HTAB) {
            if (!this.sawHeaderLine && !this.inTrailer) return this.fail(Errno.UNEXPECTED_SPACE, 'Unexpected space after start line', p);
            // obs-fold (RFC 9112 §5.2). llhttp joins folded lines by default; we
            // reject, which RFC 9112 allows and which closes a smuggling vector.
            return this.fail(Errno.INVALID_HEADER_TOKEN, 'Obsolete line folding is not allowed', p);
          }
          if (c === LF) return this.fail(Errno.CR_EXPECTED, 'Missing expected CR after header value', p);
          return this.fail(Errno.INVALID_HEADER_TOKEN, 'Invalid header token', p);
        }

        case State.FIELD_NAME: {
          while (p < end && TOKEN[buf[p]!]) p++;
          if (p === end) return p;
          // whitespace before the colon is rejected (RFC 9112 §5.1: MUST respond 400)
          if (buf[p] !== COLON) return this.fail(Errno.INVALID_HEADER_TOKEN, 'Invalid header token', p);
          this.a.finish(buf, p);
          p++;
          this.state = State.FIELD_VALUE_START;
          break;
        }

        case State.FIELD_VALUE_START: {
          let c = buf[p]!;
          while ((c === SP || c === HTAB) && ++p < end) c = buf[p]!;
          if (p === end) return p;
          this.b.begin(p);
          if (c === CR) {
            this.b.finish(buf, p);
            p++;
            this.state = State.FIELD_EMPTY_VALUE_LF;
            break;
          }
          if (c === LF) return this.fail(Errno.INVALID_HEADER_TOKEN, 'Invalid header value char', p);
          this.state = State.FIELD_VALUE;
          break;
        }

        case State.FIELD_VALUE: {
          const table = this.lenient & Lenient.HEADERS ? VALUE_LENIENT : VALUE;
          while (p < end && table[buf[p]!]) p++;
          if (p === end) return p;
          const c = buf[p]!;
          if (c === CR) {
            this.b.finish(buf, p);
            p++;
            this.state = State.FIELD_VALUE_LF;
            break;
          }
          if (c === LF) return this.fail(Errno.CR_EXPECTED, 'Missing expected CR after header value', p);
          return this.fail(Errno.INVALID_HEADER_TOKEN, 'Invalid header value char', p);
        }

        case State.FIELD_EMPTY_VALUE_LF:
        case State.FIELD_VALUE_LF: {
          if (buf[p] !== LF) {
            return this.state === State.FIELD_VALUE_LF
              ? this.fail(Errno.LF_EXPECTED, 'Missing expected LF after header value', p)
              : this.fail(Errno.STRICT, 'Expected LF after CR', p);
          }
          p++;
          this.state = State.FIELD_START;
          this.sawHeaderLine = true;
          this.headerCount++;
          if (this.inHead && this.headBytes + (p - this.headMark) > this.maxHeaderSize) {
            return this.fail(Errno.HEADER_OVERFLOW, 'Header section too large', p);
          }
          const rr = this.fieldLine(p);
          if (rr >= 0) return rr;
          break;
        }

        case State.HEADERS_LF: {
          if (buf[p] !== LF) return this.fail(Errno.STRICT, 'Expected LF after headers', p);
          p++;
          if (this.inTrailer) {
            if (!this.leaveHead(p)) return p;
            this.state = State.MESSAGE_DONE;
            if ((r = this.cbResult(h.onChunkComplete?.(), p, 'onChunkComplete')) >= 0) return r;
            break;
          }
          if (!this.leaveHead(p)) return p;
          r = this.headersComplete(p);
          if (r >= 0) return r;
          break;
        }

        // ---- bodies ----
        case State.BODY_IDENTITY: {
          const n = Math.min(end - p, this.remaining);
          const s = p;
          p += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = State.MESSAGE_DONE;
          if ((r = this.cbResult(h.onBody?.(buf, s, p), p, 'onBody')) >= 0) return r;
          break;
        }

        case State.BODY_EOF: {
          const s = p;
          p = end;
          if ((r = this.cbResult(h.onBody?.(buf, s, p), p, 'onBody')) >= 0) return r;
          break;
        }

        case State.CHUNK_SIZE_START: {
          const v = HEX[buf[p]!]!;
          if (v < 0) return this.fail(Errno.INVALID_CHUNK_SIZE, 'Invalid character in chunk size', p);
          this.remaining = v;
          this.chunkExtBytes = 0;
          p++;
          this.state = State.CHUNK_SIZE;
          break;
        }

        case State.CHUNK_SIZE: {
          const c = buf[p]!;
          const v = HEX[c]!;
          if (v >= 0) {
            if (this.remaining > (MAX_SAFE - v) / 16) return this.fail(Errno.INVALID_CHUNK_SIZE, 'Chunk size overflow', p);
            this.remaining = this.remaining * 16 + v;
            p++;
            break;
          }
          if (c === CR) { p++; this.state = State.CHUNK_SIZE_LF; break; }
          if (c === SEMI) { p++; this.state = State.CHUNK_EXT_NAME_START; break; }
          if ((c === SP || c === HTAB) && this.lenient & Lenient.SPACES_AFTER_CHUNK_SIZE) { p++; this.state = State.CHUNK_SIZE_OWS; break; }
          return this.fail(Errno.INVALID_CHUNK_SIZE, 'Invalid character in chunk size', p);
        }

        case State.CHUNK_SIZE_OWS: {
          const c = buf[p]!;
          if (c === SP || c === HTAB) { p++; break; }
          if (c === CR) { p++; this.state = State.CHUNK_SIZE_LF; break; }
          if (c === SEMI) { p++; this.state = State.CHUNK_EXT_NAME_START; break; }
          return this.fail(Errno.INVALID_CHUNK_SIZE, 'Invalid character in chunk size', p);
        }

        // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ).
        // Like llhttp we take BWS as empty: whitespace there is a known desync vector.
        case State.CHUNK_EXT_NAME_START: {
          if (++this.chunkExtBytes > this.maxChunkExtensionSize) return this.fail(Errno.CHUNK_EXTENSIONS_OVERFLOW, 'Chunk extensions too large', p);
          if (!TOKEN[buf[p]!]) {
            const c = buf[p]!;
            // chunk-ext-name is a token: ";;" or ";=" has an empty one (llhttp lets it pass)
            if (c === SEMI || c === EQ) return this.fail(Errno.STRICT, 'Empty chunk extension name', p);
            return this.fail(Errno.STRICT, 'Invalid character in chunk extensions', p);
          }
          this.a.begin(p);
          p++;
          this.state = State.CHUNK_EXT_NAME;
          break;
        }

        case State.CHUNK_EXT_NAME: {
          const c = buf[p]!;
          if (++this.chunkExtBytes > this.maxChunkExtensionSize) return this.fail(Errno.CHUNK_EXTENSIONS_OVERFLOW, 'Chunk extensions too large', p);
          if (TOKEN[c]) { p++; break; }
          if (c === EQ) {
            this.a.finish(buf, p);
            p++;
            this.state = State.CHUNK_EXT_VALUE_START;
            break;
          }
          if (c === SEMI || c === CR) {
            this.a.finish(buf, p);
            p++;
            this.state = c === CR ? State.CHUNK_SIZE_LF : State.CHUNK_EXT_NAME_START;
            const ra = this.a;
            const rr = h.onChunkExtension?.(ra.vb, ra.vs, ra.ve, EMPTY, 0, 0);
            this.a.clear();
            if ((r = this.cbResult(rr, p, 'onChunkExtension')) >= 0) return r;
            break;
          }
          return this.fail(Errno.STRICT, 'Invalid character in chunk extensions', p);
        }

        case State.CHUNK_EXT_VALUE_START: {
          const c = buf[p]!;
          if (++this.chunkExtBytes > this.maxChunkExtensionSize) return this.fail(Errno.CHUNK_EXTENSIONS_OVERFLOW, 'Chunk extensions too large', p);
          if (c === DQUOTE) { this.b.begin(p); p++; this.state = State.CHUNK_EXT_QUOTED; break; }
          if (TOKEN[c]) { this.b.begin(p); p++; this.state = State.CHUNK_EXT_VALUE; break; }
          // chunk-ext-val = token / quoted-string: never empty (llhttp allows "name=")
          if (c === CR || c === SEMI) return this.fail(Errno.STRICT, 'Empty chunk extension value', p);
          return this.fail(Errno.STRICT, 'Invalid character in chunk extensions value', p);
        }

        case State.CHUNK_EXT_VALUE:
        case State.CHUNK_EXT_AFTER_QUOTED: {
          const c = buf[p]!;
          if (++this.chunkExtBytes > this.maxChunkExtensionSize) return this.fail(Errno.CHUNK_EXTENSIONS_OVERFLOW, 'Chunk extensions too large', p);
          if (this.state === State.CHUNK_EXT_VALUE && TOKEN[c]) { p++; break; }
          if (c === SEMI || c === CR) {
            if (this.state === State.CHUNK_EXT_VALUE) this.b.finish(buf, p);
            p++;
            this.state = c === CR ? State.CHUNK_SIZE_LF : State.CHUNK_EXT_NAME_START;
            const ra = this.a, rb = this.b;
            const rr = h.onChunkExtension?.(ra.vb, ra.vs, ra.ve, rb.vb, rb.vs, rb.ve);
            this.a.clear();
            this.b.clear();
            if ((r = this.cbResult(rr, p, 'onChunkExtension')) >= 0) return r;
            break;
          }
          return this.fail(Errno.STRICT, 'Invalid character in chunk extensions value', p);
        }

        case State.CHUNK_EXT_QUOTED: {
          const c = buf[p]!;
          if (++this.chunkExtBytes > this.maxChunkExtensionSize) return this.fail(Errno.CHUNK_EXTENSIONS_OVERFLOW, 'Chunk extensions too large', p);
          if (c === DQUOTE) { p++; this.b.finish(buf, p); this.state = State.CHUNK_EXT_AFTER_QUOTED; break; }
          if (c === BSLASH) { p++; this.state = State.CHUNK_EXT_QUOTED_ESC; break; }
          if (QDTEXT[c]) { p++; break; }
          return this.fail(Errno.STRICT, 'Invalid character in chunk extensions quoted value', p);
        }

        case State.CHUNK_EXT_QUOTED_ESC: {
          const c = buf[p]!;
          if (++this.chunkExtBytes > this.maxChunkExtensionSize) return this.fail(Errno.CHUNK_EXTENSIONS_OVERFLOW, 'Chunk extensions too large', p);
          if (c === HTAB || (c >= 0x20 && c !== 0x7f)) { p++; this.state = State.CHUNK_EXT_QUOTED; break; }
          return this.fail(Errno.STRICT, 'Invalid quoted-pair in chunk extensions quoted value', p);
        }

        case State.CHUNK_SIZE_LF: {
          if (buf[p] !== LF) return this.fail(Errno.STRICT, 'Expected LF after chunk size', p);
          p++;
          const size = this.remaining;
          if (size === 0) {
            // last-chunk: trailer section follows, bounded like the header section.
            this.inTrailer = true;
            this.headerCount = 0;
            this.sawHeaderLine = false;
            this.flags |= Flags.TRAILING;
            this.enterHead(p);
            this.state = State.FIELD_START;
          } else {
            this.state = State.CHUNK_DATA;
          }
          if ((r = this.cbResult(h.onChunkHeader?.(size), p, 'onChunkHeader')) >= 0) return r;
          break;
        }

        case State.CHUNK_DATA: {
          const n = Math.min(end - p, this.remaining);
          const s = p;
          p += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = State.CHUNK_DATA_CR;
          if ((r = this.cbResult(h.onBody?.(buf, s, p), p, 'onBody')) >= 0) return r;
          break;
        }

        case State.CHUNK_DATA_CR: {
          if (buf[p] !== CR) return this.fail(Errno.STRICT, 'Expected LF after chunk data', p);
          p++;
          this.state = State.CHUNK_DATA_LF;
          break;
        }

        case State.CHUNK_DATA_LF: {
          if (buf[p] !== LF) return this.fail(Errno.STRICT, 'Expected LF after chunk data', p);
          p++;
          this.state = State.CHUNK_SIZE_START;
          if ((r = this.cbResult(h.onChunkComplete?.(), p, 'onChunkComplete')) >= 0) return r;
          break;
        }

        default:
          return this.fail(Errno.INTERNAL, `Unknown state ${this.state}`, p);
      }
    }
    return p;
  }

  /** A complete field line (a holds the name, b the value). Returns -1 to carry on. */
  /**
   * field-name ":" OWS field-value CRLF, whole in buf[p, end): sets the name
   * and value tokens and returns the offset after the LF; 0 when the line is
   * not whole here or not well formed (the state machine then takes it).
   */
  private fieldLineAt(buf: Uint8Array, p: number, end: number): number {
    let q = p + 1;
    while (q < end && TOKEN[buf[q]!]) q++;
    if (q >= end || buf[q] !== COLON) return 0;
    const ne = q++;
    while (q < end && (buf[q] === SP || buf[q] === HTAB)) q++;
    const vs = q;
    const table = this.lenient & Lenient.HEADERS ? VALUE_LENIENT : VALUE;
    while (q < end && table[buf[q]!]) q++;
    if (q + 1 >= end || buf[q] !== CR || buf[q + 1] !== LF) return 0;
    this.a.begin(p);
    this.a.finish(buf, ne);
    this.b.begin(vs);
    this.b.finish(buf, q);
    return q + 2;
  }

  private fieldLine(p: number): number {
    const a = this.a, b = this.b;
    const nb = a.vb, ns = a.vs, ne = a.ve;
    const vb = b.vb, vs = b.vs;
    let ve = b.ve;
    if (!b.done) {
      // empty value: FIELD_VALUE_START saw CR before any byte (never reached: CR is not OWS)
      ve = vs;
    }
    while (ve > vs && (vb[ve - 1] === SP || vb[ve - 1] === HTAB)) ve--;
    let rr: number | void;
    if (this.inTrailer) {
      // RFC 9110 §6.5.1: framing fields are never allowed as trailers. A proxy
      // that merged one into the header section would reframe the message.
      const kind = headerKind(nb, ns, ne);
      if (kind === H_CONTENT_LENGTH) { a.clear(); b.clear(); return this.fail(Errno.INVALID_CONTENT_LENGTH, 'Content-Length in trailer section', p); }
      if (kind === H_TRANSFER_ENCODING) { a.clear(); b.clear(); return this.fail(Errno.INVALID_TRANSFER_ENCODING, 'Transfer-Encoding in trailer section', p); }
      rr = this.handler.onTrailer?.(nb, ns, ne, vb, vs, ve);
    } else {
      const kind = headerKind(nb, ns, ne);
      if (kind !== H_OTHER) {
        const e = this.framingHeader(kind, vb, vs, ve, p);
        if (e >= 0) { a.clear(); b.clear(); return e; }
      }
      rr = this.handler.onHeader?.(nb, ns, ne, vb, vs, ve);
    }
    a.clear();
    b.clear();
    return this.cbResult(rr, p, this.inTrailer ? 'onTrailer' : 'onHeader');
  }

  /** Content-Length, Transfer-Encoding, Connection, Upgrade (RFC 9112 §6, §9.6; RFC 9110 §7.6.1, §7.8). */
  private framingHeader(kind: number, v: Uint8Array, s: number, e: number, p: number): number {
    switch (kind) {
      case H_CONTENT_LENGTH: {
        if (this.flags & Flags.CONTENT_LENGTH) return this.fail(Errno.UNEXPECTED_CONTENT_LENGTH, 'Duplicate Content-Length', p);
        if (this.flags & Flags.TRANSFER_ENCODING && !(this.lenient & Lenient.CHUNKED_LENGTH)) {
          return this.fail(Errno.INVALID_CONTENT_LENGTH, "Content-Length can't be present with Transfer-Encoding", p);
        }
        if (s === e) return this.fail(Errno.INVALID_CONTENT_LENGTH, 'Empty Content-Length', p);
        let n = 0;
        for (let i = s; i < e; i++) {
          const d = v[i]! - 0x30;
          if (d < 0 || d > 9) return this.fail(Errno.INVALID_CONTENT_LENGTH, 'Invalid character in Content-Length', p);
          n = n * 10 + d;
          if (n > MAX_SAFE) return this.fail(Errno.INVALID_CONTENT_LENGTH, 'Content-Length overflow', p);
        }
        this.flags |= Flags.CONTENT_LENGTH;
        this.contentLength = n;
        return -1;
      }
      case H_TRANSFER_ENCODING: {
        if (this.flags & Flags.CONTENT_LENGTH && !(this.lenient & Lenient.CHUNKED_LENGTH)) {
          return this.fail(Errno.INVALID_TRANSFER_ENCODING, "Transfer-Encoding can't be present with Content-Length", p);
        }
        this.flags |= Flags.TRANSFER_ENCODING;
        // #transfer-coding list (RFC 9110 §5.6.1, RFC 9112 §6.1):
        //   transfer-coding = token *( OWS ";" OWS transfer-parameter )
        // An element that is not that shape is an unknown coding: a request
        // with one is refused (its length cannot be trusted), a response with
        // one is read until close. "chunked" takes no parameters.
        const isReq = this.type === ParserType.REQUEST;
        let i = s;
        while (i < e) {
          while (i < e && (v[i] === SP || v[i] === HTAB || v[i] === 0x2c)) i++;
          if (i === e) break;
          const ts = i;
          while (i < e && TOKEN[v[i]!]) i++;
          const te = i;
          while (i < e && (v[i] === SP || v[i] === HTAB)) i++;
          let valid = te > ts;
          let plain = true; // no parameters
          if (i < e && v[i] !== 0x2c) {
            plain = false;
            if (v[i] !== SEMI) valid = false;
            // Skip to the next comma; a quoted parameter value is not worth the
            // risk of disagreeing with another parser about where it ends.
            while (i < e && v[i] !== 0x2c) { if (v[i] === DQUOTE) valid = false; i++; }
          }
          if (!valid && isReq && !(this.lenient & Lenient.TRANSFER_ENCODING)) {
            return this.fail(Errno.INVALID_TRANSFER_ENCODING, 'Invalid transfer-coding in `Transfer-Encoding`', p);
          }
          const isChunked = valid && plain && ieq(v, ts, te, T_CHUNKED);
          if (this.flags & Flags.CHUNKED) {
            // chunked must be the final coding and applied once (RFC 9112 §6.1)
            if (this.type === ParserType.REQUEST && !(this.lenient & Lenient.TRANSFER_ENCODING)) {
              return this.fail(Errno.INVALID_TRANSFER_ENCODING, 'Invalid `Transfer-Encoding` header value', p);
            }
            this.flags &= ~Flags.CHUNKED;
          }
          if (isChunked) this.flags |= Flags.CHUNKED;
          this.teCodings++;
        }
        // "chunked," ends with an empty element. RFC 9110 §5.6.1 would ignore
        // it; llhttp counts it as a coding after chunked. We side with llhttp:
        // two parsers must never disagree on where a request body ends.
        if (this.flags & Flags.CHUNKED) {
          let j = e;
          while (j > s && (v[j - 1] === SP || v[j - 1] === HTAB)) j--;
          if (j > s && v[j - 1] === 0x2c) {
            if (isReq && !(this.lenient & Lenient.TRANSFER_ENCODING)) {
              return this.fail(Errno.INVALID_TRANSFER_ENCODING, 'Invalid `Transfer-Encoding` header value', p);
            }
            this.flags &= ~Flags.CHUNKED;
          }
        }
        return -1;
      }
      case H_CONNECTION: {
        let i = s;
        while (i < e) {
          while (i < e && (v[i] === SP || v[i] === HTAB || v[i] === 0x2c)) i++;
          const ts = i;
          while (i < e && v[i] !== 0x2c) i++;
          let te = i;
          while (te > ts && (v[te - 1] === SP || v[te - 1] === HTAB)) te--;
          if (ieq(v, ts, te, T_CLOSE)) this.flags |= Flags.CONNECTION_CLOSE;
          else if (ieq(v, ts, te, T_KEEP_ALIVE)) this.flags |= Flags.CONNECTION_KEEP_ALIVE;
          else if (ieq(v, ts, te, T_UPGRADE)) this.flags |= Flags.CONNECTION_UPGRADE;
        }
        return -1;
      }
      case H_UPGRADE:
        // An empty Upgrade offers no protocol (llhttp agrees): no upgrade.
        if (e > s) this.flags |= Flags.UPGRADE;
        return -1;
      case H_HOST:
        this.hostCount++;
        return -1;
      default:
        return -1;
    }
  }

  /** RFC 9112 §6.3 rules 1 and 7–8: does the body run until close? */
  private needsEof(): boolean {
    if (this.type === ParserType.REQUEST) return false;
    const st = this.statusCode;
    if ((st >= 100 && st < 200) || st === 204 || st === 304 || this.flags & Flags.SKIPBODY) return false;
    if (this.flags & Flags.TRANSFER_ENCODING && !(this.flags & Flags.CHUNKED)) return true;
    if (this.flags & (Flags.CHUNKED | Flags.CONTENT_LENGTH)) return false;
    return true;
  }

  private computeKeepAlive(): boolean {
    // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
    // framing; process it, then close the connection.
    if (this.versionMajor === 1 && this.versionMinor === 0 && this.flags & Flags.TRANSFER_ENCODING) return false;
    if (this.versionMajor > 0 && this.versionMinor > 0) {
      if (this.flags & Flags.CONNECTION_CLOSE) return false;
    } else if (!(this.flags & Flags.CONNECTION_KEEP_ALIVE)) {
      return false;
    }
    return !this.needsEof();
  }

  private headersComplete(p: number): number {
    const isReq = this.type === ParserType.REQUEST;
    let reqMethod = -1;
    if (!isReq) {
      if (this.reqCount > 0) reqMethod = this.reqMethods[this.reqHead]!;
      if (reqMethod === Method.HEAD) this.flags |= Flags.SKIPBODY;
    }
    // Upgrade (RFC 9110 §7.8): needs both the Upgrade header and the "upgrade"
    // connection option; for a response only a 101 switches.
    if (!isReq && this.statusCode === 101) {
      // 101 always switches (RFC 9110 §15.2.2); without an Upgrade header it is
      // malformed, but the bytes after it are not HTTP/1.1 either way.
      this.upgrade = true;
    } else if (this.flags & Flags.UPGRADE && this.flags & Flags.CONNECTION_UPGRADE) {
      this.upgrade = isReq;
    } else {
      this.upgrade = isReq ? this.method === Method.CONNECT : reqMethod === Method.CONNECT && this.statusCode >= 200 && this.statusCode < 300;
    }
    if (!isReq && reqMethod === Method.CONNECT && this.statusCode >= 200 && this.statusCode < 300) {
      this.upgrade = true;
      this.flags |= Flags.SKIPBODY; // RFC 9110 §9.3.6: a 2xx to CONNECT has no content
    }
    this.keepAlive = this.computeKeepAlive();

    const ret = this.handler.onHeadersComplete?.();
    let paused = false;
    if (ret === Cb.SKIP_BODY) this.flags |= Flags.SKIPBODY;
    else if (ret === Cb.UPGRADE) { this.flags |= Flags.SKIPBODY; this.upgrade = true; }
    else if (ret === Cb.PAUSE) paused = true;
    else if (ret) return this.fail(Errno.USER, 'User callback error in onHeadersComplete', p);
    if (ret === Cb.SKIP_BODY) this.keepAlive = this.computeKeepAlive();

    const hasBody = (this.flags & Flags.CHUNKED) !== 0 || this.contentLength > 0;
    if ((this.upgrade && (this.method === Method.CONNECT || this.flags & Flags.SKIPBODY || !hasBody)) ||
        (!isReq && this.statusCode === 101)) {
      // The rest of the stream is another protocol.
      this.state = State.MESSAGE_DONE;
    } else if (!isReq && (this.statusCode === 100 || this.statusCode === 102 || this.statusCode === 103)) {
      this.state = State.MESSAGE_DONE; // interim response: the final one follows
    } else if (this.flags & Flags.SKIPBODY || (!isReq && (this.statusCode === 204 || this.statusCode === 304))) {
      this.state = State.MESSAGE_DONE;
    } else if (this.flags & Flags.CHUNKED) {
      this.state = State.CHUNK_SIZE_START;
    } else if (this.flags & Flags.TRANSFER_ENCODING) {
      if (isReq && !(this.lenient & (Lenient.CHUNKED_LENGTH | Lenient.TRANSFER_ENCODING))) {
        // RFC 9112 §6.3 rule 4: the request body length cannot be determined.
        // (An empty Transfer-Encoding is refused too: llhttp ignores it, and a
        // front end that ignores it while a back end does not is a desync.)
        return this.fail(Errno.INVALID_TRANSFER_ENCODING, this.teCodings === 0 ? 'Empty `Transfer-Encoding`' : 'Request has invalid `Transfer-Encoding`', p);
      }
      this.state = State.BODY_EOF; // response: read until close
    } else if (!(this.flags & Flags.CONTENT_LENGTH)) {
      if (this.needsEof()) this.state = State.BODY_EOF;
      else this.state = State.MESSAGE_DONE;
    } else if (this.contentLength === 0) {
      this.state = State.MESSAGE_DONE;
    } else {
      this.remaining = this.contentLength;
      this.state = State.BODY_IDENTITY;
    }
    if (paused) {
      this.errno = Errno.PAUSED;
      this.reason = 'Paused in onHeadersComplete';
      this.errorOffset = p;
      return p;
    }
    return -1;
  }

  /** End of a message at p; returns p when feed() must stop (pause or upgrade), else -1. */
  private messageComplete(p: number): number {
    this.messages++;
    const isResp = this.type === ParserType.RESPONSE;
    if (isResp && this.reqCount > 0 && (this.statusCode >= 200 || this.statusCode === 101)) {
      this.reqHead = (this.reqHead + 1) % this.reqMethods.length;
      this.reqCount--;
    }
    const interim = isResp && this.statusCode >= 100 && this.statusCode < 200 && this.statusCode !== 101;
    const upgrade = this.upgrade && !interim;
    if (upgrade) this.state = State.DEAD;
    // An interim response with "Connection: close" closes like a final one
    // (llhttp does the same; the final response would be read on a connection
    // the server announced it is closing).
    else if (this.keepAlive) this.state = State.START;
    else this.state = State.CLOSED;
    const rr = this.handler.onMessageComplete?.();
    if (upgrade) {
      if (rr && rr !== Cb.PAUSE) return this.fail(Errno.USER, 'User callback error in onMessageComplete', p);
      this.errno = Errno.PAUSED_UPGRADE;
      this.reason = 'Pause on CONNECT/Upgrade';
      this.errorOffset = p;
      return p;
    }
    return this.cbResult(rr, p, 'onMessageComplete');
  }
}
