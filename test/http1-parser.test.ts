// Unit tests for the HTTP/1.1 parser: smuggling payloads rejected at parse
// level, header limits, pipelining, chunked bodies with trailers, upgrades,
// keep-alive, response framing rules, pause/resume and zero-copy spans.
// Every input is replayed at every split point, as llhttp's tests do.

import { describe, expect, it } from 'vitest';
import {
  Cb, Errno, Flags, Http1ParseError, Http1Parser, Lenient, Method, ParserType, statusForErrno,
  type Http1Handler, type Http1ParserOptions,
} from '../src/l7/http1/index.js';

const enc = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const dec = (b: Uint8Array, s: number, e: number): string => String.fromCharCode(...b.subarray(s, e));

interface Msg {
  method: string;
  url: string;
  status: number;
  reason: string;
  version: string;
  headers: [string, string][];
  trailers: [string, string][];
  body: string;
  chunks: number[];
  exts: [string, string][];
  keepAlive: boolean;
  upgrade: boolean;
  complete: boolean;
}

class Collector implements Http1Handler {
  msgs: Msg[] = [];
  cur!: Msg;
  parser!: Http1Parser;
  headersCompleteCalls = 0;
  onHeadersCompleteResult = 0;
  onMessageBegin(): void {
    this.cur = { method: '', url: '', status: 0, reason: '', version: '', headers: [], trailers: [], body: '', chunks: [], exts: [], keepAlive: false, upgrade: false, complete: false };
    this.msgs.push(this.cur);
  }
  onMethod(): void { this.cur.method = this.parser.methodName; }
  onUrl(b: Uint8Array, s: number, e: number): void { this.cur.url = dec(b, s, e); }
  onStatus(b: Uint8Array, s: number, e: number): void { this.cur.reason = dec(b, s, e); }
  onHeader(n: Uint8Array, ns: number, ne: number, v: Uint8Array, vs: number, ve: number): void {
    this.cur.headers.push([dec(n, ns, ne), dec(v, vs, ve)]);
  }
  onTrailer(n: Uint8Array, ns: number, ne: number, v: Uint8Array, vs: number, ve: number): void {
    this.cur.trailers.push([dec(n, ns, ne), dec(v, vs, ve)]);
  }
  onHeadersComplete(): number {
    this.headersCompleteCalls++;
    const p = this.parser;
    this.cur.status = p.statusCode;
    this.cur.version = `${p.versionMajor}.${p.versionMinor}`;
    this.cur.keepAlive = p.keepAlive;
    this.cur.upgrade = p.upgrade;
    return this.onHeadersCompleteResult;
  }
  onBody(b: Uint8Array, s: number, e: number): void { this.cur.body += dec(b, s, e); }
  onChunkHeader(size: number): void { this.cur.chunks.push(size); }
  onChunkExtension(n: Uint8Array, ns: number, ne: number, v: Uint8Array, vs: number, ve: number): void {
    this.cur.exts.push([dec(n, ns, ne), dec(v, vs, ve)]);
  }
  onMessageComplete(): void { this.cur.complete = true; }
}

interface RunResult { c: Collector; p: Http1Parser; errno: number; consumed: number }

function run(type: ParserType, input: string, chunks: number[], opts: Http1ParserOptions = {}, setup?: (p: Http1Parser, c: Collector) => void): RunResult {
  const c = new Collector();
  const p = new Http1Parser(type, c, opts);
  c.parser = p;
  setup?.(p, c);
  const bytes = enc(input);
  let base = 0;
  let consumed = 0;
  for (const len of chunks) {
    const piece = bytes.slice(base, base + len); // own buffer per feed, poisoned after
    const n = p.feed(piece, 0, piece.length);
    consumed += n;
    piece.fill(0x7e);
    if (p.errno !== Errno.OK) break;
    base += len;
  }
  return { c, p, errno: p.errno, consumed };
}

/** Runs `input` whole, at every split point, and byte by byte; checks all agree, returns the whole run. */
function everySplit(type: ParserType, input: string, opts: Http1ParserOptions = {}, setup?: (p: Http1Parser, c: Collector) => void): RunResult {
  const n = input.length;
  const whole = run(type, input, [n], opts, setup);
  const plans: number[][] = [Array.from({ length: n }, () => 1)];
  for (let k = 1; k < n; k++) plans.push([k, n - k]);
  for (const plan of plans) {
    const r = run(type, input, plan, opts, setup);
    expect(r.errno, `split ${plan.length > 2 ? 'bytewise' : plan.join('+')}`).toBe(whole.errno);
    expect(r.c.msgs, `split ${plan.length > 2 ? 'bytewise' : plan.join('+')}`).toEqual(whole.c.msgs);
    if (whole.errno === Errno.PAUSED_UPGRADE) expect(r.consumed).toBe(whole.consumed);
  }
  return whole;
}

