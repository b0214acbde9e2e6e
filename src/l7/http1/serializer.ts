// HTTP/1.1 message serializer (RFC 9112 §3, §4, §5, §7.1): start lines, field
// lines, Content-Length or chunked framing, trailers.
//
// Contract
// - A writer produces an ordered list of segments (Uint8Array views) for one
//   batched write (writev, a TCP send queue). Start lines, headers and chunk
//   framing are written into a slab the writer owns; body buffers larger than
//   `copyThreshold` are referenced, not copied (zero-copy), smaller ones are
//   copied so a small response goes out as one segment.
// - Bytes handed out by drain() are never overwritten: when a slab is used up
//   the writer starts a new one and the old one lives as long as its views
//   (Node's Buffer pool does the same). No allocation per message beyond the
//   segment views.
// - Names and values are validated as they are written: a CR, LF or NUL in a
//   value, or a non-token name, throws InvalidArgumentError. That is API
//   misuse, and letting it through would be response splitting.

import { InvalidArgumentError } from '../../util/errors.js';

const CR = 0x0d, LF = 0x0a, SP = 0x20, COLON = 0x3a, HTAB = 0x09;

function check(s: string, kind: 'value' | 'target' | 'reason'): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = kind === 'target'
      ? c > 0x20 && c < 0x7f
      : (c >= 0x20 && c !== 0x7f && c <= 0xff) || c === HTAB;
    if (!ok) {
      throw new InvalidArgumentError(`invalid character 0x${c.toString(16)} in ${kind} ${JSON.stringify(s.length > 64 ? s.slice(0, 64) + '…' : s)}`);
    }
  }
}

function checkDecimal(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`invalid decimal ${n}`);
}

const TOKEN = new Uint8Array(256);
for (let c = 0; c < 128; c++) TOKEN[c] = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(String.fromCharCode(c)) ? 1 : 0;

/** RFC 9110 §15 reason phrases for the codes a proxy or server commonly sends. */
export const STATUS_REASONS: Readonly<Record<number, string>> = Object.freeze({
  100: 'Continue', 101: 'Switching Protocols', 102: 'Processing', 103: 'Early Hints',
  200: 'OK', 201: 'Created', 202: 'Accepted', 203: 'Non-Authoritative Information', 204: 'No Content',
  205: 'Reset Content', 206: 'Partial Content', 300: 'Multiple Choices', 301: 'Moved Permanently',
  302: 'Found', 303: 'See Other', 304: 'Not Modified', 307: 'Temporary Redirect', 308: 'Permanent Redirect',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  406: 'Not Acceptable', 408: 'Request Timeout', 409: 'Conflict', 410: 'Gone', 411: 'Length Required',
  412: 'Precondition Failed', 413: 'Content Too Large', 414: 'URI Too Long', 415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable', 417: 'Expectation Failed', 421: 'Misdirected Request',
  422: 'Unprocessable Content', 426: 'Upgrade Required', 428: 'Precondition Required',
  429: 'Too Many Requests', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error',
  501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
});

const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (ch) => ch.charCodeAt(0));

// Pre-encoded "HTTP/1.1 NNN Reason\r\n" lines: the hot path writes one memcpy.
const STATUS_LINES = new Map<number, Uint8Array>();
for (const [code, reason] of Object.entries(STATUS_REASONS)) {
  STATUS_LINES.set(Number(code), latin1(`HTTP/1.1 ${code} ${reason}\r\n`));
}
const HEX_DIGITS = latin1('0123456789abcdef');
const LAST_CHUNK = latin1('0\r\n');

/** Interned header names: encoded once, validated once. */
const NAME_CACHE = new Map<string, Uint8Array>();
function encodeName(name: string): Uint8Array {
  let b = NAME_CACHE.get(name);
  if (b !== undefined) return b;
  if (name.length === 0) throw new InvalidArgumentError('empty header name');
  b = new Uint8Array(name.length);
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0x7f || !TOKEN[c]) throw new InvalidArgumentError(`invalid character in header name ${JSON.stringify(name)}`);
    b[i] = c;
  }
  if (NAME_CACHE.size < 1024) NAME_CACHE.set(name, b);
  return b;
}

export interface Http1WriterOptions {
  /** Slab size for heads and framing. Default 64 KiB. */
  slabSize?: number;
  /** Bodies up to this many bytes are copied into the slab; larger ones are referenced. Default 1024. */
  copyThreshold?: number;
}

