// WebSocket through the proxy on the kernel transport (node:net): a real ws
// server upstream, a real ws client in front, our HttpServer + Proxy between
// them. Messages both ways (one large enough that backpressure must hold the
// client back while the upstream does not read), close propagation both
// ways, refused upgrades forwarded as they are, policy and routing applied to
// upgrade requests, a non-websocket Upgrade forwarded as a plain request,
// retries, the max_connections breaker, the tunnel idle timeout, and the
// counters on the node proxy's /metrics.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as http from 'node:http';
import * as net from 'node:net';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer, WebSocket } from 'ws';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { HttpServer } from '../src/l7/server/index.js';
import { KernelTransport } from '../src/l7/transport/index.js';
import { Proxy, Cluster, type HTTPRoute, type ClusterOptions, type AccessLogEntry, type ProxyOptions } from '../src/l7/proxy/index.js';
import { NodeProxy } from '../src/proxy-runtime/node-proxy.js';
import { Logger } from '../src/proxy-runtime/log.js';
import { closedPort } from './helpers/ports.js';
import { flowBus } from '../src/flows/bus.js';
import type { FlowRecord } from '../src/flows/record.js';

interface WsUpstream {
  port: number;
  wss: WebSocketServer;
  /** The upgrade requests the upstream accepted: url and headers. */
  seen: { url: string; headers: http.IncomingHttpHeaders }[];
  server: http.Server;
  close(): Promise<void>;
}