const REQ = ParserType.REQUEST;
const RES = ParserType.RESPONSE;

describe('request smuggling payloads are rejected at parse level', () => {
  const cases: [string, string, number][] = [
    ['CL.TE (Content-Length then Transfer-Encoding)',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG',
      Errno.INVALID_TRANSFER_ENCODING],
    ['TE.CL (Transfer-Encoding then Content-Length)',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n',
      Errno.INVALID_CONTENT_LENGTH],
    ['TE.TE: xchunked',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
      Errno.INVALID_TRANSFER_ENCODING],
    ['TE.TE: " chunked" as an obs-fold continuation line',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n',
      Errno.INVALID_HEADER_TOKEN],
    ['TE.TE: chunked folded after another value',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\tchunked\r\n\r\n0\r\n\r\n',
      Errno.INVALID_HEADER_TOKEN],
    ['TE.TE: chunked, identity',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
      Errno.INVALID_TRANSFER_ENCODING],
    ['TE.TE: chunked in two header lines, then identity',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n',
      Errno.INVALID_TRANSFER_ENCODING],
    ['TE.TE: chunked applied twice',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      Errno.INVALID_TRANSFER_ENCODING],
    ['TE.TE: whitespace before the colon',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
      Errno.INVALID_HEADER_TOKEN],
    ['TE.TE: chunkedchunked',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedchunked\r\n\r\n0\r\n\r\n',
      Errno.INVALID_TRANSFER_ENCODING],
    ['TE with a control character in the value',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n',
      Errno.INVALID_HEADER_TOKEN],
    ['duplicate Content-Length that differ',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
      Errno.UNEXPECTED_CONTENT_LENGTH],
    ['duplicate identical Content-Length (rejected like llhttp)',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd',
      Errno.UNEXPECTED_CONTENT_LENGTH],
    ['Content-Length as a list',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\nabcd',
      Errno.INVALID_CONTENT_LENGTH],
    ['Content-Length with a sign', 'POST / HTTP/1.1\r\nContent-Length: +4\r\n\r\nabcd', Errno.INVALID_CONTENT_LENGTH],
    ['Content-Length in hex', 'POST / HTTP/1.1\r\nContent-Length: 0x4\r\n\r\nabcd', Errno.INVALID_CONTENT_LENGTH],
    ['Content-Length overflow', 'POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n', Errno.INVALID_CONTENT_LENGTH],
    ['chunk-size overflow',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nx\r\n0\r\n\r\n',
      Errno.INVALID_CHUNK_SIZE],
    ['bare LF ending a header line', 'GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n', Errno.CR_EXPECTED],
    ['bare LF ending the request line', 'GET / HTTP/1.1\nHost: a\r\n\r\n', Errno.INVALID_VERSION],
    ['bare CR inside a header value', 'GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n', Errno.LF_EXPECTED],
    ['bare LF after the chunk size',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n', Errno.INVALID_CHUNK_SIZE],
    ['bare LF after chunk data',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\n0\r\n\r\n', Errno.STRICT],
    ['chunk data longer than its size',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n', Errno.STRICT],
    ['invalid token character in the method', 'G(T / HTTP/1.1\r\n\r\n', Errno.INVALID_METHOD],
    ['invalid token character in a header name', 'GET / HTTP/1.1\r\nHo"st: a\r\n\r\n', Errno.INVALID_HEADER_TOKEN],
    ['NUL in a header value', 'GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n', Errno.INVALID_HEADER_TOKEN],
    ['space in the request target', 'GET /a b HTTP/1.1\r\n\r\n', Errno.INVALID_CONSTANT],
    ['whitespace after the start line', 'GET / HTTP/1.1\r\n Host: a\r\n\r\n', Errno.UNEXPECTED_SPACE],
    ['space in a chunk size', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n', Errno.INVALID_CHUNK_SIZE],
  ];

  for (const [name, input, errno] of cases) {
    it(`${name} -> ${errno}, 400`, () => {
      const r = everySplit(REQ, input);
      expect(r.errno).toBe(errno);
      expect(statusForErrno(r.errno)).toBe(400);
      // nothing of the message reached the application as a complete request
      expect(r.c.msgs.filter((m) => m.complete)).toEqual([]);
    });
  }

  it('a response may end its Transfer-Encoding with a non-chunked coding: read until close (RFC 9112 §6.3)', () => {
    const r = everySplit(RES, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nraw bytes');
    expect(r.errno).toBe(Errno.OK);
    expect(r.p.bodyUntilEof).toBe(true);
    expect(r.c.msgs[0]!.body).toBe('raw bytes');
    expect(r.p.finish()).toBe(Errno.OK);
    expect(r.c.msgs[0]!.complete).toBe(true);
  });

  it('leniency CHUNKED_LENGTH lets Transfer-Encoding win over Content-Length, off by default', () => {
    const input = 'POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n';
    expect(everySplit(REQ, input).errno).toBe(Errno.INVALID_TRANSFER_ENCODING);
    const r = everySplit(REQ, input, { lenient: Lenient.CHUNKED_LENGTH });
    expect(r.errno).toBe(Errno.OK);
    expect(r.c.msgs[0]!.body).toBe('x');
  });

  it('a parse error converts to an Http1ParseError with a stable code and status', () => {
    const r = run(REQ, 'GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n', [40]);
    const e = new Http1ParseError(r.p.errno, r.p.reason, r.p.errorOffset);
    expect(e.code).toBe('ERR_STRATA_HTTP1_PARSE');
    expect(e.errno).toBe(Errno.CR_EXPECTED);
    expect(e.status).toBe(400);
    expect(e.message).toMatch(/^HPE_CR_EXPECTED: /);
    expect(r.p.errorOffset).toBe(23);
  });
});

describe('request-target and list syntax', () => {
  it('refuses request-targets that are not origin, absolute, authority (CONNECT) or asterisk form', () => {
    for (const bad of ['GET foo HTTP/1.1', 'GET http:/x HTTP/1.1', 'GET http://a"b/ HTTP/1.1', 'CONNECT example.com HTTP/1.1',
      'CONNECT /x HTTP/1.1', 'GET  / HTTP/1.1', 'GET / HTTP/1.1 ']) {
      const r = everySplit(REQ, `${bad}\r\nHost: a\r\n\r\n`);
      expect(r.errno, bad).not.toBe(Errno.OK);
      expect(r.c.msgs.filter((m) => m.complete), bad).toEqual([]);
    }
    for (const good of ['GET /a?b#c HTTP/1.1', 'GET http://user@h:8080/p?q HTTP/1.1', 'OPTIONS * HTTP/1.1', 'CONNECT [::1]:443 HTTP/1.1']) {
      const r = run(REQ, `${good}\r\nHost: a\r\n\r\n`, [100]);
      expect([Errno.OK, Errno.PAUSED_UPGRADE], good).toContain(r.errno);
    }
  });

  it('a Transfer-Encoding list may not end in an empty element after chunked (llhttp agrees)', () => {
    expect(everySplit(REQ, 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n').errno).toBe(Errno.INVALID_TRANSFER_ENCODING);
    expect(everySplit(REQ, 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip , chunked\r\n\r\n0\r\n\r\n').errno).toBe(Errno.OK);
    expect(everySplit(REQ, 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n').errno).toBe(Errno.INVALID_TRANSFER_ENCODING);
    expect(everySplit(REQ, 'POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n').errno).toBe(Errno.INVALID_TRANSFER_ENCODING);
  });
});

describe('header section limits', () => {
  const head = (n: number, valueLen = 10): string =>
    'GET / HTTP/1.1\r\n' + Array.from({ length: n }, (_, i) => `X-H${i}: ${'v'.repeat(valueLen)}\r\n`).join('') + '\r\n';

  it('counts header lines: maxHeaders passes, one more is 431', () => {
    expect(run(REQ, head(5), [head(5).length], { maxHeaders: 5 }).errno).toBe(Errno.OK);
    const r = everySplit(REQ, head(6), { maxHeaders: 5 });
    expect(r.errno).toBe(Errno.TOO_MANY_HEADERS);
    expect(statusForErrno(r.errno)).toBe(431);
    expect(r.c.headersCompleteCalls).toBe(0);
  });

  it('bounds the bytes of the start line plus header section, in one feed or many', () => {
    const ok = head(3, 20);
    expect(run(REQ, ok, [ok.length], { maxHeaderSize: ok.length }).errno).toBe(Errno.OK);
    const big = 'GET / HTTP/1.1\r\nX-Big: ' + 'a'.repeat(4000) + '\r\n\r\n';
    const whole = run(REQ, big, [big.length], { maxHeaderSize: 1024 });
    expect(whole.errno).toBe(Errno.HEADER_OVERFLOW);
    expect(statusForErrno(whole.errno)).toBe(431);
    // 100-byte feeds: the error comes as soon as the bound is crossed, before the line ends
    const pieces = Array.from({ length: Math.ceil(big.length / 100) }, () => 100);
    const split = run(REQ, big, pieces, { maxHeaderSize: 1024 });
    expect(split.errno).toBe(Errno.HEADER_OVERFLOW);
    expect(split.consumed).toBeLessThanOrEqual(1100);
  });

  it('a long request target counts toward the bound', () => {
    const input = `GET /${'p'.repeat(3000)} HTTP/1.1\r\n\r\n`;
    const r = run(REQ, input, Array.from({ length: 31 }, () => 100), { maxHeaderSize: 2048 });
    expect(r.errno).toBe(Errno.HEADER_OVERFLOW);
  });

  it('the limit is per message: pipelined heads each get the full budget', () => {
    const one = head(3, 20);
    const r = everySplit(REQ, one + one + one, { maxHeaderSize: one.length });
    expect(r.errno).toBe(Errno.OK);
    expect(r.c.msgs.length).toBe(3);
  });

  it('trailers are bounded like headers', () => {
    const trailers = Array.from({ length: 4 }, (_, i) => `T${i}: x\r\n`).join('');
    const input = `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${trailers}\r\n`;
    expect(everySplit(REQ, input, { maxHeaders: 4 }).errno).toBe(Errno.OK);
    expect(everySplit(REQ, input, { maxHeaders: 3 }).errno).toBe(Errno.TOO_MANY_HEADERS);
  });
});

describe('pipelining, bodies and trailers', () => {
  it('parses three pipelined requests of different framing from one buffer', () => {
    const input =
      'GET /a HTTP/1.1\r\nHost: x\r\n\r\n' +
      'POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello' +
      'PUT /c?q=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n';
    const r = everySplit(REQ, input);
    expect(r.errno).toBe(Errno.OK);
    expect(r.c.msgs.map((m) => [m.method, m.url, m.body, m.complete, m.keepAlive])).toEqual([
      ['GET', '/a', '', true, true],
      ['POST', '/b', 'hello', true, true],
      ['PUT', '/c?q=1', 'abcde', true, true],
    ]);
    expect(r.p.messages).toBe(3);
    expect(r.p.idle).toBe(true);
  });

  it('chunked body with extensions and trailers', () => {
    const input =
      'POST /up HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nTrailer: Checksum\r\n\r\n' +
      '4;name=value;flag\r\nWiki\r\n5;q="a \\"b\\""\r\npedia\r\n0\r\nChecksum: abc123 \r\nX-T: 1\r\n\r\n';
    const r = everySplit(REQ, input);
    expect(r.errno).toBe(Errno.OK);
    const m = r.c.msgs[0]!;
    expect(m.body).toBe('Wikipedia');
    expect(m.chunks).toEqual([4, 5, 0]);
    expect(m.exts).toEqual([['name', 'value'], ['flag', ''], ['q', '"a \\"b\\""']]);
    expect(m.trailers).toEqual([['Checksum', 'abc123'], ['X-T', '1']]);
    expect(m.headers).toEqual([['Transfer-Encoding', 'gzip, chunked'], ['Trailer', 'Checksum']]);
    expect(r.p.flags & Flags.TRAILING).toBeTruthy();
  });

  it('framing fields are refused in trailers (RFC 9110 §6.5.1)', () => {
    const cl = everySplit(REQ, 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\nGET / HTTP/1.1\r\n\r\n');
    expect(cl.errno).toBe(Errno.INVALID_CONTENT_LENGTH);
    const te = everySplit(REQ, 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n');
    expect(te.errno).toBe(Errno.INVALID_TRANSFER_ENCODING);
    expect([cl, te].flatMap((r) => r.c.msgs.filter((m) => m.complete))).toEqual([]);
  });

  it('a long chunk extension is bounded', () => {
    const input = `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;${'a'.repeat(300)}\r\nx\r\n0\r\n\r\n`;
    expect(run(REQ, input, [input.length], { maxChunkExtensionSize: 100 }).errno).toBe(Errno.CHUNK_EXTENSIONS_OVERFLOW);
    expect(run(REQ, input, [input.length]).errno).toBe(Errno.OK);
  });

  it('trims OWS around header values and keeps inner whitespace', () => {
    const r = everySplit(REQ, 'GET / HTTP/1.1\r\nA:  x  y \t\r\nB:\r\nC: \r\n\r\n');
    expect(r.c.msgs[0]!.headers).toEqual([['A', 'x  y'], ['B', ''], ['C', '']]);
  });
});

describe('keep-alive and close', () => {
  const ka = (input: string): boolean => everySplit(REQ, input).c.msgs[0]!.keepAlive;
  it('follows the version default and the Connection options', () => {
    expect(ka('GET / HTTP/1.1\r\n\r\n')).toBe(true);
    expect(ka('GET / HTTP/1.1\r\nConnection: close\r\n\r\n')).toBe(false);
    expect(ka('GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n')).toBe(false);
    expect(ka('GET / HTTP/1.0\r\n\r\n')).toBe(false);
    expect(ka('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n')).toBe(true);
  });

  it('an HTTP/1.0 message with Transfer-Encoding is processed, then the connection closes (RFC 9112 §6.1)', () => {
    const r = everySplit(REQ, 'POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n');
    expect(r.errno).toBe(Errno.OK);
    expect(r.c.msgs[0]).toMatchObject({ body: 'x', complete: true, keepAlive: false });
  });

  it('counts Host field lines for the server\'s RFC 9112 §3.2 check', () => {
    const host = (input: string): number => {
      let n = -1;
      const p = new Http1Parser(REQ, { onHeadersComplete: () => { n = p.hostCount; } });
      p.feed(enc(input));
      return n;
    };
    expect(host('GET / HTTP/1.1\r\n\r\n')).toBe(0);
    expect(host('GET / HTTP/1.1\r\nhOsT: a\r\n\r\n')).toBe(1);
    expect(host('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')).toBe(2);
  });

  it('refuses leniency bits it does not implement instead of ignoring them', () => {
    expect(() => new Http1Parser(REQ, {}, { lenient: Lenient.OPTIONAL_CR_BEFORE_LF })).toThrow(/not implemented/);
    expect(() => new Http1Parser(REQ, {}, { lenient: Lenient.KEEP_ALIVE })).not.toThrow();
  });

  it('rejects data after a message that closes the connection', () => {
    const r = everySplit(REQ, 'GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n');
    expect(r.errno).toBe(Errno.CLOSED_CONNECTION);
    expect(r.c.msgs.length).toBe(1);
    expect(r.c.msgs[0]!.complete).toBe(true);
  });
});

describe('Upgrade and CONNECT hand the rest of the stream to the caller', () => {
  it('WebSocket upgrade: stops after the head, remaining bytes are the new protocol', () => {
    const head = 'GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';
    const r = everySplit(REQ, head + '\x81\x05hello');
    expect(r.errno).toBe(Errno.PAUSED_UPGRADE);
    expect(r.consumed).toBe(head.length);
    expect(r.c.msgs[0]!.upgrade).toBe(true);
    expect(r.c.msgs[0]!.complete).toBe(true);
    // no more input is taken until the caller decides
    expect(r.p.feed(enc('x'))).toBe(0);
  });

  it('Upgrade without the connection option is informational only', () => {
    const r = everySplit(REQ, 'GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.1\r\n\r\n');
    expect(r.errno).toBe(Errno.OK);
    expect(r.c.msgs.length).toBe(2);
  });

  it('CONNECT: authority-form target, tunnel bytes follow the head', () => {
    const head = 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n';
    const r = everySplit(REQ, head + '\x16\x03\x01');
    expect(r.errno).toBe(Errno.PAUSED_UPGRADE);
    expect(r.consumed).toBe(head.length);
    expect(r.c.msgs[0]!.url).toBe('example.com:443');
    expect(r.p.method).toBe(Method.CONNECT);
  });

  it('a declined upgrade can go on as HTTP', () => {
    const head = 'GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n';
    const c = new Collector();
    const p = new Http1Parser(REQ, c);
    c.parser = p;
    const buf = enc(head + 'GET /next HTTP/1.1\r\n\r\n');
    const n = p.feed(buf);
    expect(p.errno).toBe(Errno.PAUSED_UPGRADE);
    p.resumeAfterUpgrade();
    p.feed(buf, n, buf.length - n);
    expect(p.errno).toBe(Errno.OK);
    expect(c.msgs.map((m) => m.url)).toEqual(['/', '/next']);
  });

  it('onHeadersComplete may force an upgrade or skip the body', () => {
    const input = 'POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n';
    const up = everySplit(REQ, input, {}, (_p, c) => { c.onHeadersCompleteResult = Cb.UPGRADE; });
    expect(up.errno).toBe(Errno.PAUSED_UPGRADE);
    expect(up.consumed).toBe(input.indexOf('abc'));
    const skip = run(REQ, 'POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nGET / HTTP/1.1\r\n\r\n', [100], {}, (_p, c) => { c.onHeadersCompleteResult = Cb.SKIP_BODY; });
    expect(skip.errno).toBe(Errno.OK);
    expect(skip.c.msgs.length).toBe(2);
  });

  it('the HTTP/2 preface is recognised and handed over', () => {
    const r = everySplit(REQ, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04');
    expect(r.errno).toBe(Errno.PAUSED_H2_UPGRADE);
    expect(r.consumed).toBe(24);
  });
});

describe('responses', () => {
  it('the response to HEAD has no body even with Content-Length', () => {
    const input = 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi';
    const r = everySplit(RES, input, {}, (p) => { p.expectResponseTo(Method.HEAD); p.expectResponseTo(Method.GET); });
    expect(r.errno).toBe(Errno.OK);
    expect(r.c.msgs.map((m) => [m.status, m.body, m.complete])).toEqual([[200, '', true], [200, 'hi', true]]);
  });

  it('interim 1xx responses precede the final one without consuming the request', () => {
    const input = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n';
    const r = everySplit(RES, input, {}, (p) => { p.expectResponseTo(Method.POST); p.expectResponseTo(Method.GET); });
    expect(r.errno).toBe(Errno.OK);
    expect(r.c.msgs.map((m) => [m.status, m.reason, m.complete])).toEqual([
      [100, 'Continue', true], [103, 'Early Hints', true], [204, 'No Content', true], [304, 'Not Modified', true],
    ]);
  });

  it('a 2xx to CONNECT opens a tunnel; 101 switches protocols', () => {
    const head = 'HTTP/1.1 200 Connection Established\r\n\r\n';
    const r = everySplit(RES, head + 'tunnel', {}, (p) => p.expectResponseTo(Method.CONNECT));
    expect(r.errno).toBe(Errno.PAUSED_UPGRADE);
    expect(r.consumed).toBe(head.length);
    const sw = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';
    const r2 = everySplit(RES, sw + '\x81\x00');
    expect(r2.errno).toBe(Errno.PAUSED_UPGRADE);
    expect(r2.consumed).toBe(sw.length);
  });

  it('an interim response that announces close ends the connection, as llhttp does', () => {
    const r = everySplit(RES, 'HTTP/1.1 103 Early Hints\r\nConnection: close\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    expect(r.errno).toBe(Errno.CLOSED_CONNECTION);
  });

  it('finish() completes a message whose completion was held by a pause', () => {
    const p = new Http1Parser(REQ, { onBody: () => Cb.PAUSE });
    p.feed(enc('POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx'));
    expect(p.errno).toBe(Errno.PAUSED);
    p.resume();
    expect(p.finish()).toBe(Errno.OK);
    expect(p.messages).toBe(1);
  });

  it('a body without framing runs until close; EOF inside a framed body is an error', () => {
    const r = everySplit(RES, 'HTTP/1.1 200 OK\r\n\r\nuntil close');
    expect(r.p.bodyUntilEof).toBe(true);
    expect(r.c.msgs[0]!.keepAlive).toBe(false);
    expect(r.p.finish()).toBe(Errno.OK);
    expect(r.c.msgs[0]!.body).toBe('until close');
    expect(r.c.msgs[0]!.complete).toBe(true);
    const cut = run(RES, 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort', [100]);
    expect(cut.p.finish()).toBe(Errno.INVALID_EOF_STATE);
  });

  it('rejects malformed status lines', () => {
    expect(everySplit(RES, 'HTTP/1.1 20 OK\r\n\r\n').errno).toBe(Errno.INVALID_STATUS);
    expect(everySplit(RES, 'HTTP/1.1 2000 OK\r\n\r\n').errno).toBe(Errno.INVALID_STATUS);
    expect(everySplit(RES, 'HTTP/1.1 200 OK\nX: y\r\n\r\n').errno).toBe(Errno.CR_EXPECTED);
    expect(everySplit(RES, 'HTTP/1.1 200 O\x01K\r\n\r\n').errno).toBe(Errno.INVALID_STATUS);
  });
});

describe('pause and resume (backpressure)', () => {
  it('a body callback returning PAUSE stops feed() right after that span', () => {
    const input = enc('POST / HTTP/1.1\r\nContent-Length: 6\r\n\r\nabcdefGET /2 HTTP/1.1\r\n\r\n');
    const bodies: string[] = [];
    let completes = 0;
    const p = new Http1Parser(REQ, {
      onBody: (b, s, e) => { bodies.push(dec(b, s, e)); return Cb.PAUSE; },
      onMessageComplete: () => { completes++; },
    });
    // feed the body in two pieces so there are two pauses
    const headEnd = input.indexOf(0x61);
    let n = p.feed(input, 0, headEnd + 2);
    expect(p.errno).toBe(Errno.PAUSED);
    expect(n).toBe(headEnd + 2);
    expect(bodies).toEqual(['ab']);
    expect(p.bodyRemaining).toBe(4);
    expect(p.feed(input, n, 1)).toBe(0); // refused while paused
    p.resume();
    const m = p.feed(input, n, input.length - n);
    expect(p.errno).toBe(Errno.PAUSED);
    expect(m).toBe(4);
    expect(completes).toBe(0); // message complete is after the pause, not before
    n += m;
    p.resume();
    p.feed(input, n, input.length - n);
    expect(p.errno).toBe(Errno.OK);
    expect(bodies).toEqual(['ab', 'cdef']);
    expect(completes).toBe(2);
  });

  it('a callback returning another non-zero value is a user error', () => {
    const p = new Http1Parser(REQ, { onHeadersComplete: () => 99 });
    p.feed(enc('GET / HTTP/1.1\r\n\r\n'));
    expect(p.errno).toBe(Errno.USER);
  });
});

describe('zero-copy spans', () => {
  it('body and unsplit header spans point into the input buffer; straddling ones are copied whole', () => {
    const input = enc('POST /path HTTP/1.1\r\nX-Long-Header: some-value\r\nContent-Length: 4\r\n\r\nbody');
    const seen: { what: string; same: boolean; text: string }[] = [];
    const p = new Http1Parser(REQ, {
      onUrl: (b, s, e) => { seen.push({ what: 'url', same: b.buffer === input.buffer, text: dec(b, s, e) }); },
      onHeader: (n, ns, ne, v, vs, ve) => {
        seen.push({ what: dec(n, ns, ne), same: n.buffer === input.buffer && v.buffer === input.buffer, text: dec(v, vs, ve) });
      },
      onBody: (b, s, e) => { seen.push({ what: 'body', same: b.buffer === input.buffer, text: dec(b, s, e) }); },
    });
    const cut = input.indexOf(0x76 /* v of some-value */);
    p.feed(input, 0, cut);
    p.feed(input.slice(cut)); // a different buffer for the rest
    expect(p.errno).toBe(Errno.OK);
    expect(seen).toEqual([
      { what: 'url', same: true, text: '/path' },
      { what: 'X-Long-Header', same: false, text: 'some-value' }, // straddled: scratch copy
      { what: 'Content-Length', same: false, text: '4' }, // in the second buffer, not the first
      { what: 'body', same: false, text: 'body' },
    ]);
  });

  it('reuses one parser across many messages without growing state', () => {
    const one = enc('GET /x HTTP/1.1\r\nHost: a\r\n\r\n');
    const c = new Collector();
    const p = new Http1Parser(REQ, c);
    c.parser = p;
    for (let i = 0; i < 1000; i++) p.feed(one);
    expect(p.errno).toBe(Errno.OK);
    expect(p.messages).toBe(1000);
  });
});
