// The proxy end to end on loopback: our HttpServer + Proxy in front of real
// node:http upstreams, driven by raw sockets, curl and wrk.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as http from 'node:http';
import * as net from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpServer } from '../src/l7/server/index.js';
import { KernelTransport } from '../src/l7/transport/index.js';
import { Proxy, Cluster, type HTTPRoute, type ClusterOptions } from '../src/l7/proxy/index.js';
import { Prng } from '../src/util/prng.js';

const execFileP = promisify(execFile);

interface Upstream { name: string; port: number; server: http.Server; hits: number; seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[]; mode: 'ok' | '503' | 'slow'; kill(): Promise<void> }

async function upstream(name: string, mode: Upstream['mode'] = 'ok'): Promise<Upstream> {
  const sockets = new Set<net.Socket>();
  const u: Upstream = {
    name, port: 0, hits: 0, seen: [], mode,
    server: http.createServer((req, res) => {
      u.hits++;
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        if (u.seen.length < 50) u.seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        if (u.mode === '503') { res.writeHead(503, { 'Content-Type': 'text/plain' }); res.end('unavailable\n'); return; }
        const send = (): void => {
          res.writeHead(200, { 'Content-Type': 'application/json', 'X-Upstream': name, Connection: 'X-Hop', 'X-Hop': 'secret', 'Keep-Alive': 'timeout=5' });
          res.end(JSON.stringify({ upstream: name, url: req.url, headers: req.headers, body }));
        };
        if (u.mode === 'slow') setTimeout(send, 300); else send();
      });
    }),
    kill: async () => {
      await new Promise<void>((r) => { u.server.close(() => r()); for (const s of sockets) s.destroy(); });
    },
  };
  u.server.keepAliveTimeout = 60_000;
  u.server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => u.server.listen(0, '127.0.0.1', () => r()));
  u.port = (u.server.address() as net.AddressInfo).port;
  return u;
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function startProxy(routes: HTTPRoute[], clusters: Omit<ClusterOptions, 'transport'>[], extra: Partial<ConstructorParameters<typeof Proxy>[0]> = {}) {
  const transport = new KernelTransport();
  const proxy = new Proxy({ routes, clusters: clusters.map((c) => new Cluster({ ...c, transport, rng: new Prng(11) })), rng: new Prng(7), ...extra });
  const server = new HttpServer(proxy.handler);
  const port = (await server.listen(transport, 0, '127.0.0.1')).port;
  return { proxy, server, port, close: async () => { await server.close(); proxy.close(); await transport.close(); } };
}

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let b = '';
      res.on('data', (c) => { b += c; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: b }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

describe('proxy: routing, filters and forwarding', () => {
  let a: Upstream, b: Upstream, mirror: Upstream;
  let p: Awaited<ReturnType<typeof startProxy>>;
  beforeAll(async () => {
    a = await upstream('a');
    b = await upstream('b');
    mirror = await upstream('mirror');
    const routes: HTTPRoute[] = [{
      name: 'main',
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/api' } }], backendRefs: [{ name: 'A' }],
          filters: [
            { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Set', value: 'yes' }], add: [{ name: 'X-Added', value: '1' }], remove: ['X-Remove-Me'] } },
            { type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'X-Resp', value: 'r' }], remove: ['X-Upstream'] } },
          ] },
        { matches: [{ path: { type: 'PathPrefix', value: '/old' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', hostname: 'new.example', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' }, statusCode: 301 } }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/v1' } }], backendRefs: [{ name: 'B' }], filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'internal.svc', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } } }] },
        { matches: [{ path: { type: 'Exact', value: '/mirror' } }], backendRefs: [{ name: 'A' }], filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'M' } } }] },
        { matches: [{ path: { type: 'Exact', value: '/zero' } }], backendRefs: [{ name: 'A', weight: 0 }, { name: 'B', weight: 0 }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/split' } }], backendRefs: [{ name: 'A', weight: 80 }, { name: 'B', weight: 20, filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Canary', value: 'yes' }] } }] }] },
      ],
    }];
    p = await startProxy(routes, [
      { name: 'A', endpoints: [{ address: '127.0.0.1', port: a.port }] },
      { name: 'B', endpoints: [{ address: '127.0.0.1', port: b.port }] },
      { name: 'M', endpoints: [{ address: '127.0.0.1', port: mirror.port }] },
    ], { listenerPort: 8080 });
  });
  afterAll(async () => { await p.close(); await a.kill(); await b.kill(); await mirror.kill(); });

  it('404 when no route matches', async () => {
    const r = await get(p.port, '/nothing-here');
    expect(r.status).toBe(404);
  });

  it('forwards, removes hop-by-hop headers both ways, adds X-Forwarded-For and Forwarded', async () => {
    const r = await get(p.port, '/api/x?q=1', {
      Host: 'shop.example:8080', Connection: 'keep-alive, X-Conn-Named', 'X-Conn-Named': 'drop', 'Keep-Alive': 'timeout=9', TE: 'trailers',
      'Proxy-Connection': 'keep-alive', 'X-Forwarded-For': '192.0.2.9', Forwarded: 'for=192.0.2.9', 'X-Remove-Me': '1', 'X-Added': '0',
    });
    expect(r.status).toBe(200);
    const j = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
    expect(j.url).toBe('/api/x?q=1');
    const h = j.headers;
    expect(h['x-conn-named']).toBeUndefined();
    expect(h['keep-alive']).toBeUndefined();
    expect(h['te']).toBeUndefined();
    expect(h['proxy-connection']).toBeUndefined();
    expect(h['x-remove-me']).toBeUndefined();
    expect(h['x-set']).toBe('yes');
    expect(h['x-added']).toBe('0,1');
    expect(h['host']).toBe('shop.example:8080');
    expect(h['x-forwarded-for']).toBe('192.0.2.9, 127.0.0.1');
    expect(h['forwarded']).toBe('for=192.0.2.9, for=127.0.0.1;proto=http;host="shop.example:8080"');
    expect(h['x-forwarded-proto']).toBe('http');
    // Response side: hop-by-hop removed, modifier applied.
    expect(r.headers['x-hop']).toBeUndefined();
    expect(r.headers['keep-alive']).toBeUndefined();
    expect(r.headers['x-upstream']).toBeUndefined();
    expect(r.headers['x-resp']).toBe('r');
    expect(r.headers['date']).toMatch(/GMT$/); // one Date: the origin's
  });

  it('absolute-form request-target: its authority is the Host, the upstream gets origin-form', async () => {
    const r = await get(p.port, 'http://abs.example:81/api/abs?q=2', { Host: 'ignored' });
    const j = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
    expect(j.url).toBe('/api/abs?q=2');
    expect(j.headers['host']).toBe('abs.example:81');
  });

  it('request bodies are forwarded (re-framed with Content-Length)', async () => {
    const r = await get(p.port, '/api/post', { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' }, 'POST', 'payload-123');
    const j = JSON.parse(r.body) as { body: string; headers: Record<string, string> };
    expect(j.body).toBe('payload-123');
    expect(j.headers['content-length']).toBe('11');
    expect(j.headers['transfer-encoding']).toBeUndefined();
  });

  it('large uploads stream through (beyond the retry buffer), chunked and with Content-Length', async () => {
    const f = join(tmpdir(), `strata-up-${process.pid}.bin`);
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 0x61);
    writeFileSync(f, big);
    try {
      for (const extra of [['-H', 'Transfer-Encoding: chunked'], []]) {
        const r = await execFileP('curl', ['-sS', '--max-time', '30', ...extra, '--data-binary', `@${f}`, `http://127.0.0.1:${p.port}/api/upload`], { maxBuffer: 64 * 1024 * 1024 });
        const j = JSON.parse(r.stdout) as { body: string; headers: Record<string, string> };
        expect(j.body.length).toBe(big.length);
        if (extra.length > 0) expect(j.headers['transfer-encoding']).toBe('chunked');
        else expect(j.headers['content-length']).toBe(String(big.length));
      }
    } finally { rmSync(f); }
  });

  it('HEAD through the proxy: Content-Length kept, no body', async () => {
    const r = await execFileP('curl', ['-sS', '-I', '--max-time', '10', `http://127.0.0.1:${p.port}/api/head`]);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.stdout).toMatch(/Content-Length: \d+/i);
  });

  it('RequestRedirect answers with Location and never forwards', async () => {
    const before = a.hits + b.hits;
    const r = await get(p.port, '/old/page?x=1', { Host: 'site.example' });
    expect(r.status).toBe(301);
    expect(r.headers.location).toBe('https://new.example/new/page?x=1');
    expect(a.hits + b.hits).toBe(before);
  });

  it('URLRewrite replaces the prefix and the Host', async () => {
    const r = await get(p.port, '/v1/users/7', { Host: 'public.example' });
    const j = JSON.parse(r.body) as { upstream: string; url: string; headers: Record<string, string> };
    expect(j.upstream).toBe('b');
    expect(j.url).toBe('/v2/users/7');
    expect(j.headers['host']).toBe('internal.svc');
  });

  it('RequestMirror sends a copy; the client gets the primary response', async () => {
    const before = mirror.hits;
    const r = await get(p.port, '/mirror');
    expect(JSON.parse(r.body).upstream).toBe('a');
    for (let i = 0; i < 50 && mirror.hits === before; i++) await new Promise((res) => setTimeout(res, 20));
    expect(mirror.hits).toBe(before + 1);
    expect(mirror.seen.at(-1)!.url).toBe('/mirror');
  });

  it('all backend weights zero gives 500', async () => {
    expect((await get(p.port, '/zero')).status).toBe(500);
  });

  it('weighted split between two clusters follows the weights (seeded)', async () => {
    const count = { a: 0, b: 0 };
    for (let i = 0; i < 200; i++) {
      const r = await get(p.port, '/split');
      const j = JSON.parse(r.body) as { upstream: 'a' | 'b'; headers: Record<string, string> };
      count[j.upstream]++;
      // The backendRef's own filter applies only when that backend is chosen.
      expect(j.headers['x-canary']).toBe(j.upstream === 'b' ? 'yes' : undefined);
    }
    expect(count.a + count.b).toBe(200);
    expect(count.b).toBeGreaterThan(20);
    expect(count.b).toBeLessThan(60);
  });

  it('curl through the proxy', async () => {
    const r = await execFileP('curl', ['-sS', '--max-time', '10', '-H', 'Host: x', `http://127.0.0.1:${p.port}/api/curl`]);
    expect(JSON.parse(r.stdout).url).toBe('/api/curl');
  });
});