/** A ws echo server; `refuse` answers upgrades with that status instead; `resetFirst` resets that many upgrade connections first. */
async function wsUpstream(o: { refuse?: number; resetFirst?: number } = {}): Promise<WsUpstream> {
  const server = http.createServer((_req, res) => { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('plain http\n'); });
  const wss = new WebSocketServer({ noServer: true });
  const u: WsUpstream = { port: 0, wss, seen: [], server, close: async () => { for (const c of wss.clients) c.terminate(); wss.close(); server.closeAllConnections(); await new Promise<void>((r) => server.close(() => r())); } };
  let resets = o.resetFirst ?? 0;
  server.on('upgrade', (req, socket, head) => {
    if (resets > 0) { resets--; socket.destroy(); return; }
    if (o.refuse !== undefined) {
      socket.end(`HTTP/1.1 ${o.refuse} Refused\r\nContent-Type: text/plain\r\nContent-Length: 8\r\nConnection: close\r\n\r\nrefused\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      u.seen.push({ url: req.url!, headers: req.headers });
      wss.emit('connection', ws, req);
    });
  });
  wss.on('connection', (ws) => {
    ws.on('message', (m, binary) => {
      const s = binary ? '' : m.toString();
      if (s === 'close-me') { ws.close(4001, 'server says bye'); return; }
      // A TCP reset (destroy() alone would close with a FIN, which the tunnel passes on as a clean half-close).
      if (s === 'kill-me') { (ws as unknown as { _socket: net.Socket })._socket.resetAndDestroy(); return; }
      ws.send(m, { binary });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  u.port = (server.address() as net.AddressInfo).port;
  return u;
}

async function startProxy(routes: HTTPRoute[], clusters: Omit<ClusterOptions, 'transport'>[], extra: Partial<ProxyOptions> = {}) {
  const transport = new KernelTransport();
  const logs: AccessLogEntry[] = [];
  const proxy = new Proxy({ routes, clusters: clusters.map((c) => new Cluster({ ...c, transport })), onLog: (e) => logs.push(e), ...extra });
  const server = new HttpServer(proxy.handler, proxy.upgradeServerOptions());
  const port = (await server.listen(transport, 0, '127.0.0.1')).port;
  return { proxy, server, port, logs, close: async () => { await server.close(); proxy.close(); await transport.close(); } };
}

/** Opens a ws client; resolves when open, rejects with the status of a refused upgrade. */
function connect(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c; });
      // ws leaves a refused connection open: close it, as a browser would.
      res.on('end', () => req.socket?.destroy());
      res.on('end', () => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode, headers: res.headers, body })));
    });
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<Buffer> {
  return new Promise((r) => ws.once('message', (m) => r(m as Buffer)));
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
}

async function until(cond: () => boolean, what: string, tries = 400): Promise<void> {
  for (let i = 0; i < tries; i++) { if (cond()) return; await new Promise((r) => setTimeout(r, 10)); }
  throw new Error(`gave up waiting for ${what}`);
}

/** A raw HTTP/1.1 exchange on a fresh socket: the whole response text up to the server's close. */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => { out += d.toString('latin1'); });
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.write(text);
  });
}

describe('proxy: WebSocket tunnels over node:net', () => {
  let up: WsUpstream, refusing: WsUpstream, plain: http.Server, plainSeen: http.IncomingHttpHeaders[];
  let p: Awaited<ReturnType<typeof startProxy>>;
  beforeAll(async () => {
    up = await wsUpstream();
    refusing = await wsUpstream({ refuse: 400 });
    plainSeen = [];
    plain = http.createServer((req, res) => { plainSeen.push(req.headers); res.end(`plain ${req.url}`); });
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', () => r()));
    const routes: HTTPRoute[] = [{
      name: 'main',
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/chat' } }], backendRefs: [{ name: 'ws' }],
          filters: [
            { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Route', value: 'chat' }] } },
            { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2/chat' } } },
            { type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'X-Tunnel', value: 'yes' }] } },
          ] },
        { matches: [{ path: { type: 'PathPrefix', value: '/refuse' } }], backendRefs: [{ name: 'refusing' }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/plain' } }], backendRefs: [{ name: 'plain' }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/denied' } }], backendRefs: [{ name: 'ws' }] },
      ],
    }];
    p = await startProxy(routes, [
      { name: 'ws', endpoints: [{ address: '127.0.0.1', port: up.port }] },
      { name: 'refusing', endpoints: [{ address: '127.0.0.1', port: refusing.port }] },
      { name: 'plain', endpoints: [{ address: '127.0.0.1', port: (plain.address() as net.AddressInfo).port }] },
    ], { policy: (req) => !req.url.startsWith('/denied') });
  });
  afterAll(async () => {
    await p?.close();
    await up?.close();
    await refusing?.close();
    plain?.closeAllConnections();
    await new Promise<void>((r) => (plain ? plain.close(() => r()) : r()));
  });

  it('tunnels messages both ways through routing and filters, and logs 101 when the tunnel ends', async () => {
    const before = { ...p.proxy.stats.tunnels };
    const ws = await connect(`ws://127.0.0.1:${p.port}/chat/room1?x=1`);
    const seen = up.seen.at(-1)!;
    expect(seen.url).toBe('/v2/chat/room1?x=1');
    expect(seen.headers['x-route']).toBe('chat');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers.forwarded).toMatch(/^for=127\.0\.0\.1;proto=http/);
    expect(seen.headers.upgrade).toBe('websocket');
    expect(seen.headers.connection).toBe('upgrade');
    expect(p.proxy.stats.tunnels.active).toBe(before.active + 1);
    const text = nextMessage(ws);
    ws.send('hello through the proxy');
    expect((await text).toString()).toBe('hello through the proxy');
    const bin = nextMessage(ws);
    const b = Buffer.from([0, 1, 2, 255, 254]);
    ws.send(b);
    expect(Buffer.compare(await bin, b)).toBe(0);
    const c = closed(ws);
    ws.close(1000, 'client done');
    expect(await c).toEqual({ code: 1000, reason: 'client done' });
    await until(() => p.proxy.stats.tunnels.closed === before.closed + 1, 'tunnel close');
    const t = p.proxy.stats.tunnels;
    expect(t.opened).toBe(before.opened + 1);
    expect(t.active).toBe(before.active);
    expect(t.bytesToUpstream).toBeGreaterThan(before.bytesToUpstream);
    expect(t.bytesToClient).toBeGreaterThan(before.bytesToClient);
    const log = p.logs.find((e) => e.url === '/chat/room1?x=1')!;
    expect(log).toMatchObject({ status: 101, cluster: 'ws', reason: null, tries: 1 });
    expect(log.tunnel!.bytesToUpstream).toBeGreaterThan(0);
    expect(log.tunnel!.bytesToClient).toBeGreaterThan(0);
  });

  it('the 101 reaches the client with the response filters applied', async () => {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const r = http.request({ host: '127.0.0.1', port: p.port, path: '/chat/h', agent: false, headers: {
        Connection: 'Upgrade', Upgrade: 'WebSocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      } });
      r.on('upgrade', (resp, socket) => { socket.destroy(); resolve(resp); });
      r.on('response', () => reject(new Error('no upgrade')));
      r.on('error', reject);
      r.end();
    });
    expect(res.statusCode).toBe(101);
    expect(res.headers['sec-websocket-accept']).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    expect(res.headers['x-tunnel']).toBe('yes');
    expect(res.headers.upgrade).toBe('websocket');
  });

  it('a large message each way: backpressure holds the client back while the upstream does not read', async () => {
    const ws = await connect(`ws://127.0.0.1:${p.port}/chat/big`);
    const server = [...up.wss.clients].at(-1)!;
    server.pause(); // the upstream stops reading: only socket buffers sit between it and the client
    const size = 64 * 1024 * 1024;
    const big = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4096) big[i] = i & 0xff;
    const start = p.proxy.stats.tunnels.bytesToUpstream;
    const echoed = nextMessage(ws);
    ws.send(big);
    // Wait until nothing moves any more, then look at where the bytes are.
    let last = -1;
    for (let i = 0; i < 100 && p.proxy.stats.tunnels.bytesToUpstream !== last; i++) {
      last = p.proxy.stats.tunnels.bytesToUpstream;
      await new Promise((r) => setTimeout(r, 50));
    }
    const carried = p.proxy.stats.tunnels.bytesToUpstream - start;
    // The proxy read only what the upstream's socket buffers could take: most of the message still waits at the client.
    expect(carried).toBeLessThan(size / 2);
    expect(ws.bufferedAmount).toBeGreaterThan(0);
    server.resume();
    const back = await echoed;
    expect(back.length).toBe(size);
    expect(Buffer.compare(back, big)).toBe(0);
    const c = closed(ws);
    ws.close();
    await c;
  });

  it('close propagates from the upstream to the client, and an upstream reset reaches the client as 1006', async () => {
    const ws = await connect(`ws://127.0.0.1:${p.port}/chat/srv`);
    const c = closed(ws);
    ws.send('close-me');
    expect(await c).toEqual({ code: 4001, reason: 'server says bye' });
    const ws2 = await connect(`ws://127.0.0.1:${p.port}/chat/kill`);
    const c2 = closed(ws2);
    ws2.send('kill-me');
    expect((await c2).code).toBe(1006);
    await until(() => p.proxy.stats.tunnels.active === 0, 'tunnels to end');
    expect(p.logs.find((e) => e.url === '/chat/kill')).toMatchObject({ status: 101, reason: 'upstream_reset' });
    expect(p.logs.find((e) => e.url === '/chat/srv')).toMatchObject({ status: 101, reason: null });
  });

  it('a client that goes away closes the upstream side', async () => {
    const ws = await connect(`ws://127.0.0.1:${p.port}/chat/gone`);
    const server = [...up.wss.clients].at(-1)!;
    const c = closed(server);
    (ws as unknown as { _socket: net.Socket })._socket.resetAndDestroy();
    expect((await c).code).toBe(1006);
    await until(() => p.logs.some((e) => e.url === '/chat/gone'), 'log');
    expect(p.logs.find((e) => e.url === '/chat/gone')).toMatchObject({ status: 101, reason: 'downstream_reset' });
  });

  it('an upstream that refuses the upgrade: its 400 is forwarded as a response', async () => {
    const e = await connect(`ws://127.0.0.1:${p.port}/refuse`).then(() => null, (x: { status: number; body: string; headers: http.IncomingHttpHeaders }) => x);
    expect(e).toMatchObject({ status: 400, body: 'refused\n' });
    expect(e!.headers.connection).toBe('close');
    expect(p.logs.find((x) => x.url === '/refuse')).toMatchObject({ status: 400, cluster: 'refusing' });
  });

  it('an upstream that answers 200 to the upgrade: forwarded as is', async () => {
    const e = await connect(`ws://127.0.0.1:${p.port}/plain/x`).then(() => null, (x: { status: number; body: string }) => x);
    expect(e).toMatchObject({ status: 200, body: 'plain /plain/x' });
  });

  it('policy denies an upgrade with 403, no route is 404, before any upstream is asked', async () => {
    const n = up.seen.length;
    await expect(connect(`ws://127.0.0.1:${p.port}/denied`)).rejects.toMatchObject({ status: 403 });
    await expect(connect(`ws://127.0.0.1:${p.port}/nowhere`)).rejects.toMatchObject({ status: 404 });
    expect(up.seen.length).toBe(n);
    expect(p.logs.find((x) => x.url === '/denied')).toMatchObject({ status: 403, reason: 'policy_denied' });
  });

  it('an h2c Upgrade is not a tunnel: forwarded as a plain request, Upgrade and Connection (and what it names) stripped', async () => {
    const before = p.proxy.stats.tunnels.opened;
    const text = await raw(p.port, 'GET /plain/h2c HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text.endsWith('plain /plain/h2c')).toBe(true);
    const h = plainSeen.at(-1)!;
    expect(h.upgrade).toBeUndefined();
    expect(h['http2-settings']).toBeUndefined();
    expect(h.connection ?? '').not.toMatch(/upgrade/i);
    expect(p.proxy.stats.tunnels.opened).toBe(before);
  });

  it('pipelined bytes after the upgrade request belong to the tunnel', async () => {
    // A ws frame sent in the same write as the upgrade request (a masked text frame "hi").
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const mask = [1, 2, 3, 4];
    const frame = Buffer.from([0x81, 0x82, ...mask, 'h'.charCodeAt(0) ^ 1, 'i'.charCodeAt(0) ^ 2]);
    const s = net.connect(p.port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const got = new Promise<Buffer>((r) => s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const e = buf.indexOf('\r\n\r\n');
      if (e >= 0 && buf.length >= e + 4 + 4) r(buf);
    }));
    s.write(Buffer.concat([Buffer.from(`GET /chat/pipe HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`), frame]));
    const out = await got;
    const text = out.toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    const body = out.subarray(out.indexOf('\r\n\r\n') + 4);
    expect([...body.subarray(0, 4)]).toEqual([0x81, 0x02, 'h'.charCodeAt(0), 'i'.charCodeAt(0)]); // the echo, unmasked from the server
    s.destroy();
  });
});

