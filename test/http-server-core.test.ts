// The HTTP/1.1 server on the kernel transport, against raw sockets, curl and wrk.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as net from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpServer, FixedResponse, type ServerRequest, type ServerResponse } from '../src/l7/server/index.js';
import { KernelTransport } from '../src/l7/transport/index.js';
import { pipeToResponse } from '../src/apps/echo.js';

const execFileP = promisify(execFile);

/** Connects, sends `parts` (with optional gaps), collects everything until the server closes or `until` matches. */
function exchange(port: number, parts: (string | Buffer)[], opts: { until?: (s: string) => boolean; gapMs?: number; endAfter?: boolean } = {}): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    let done = false;
    const finish = (closed: boolean): void => { if (done) return; done = true; s.destroy(); resolve({ data, closed }); };
    s.on('data', (d) => { data += d.toString('latin1'); if (opts.until?.(data)) finish(false); });
    s.on('close', () => finish(true));
    s.on('error', (e) => { if (!done) reject(e); });
    s.on('connect', async () => {
      for (const p of parts) {
        if (s.destroyed) return;
        s.write(p);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
      if (opts.endAfter) s.end();
    });
  });
}

/** Decodes a complete chunked body (sizes in hex, CRLF-delimited). */
function dechunk(s: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const e = s.indexOf('\r\n', i);
    const n = parseInt(s.slice(i, e), 16);
    if (n === 0) return out;
    out += s.slice(e + 2, e + 2 + n);
    i = e + 2 + n + 2;
  }
}

function countResponses(s: string): number { return (s.match(/HTTP\/1\.1 \d\d\d /g) ?? []).length; }

