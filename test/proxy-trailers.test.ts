// Trailer fields through the proxy (RFC 9112 §7.1.2, RFC 9110 §6.5): a
// chunked upstream response's trailers reach node's http client (res.trailers)
// and curl --raw; the fields RFC 9110 §6.5.1 keeps out of trailers, the
// hop-by-hop ones and those the Connection header names are dropped; a
// chunked request's trailers reach the upstream, whether its body is small
// enough to be buffered (and re-chunked) or streamed.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { HttpServer } from '../src/l7/server/index.js';
import { KernelTransport } from '../src/l7/transport/index.js';
import { Proxy, Cluster } from '../src/l7/proxy/index.js';
import { forwardTrailers, forwardTrailerAnnouncement } from '../src/l7/proxy/trailers.js';

const execFileP = promisify(execFile);

/** Trailers the upstream sends: one end-to-end field and a set RFC 9110 §6.5.1 (or hop-by-hop rules) keep out. */
const UP_TRAILERS = {
  'X-Checksum': 'sha256=abc123', 'Content-Type': 'text/evil', 'Set-Cookie': 'a=b', Authorization: 'Bearer x', 'Cache-Control': 'no-store',
  Location: '/elsewhere', 'Retry-After': '5', Host: 'evil.example', 'Max-Forwards': '1', 'X-Hop': 'named by Connection', 'Content-Encoding': 'gzip',
};

interface Seen { url: string; body: string; trailers: Record<string, string | undefined>; rawTrailers: string[]; headers: http.IncomingHttpHeaders }