export class Http1Writer {
  private slab: Uint8Array;
  private pos = 0; // write position in the slab
  private segStart = 0; // start of the open (not yet closed) slab segment
  private segs: Uint8Array[] = [];
  private readonly slabSize: number;
  readonly copyThreshold: number;

  constructor(opts: Http1WriterOptions = {}) {
    this.slabSize = opts.slabSize ?? 64 * 1024;
    this.copyThreshold = opts.copyThreshold ?? 1024;
    this.slab = new Uint8Array(this.slabSize);
  }

  /** Bytes written and not yet drained. */
  get pending(): number {
    let n = this.pos - this.segStart;
    for (const s of this.segs) n += s.length;
    return n;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.slab.length) return;
    // Close the open segment over the old slab and move to a fresh one; views
    // already handed out keep the old slab alive.
    this.closeSegment();
    this.slab = new Uint8Array(Math.max(this.slabSize, n));
    this.pos = 0;
    this.segStart = 0;
  }

  private closeSegment(): void {
    if (this.pos > this.segStart) this.segs.push(this.slab.subarray(this.segStart, this.pos));
    this.segStart = this.pos;
  }

  private raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.slab.set(b, this.pos);
    this.pos += b.length;
  }

  private byte(c: number): void {
    this.ensure(1);
    this.slab[this.pos++] = c;
  }

  /**
   * Writes a latin1 string that check() accepted. Every public method
   * validates all its inputs before writing anything, so a refused call
   * leaves the writer unchanged.
   */
  private str(s: string): void {
    this.ensure(s.length);
    const b = this.slab;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  private decimal(n: number): void {
    this.ensure(16);
    if (n === 0) { this.slab[this.pos++] = 0x30; return; }
    let digits = 0;
    for (let t = n; t > 0; t = Math.floor(t / 10)) digits++;
    let p = this.pos + digits;
    this.pos = p;
    for (let t = n; t > 0; t = Math.floor(t / 10)) this.slab[--p] = 0x30 + (t % 10);
  }

  private crlf(): void {
    this.ensure(2);
    this.slab[this.pos++] = CR;
    this.slab[this.pos++] = LF;
  }

  /** `HTTP/1.x NNN reason CRLF`. The reason defaults to the RFC 9110 phrase. */
  statusLine(status: number, reason?: string, minor: 0 | 1 = 1): this {
    if (!Number.isInteger(status) || status < 100 || status > 999) throw new InvalidArgumentError(`invalid status ${status}`);
    const cached = reason === undefined && minor === 1 ? STATUS_LINES.get(status) : undefined;
    if (cached) { this.raw(cached); return this; }
    const phrase = reason ?? STATUS_REASONS[status] ?? '';
    check(phrase, 'reason');
    this.raw(minor === 1 ? HTTP11 : HTTP10);
    this.byte(SP);
    this.decimal(status);
    this.byte(SP);
    this.str(phrase);
    this.crlf();
    return this;
  }

  /** `method SP request-target SP HTTP/1.x CRLF`. */
  requestLine(method: string, target: string, minor: 0 | 1 = 1): this {
    const m = encodeName(method); // a method is a token, like a field name
    if (target.length === 0) throw new InvalidArgumentError('empty request target');
    check(target, 'target');
    this.raw(m);
    this.byte(SP);
    this.str(target);
    this.byte(SP);
    this.raw(minor === 1 ? HTTP11 : HTTP10);
    this.crlf();
    return this;
  }

  /** One field line. Numbers are written in decimal. */
  header(name: string, value: string | number): this {
    const n = encodeName(name);
    if (typeof value === 'number') checkDecimal(value);
    else check(value, 'value');
    this.raw(n);
    this.byte(COLON);
    this.byte(SP);
    if (typeof value === 'number') this.decimal(value);
    else this.str(value);
    this.crlf();
    return this;
  }

  /**
   * A field line from bytes the parser already validated (a proxy forwarding
   * headers): copied as they are, without a second validation pass.
   */
  headerBytes(name: Uint8Array, ns: number, ne: number, value: Uint8Array, vs: number, ve: number): this {
    this.ensure(ne - ns + ve - vs + 4);
    const b = this.slab;
    b.set(name.subarray(ns, ne), this.pos);
    this.pos += ne - ns;
    b[this.pos++] = COLON;
    b[this.pos++] = SP;
    b.set(value.subarray(vs, ve), this.pos);
    this.pos += ve - vs;
    b[this.pos++] = CR;
    b[this.pos++] = LF;
    return this;
  }

  /** Ends the header (or trailer) section. */
  endHead(): this {
    this.crlf();
    return this;
  }

  /** Body bytes: copied when small, referenced (zero-copy) when large. */
  body(data: Uint8Array): this {
    if (data.length === 0) return this;
    if (data.length <= this.copyThreshold) { this.raw(data); return this; }
    this.closeSegment();
    this.segs.push(data);
    return this;
  }

  /** One chunk: `hex-size CRLF data CRLF` (RFC 9112 §7.1). An empty chunk would end the body, so it is skipped. */
  chunk(data: Uint8Array): this {
    if (data.length === 0) return this;
    this.chunkHeader(data.length);
    this.body(data);
    this.crlf();
    return this;
  }

  /** Chunk size line only, for callers that stream the data themselves; follow the data with chunkEnd(). */
  chunkHeader(size: number): this {
    if (!Number.isSafeInteger(size) || size <= 0) throw new InvalidArgumentError(`invalid chunk size ${size}`);
    this.ensure(16);
    let digits = 0;
    for (let t = size; t > 0; t = Math.floor(t / 16)) digits++;
    let p = this.pos + digits;
    this.pos = p;
    for (let t = size; t > 0; t = Math.floor(t / 16)) this.slab[--p] = HEX_DIGITS[t % 16]!;
    this.crlf();
    return this;
  }

  chunkEnd(): this {
    this.crlf();
    return this;
  }

  /** `0 CRLF`, then optional trailers as header() calls, then endHead(). */
  lastChunk(): this {
    this.raw(LAST_CHUNK);
    return this;
  }

  /** The segments written so far, in order; the writer starts empty again. */
  drain(): Uint8Array[] {
    this.closeSegment();
    const out = this.segs;
    this.segs = [];
    return out;
  }

  /** All pending bytes as one contiguous view (copies only when there is more than one segment). */
  drainOne(): Uint8Array {
    const segs = this.drain();
    if (segs.length === 1) return segs[0]!;
    let n = 0;
    for (const s of segs) n += s.length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const s of segs) { out.set(s, o); o += s.length; }
    return out;
  }
}

