// Serializer tests: round trips through our parser, zero-copy segments, the
// validation that prevents response splitting, and real peers on loopback:
// node:http (llhttp) reads what we write, curl's requests are parsed by our
// parser and answered by our writer.

import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Errno, Http1Parser, Http1Writer, Method, ParserType, writeRequest, writeResponse,
} from '../src/l7/http1/index.js';
import { InvalidArgumentError } from '../src/util/errors.js';

const execFileP = promisify(execFile);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const txt = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');

interface Parsed { status: number; method: string; url: string; headers: [string, string][]; trailers: [string, string][]; body: string; complete: boolean }

function parseAll(type: ParserType, bytes: Uint8Array, setup?: (p: Http1Parser) => void): { msgs: Parsed[]; errno: number } {
  const msgs: Parsed[] = [];
  let cur!: Parsed;
  const d = (b: Uint8Array, s: number, e: number): string => Buffer.from(b.subarray(s, e)).toString('latin1');
  const p: Http1Parser = new Http1Parser(type, {
    onMessageBegin: () => { cur = { status: 0, method: '', url: '', headers: [], trailers: [], body: '', complete: false }; msgs.push(cur); },
    onMethod: () => { cur.method = p.methodName; },
    onUrl: (b, s, e) => { cur.url = d(b, s, e); },
    onHeader: (n, ns, ne, v, vs, ve) => { cur.headers.push([d(n, ns, ne), d(v, vs, ve)]); },
    onTrailer: (n, ns, ne, v, vs, ve) => { cur.trailers.push([d(n, ns, ne), d(v, vs, ve)]); },
    onHeadersComplete: () => { cur.status = p.statusCode; },
    onBody: (b, s, e) => { cur.body += d(b, s, e); },
    onMessageComplete: () => { cur.complete = true; },
  });
  setup?.(p);
  p.feed(bytes);
  return { msgs, errno: p.errno };
}