describe('proxy: tunnel retries, breakers and idle timeout', () => {
  it('a reset before the 101 is retried on a new dedicated connection', async () => {
    const up = await wsUpstream({ resetFirst: 1 });
    const p = await startProxy([{ name: 'r', rules: [{ backendRefs: [{ name: 'ws' }] }] }], [{ name: 'ws', endpoints: [{ address: '127.0.0.1', port: up.port }], retry: { numRetries: 2 } }]);
    try {
      const ws = await connect(`ws://127.0.0.1:${p.port}/`);
      const m = nextMessage(ws);
      ws.send('after a retry');
      expect((await m).toString()).toBe('after a retry');
      expect(p.proxy.stats.retries).toBe(1);
      ws.close();
      await closed(ws);
    } finally { await p.close(); await up.close(); }
  });

  it('a connect failure on every host follows the retry policy and ends in 503', async () => {
    const port = await closedPort();
    const p = await startProxy([{ name: 'r', rules: [{ backendRefs: [{ name: 'ws' }] }] }], [{ name: 'ws', endpoints: [{ address: '127.0.0.1', port }], retry: { numRetries: 2, backoff: { baseMs: 1, maxMs: 2 } } }]);
    try {
      await expect(connect(`ws://127.0.0.1:${p.port}/`)).rejects.toMatchObject({ status: 503 });
      expect(p.proxy.stats.retries).toBe(2);
      expect(p.logs[0]).toMatchObject({ status: 503, reason: 'connect_failure', tries: 3 });
    } finally { await p.close(); }
  });

  it('tunnels count against max_connections for their whole life', async () => {
    const up = await wsUpstream();
    const p = await startProxy([{ name: 'r', rules: [{ backendRefs: [{ name: 'ws' }] }] }], [{ name: 'ws', endpoints: [{ address: '127.0.0.1', port: up.port }], circuitBreakers: { maxConnections: 1 } }]);
    try {
      const a = await connect(`ws://127.0.0.1:${p.port}/a`);
      await expect(connect(`ws://127.0.0.1:${p.port}/b`)).rejects.toMatchObject({ status: 503 });
      expect(p.logs.find((e) => e.url === '/b')).toMatchObject({ reason: 'overflow' });
      const c = closed(a);
      a.close();
      await c;
      await until(() => p.proxy.clusters.get('ws')!.breakers.connections === 0, 'the tunnel to release its connection');
      const again = await connect(`ws://127.0.0.1:${p.port}/c`);
      again.close();
      await closed(again);
    } finally { await p.close(); await up.close(); }
  });

  it('an idle tunnel is closed after the tunnel idle timeout; traffic keeps it open', async () => {
    const up = await wsUpstream();
    const p = await startProxy([{ name: 'r', rules: [{ backendRefs: [{ name: 'ws' }] }] }], [{ name: 'ws', endpoints: [{ address: '127.0.0.1', port: up.port }] }], { tunnelIdleTimeoutMs: 400 });
    try {
      const ws = await connect(`ws://127.0.0.1:${p.port}/idle`);
      const c = closed(ws);
      // Messages more often than the timeout: the tunnel stays up through them.
      for (let i = 0; i < 4; i++) {
        const m = nextMessage(ws);
        ws.send(`ping ${i}`);
        expect((await m).toString()).toBe(`ping ${i}`);
        await new Promise((r) => setTimeout(r, 150));
      }
      expect(p.proxy.stats.tunnels.idleTimeouts).toBe(0);
      expect((await c).code).toBe(1006);
      expect(p.proxy.stats.tunnels.idleTimeouts).toBe(1);
      await until(() => p.logs.length > 0, 'log');
      expect(p.logs[0]).toMatchObject({ status: 101, reason: 'tunnel_idle_timeout' });
    } finally { await p.close(); await up.close(); }
  });

  it('with no upgrade types the proxy forwards a websocket request as a plain one', async () => {
    const up = await wsUpstream();
    const p = await startProxy([{ name: 'r', rules: [{ backendRefs: [{ name: 'ws' }] }] }], [{ name: 'ws', endpoints: [{ address: '127.0.0.1', port: up.port }] }], { upgradeTypes: [] });
    try {
      await expect(connect(`ws://127.0.0.1:${p.port}/`)).rejects.toMatchObject({ status: 200, body: 'plain http\n' });
      expect(p.proxy.stats.tunnels.opened).toBe(0);
    } finally { await p.close(); await up.close(); }
  });
});

