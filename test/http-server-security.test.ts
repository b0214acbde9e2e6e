// The HTTP/1.1 server against hostile clients (issue 10): the Host rules of
// RFC 9112 §3.2, body errors after the request reached the handler, and a
// client that pipelines requests without reading its responses. Real
// clients: node:net on loopback (the kernel's TCP), and strata's own stack
// over a MemLink pair (a Sim) for the zero-window end of backpressure.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as net from 'node:net';
import * as http from 'node:http';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { createCa, issueSvid } from '../src/l7/tls/index.js';
import { HttpServer, FixedResponse, isValidHost, DEFAULT_OUTPUT_HIGH_WATER_MARK, DEFAULT_MAX_PIPELINED, type ServerRequest, type ServerResponse } from '../src/l7/server/index.js';
import { KernelTransport } from '../src/l7/transport/index.js';
import type { L7Listener, L7Socket, L7Transport } from '../src/l7/transport/types.js';
import { Proxy, Cluster } from '../src/l7/proxy/index.js';
import { Prng } from '../src/util/prng.js';
import { Sim } from '../src/stack/sim.js';
import { Tcp } from '../src/stack/tcp/tcp.js';
import { TcpServer, type TcpSocket } from '../src/stack/tcp/socket.js';
import type { TcpConnection } from '../src/stack/tcp/connection.js';
import { ip4FromString } from '../src/stack/registration.js';
import { parseConfig } from '../src/config/load.js';

/** A raw loopback client: everything it received, and whether the server closed. */
class Client {
  readonly s: net.Socket;
  data = '';
  closed = false;
  private constructor(port: number) {
    this.s = net.connect(port, '127.0.0.1');
    this.s.on('data', (d) => { this.data += d.toString('latin1'); });
    this.s.on('close', () => { this.closed = true; });
    this.s.on('error', () => { /* a reset is a close here */ });
  }
  static async open(port: number): Promise<Client> {
    const c = new Client(port);
    await new Promise<void>((r, j) => { c.s.once('connect', () => r()); c.s.once('error', j); });
    return c;
  }
  write(s: string | Buffer): void { this.s.write(s); }
  /** Waits until pred holds (polled; real time bounded by the test's timeout). */
  async until(pred: (c: Client) => boolean): Promise<void> {
    while (!pred(this)) await tick(5);
  }
}

function tick(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }
function countResponses(s: string): number { return (s.match(/HTTP\/1\.1 \d\d\d /g) ?? []).length; }

/** One request on its own connection: what came back before the server closed. */
async function once(port: number, raw: string): Promise<string> {
  const c = await Client.open(port);
  c.write(raw);
  await c.until((x) => x.closed || x.data.endsWith('hello\n'));
  c.s.destroy();
  return c.data;
}