describe('proxy: retries, breakers and failover', () => {
  const route = (cluster: string): HTTPRoute[] => [{ name: 'r', rules: [{ backendRefs: [{ name: cluster }] }] }];

  it('retries a 503 on another host', async () => {
    const bad = await upstream('bad', '503');
    const good = await upstream('good');
    const p = await startProxy(route('c'), [{ name: 'c', endpoints: [{ address: '127.0.0.1', port: bad.port }, { address: '127.0.0.1', port: good.port }], outlier: null }]);
    try {
      for (let i = 0; i < 6; i++) {
        const r = await get(p.port, `/r${i}`);
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body).upstream).toBe('good');
      }
      expect(bad.hits).toBeGreaterThan(0);
      expect(p.proxy.stats.retries).toBe(bad.hits);
    } finally { await p.close(); await bad.kill(); await good.kill(); }
  });

  it('a 503 is passed through when retries are used up', async () => {
    const bad = await upstream('bad', '503');
    const p = await startProxy(route('c'), [{ name: 'c', endpoints: [{ address: '127.0.0.1', port: bad.port }], outlier: null, retry: { numRetries: 2 } }]);
    try {
      const r = await get(p.port, '/');
      expect(r.status).toBe(503);
      expect(bad.hits).toBe(3);
    } finally { await p.close(); await bad.kill(); }
  });

  it('retries a connect failure on another host', async () => {
    const dead = await closedPort();
    const good = await upstream('good');
    const p = await startProxy(route('c'), [{ name: 'c', endpoints: [{ address: '127.0.0.1', port: dead }, { address: '127.0.0.1', port: good.port }], outlier: null }]);
    try {
      for (let i = 0; i < 6; i++) expect((await get(p.port, '/')).status).toBe(200);
      expect(p.proxy.stats.retries).toBeGreaterThan(0);
    } finally { await p.close(); await good.kill(); }
  });

  it('connect failure with no retry left: 503', async () => {
    const dead = await closedPort();
    const p = await startProxy(route('c'), [{ name: 'c', endpoints: [{ address: '127.0.0.1', port: dead }], outlier: null, retry: { numRetries: 0 } }]);
    try {
      const r = await get(p.port, '/');
      expect(r.status).toBe(503);
      expect(r.headers['x-strata-failure']).toBe('connect_failure');
    } finally { await p.close(); }
  });

  it('circuit breaker: requests beyond max_requests get 503 at once', async () => {
    const slow = await upstream('slow', 'slow');
    const p = await startProxy(route('c'), [{ name: 'c', endpoints: [{ address: '127.0.0.1', port: slow.port }], circuitBreakers: { maxRequests: 2 } }]);
    try {
      const rs = await Promise.all(Array.from({ length: 5 }, () => get(p.port, '/')));
      const st = rs.map((r) => r.status).sort();
      expect(st.filter((s) => s === 200).length).toBe(2);
      expect(st.filter((s) => s === 503).length).toBe(3);
      expect(p.proxy.stats.failures.overflow).toBe(3);
    } finally { await p.close(); await slow.kill(); }
  });

  it('a client that goes away mid-request: the upstream connection is closed, not pooled, and the breaker slot is freed', async () => {
    const slow = await upstream('slow', 'slow');
    const upstreamClosed: Promise<void>[] = [];
    slow.server.on('connection', (s: net.Socket) => { upstreamClosed.push(new Promise((r) => s.on('close', () => r()))); });
    const p = await startProxy(route('c'), [{ name: 'c', endpoints: [{ address: '127.0.0.1', port: slow.port }], circuitBreakers: { maxRequests: 1 } }]);
    try {
      const c = net.connect(p.port, '127.0.0.1');
      await new Promise<void>((r) => c.once('connect', () => r()));
      c.write('GET /gone HTTP/1.1\r\nHost: x\r\n\r\n');
      for (let i = 0; i < 100 && slow.hits === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(slow.hits).toBe(1);
      c.destroy();
      // The try is abandoned: its upstream connection cannot be reused (the answer would be read by the next request).
      await Promise.race([upstreamClosed[0]!, new Promise((_, rej) => setTimeout(() => rej(new Error('upstream connection still open')), 2000))]);
      // max_requests 1: the abandoned request no longer holds the slot.
      expect((await get(p.port, '/')).status).toBe(200);
    } finally { await p.close(); await slow.kill(); }
  });

  it('per-try timeout then retry; request timeout gives 504', async () => {
    const slow = await upstream('slow', 'slow');
    const good = await upstream('good');
    const routes: HTTPRoute[] = [{ name: 'r', rules: [
      { matches: [{ path: { type: 'Exact', value: '/try' } }], backendRefs: [{ name: 'mixed' }], timeouts: { backendRequest: 100 } },
      { matches: [{ path: { type: 'Exact', value: '/total' } }], backendRefs: [{ name: 'slowonly' }], timeouts: { request: 100 } },
    ] }];
    const p = await startProxy(routes, [
      { name: 'mixed', endpoints: [{ address: '127.0.0.1', port: slow.port }, { address: '127.0.0.1', port: good.port }], outlier: null },
      { name: 'slowonly', endpoints: [{ address: '127.0.0.1', port: slow.port }] },
    ]);
    try {
      for (let i = 0; i < 4; i++) expect((await get(p.port, '/try')).status).toBe(200);
      const t = await get(p.port, '/total');
      expect(t.status).toBe(504);
    } finally { await p.close(); await slow.kill(); await good.kill(); }
  });

  it('smuggling payloads get 400 from the proxy and never reach an upstream', async () => {
    const u = await upstream('u');
    const p = await startProxy(route('c'), [{ name: 'c', endpoints: [{ address: '127.0.0.1', port: u.port }] }]);
    try {
      const payloads = [
        'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG',
        'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
        'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
        'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
      ];
      for (const pl of payloads) {
        const got = await new Promise<string>((resolve) => {
          const s = net.connect(p.port, '127.0.0.1', () => s.write(pl));
          let d = '';
          s.on('data', (c) => { d += c; });
          s.on('close', () => resolve(d));
        });
        expect(got).toMatch(/^HTTP\/1\.1 400 /);
      }
      expect(u.hits).toBe(0);
    } finally { await p.close(); await u.kill(); }
  });

  it('failover: an upstream killed in the middle of a wrk run costs no client errors beyond the retry budget', async () => {
    const ups = await Promise.all(['u1', 'u2', 'u3'].map((n) => upstream(n)));
    const p = await startProxy(route('c'), [{ name: 'c', endpoints: ups.map((u) => ({ address: '127.0.0.1', port: u.port })) }]);
    try {
      const run = execFileP('wrk', ['-t1', '-c10', '-d3s', `http://127.0.0.1:${p.port}/`]);
      await new Promise((r) => setTimeout(r, 1200));
      await ups[1]!.kill();
      const out = (await run).stdout;
      const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      expect(total).toBeGreaterThan(0);
      expect(out).not.toMatch(/Socket errors/);
      // Every failed response is one the proxy gave up on: the retry budget
      // (or retry count) ran out; nothing else reaches the client.
      const f = p.proxy.stats.failures;
      const gaveUp = (f.retry_budget_exhausted ?? 0) + (f.retries_exhausted ?? 0);
      expect(non2xx).toBeLessThanOrEqual(gaveUp);
      expect(ups[0]!.hits + ups[2]!.hits).toBeGreaterThan(0);
      // The kill was felt (resets and refused connects) and absorbed by retries.
      expect(p.proxy.stats.retries).toBeGreaterThan(0);
      console.log(`failover: ${total} requests, ${non2xx} non-2xx, ${p.proxy.stats.retries} retries, failures ${JSON.stringify(f)}`);
    } finally { await p.close(); await ups[0]!.kill(); await ups[2]!.kill(); }
  });
});