describe('Http1Writer', () => {
  it('writes a response that our parser reads back, with the cached status line', () => {
    const w = new Http1Writer();
    writeResponse(w, { status: 200, headers: [['Content-Type', 'text/plain'], ['X-N', 42]], body: enc('hello') });
    const bytes = w.drainOne();
    expect(txt(bytes)).toBe('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-N: 42\r\nContent-Length: 5\r\n\r\nhello');
    const r = parseAll(ParserType.RESPONSE, bytes);
    expect(r.errno).toBe(Errno.OK);
    expect(r.msgs[0]).toMatchObject({ status: 200, body: 'hello', complete: true });
  });

  it('uncommon statuses and custom reasons', () => {
    const w = new Http1Writer();
    w.statusLine(299, 'Custom Thing').endHead();
    w.statusLine(418).endHead();
    expect(txt(w.drainOne())).toBe('HTTP/1.1 299 Custom Thing\r\n\r\nHTTP/1.1 418 \r\n\r\n');
  });

  it('no Content-Length for 204, 304 and 1xx', () => {
    const w = new Http1Writer();
    writeResponse(w, { status: 204 });
    writeResponse(w, { status: 304, headers: [['ETag', '"x"']] });
    writeResponse(w, { status: 100 });
    expect(txt(w.drainOne())).toBe('HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n');
  });

  it('chunked request with trailers round-trips, chunk sizes in hex', () => {
    const w = new Http1Writer();
    writeRequest(w, { method: 'POST', target: '/upload?x=1', headers: [['Host', 'example'], ['Trailer', 'Digest']], chunked: true });
    w.chunk(enc('a'.repeat(26))).chunk(enc('')).chunk(enc('xyz')).lastChunk().header('Digest', 'sha-256=abc').endHead();
    const bytes = w.drainOne();
    expect(txt(bytes)).toContain('\r\n1a\r\naaaaaaaaaaaaaaaaaaaaaaaaaa\r\n3\r\nxyz\r\n0\r\nDigest: sha-256=abc\r\n\r\n');
    const r = parseAll(ParserType.REQUEST, bytes);
    expect(r.errno).toBe(Errno.OK);
    expect(r.msgs[0]).toMatchObject({ method: 'POST', url: '/upload?x=1', body: 'a'.repeat(26) + 'xyz', trailers: [['Digest', 'sha-256=abc']], complete: true });
    expect(r.msgs[0]!.headers).toContainEqual(['Transfer-Encoding', 'chunked']);
  });

  it('references large bodies (zero-copy) and copies small ones into the head segment', () => {
    const w = new Http1Writer({ copyThreshold: 64 });
    const big = new Uint8Array(10_000).fill(0x62);
    writeResponse(w, { status: 200, body: big });
    const segs = w.drain();
    expect(segs.length).toBe(2);
    expect(segs[1]).toBe(big); // the very same object: no copy
    writeResponse(w, { status: 200, body: enc('tiny') });
    const small = w.drain();
    expect(small.length).toBe(1);
    expect(txt(small[0]!).endsWith('\r\n\r\ntiny')).toBe(true);
  });

  it('never overwrites bytes already handed out when the slab rolls over', () => {
    const w = new Http1Writer({ slabSize: 256 });
    const out: Uint8Array[] = [];
    for (let i = 0; i < 50; i++) {
      writeResponse(w, { status: 200, headers: [['X-I', i]], body: enc(`body-${i}`) });
      out.push(...w.drain());
    }
    const all = out.map(txt).join('');
    const r = parseAll(ParserType.RESPONSE, enc(all));
    expect(r.errno).toBe(Errno.OK);
    expect(r.msgs.map((m) => m.body)).toEqual(Array.from({ length: 50 }, (_, i) => `body-${i}`));
    expect(r.msgs.map((m) => m.headers[0]![1])).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
  });

  it('refuses field names and values that would split the message', () => {
    const w = new Http1Writer();
    expect(() => w.header('X-A', 'ok\r\nSet-Cookie: evil')).toThrow(InvalidArgumentError);
    expect(() => w.header('X-A', 'nul\x00')).toThrow(InvalidArgumentError);
    expect(() => w.header('Bad Name', 'v')).toThrow(InvalidArgumentError);
    expect(() => w.header('', 'v')).toThrow(InvalidArgumentError);
    expect(() => w.header('X-Ü', 'v')).toThrow(InvalidArgumentError);
    expect(() => w.requestLine('GET', '/a b')).toThrow(InvalidArgumentError);
    expect(() => w.requestLine('G T', '/')).toThrow(InvalidArgumentError);
    expect(() => w.statusLine(200, 'OK\r\nX: y')).toThrow(InvalidArgumentError);
    expect(() => w.statusLine(42)).toThrow(InvalidArgumentError);
    expect(() => w.chunkHeader(0)).toThrow(InvalidArgumentError);
    // obs-text and HTAB are legal in values
    w.header('X-L', 'caf\u00e9\tbar');
    expect(txt(w.drainOne())).toBe('X-L: caf\u00e9\tbar\r\n');
  });

  it('headerBytes forwards parser spans unchanged (proxy path)', () => {
    const src = enc('GET / HTTP/1.1\r\nX-Fwd: a b\r\n\r\n');
    const w = new Http1Writer();
    w.requestLine('GET', '/');
    const p = new Http1Parser(ParserType.REQUEST, { onHeader: (n, ns, ne, v, vs, ve) => { w.headerBytes(n, ns, ne, v, vs, ve); } });
    p.feed(src);
    w.endHead();
    expect(txt(w.drainOne())).toBe('GET / HTTP/1.1\r\nX-Fwd: a b\r\n\r\n');
  });
});