describe('HTTP server: Host rules (RFC 9112 §3.2)', () => {
  let handled: string[] = [];
  const hello = new FixedResponse(200, { 'Content-Type': 'text/plain' }, 'hello\n');
  const server = new HttpServer((req, res) => { handled.push(`${req.httpVersion} ${req.header('host') ?? '-'}`); res.sendFixed(hello); }, { keepAliveTimeoutMs: 2000 });
  const transport = new KernelTransport();
  let port = 0;
  beforeAll(async () => { port = (await server.listen(transport, 0, '127.0.0.1')).port; });
  afterAll(async () => { await server.close(); await transport.close(); });

  it('Host rules: an HTTP/1.1 request with no Host, two Host lines or an invalid Host gets 400 and never reaches the handler', async () => {
    handled = [];
    const bad: [string, string][] = [
      ['GET / HTTP/1.1\r\n\r\n', 'HOST_MISSING'],
      ['GET / HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n', 'HOST_REPEATED'],
      ['GET / HTTP/1.1\r\nHost: good.example\r\nX: y\r\nhOsT: evil.example\r\n\r\n', 'HOST_REPEATED'],
      ['GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n', 'HOST_REPEATED'],
      ['GET http://a.example/ HTTP/1.1\r\n\r\n', 'HOST_MISSING'],
      ['GET / HTTP/1.1\r\nHost: a.example b.example\r\n\r\n', 'HOST_INVALID'],
      ['GET / HTTP/1.1\r\nHost: a.example,b.example\r\n\r\n', 'HOST_INVALID'],
      ['GET / HTTP/1.1\r\nHost: user@a.example\r\n\r\n', 'HOST_INVALID'],
      ['GET / HTTP/1.1\r\nHost: a.example/x\r\n\r\n', 'HOST_INVALID'],
      ['GET / HTTP/1.1\r\nHost: a.example:99999\r\n\r\n', 'HOST_INVALID'],
      ['GET / HTTP/1.1\r\nHost: [::1\r\n\r\n', 'HOST_INVALID'],
    ];
    for (const [raw, code] of bad) {
      const before = server.stats.parseErrors[code] ?? 0;
      const out = await once(port, raw);
      expect(out, JSON.stringify(raw)).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(out).toContain('Connection: close\r\n');
      expect(server.stats.parseErrors[code]).toBe(before + 1);
    }
    expect(handled).toEqual([]);
  });

  it('Host rules: HTTP/1.0 without Host, an empty Host, IP literals and ports are served', async () => {
    handled = [];
    for (const raw of [
      'GET / HTTP/1.0\r\n\r\n',
      'GET / HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\nConnection: close\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: xn--bcher-kva.example\r\nConnection: close\r\n\r\n',
    ]) {
      expect(await once(port, raw)).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    }
    expect(handled).toEqual(['1.0 -', '1.1 ', '1.1 [::1]:8080', '1.1 10.0.0.1:80', '1.1 xn--bcher-kva.example']);
  });

  it('Host rules: in a pipeline the 400 comes after the responses owed, and nothing after it is served', async () => {
    handled = [];
    const c = await Client.open(port);
    c.write('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n');
    await c.until((x) => x.closed);
    expect(countResponses(c.data)).toBe(2);
    expect(c.data.indexOf('HTTP/1.1 200 OK')).toBe(0);
    expect(c.data.indexOf('HTTP/1.1 400 Bad Request')).toBeGreaterThan(0);
    expect(handled).toEqual(['1.1 a']);
  });

  it('Host rules: the value grammar (uri-host [":" port], no comma, no userinfo)', () => {
    for (const ok of ['', 'a', 'a.example', 'a.example:', 'a.example:8080', '127.0.0.1', '[::1]', '[fe80::1%25eth0]:443', '[v1.x]', "a-b_c~d!$&'()*+;=", 'a%41b', 'A.EXAMPLE:65535']) {
      expect(isValidHost(ok), ok).toBe(true);
    }
    for (const bad of [' a', 'a b', 'a\tb', 'a,b', 'a, b', 'u@a', 'a/b', 'a?b', 'a#b', 'a:b', 'a:65536', 'a:123456', 'a:-1', '[::1', '[]', '[::1]x', '[::1]:x', 'a%4', 'a%zz', 'a\u00e9', 'a"b', 'a<b', 'a\\b']) {
      expect(isValidHost(bad), JSON.stringify(bad)).toBe(false);
    }
  });
});