describe('proxy: an upstream that answers more than it was asked', () => {
  // A raw upstream that answers each request with its own response and then,
  // in the same write, a second unsolicited one. Taken as the answer to the
  // next request sent on that connection, it would reach the wrong client;
  // before the fix its completion also listed the connection twice in the
  // idle pool, so two requests shared one connection and one of them hung.
  it('every client gets its own response; the connection is retired, never reused with the extra bytes', async () => {
    let served = 0;
    const conns = new Set<net.Socket>();
    const raw = net.createServer((s) => {
      conns.add(s);
      let buf = '';
      s.on('data', (c: Buffer) => {
        buf += c.toString('latin1');
        for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
          const path = /^GET (\S+)/.exec(buf)![1]!;
          buf = buf.slice(end + 4);
          served++;
          const own = `for ${path}`;
          const extra = 'EXTRA unsolicited';
          s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${own.length}\r\n\r\n${own}HTTP/1.1 200 OK\r\nContent-Length: ${extra.length}\r\n\r\n${extra}`);
        }
      });
      s.on('error', () => {});
      s.on('close', () => conns.delete(s));
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', () => r()));
    const port = (raw.address() as net.AddressInfo).port;
    const p = await startProxy(
      [{ parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: [{ name: 'raw' }] }] }],
      [{ name: 'raw', endpoints: [{ address: '127.0.0.1', port }], retryBudget: null }],
    );
    try {
      // Rounds of concurrent requests, so connections are pooled, reused and lent side by side.
      for (let round = 0; round < 5; round++) {
        const paths = Array.from({ length: 8 }, (_, i) => `/r${round}/c${i}`);
        const got = await Promise.all(paths.map((path) => get(p.port, path)));
        for (let i = 0; i < paths.length; i++) {
          expect(got[i]!.status).toBe(200);
          expect(got[i]!.body).toBe(`for ${paths[i]}`);
        }
      }
      expect(served).toBe(40);
      const cluster = p.proxy.clusters.get('raw')!;
      const pool = cluster.pool(cluster.hosts[0]!);
      // Every response carried extra bytes: no connection went back to the pool, each was counted and closed.
      expect(pool.unsolicited).toBe(40);
      expect(pool.idleCount).toBe(0);
      expect(cluster.hosts[0]!.active).toBe(0);
    } finally {
      await p.close();
      for (const s of conns) s.destroy();
      await new Promise<void>((r) => raw.close(() => r()));
    }
  });
});