describe('node proxy: upgrade config and tunnel metrics', () => {
  let dir = '';
  afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  it('a listener with upgrade types tunnels, and /metrics exports the tunnel counters', async () => {
    const up = await wsUpstream();
    dir = mkdtempSync(join(tmpdir(), 'strata-upgrade-'));
    const port = await closedPort();
    const admin = await closedPort();
    const f = join(dir, 'proxy.yaml');
    writeFileSync(f, [
      `admin: { address: 127.0.0.1, port: ${admin} }`,
      'drain: { timeout: 1s }',
      'logging: { accessLog: { enabled: false } }',
      'listeners:',
      `  - { name: web, address: 127.0.0.1, port: ${port}, transport: kernel, upgrade: { types: [WebSocket], idleTimeout: 1m } }`,
      'clusters:',
      `  - { name: ws, endpoints: ["127.0.0.1:${up.port}"] }`,
      'routes:',
      '  - apiVersion: gateway.networking.k8s.io/v1',
      '    kind: HTTPRoute',
      '    metadata: { name: all }',
      '    spec: { parentRefs: [{ name: web }], rules: [{ backendRefs: [{ name: ws }] }] }',
      '',
    ].join('\n'));
    const np = new NodeProxy({ file: f, lab: null, logger: new Logger({ sink: { write: () => true } }), out: { write: () => true } });
    await np.start();
    const records: FlowRecord[] = [];
    const unsubscribe = flowBus.subscribe((r) => records.push(r));
    try {
      const ws = await connect(`ws://127.0.0.1:${port}/m`);
      const m = nextMessage(ws);
      ws.send('metered');
      expect((await m).toString()).toBe('metered');
      const scrape = async (): Promise<{ name: string; metrics: { value?: string; labels?: Record<string, string> }[] }[]> => {
        const body = await new Promise<string>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port: admin, path: '/metrics', agent: false }, (res) => { let b = ''; res.on('data', (c) => { b += c; }); res.on('end', () => resolve(b)); }).on('error', reject);
        });
        return parsePrometheusTextFormat(body) as { name: string; metrics: { value?: string; labels?: Record<string, string> }[] }[];
      };
      const value = (fams: Awaited<ReturnType<typeof scrape>>, name: string, labels: Record<string, string> = {}): number =>
        Number(fams.find((x) => x.name === name)?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v))?.value ?? NaN);
      let fams = await scrape();
      expect(value(fams, 'strata_proxy_tunnels_active', { listener: 'web' })).toBe(1);
      expect(value(fams, 'strata_proxy_tunnels_opened_total', { listener: 'web' })).toBe(1);
      expect(value(fams, 'strata_http_server_upgrades_total', { listener: 'web' })).toBe(1);
      expect(value(fams, 'strata_proxy_tunnel_bytes_total', { listener: 'web', direction: 'to_upstream' })).toBeGreaterThan(0);
      expect(value(fams, 'strata_proxy_tunnel_bytes_total', { listener: 'web', direction: 'to_client' })).toBeGreaterThan(0);
      const c = closed(ws);
      ws.close();
      await c;
      for (let i = 0; i < 100 && value(fams, 'strata_proxy_tunnels_closed_total', { listener: 'web' }) !== 1; i++) {
        await new Promise((r) => setTimeout(r, 20));
        fams = await scrape();
      }
      expect(value(fams, 'strata_proxy_tunnels_closed_total', { listener: 'web' })).toBe(1);
      expect(value(fams, 'strata_proxy_tunnels_active', { listener: 'web' })).toBe(0);
      // The exchange's flow record, built when the tunnel ended: the 101, its upstream, bytes that include the tunnel's.
      const rec = records.find((r) => r.l7?.http?.url?.endsWith('/m'));
      expect(rec?.l7?.http?.code).toBe(101);
      expect(rec?.verdict).toBe('FORWARDED');
      expect(rec?.strata.upstream).toMatchObject({ cluster: 'ws', reason: null });
      expect(rec!.strata.bytes.response!).toBeGreaterThan(value(fams, 'strata_proxy_tunnel_bytes_total', { listener: 'web', direction: 'to_client' }));
      // SIGTERM with a tunnel open: the drain waits for it (it is in flight) but no longer than drain.timeout, then closes it.
      const open = await connect(`ws://127.0.0.1:${port}/lingering`);
      const gone = closed(open);
      await np.drain('SIGTERM');
      expect((await gone).code).toBe(1006);
    } finally {
      unsubscribe();
      await np.shutdownNow();
      await up.close();
    }
  });
});