describe('HTTP server: body errors after the request reached the handler', () => {
  const got: { req: ServerRequest; res: ServerResponse; chunks: number; error: string | null }[] = [];
  const server = new HttpServer((req, res) => {
    const g = { req, res, chunks: 0, error: null as string | null };
    got.push(g);
    if (req.url === '/late') return; // asks for the body only later
    if (req.url === '/started') { res.writeHead(200); res.write('partial'); }
    req.body.on('data', () => { g.chunks++; });
    req.body.on('error', (e: Error & { code?: string }) => { g.error = e.code ?? e.message; });
    req.body.on('end', () => { if (!res.headersSent) res.end('whole body\n'); });
  }, { keepAliveTimeoutMs: 2000 });
  const transport = new KernelTransport();
  let port = 0;
  beforeAll(async () => { port = (await server.listen(transport, 0, '127.0.0.1')).port; });
  afterAll(async () => { await server.close(); await transport.close(); });

  const head = (path: string): string => `POST ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`;
  const cases: [string, string, string][] = [
    ['a bad chunk size', 'zz\r\nabc\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    ['an over-long chunk extension', `5;${'e'.repeat(20_000)}\r\nhello\r\n`, 'HPE_CHUNK_EXTENSIONS_OVERFLOW'],
    ['Content-Length in the trailers', '0\r\nContent-Length: 5\r\n\r\n', 'HPE_INVALID_CONTENT_LENGTH'],
  ];
  for (const [what, tail, code] of cases) {
    it(`Body errors: ${what}, seen after the handler has the request, is answered 400 and the request body errors`, async () => {
      got.length = 0;
      const before = server.stats.parseErrors[code] ?? 0;
      const c = await Client.open(port);
      c.write(head('/read'));
      await c.until(() => got.length === 1 && got[0]!.chunks === 1);
      c.write(tail);
      await c.until((x) => x.closed);
      expect(c.data).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(c.data).toContain('Connection: close\r\n');
      expect(countResponses(c.data)).toBe(1);
      expect(server.stats.parseErrors[code]).toBe(before + 1);
      await tick(10);
      expect(got[0]!.error).toBe('ERR_STRATA_BAD_REQUEST');
      expect(got[0]!.req.aborted).toBe(true);
    });
  }

  it('Body errors: a body asked for after the failure errors at once, and the handler\'s late answer is dropped', async () => {
    got.length = 0;
    const c = await Client.open(port);
    c.write(head('/late'));
    await c.until(() => got.length === 1);
    c.write('zz\r\n');
    await c.until((x) => x.closed);
    expect(c.data).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    const g = got[0]!;
    const err = await new Promise<string>((r) => g.req.body.once('error', (e: Error & { code?: string }) => r(e.code ?? '')));
    expect(err).toBe('ERR_STRATA_BAD_REQUEST');
    expect(() => { g.res.writeHead(200); g.res.end('too late\n'); }).not.toThrow();
    expect(c.data).not.toContain('too late');
  });

  it('Body errors: once the response has started, the connection is cut without a 400', async () => {
    got.length = 0;
    const c = await Client.open(port);
    c.write(head('/started'));
    await c.until((x) => x.data.includes('partial'));
    c.write('zz\r\n');
    await c.until((x) => x.closed);
    expect(c.data).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(c.data).not.toContain('400');
    expect(c.data).not.toContain('0\r\n\r\n'); // no last chunk: the client cannot take it for a whole response
    expect(got[0]!.req.aborted).toBe(true);
  });

  it('Body errors: the proxy stops forwarding: the upstream never gets the half body as a complete request', async () => {
    // The body streams (retryBufferBytes is small), so the upstream already has part of it when the bad chunk comes.
    const upstreamSaw: { received: number; complete: boolean; aborted: boolean }[] = [];
    const up = http.createServer((req, res) => {
      const u = { received: 0, complete: false, aborted: false };
      upstreamSaw.push(u);
      req.on('data', (d: Buffer) => { u.received += d.length; });
      req.on('end', () => { u.complete = true; res.end('upstream ok\n'); });
      req.on('error', () => { u.aborted = true; });
      req.on('close', () => { if (!u.complete) u.aborted = true; });
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
    const kt = new KernelTransport();
    const proxy = new Proxy({
      routes: [{ name: 'r', rules: [{ backendRefs: [{ name: 'up' }] }] }],
      clusters: [new Cluster({ name: 'up', endpoints: [{ address: '127.0.0.1', port: (up.address() as net.AddressInfo).port }], transport: kt, rng: new Prng(3) })],
      retryBufferBytes: 1024, rng: new Prng(4),
    });
    const ps = new HttpServer(proxy.handler);
    const pport = (await ps.listen(kt, 0, '127.0.0.1')).port;
    try {
      const c = await Client.open(pport);
      const big = 'x'.repeat(4096);
      c.write(`POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${big.length.toString(16)}\r\n${big}\r\n`);
      while (!(upstreamSaw.length === 1 && upstreamSaw[0]!.received === big.length)) await tick(5);
      c.write('zz\r\n');
      await c.until((x) => x.closed);
      expect(c.data).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(countResponses(c.data)).toBe(1);
      while (!upstreamSaw[0]!.aborted) await tick(5);
      expect(upstreamSaw[0]!.complete).toBe(false);
    } finally {
      await ps.close();
      proxy.close();
      await kt.close();
      await new Promise<void>((r) => { up.closeAllConnections(); up.close(() => r()); });
    }
  });
});

describe('HTTP server: a client that pipelines and never reads (backpressure)', () => {
  /** A 4 KiB body that starts with the request's index: responses are told apart and their order checked. */
  const BODY = 4096;
  function bodyFor(i: number): string { const s = `${i}\n`; return s + 'x'.repeat(BODY - s.length); }
  /** Parses consecutive responses; returns the indexes in order (Content-Length framed). */
  function indexes(buf: Buffer): number[] {
    const out: number[] = [];
    let o = 0;
    for (;;) {
      const e = buf.indexOf('\r\n\r\n', o);
      if (e < 0) break;
      const head = buf.subarray(o, e).toString('latin1');
      const n = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? -1);
      if (n < 0 || buf.length < e + 4 + n) break;
      out.push(Number(buf.subarray(e + 4, e + 4 + n).toString('latin1').split('\n', 1)[0]));
      o = e + 4 + n;
    }
    return out;
  }

  /**
   * Pipelines N GETs to port without reading, until the server takes no more;
   * then reads, and checks every response arrives, in order. Returns how
   * many requests the server had taken before the client read.
   */
  async function pipelineWithoutReading(port: number, N: number, handled: () => number, ca: string | null = null): Promise<number> {
    const c: Duplex = ca === null ? net.connect(port, '127.0.0.1') : tls.connect({ port, host: '127.0.0.1', ca });
    await new Promise<void>((r) => c.once(ca === null ? 'connect' : 'secureConnect', () => r()));
    c.pause(); // never reads: the kernel's buffers fill, then the server's
    const chunks: Buffer[] = [];
    c.on('data', (d: Buffer) => { chunks.push(d); });
    let reqs = '';
    for (let i = 0; i < N; i++) reqs += `GET /${i} HTTP/1.1\r\nHost: x\r\n\r\n`;
    c.write(reqs);
    // Until the server stops taking requests: the count holds still.
    let last = -1;
    while (handled() !== last) { last = handled(); await tick(300); }
    const before = handled();
    c.resume();
    let got: number[] = [];
    while ((got = indexes(Buffer.concat(chunks))).length < N) await tick(20);
    expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
    c.destroy();
    return before;
  }

  for (const mode of ['answered at once', 'answered in later ticks (as a proxy does)'] as const) {
    it(`Unbounded memory from one client: over node:net the server stops reading while its unsent output is above the limit, then answers every request in order (${mode})`, async () => {
      const N = 4000;
      let maxQueued = 0; // the server socket's unsent bytes (node's write queue), seen by the handler
      let handled = 0;
      const server = new HttpServer((req, res) => {
        handled++;
        const q = req.socket.writableLength;
        if (q > maxQueued) maxQueued = q;
        const i = Number(req.url.slice(1));
        if (mode === 'answered at once') { res.setHeader('Content-Type', 'text/plain'); res.end(bodyFor(i)); return; }
        setImmediate(() => { res.writeHead(200, { 'Content-Length': String(BODY) }); res.write(bodyFor(i)); res.end(); });
      }, { keepAliveTimeoutMs: 60_000 });
      const transport = new KernelTransport();
      const port = (await server.listen(transport, 0, '127.0.0.1')).port;
      try {
        const before = await pipelineWithoutReading(port, N, () => handled);
        expect(before).toBeLessThan(N);
        expect(server.stats.readStalls).toBeGreaterThan(0);
        // At most the limit plus the response that crossed it (and its head).
        expect(maxQueued).toBeLessThanOrEqual(DEFAULT_OUTPUT_HIGH_WATER_MARK + BODY + 256);
        expect(handled).toBe(N);
      } finally {
        await server.close();
        await transport.close();
      }
    });
  }

  it('Unbounded memory from one client: over TLS (node:tls on node:net) the server stops reading too, then answers every request in order', async () => {
    const N = 4000;
    const authority = await createCa({ trustDomain: 'example.org' });
    const cert = await issueSvid(authority, { spiffeId: 'spiffe://example.org/server', ip: ['127.0.0.1'] });
    let maxQueued = 0;
    let handled = 0;
    const server = new HttpServer((req, res) => {
      handled++;
      const q = req.socket.writableLength; // the TLS socket's queue of cleartext not yet encrypted and written
      if (q > maxQueued) maxQueued = q;
      setImmediate(() => { res.setHeader('Content-Type', 'text/plain'); res.end(bodyFor(Number(req.url.slice(1)))); });
    }, { keepAliveTimeoutMs: 60_000 });
    const transport = new KernelTransport();
    const l = await transport.listen(0, '127.0.0.1', (s) => server.accept(new tls.TLSSocket(s as net.Socket, { isServer: true, cert: cert.chainPem, key: cert.keyPem }) as unknown as L7Socket));
    try {
      const before = await pipelineWithoutReading(l.port, N, () => handled, authority.certPem);
      expect(before).toBeLessThan(N);
      expect(server.stats.readStalls).toBeGreaterThan(0);
      expect(maxQueued).toBeLessThanOrEqual(DEFAULT_OUTPUT_HIGH_WATER_MARK + BODY + 256);
      expect(handled).toBe(N);
    } finally {
      await l.close();
      await server.close();
      await transport.close();
    }
  });

  it('Unbounded memory from one client: the proxy stops reading from a client that pipelines and does not read', async () => {
    const N = 3000;
    const up = http.createServer((req, res) => { res.setHeader('Content-Type', 'text/plain'); res.end(bodyFor(Number(req.url!.slice(1)))); });
    up.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
    const kt = new KernelTransport();
    const proxy = new Proxy({
      routes: [{ name: 'r', rules: [{ backendRefs: [{ name: 'up' }] }] }],
      clusters: [new Cluster({ name: 'up', endpoints: [{ address: '127.0.0.1', port: (up.address() as net.AddressInfo).port }], transport: kt, rng: new Prng(3) })],
      rng: new Prng(4),
    });
    let handled = 0;
    let maxQueued = 0;
    const ps = new HttpServer((req, res) => {
      handled++;
      const q = req.socket.writableLength;
      if (q > maxQueued) maxQueued = q;
      return proxy.handler(req, res);
    }, { keepAliveTimeoutMs: 60_000 });
    const port = (await ps.listen(kt, 0, '127.0.0.1')).port;
    try {
      const before = await pipelineWithoutReading(port, N, () => handled);
      expect(before).toBeLessThan(N);
      expect(maxQueued).toBeLessThanOrEqual(DEFAULT_OUTPUT_HIGH_WATER_MARK + BODY + 1024);
    } finally {
      await ps.close();
      proxy.close();
      await kt.close();
      await new Promise<void>((r) => { up.closeAllConnections(); up.close(() => r()); });
    }
  });

  it('Unbounded memory from one client: requests owed a response are bounded by maxPipelined, and all are answered in order', async () => {
    const N = 100;
    const pending: (() => void)[] = [];
    const server = new HttpServer((req, res) => {
      pending.push(() => res.end(bodyFor(Number(req.url.slice(1)))));
    }, { keepAliveTimeoutMs: 60_000, maxPipelined: 8 });
    const transport = new KernelTransport();
    const port = (await server.listen(transport, 0, '127.0.0.1')).port;
    try {
      const c = await Client.open(port);
      const chunks: Buffer[] = [];
      c.s.on('data', (d: Buffer) => { chunks.push(d); });
      let reqs = '';
      for (let i = 0; i < N; i++) reqs += `GET /${i} HTTP/1.1\r\nHost: x\r\n\r\n`;
      c.write(reqs); // one write: on main the whole pipeline is dispatched at once
      await tick(200);
      expect(pending.length).toBe(8);
      let answered = 0;
      while (answered < N) {
        while (pending.length > 0) { pending.shift()!(); answered++; }
        await tick(5);
      }
      let got: number[] = [];
      while ((got = indexes(Buffer.concat(chunks))).length < N) await tick(20);
      expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
      c.s.destroy();
    } finally {
      await server.close();
      await transport.close();
    }
  });

  it('Unbounded memory from one client: on strata\'s stack the server stops reading, the client\'s window closes, and every response arrives once it reads', async () => {
    const N = 3000;
    const sim = new Sim({ seed: 3, frames: 16384, impair: { delay: 0.05 } });
    // Small buffers, so the run is short: what the TCPs hold between the two ends is bounded by them anyway.
    const a = Tcp.attach(sim.a, { seed: 5, config: { sendBuffer: 16 * 1024, recvBuffer: 64 * 1024 } });
    const b = Tcp.attach(sim.b, { seed: 6, config: { sendBuffer: 64 * 1024, recvBuffer: 64 * 1024 } });
    // The server on stack B, through the same transport seam the CLI uses.
    const sockets: TcpSocket[] = [];
    const t: L7Transport = {
      kind: 'tap',
      listen(port: number, host: string, on: (s: L7Socket) => void): Promise<L7Listener> {
        const srv = new TcpServer(b, { noDelay: true }, (s) => { sockets.push(s); on(s as unknown as L7Socket); });
        srv.listen(port, host);
        return Promise.resolve({ host, port, close: () => { srv.close(); return Promise.resolve(); } });
      },
      connect: () => Promise.reject(new Error('not used')),
      close: () => Promise.resolve(),
      setL4Deny: () => ({ where: 'conntrack', installed: 0, skipped: [] }),
    };
    let handled = 0;
    let maxQueued = 0;
    const server = new HttpServer((req, res) => {
      handled++;
      const q = (req.socket as unknown as TcpSocket).directQueued ?? Infinity;
      if (q > maxQueued) maxQueued = q;
      res.end(bodyFor(Number(req.url.slice(1))));
    }, { keepAliveTimeoutMs: 600_000, headersTimeoutMs: 600_000, requestTimeoutMs: 600_000 });
    await server.listen(t, 8080, Sim.ADDR_B);
    // The client on stack A: writes the whole pipeline as its send buffer allows, reads nothing until told to.
    let reqs = '';
    for (let i = 0; i < N; i++) reqs += `GET /${i} HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n`;
    const out = Buffer.from(reqs, 'latin1');
    let sent = 0;
    let reading = false;
    const got: Buffer[] = [];
    let conn: TcpConnection | null = null;
    const push = (c: TcpConnection): void => { while (sent < out.length) { const w = c.write(out, sent, out.length - sent); if (w === 0) return; sent += w; } };
    a.connect(ip4FromString(Sim.ADDR_B), 8080, {
      handler: {
        onConnect(c) { conn = c; c.setNoDelay(true); push(c); },
        onDrain(c) { push(c); },
        onData(_c, buf, off, len) { if (!reading) return 0; got.push(Buffer.from(buf.subarray(off, off + len))); return len; },
      },
    });
    const drive = async (pred: () => boolean): Promise<void> => {
      for (let i = 0; i < 400_000 && !pred(); i++) {
        sim.clock.set(sim.now + 0.05);
        sim.pollNow();
        if (i % 64 === 0) await new Promise<void>((r) => setImmediate(r));
      }
    };
    try {
      // Until the server holds still: it stopped taking requests and the client's receive window is shut.
      let last = -1, still = 0;
      await drive(() => { if (handled === last) still++; else { still = 0; last = handled; } return still > 5000; });
      expect(handled).toBeLessThan(N);
      expect(server.stats.readStalls).toBeGreaterThan(0);
      expect(maxQueued).toBeLessThanOrEqual(DEFAULT_OUTPUT_HIGH_WATER_MARK + BODY + 256);
      // End to end: the server's stack advertises a zero window, and the client cannot send the rest of its pipeline.
      expect(conn!.info().sndWnd).toBe(0);
      expect(sent).toBeLessThan(out.length);
      reading = true;
      conn!.resumeReading();
      await drive(() => indexes(Buffer.concat(got)).length >= N);
      expect(indexes(Buffer.concat(got))).toEqual(Array.from({ length: N }, (_, i) => i));
      expect(handled).toBe(N);
    } finally {
      void server.close();
      sim.close();
    }
  });
});

describe('pipelining limits in the proxy config', () => {
  const cfg = (v: string): string => `listeners:\n  - { name: web, port: 8080${v} }\nclusters:\n  - { name: c, endpoints: ["10.0.0.1:80"] }\n`;
  it('listener maxPipelined and outputHighWaterMark default to the server defaults, take values in range, refuse others with file:line', () => {
    const d = parseConfig(cfg(''), 'p.yaml').config!.listeners[0]!;
    expect([d.maxPipelined, d.outputHighWaterMark]).toEqual([DEFAULT_MAX_PIPELINED, DEFAULT_OUTPUT_HIGH_WATER_MARK]);
    const s = parseConfig(cfg(', maxPipelined: 4, outputHighWaterMark: 8192'), 'p.yaml').config!.listeners[0]!;
    expect([s.maxPipelined, s.outputHighWaterMark]).toEqual([4, 8192]);
    const bad = parseConfig(cfg(', maxPipelined: 0, outputHighWaterMark: 12'), 'p.yaml');
    expect(bad.ok).toBe(false);
    expect(bad.errors.map((e) => `p.yaml:${e.line}: ${e.field}`)).toEqual(['p.yaml:2: listeners[0].maxPipelined', 'p.yaml:2: listeners[0].outputHighWaterMark']);
  });
});