describe('real peers on loopback', () => {
  let server: net.Server;
  let port = 0;
  const seen: { method: string; url: string; body: string; te: string }[] = [];

  beforeAll(async () => {
    // A tiny server built only from our parser and writer: echo method, URL and body.
    server = net.createServer((sock) => {
      const w = new Http1Writer();
      let method = '', url = '', te = '';
      let body: Buffer[] = [];
      let close = false;
      const p: Http1Parser = new Http1Parser(ParserType.REQUEST, {
        onMessageBegin: () => { body = []; te = ''; },
        onMethod: () => { method = p.methodName; },
        onUrl: (b, s, e) => { url = Buffer.from(b.subarray(s, e)).toString('latin1'); },
        onHeader: (n, ns, ne, v, vs, ve) => {
          if (Buffer.from(n.subarray(ns, ne)).toString('latin1').toLowerCase() === 'transfer-encoding') te = Buffer.from(v.subarray(vs, ve)).toString('latin1');
        },
        onBody: (b, s, e) => { body.push(Buffer.from(b.subarray(s, e))); },
        onMessageComplete: () => {
          const text = Buffer.concat(body).toString('latin1');
          seen.push({ method, url, body: text, te });
          close = !p.keepAlive;
          const payload = enc(`${method} ${url} ${text.length}\n`);
          writeResponse(w, { status: 200, headers: [['Content-Type', 'text/plain']], body: payload, chunked: method === 'PUT' });
          if (method === 'PUT') w.chunk(payload).lastChunk().endHead();
          for (const seg of w.drain()) sock.write(seg);
          if (close) sock.end();
        },
      });
      sock.on('data', (d: Buffer) => {
        p.feed(d);
        if (p.errno !== Errno.OK) {
          const w2 = new Http1Writer();
          writeResponse(w2, { status: 400, headers: [['Connection', 'close']] });
          sock.end(w2.drainOne());
        }
      });
      sock.on('end', () => { p.finish(); sock.end(); });
      sock.on('error', () => sock.destroy());
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
    port = (server.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((res) => server.close(() => res()));
  });

  it('node:http (llhttp) client: keep-alive GETs and a POST, responses read back by llhttp', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const req = (method: string, path: string, body?: string): Promise<{ status: number; text: string; headers: http.IncomingHttpHeaders }> =>
      new Promise((res, rej) => {
        const r = http.request({ host: '127.0.0.1', port, method, path, agent }, (resp) => {
          const parts: Buffer[] = [];
          resp.on('data', (d: Buffer) => parts.push(d));
          resp.on('end', () => res({ status: resp.statusCode!, text: Buffer.concat(parts).toString(), headers: resp.headers }));
        });
        r.on('error', rej);
        if (body !== undefined) r.end(body); else r.end();
      });
    expect(await req('GET', '/one')).toMatchObject({ status: 200, text: 'GET /one 0\n' });
    expect(await req('POST', '/two', 'x'.repeat(5000))).toMatchObject({ status: 200, text: 'POST /two 5000\n' });
    const put = await req('PUT', '/three', 'abc');
    expect(put).toMatchObject({ status: 200, text: 'PUT /three 3\n' });
    expect(put.headers['transfer-encoding']).toBe('chunked');
    agent.destroy();
  });

  it('curl: chunked upload, then a smuggling attempt gets 400', async () => {
    const { stdout } = await execFileP('curl', ['-sS', '--http1.1', '-H', 'Transfer-Encoding: chunked', '--data-binary', 'chunky body', `http://127.0.0.1:${port}/curl`]);
    expect(stdout).toBe('POST /curl 11\n');
    expect(seen.find((s) => s.url === '/curl')).toMatchObject({ method: 'POST', body: 'chunky body', te: 'chunked' });
    const { stdout: code } = await execFileP('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--http1.1',
      '-H', 'Transfer-Encoding: chunked', '-H', 'Content-Length: 3', '--data-binary', 'abc', `http://127.0.0.1:${port}/smuggle`]);
    expect(code).toBe('400');
    expect(seen.find((s) => s.url === '/smuggle')).toBeUndefined();
  });

  it('pipelined requests over one raw socket are answered in order', async () => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    const done = new Promise<void>((res) => sock.on('end', () => res()));
    sock.write('GET /p1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /p3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    await done;
    const r = parseAll(ParserType.RESPONSE, new Uint8Array(Buffer.concat(chunks)), (p) => {
      p.expectResponseTo(Method.GET); p.expectResponseTo(Method.POST); p.expectResponseTo(Method.GET);
    });
    expect(r.errno).toBe(Errno.OK);
    expect(r.msgs.map((m) => m.body)).toEqual(['GET /p1 0\n', 'POST /p2 2\n', 'GET /p3 0\n']);
  });
});