describe('HTTP server (kernel transport)', () => {
  const seen: string[] = [];
  const hello = new FixedResponse(200, { 'Content-Type': 'text/plain' }, 'hello\n');
  let slowBodyReader: { req: ServerRequest; res: ServerResponse } | null = null;
  const handler = (req: ServerRequest, res: ServerResponse): void => {
    seen.push(`${req.method} ${req.url}`);
    const u = req.url;
    if (u.startsWith('/delay/')) {
      // Responses finish out of order: the later request answers first.
      const ms = Number(u.slice(7));
      setTimeout(() => res.end(`delay ${ms}\n`), ms);
      return;
    }
    if (u === '/echo') { res.writeHead(200, { 'Content-Type': 'application/octet-stream' }); pipeToResponse(req.body, res); return; }
    if (u === '/len') { void req.buffer(1 << 24).then((b) => res.end(`len=${b.length}\n`)); return; }
    if (u === '/noread') { res.end('not reading\n'); return; }
    if (u === '/slowread') { slowBodyReader = { req, res }; return; }
    if (u === '/big') {
      // 4 MiB in 64 KiB writes, honouring write backpressure.
      const chunk = Buffer.alloc(65536, 0x61);
      let left = 64;
      res.writeHead(200);
      const pump = (): void => {
        while (left > 0) { left--; if (!res.write(chunk)) { res.once('drain', pump); return; } }
        res.end();
      };
      pump();
      return;
    }
    if (u === '/throw') throw new Error('boom');
    res.sendFixed(hello);
  };
  const server = new HttpServer(handler, { headersTimeoutMs: 400, requestTimeoutMs: 2000, keepAliveTimeoutMs: 1500 });
  const transport = new KernelTransport();
  let port = 0;

  beforeAll(async () => { port = (await server.listen(transport, 0, '127.0.0.1')).port; });
  afterAll(async () => { await server.close(); await transport.close(); });

  it('keep-alive: several requests on one connection', async () => {
    const req = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n';
    const r = await exchange(port, [req, req, req], { gapMs: 20, until: (s) => countResponses(s) === 3 });
    expect(countResponses(r.data)).toBe(3);
    expect(r.closed).toBe(false);
    expect(r.data).toMatch(/Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n/);
  });

  it('pipelined responses leave in request order even when handlers finish out of order', async () => {
    const pipeline = 'GET /delay/200 HTTP/1.1\r\nHost: x\r\n\r\nGET /delay/10 HTTP/1.1\r\nHost: x\r\n\r\nGET /fixed HTTP/1.1\r\nHost: x\r\n\r\n';
    const r = await exchange(port, [pipeline], { until: (s) => countResponses(s) === 3 && s.endsWith('hello\n') });
    const i200 = r.data.indexOf('delay 200'), i10 = r.data.indexOf('delay 10\n'), ih = r.data.indexOf('hello');
    expect(i200).toBeGreaterThan(0);
    expect(i10).toBeGreaterThan(i200);
    expect(ih).toBeGreaterThan(i10);
  });

  it('HTTP/1.0 closes unless keep-alive is asked for; Connection: close is honoured', async () => {
    const r10 = await exchange(port, ['GET / HTTP/1.0\r\n\r\n']);
    expect(r10.closed).toBe(true);
    expect(r10.data).toContain('Connection: close');
    const ka = await exchange(port, ['GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'], { until: (s) => s.endsWith('hello\n') });
    expect(ka.closed).toBe(false);
    expect(ka.data).toContain('Connection: keep-alive');
    const c = await exchange(port, ['GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(c.closed).toBe(true);
    expect(countResponses(c.data)).toBe(1);
  });

  it('Expect: 100-continue: 100 only once the handler reads the body, then the final response', async () => {
    const head = 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n';
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    s.on('data', (d) => { data += d.toString(); });
    await new Promise((r) => s.once('connect', r));
    s.write(head);
    while (!data.includes('100 Continue')) await new Promise((r) => setTimeout(r, 10));
    expect(data).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    s.write('hello');
    while (!data.endsWith('0\r\n\r\n')) await new Promise((r) => setTimeout(r, 10));
    expect(data).toMatch(/HTTP\/1\.1 200 OK[\s\S]*hello/);
    s.destroy();
  });

  it('Expect: 100-continue answered without reading the body: no 100, connection closed', async () => {
    const r = await exchange(port, ['POST /noread HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n']);
    expect(r.data).not.toContain('100 Continue');
    expect(r.data).toContain('not reading');
    expect(r.data).toContain('Connection: close');
    expect(r.closed).toBe(true);
  });

  it('unknown expectation gets 417', async () => {
    const r = await exchange(port, ['POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: teapot\r\n\r\nx']);
    expect(r.data).toMatch(/^HTTP\/1\.1 417 /);
  });

  it('chunked request body in, chunked response body out (split at every few bytes)', async () => {
    const body = 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n';
    const parts: string[] = [];
    for (let i = 0; i < body.length; i += 7) parts.push(body.slice(i, i + 7));
    const r = await exchange(port, parts, { gapMs: 2, until: (s) => s.endsWith('0\r\n\r\n') });
    expect(r.data).toContain('Transfer-Encoding: chunked');
    expect(dechunk(r.data.slice(r.data.indexOf('\r\n\r\n') + 4))).toBe('hello world');
  });

  it('request-body backpressure: a handler that does not read stops the socket from reading', async () => {
    slowBodyReader = null;
    const s = net.connect(port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    const total = 32 * 1024 * 1024;
    s.write(`POST /slowread HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`);
    const chunk = Buffer.alloc(1 << 20, 0x62);
    let sent = 0;
    // Write until the kernel buffers fill: the server must not swallow 32 MiB into memory.
    while (sent < total && s.write(chunk)) sent += chunk.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(slowBodyReader).not.toBeNull();
    expect(s.writableLength).toBeGreaterThan(0); // our side is blocked: the peer stopped reading
    expect(sent).toBeLessThan(total);
    // Now read it all: everything flows and the count is exact.
    const { req, res } = slowBodyReader!;
    let got = 0;
    req.body.on('data', (c: Buffer) => { got += c.length; });
    req.body.on('end', () => res.end(`got ${got}\n`));
    const reply = new Promise<string>((resolve) => { let d = ''; s.on('data', (x) => { d += x; if (d.includes(`got `) && d.endsWith('\n')) resolve(d); }); });
    const pump = (): void => { while (sent < total) { sent += chunk.length; if (!s.write(chunk)) { s.once('drain', pump); return; } } };
    pump();
    expect(await reply).toContain(`got ${total}`);
    s.destroy();
  });

  it('response backpressure: a 4 MiB streamed response arrives whole to a slow reader', async () => {
    const s = net.connect(port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    let bytes = 0;
    s.pause();
    await new Promise((r) => setTimeout(r, 200)); // the server hits write backpressure meanwhile
    await new Promise<void>((resolve) => {
      let buf = '';
      s.on('data', (d: Buffer) => { bytes += d.length; buf = (buf + d.toString('latin1')).slice(-5); if (buf === '0\r\n\r\n') resolve(); });
      s.resume();
    });
    expect(bytes).toBeGreaterThan(4 * 1024 * 1024);
    s.destroy();
  });

  it('slowloris: a client trickling one header byte at a time is closed by the header timeout', async () => {
    const head = 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200) + '\r\n\r\n';
    const before = server.stats.headerTimeouts;
    const r = await exchange(port, head.split(''), { gapMs: 50 });
    expect(r.closed).toBe(true);
    expect(r.data).not.toContain('hello');
    expect(server.stats.headerTimeouts).toBe(before + 1);
  });

  it('idle keep-alive connections are closed by the idle timeout', async () => {
    const before = server.stats.idleTimeouts;
    const r = await exchange(port, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(r.closed).toBe(true);
    expect(countResponses(r.data)).toBe(1);
    expect(server.stats.idleTimeouts).toBeGreaterThan(before);
  });

  describe('request smuggling and malformed requests get 400 and never reach the handler', () => {
    const cases: [string, string, number][] = [
      ['CL.TE', 'POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED', 400],
      ['TE.CL', 'POST /smuggle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n', 400],
      ['TE xchunked', 'POST /smuggle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n', 400],
      ['TE leading space in name', 'POST /smuggle HTTP/1.1\r\nHost: x\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
      ['TE " chunked" value', 'POST /smuggle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  chunked \r\nContent-Length: 4\r\n\r\n0\r\n\r\n', 400],
      ['TE chunked, identity', 'POST /smuggle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n', 400],
      ['duplicate Content-Length', 'POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', 400],
      ['identical duplicate Content-Length', 'POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', 400],
      ['space before colon', 'POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello', 400],
      ['obs-fold', 'GET /smuggle HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n', 400],
      ['bare LF', 'GET /smuggle HTTP/1.1\nHost: x\n\n', 400],
      ['bad version', 'GET /smuggle HTTP/2.0\r\nHost: x\r\n\r\n', 505],
      ['oversized header', `GET /smuggle HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`, 431],
    ];
    for (const [name, payload, status] of cases) {
      it(name, async () => {
        seen.length = 0;
        const r = await exchange(port, [payload]);
        expect(r.data).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
        expect(r.data).toContain('Connection: close');
        expect(r.closed).toBe(true);
        expect(seen.filter((s) => s.includes('smuggle'))).toEqual([]);
      });
    }
    it('a bad request behind good pipelined ones: earlier answers first, then 400', async () => {
      seen.length = 0;
      const r = await exchange(port, ['GET /ok HTTP/1.1\r\nHost: x\r\n\r\nPOST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n']);
      expect(r.data).toMatch(/^HTTP\/1\.1 200 [\s\S]*hello\n[\s\S]*HTTP\/1\.1 400 /);
      expect(seen).toEqual(['GET /ok']);
    });
  });

  it('a handler that throws gets 500', async () => {
    const r = await exchange(port, ['GET /throw HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(r.data).toMatch(/^HTTP\/1\.1 500 /);
  });

  it('curl: GET, POST echo, chunked upload, HEAD', async () => {
    const base = `http://127.0.0.1:${port}`;
    const g = await execFileP('curl', ['-sS', '-i', '--max-time', '10', `${base}/`]);
    expect(g.stdout).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(g.stdout).toContain('hello');
    const p = await execFileP('curl', ['-sS', '--max-time', '10', '--data-binary', 'abc123', `${base}/echo`]);
    expect(p.stdout).toBe('abc123');
    const big = 'z'.repeat(300000);
    const f = join(tmpdir(), `strata-h-${process.pid}.bin`);
    writeFileSync(f, big);
    const c = await execFileP('curl', ['-sS', '--max-time', '10', '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${f}`, `${base}/len`]);
    rmSync(f);
    expect(c.stdout).toBe(`len=${big.length}\n`);
    const h = await execFileP('curl', ['-sS', '-I', '--max-time', '10', `${base}/`]);
    expect(h.stdout).toMatch(/Content-Length: 6/);
  });

  it('wrk: a bounded keep-alive run with zero errors', async () => {
    const r = await execFileP('wrk', ['-t1', '-c10', '-d2s', `http://127.0.0.1:${port}/`]);
    const reqs = Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? 0);
    expect(reqs).toBeGreaterThan(0);
    expect(r.stdout).not.toMatch(/Socket errors|Non-2xx/);
  });

  it('maxConnections: a connection beyond the limit is closed and counted', async () => {
    const g = new HttpServer(handler, { maxConnections: 1 });
    const t = new KernelTransport();
    const p = (await g.listen(t, 0, '127.0.0.1')).port;
    const first = net.connect(p, '127.0.0.1');
    await new Promise((r) => first.once('connect', r));
    while (g.connectionCount < 1) await new Promise((r) => setTimeout(r, 5));
    const second = await exchange(p, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(second.closed).toBe(true);
    expect(second.data).toBe('');
    expect(g.stats.rejectedConnections).toBe(1);
    const ok = await new Promise<string>((res) => { let d = ''; first.on('data', (c) => { d += c; if (d.endsWith('hello\n')) res(d); }); first.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'); });
    expect(ok).toMatch(/^HTTP\/1\.1 200 /);
    first.destroy();
    await g.close();
    await t.close();
  });

  it('graceful close: idle connections close, in-flight ones finish with Connection: close', async () => {
    // A keep-alive timeout far beyond the test: only close() can end the idle connection.
    const g = new HttpServer(handler, { keepAliveTimeoutMs: 60_000 });
    const t = new KernelTransport();
    const p = (await g.listen(t, 0, '127.0.0.1')).port;
    // One idle keep-alive connection and one with a request in flight.
    const order: string[] = [];
    const idle = exchange(p, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n']).then((r) => { order.push('idle'); return r; });
    await new Promise((r) => setTimeout(r, 100));
    const busy = exchange(p, ['GET /delay/300 HTTP/1.1\r\nHost: x\r\n\r\n']).then((r) => { order.push('busy'); return r; });
    await new Promise((r) => setTimeout(r, 100));
    expect(g.connectionCount).toBe(2);
    let closed = false;
    const closing = g.close().then(() => { closed = true; });
    const ri = await idle;
    // The idle connection is closed at once, not after the listener (node:net waits for every connection).
    expect(order).toEqual(['idle']);
    expect(ri.closed).toBe(true);
    expect(countResponses(ri.data)).toBe(1);
    const rb = await busy;
    expect(rb.data).toContain('delay 300');
    expect(rb.data).toContain('Connection: close');
    await closing;
    expect(closed).toBe(true);
    expect(g.connectionCount).toBe(0);
    await expect(new Promise((resolve, reject) => { const s = net.connect(p, '127.0.0.1'); s.on('connect', () => { s.destroy(); resolve('connected'); }); s.on('error', reject); })).rejects.toThrow(/ECONNREFUSED/);
    await t.close();
  });
});