describe('proxy: trailers both ways', () => {
  let upstream: http.Server;
  const seen: Seen[] = [];
  let server: HttpServer, proxy: Proxy, port = 0;
  const transport = new KernelTransport();

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (c: string) => { body += c; });
      req.on('end', () => {
        seen.push({ url: req.url!, body: body.length > 64 ? `${body.length} bytes` : body, trailers: { ...req.trailers }, rawTrailers: req.rawTrailers, headers: req.headers });
        if (req.url!.startsWith('/cl')) { res.end('with a length'); return; }
        res.setHeader('Trailer', 'X-Checksum, Content-Type, X-Hop');
        res.setHeader('Connection', 'X-Hop');
        if (!req.url!.startsWith('/empty')) { res.write('part one, '); res.write('part two'); }
        res.addTrailers(UP_TRAILERS);
        res.end();
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    proxy = new Proxy({
      routes: [{ name: 'r', rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/filtered' } }], backendRefs: [{ name: 'up' }], filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'X-Resp', value: '1' }] } }] },
        { backendRefs: [{ name: 'up' }] },
      ] }],
      clusters: [new Cluster({ name: 'up', endpoints: [{ address: '127.0.0.1', port: (upstream.address() as AddressInfo).port }], transport })],
    });
    server = new HttpServer(proxy.handler);
    port = (await server.listen(transport, 0, '127.0.0.1')).port;
  });
  afterAll(async () => {
    await server?.close();
    proxy?.close();
    upstream?.closeAllConnections();
    await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
    await transport.close();
  });

  function get(path: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders; trailers: NodeJS.Dict<string>; rawTrailers: string[] }> {
    return new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (c: string) => { body += c; });
        res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers, trailers: res.trailers, rawTrailers: res.rawTrailers }));
      }).on('error', reject);
    });
  }

  function post(path: string, parts: string[], trailers: Record<string, string>): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const r = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'Transfer-Encoding': 'chunked', Trailer: Object.keys(trailers).join(', ') } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => { body += c; });
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      r.on('error', reject);
      for (const p of parts) r.write(p);
      r.addTrailers(trailers);
      r.end();
    });
  }

  it('a chunked response keeps its end-to-end trailers; forbidden and hop-by-hop ones are dropped', async () => {
    const r = await get('/t');
    expect(r.status).toBe(200);
    expect(r.body).toBe('part one, part two');
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(r.trailers).toEqual({ 'x-checksum': 'sha256=abc123' });
    // The announcement (RFC 9110 §6.6.2) is filtered the same way.
    expect(r.headers.trailer).toBe('X-Checksum');
  });

  it('the same through a route with a response filter', async () => {
    const r = await get('/filtered/t');
    expect(r.headers['x-resp']).toBe('1');
    expect(r.trailers).toEqual({ 'x-checksum': 'sha256=abc123' });
  });

  it('curl --raw sees them in the last chunk', async () => {
    const { stdout } = await execFileP('curl', ['-sS', '--raw', '--max-time', '10', `http://127.0.0.1:${port}/t`]);
    expect(stdout.endsWith('0\r\nx-checksum: sha256=abc123\r\n\r\n')).toBe(true);
    expect(stdout).not.toMatch(/set-cookie|text\/evil|Bearer/i);
  });

  it('a chunked response with no content still carries its trailers', async () => {
    const r = await get('/empty');
    expect(r.body).toBe('');
    expect(r.trailers).toEqual({ 'x-checksum': 'sha256=abc123' });
  });

  it('an HTTP/1.0 client gets the body whole, framed by the close, without trailers', async () => {
    const { stdout } = await execFileP('curl', ['-sS', '--http1.0', '--raw', '--max-time', '10', '-D', '-', `http://127.0.0.1:${port}/t`]);
    expect(stdout).not.toMatch(/transfer-encoding/i);
    expect(stdout.endsWith('\r\n\r\npart one, part two')).toBe(true);
  });

  it('request trailers reach the upstream, filtered, with a buffered (re-chunked) body', async () => {
    const r = await post('/req-small', ['abc', 'def'], { 'X-Req-Sum': '42', Authorization: 'nope', Host: 'evil', 'Content-Type': 'x/y' });
    expect(r.status).toBe(200);
    const s = seen.find((x) => x.url === '/req-small')!;
    expect(s.body).toBe('abcdef');
    expect(s.trailers).toEqual({ 'x-req-sum': '42' });
    expect(s.headers['transfer-encoding']).toBe('chunked');
    expect(s.headers.trailer).toBe('X-Req-Sum');
  });

  it('request trailers reach the upstream with a streamed body', async () => {
    const chunk = 'z'.repeat(32 * 1024);
    const r = await post('/req-big', Array.from({ length: 8 }, () => chunk), { 'X-Req-Sum': 'big', 'Set-Cookie': 'no' });
    expect(r.status).toBe(200);
    const s = seen.find((x) => x.url === '/req-big')!;
    expect(s.body).toBe(`${8 * 32 * 1024} bytes`);
    expect(s.trailers).toEqual({ 'x-req-sum': 'big' });
  });

  it('a chunked request without trailers is still forwarded with a length when buffered', async () => {
    const r = await post('/req-none', ['only body'], {});
    expect(r.status).toBe(200);
    const s = seen.find((x) => x.url === '/req-none')!;
    expect(s.body).toBe('only body');
    expect(s.rawTrailers).toEqual([]);
    expect(s.headers['content-length']).toBe('9');
  });
});

describe('trailer filter (RFC 9110 §6.5.1)', () => {
  it('keeps end-to-end fields, drops framing, routing, modifiers, auth, response control, content handling and Connection-named ones', () => {
    const t = ['x-a', '1', 'content-length', '3', 'host', 'h', 'te', 'trailers', 'if-match', '"x"', 'proxy-authorization', 'p', 'age', '3', 'content-range', 'bytes 0-1/2', 'x-named', 'n', 'X-B', '2'];
    expect(forwardTrailers(t, ['connection', 'x-named, keep-alive'])).toEqual(['x-a', '1', 'X-B', '2']);
    expect(forwardTrailers(null, [])).toEqual([]);
    expect(forwardTrailerAnnouncement(['trailer', 'X-A, Content-Type, x-named', 'connection', 'x-named'])).toBe('X-A');
    expect(forwardTrailerAnnouncement(['trailer', 'Date'])).toBeNull();
  });
});