const HTTP11 = latin1('HTTP/1.1');
const HTTP10 = latin1('HTTP/1.0');

export type HeaderList = ReadonlyArray<readonly [string, string | number]>;

export interface ResponseInit {
  status: number;
  reason?: string;
  headers?: HeaderList;
  /** Whole body: Content-Length framing. Omit for a bodiless response (or stream with chunks). */
  body?: Uint8Array;
  /** Stream the body with chunked framing (the caller then writes chunk()/lastChunk()). */
  chunked?: boolean;
}

/**
 * Writes a response head (and body when given) into `w`. Adds Content-Length
 * or Transfer-Encoding: chunked unless the status forbids content (1xx, 204,
 * 304, RFC 9110 §6.4.1) or the caller already set framing headers.
 */
export function writeResponse(w: Http1Writer, res: ResponseInit): Http1Writer {
  w.statusLine(res.status, res.reason);
  let framed = false;
  for (const [k, v] of res.headers ?? []) {
    const l = k.length;
    if ((l === 14 || l === 17) && /^(content-length|transfer-encoding)$/i.test(k)) framed = true;
    w.header(k, v);
  }
  const noContent = (res.status >= 100 && res.status < 200) || res.status === 204 || res.status === 304;
  if (!framed && !noContent) {
    if (res.chunked) w.header('Transfer-Encoding', 'chunked');
    else w.header('Content-Length', res.body?.length ?? 0);
  }
  w.endHead();
  if (res.body && !noContent && !res.chunked) w.body(res.body);
  return w;
}

export interface RequestInit {
  method: string;
  target: string;
  headers?: HeaderList;
  body?: Uint8Array;
  chunked?: boolean;
}

/** Writes a request head (and body when given); Content-Length is added for a body unless framing is set. */
export function writeRequest(w: Http1Writer, req: RequestInit): Http1Writer {
  w.requestLine(req.method, req.target);
  let framed = false;
  for (const [k, v] of req.headers ?? []) {
    const l = k.length;
    if ((l === 14 || l === 17) && /^(content-length|transfer-encoding)$/i.test(k)) framed = true;
    w.header(k, v);
  }
  if (!framed) {
    if (req.chunked) w.header('Transfer-Encoding', 'chunked');
    else if (req.body !== undefined) w.header('Content-Length', req.body.length);
  }
  w.endHead();
  if (req.body && !req.chunked) w.body(req.body);
  return w;
}
