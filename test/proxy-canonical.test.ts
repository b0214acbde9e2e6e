// One canonical request (issue 10, Deliver §1): the node proxy's policy, its
// routes and the upstream all see the same authority and path. Driven end to
// end on loopback: a YAML config with a policy, NodeProxy in process, raw
// request bytes from node:net, and two real node:http upstreams recording
// what reaches them.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as http from 'node:http';
import * as net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedPort } from './helpers/ports.js';
import { NodeProxy } from '../src/proxy-runtime/node-proxy.js';
import { Logger } from '../src/proxy-runtime/log.js';
import { canonicalRequest, normalisePath, type EscapedSlashAction } from '../src/l7/proxy/canonical.js';
import { flowBus } from '../src/flows/bus.js';
import { HttpServer } from '../src/l7/server/index.js';
import { KernelTransport } from '../src/l7/transport/index.js';
import { Proxy, Cluster } from '../src/l7/proxy/index.js';
import { Prng } from '../src/util/prng.js';
import { parseConfig } from '../src/config/load.js';
import type { FlowRecord } from '../src/flows/record.js';

interface Seen { url: string; host: string | undefined }
interface Upstream { name: string; port: number; seen: Seen[]; server: http.Server }

async function upstream(name: string): Promise<Upstream> {
  const u: Upstream = {
    name, port: 0, seen: [],
    server: http.createServer((req, res) => {
      u.seen.push({ url: req.url!, host: req.headers.host });
      const body = `${name} ${req.url!}\n`;
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    }),
  };
  await new Promise<void>((r) => u.server.listen(0, '127.0.0.1', () => r()));
  u.port = (u.server.address() as net.AddressInfo).port;
  return u;
}

/** Sends raw request bytes, returns the status code and body of the (single) response. */
function raw(port: number, head: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    s.on('data', (c) => { buf += c.toString('latin1'); });
    s.on('error', reject);
    s.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(buf);
      resolve({ status: m ? Number(m[1]) : 0, body: buf.slice(buf.indexOf('\r\n\r\n') + 4) });
    });
    s.write(head.includes('Connection:') ? head : head.replace(/\r\n\r\n$/, '\r\nConnection: close\r\n\r\n'));
  });
}

describe('one canonical request: policy, routes and upstream agree (node proxy; listener web allows host good.example, listener pub also only paths /public/.*)', () => {
  let good: Upstream, evil: Upstream;
  let np: NodeProxy;
  let port: number, pub: number;
  let dir: string;
  beforeAll(async () => {
    good = await upstream('good');
    evil = await upstream('evil');
    port = await closedPort();
    pub = await closedPort();
    dir = mkdtempSync(join(tmpdir(), 'strata-canon-'));
    const f = join(dir, 'proxy.yaml');
    writeFileSync(f, `
logging: { accessLog: { enabled: false } }
listeners:
  - { name: web, address: 127.0.0.1, port: ${port}, transport: kernel }
  - { name: pub, address: 127.0.0.1, port: ${pub}, transport: kernel }
clusters:
  - { name: good, endpoints: ["127.0.0.1:${good.port}"] }
  - { name: evil, endpoints: ["127.0.0.1:${evil.port}"] }
routes:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: { name: good }
    spec: { parentRefs: [{ name: web }, { name: pub }], hostnames: [good.example], rules: [{ backendRefs: [{ name: good }] }] }
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: { name: evil }
    spec: { parentRefs: [{ name: web }, { name: pub }], hostnames: [evil.example], rules: [{ backendRefs: [{ name: evil }] }] }
policies:
  - name: only-good
    selector: { listeners: [web] }
    ingress:
      - fromCIDR: [127.0.0.0/8]
        toPorts:
          - ports: [{ port: ${port} }]
            rules:
              http:
                - host: 'good\\.example'
  - name: only-public
    selector: { listeners: [pub] }
    ingress:
      - fromCIDR: [127.0.0.0/8]
        toPorts:
          - ports: [{ port: ${pub} }]
            rules:
              http:
                - host: 'good\\.example'
                  path: '/public/.*'
`);
    np = new NodeProxy({ file: f, lab: null, logger: new Logger({ sink: { write: () => true } }), out: { write: () => true } });
    await np.start();
  });
  afterAll(async () => {
    await np?.shutdownNow();
    for (const u of [good, evil]) await new Promise<void>((r) => u?.server.close(() => r()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('L7 policy bypass: an absolute-form URI naming evil.example with Host: good.example is judged and routed as evil.example (403), never reaches evil', async () => {
    const records: FlowRecord[] = [];
    const unsubscribe = flowBus.subscribe((x) => records.push(x));
    let r;
    try { r = await raw(port, 'GET http://evil.example/secret HTTP/1.1\r\nHost: good.example\r\n\r\n'); } finally { unsubscribe(); }
    expect(r.status).toBe(403);
    expect(evil.seen).toEqual([]);
    // The flow record shows what the policy decided on: the URI's authority, the origin-form path.
    const rec = records.find((x) => x.l7?.http?.code === 403);
    expect(rec?.l7?.http?.url).toBe('http://evil.example/secret');
    expect(rec?.strata?.http).toEqual({ authority: 'evil.example', path: '/secret' });
    // The same URI for the allowed host: its authority, not Host, goes upstream.
    const ok = await raw(port, 'GET http://GOOD.example/public/x?q=1 HTTP/1.1\r\nHost: evil.example\r\n\r\n');
    expect(ok.status).toBe(200);
    expect(ok.body).toBe('good /public/x?q=1\n');
    expect(good.seen.at(-1)).toEqual({ url: '/public/x?q=1', host: 'good.example' });
  });

  it('L7 policy bypass: schemes other than http and https are 400 and routed nowhere', async () => {
    const before = good.seen.length;
    for (const t of ['foo://good.example/public/x', 'ftp://good.example/public/x', 'HTTP://good.example/public/x']) {
      const r = await raw(port, `GET ${t} HTTP/1.1\r\nHost: good.example\r\n\r\n`);
      expect({ t, status: r.status }).toEqual({ t, status: t.startsWith('HTTP:') ? 200 : 400 });
    }
    expect(good.seen.length).toBe(before + 1); // only the HTTP:// one (schemes compare case-insensitively)
    expect(evil.seen).toEqual([]);
  });

  it('Path tricks: /public/../admin and /public/%2e%2e/admin are normalised before the policy (403) and never forwarded as they are', async () => {
    const before = good.seen.length;
    expect((await raw(pub, 'GET /public/../admin HTTP/1.1\r\nHost: good.example\r\n\r\n')).status).toBe(403);
    expect((await raw(pub, 'GET /public/%2e%2e/admin HTTP/1.1\r\nHost: good.example\r\n\r\n')).status).toBe(403);
    expect((await raw(pub, 'GET /public/.%2E/admin HTTP/1.1\r\nHost: good.example\r\n\r\n')).status).toBe(403);
    // Escaped slashes are refused by default (REJECT_REQUEST): ..%2Fadmin is /admin to an upstream that decodes it.
    expect((await raw(pub, 'GET /public/..%2Fadmin HTTP/1.1\r\nHost: good.example\r\n\r\n')).status).toBe(400);
    expect((await raw(pub, 'GET /public/..%5cadmin HTTP/1.1\r\nHost: good.example\r\n\r\n')).status).toBe(400);
    expect((await raw(pub, 'GET /public/%zz HTTP/1.1\r\nHost: good.example\r\n\r\n')).status).toBe(400);
    expect(good.seen.length).toBe(before);
    // Allowed after normalisation: the upstream gets the normalised path, the query as it was.
    const r = await raw(pub, 'GET /x/../public//a/./%7euser/%2e%2e/b%2a?p=/../%2e HTTP/1.1\r\nHost: good.example\r\n\r\n');
    expect(r.status).toBe(200);
    expect(good.seen.at(-1)!.url).toBe('/public/a/b%2A?p=/../%2e');
  });

  it('Host rules (proxy side): two Host fields are 400 whatever their order, never routed on the first', async () => {
    const before = good.seen.length;
    expect((await raw(port, 'GET /public/x HTTP/1.1\r\nHost: good.example\r\nHost: evil.example\r\n\r\n')).status).toBe(400);
    expect((await raw(port, 'GET /public/x HTTP/1.1\r\nHost: evil.example\r\nHost: good.example\r\n\r\n')).status).toBe(400);
    expect(good.seen.length).toBe(before);
    expect(evil.seen).toEqual([]);
    // HTTP/1.0 may have none: the authority is empty, so the policy's host rule does not hold.
    expect((await raw(port, 'GET /public/x HTTP/1.0\r\n\r\n')).status).toBe(403);
    expect(evil.seen).toEqual([]);
  });
});

/** A request as the server hands it, for the canonical function alone. */
function req(url: string, headers: string[] = ['host', 'a.example'], method = 'GET', httpVersion = '1.1') {
  return { method, url, httpVersion, rawHeaders: headers, header: (n: string) => { for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === n) return headers[i + 1]; return undefined; } };
}

describe('canonicalRequest', () => {
  it('normalises paths as Envoy does by default (normalize_path, merge_slashes), decoding only unreserved escapes', () => {
    const cases: [string, string][] = [
      ['/', '/'], ['/a/b', '/a/b'], ['/a/./b', '/a/b'], ['/a/../b', '/b'], ['/../a', '/a'], ['/a/b/..', '/a/'], ['/a/.', '/a/'],
      ['/.', '/'], ['/..', '/'], ['//a///b//', '/a/b/'], ['/a//../b', '/a/b'], ['/%2e%2E/x', '/x'], ['/%41%7e%5F%2d', '/A~_-'],
      ['/a%20b', '/a%20b'], ['/a%3fb%3F', '/a%3Fb%3F'], ['/.well-known/x', '/.well-known/x'], ['/a\\..\\b', '/b'], ['/%C3%A9', '/%C3%A9'],
      ['/a/...', '/a/...'], ['/a/..b', '/a/..b'],
    ];
    for (const [i, o] of cases) expect([i, normalisePath(i, 'REJECT_REQUEST')]).toEqual([i, o]);
    expect(normalisePath('/%2', 'KEEP_UNCHANGED')).toBeNull();
    expect(normalisePath('/%g0', 'KEEP_UNCHANGED')).toBeNull();
  });

  it('applies the escaped-slash action to %2F and %5C', () => {
    const p = '/a/..%2fb/%5Cc';
    const out: Record<EscapedSlashAction, [number | null, string, boolean]> = {
      KEEP_UNCHANGED: [null, '/a/..%2Fb/%5Cc', false],
      REJECT_REQUEST: [400, '', false],
      UNESCAPE_AND_FORWARD: [null, '/b/c', false],
      UNESCAPE_AND_REDIRECT: [null, '/b/c', true],
    };
    for (const [action, [status, path, redirect]] of Object.entries(out) as [EscapedSlashAction, [number | null, string, boolean]][]) {
      const c = canonicalRequest(req(p), 'http', action);
      expect([action, c.error !== null ? 400 : null, c.error === null ? c.path : '', c.redirect]).toEqual([action, status, path, redirect]);
    }
  });

  it('takes the authority from an absolute-form URI (http/https only), else from the one Host', () => {
    const c = canonicalRequest(req('https://Shop.Example.:8443/a/../b?x', ['host', 'other']), 'http', 'REJECT_REQUEST');
    expect([c.error, c.scheme, c.authority, c.host, c.port, c.path, c.query, c.target, c.header('host')]).toEqual([null, 'http', 'shop.example:8443', 'shop.example', 8443, '/b', 'x', '/b?x', 'shop.example:8443']);
    const h = canonicalRequest(req('/p', ['Host', '[::1]:80']), 'https', 'REJECT_REQUEST');
    expect([h.error, h.authority, h.host, h.port, h.scheme]).toEqual([null, '[::1]:80', '[::1]', 80, 'https']);
    expect(canonicalRequest(req('http://a.example'), 'http', 'REJECT_REQUEST').target).toBe('/');
    expect(canonicalRequest(req('http://a.example?q'), 'http', 'REJECT_REQUEST').target).toBe('/?q');
    expect(canonicalRequest(req('*', ['host', 'a'], 'OPTIONS'), 'http', 'REJECT_REQUEST').path).toBe('*');
    expect(canonicalRequest(req('/x', ['host', 'a.example:']), 'http', 'REJECT_REQUEST').authority).toBe('a.example');
    const bad: [string, string[], string, string, string][] = [
      ['foo://a/x', ['host', 'a'], 'GET', '1.1', 'unsupported_scheme'],
      ['http:///x', ['host', 'a'], 'GET', '1.1', 'invalid_authority'],
      ['http://u@a/x', ['host', 'a'], 'GET', '1.1', 'invalid_authority'],
      ['/x', ['host', 'a b'], 'GET', '1.1', 'invalid_authority'],
      ['/x', ['host', 'a:99999'], 'GET', '1.1', 'invalid_authority'],
      ['/x', ['host', 'a%2eb'], 'GET', '1.1', 'invalid_authority'],
      ['/x', ['host', 'a', 'HOST', 'a'], 'GET', '1.1', 'duplicate_host'],
      ['/x', [], 'GET', '1.1', 'missing_host'],
      ['/x', ['host', ''], 'GET', '1.1', 'invalid_authority'],
      ['a.example:443', ['host', 'a.example:443'], 'CONNECT', '1.1', 'invalid_target'],
      ['*', ['host', 'a'], 'GET', '1.1', 'invalid_target'],
    ];
    for (const [url, h, m, v, code] of bad) expect([url, canonicalRequest(req(url, h, m, v), 'http', 'KEEP_UNCHANGED').error]).toEqual([url, code]);
    const ten = canonicalRequest(req('/x', [], 'GET', '1.0'), 'http', 'REJECT_REQUEST');
    expect([ten.error, ten.authority, ten.host]).toEqual([null, '', '']);
  });

  it('fast path: a canonical path and target are the strings received', () => {
    const url = '/api/v1/items?x=1';
    const c = canonicalRequest(req(url), 'http', 'REJECT_REQUEST');
    expect(c.target).toBe(url);
    expect(canonicalRequest(req('/a?'), 'http', 'REJECT_REQUEST').target).toBe('/a');
    const p = '/api/v1/items';
    expect(normalisePath(p, 'REJECT_REQUEST')).toBe(p);
  });
});

describe('escapedSlashes: UNESCAPE_AND_REDIRECT', () => {
  it('answers 307 to the unescaped, normalised path and forwards nothing', async () => {
    const up = await upstream('up');
    const transport = new KernelTransport();
    const proxy = new Proxy({
      routes: [{ name: 'all', rules: [{ backendRefs: [{ name: 'up' }] }] }],
      clusters: [new Cluster({ name: 'up', endpoints: [{ address: '127.0.0.1', port: up.port }], transport, rng: new Prng(1) })],
      rng: new Prng(2), escapedSlashes: 'UNESCAPE_AND_REDIRECT',
    });
    const server = new HttpServer(proxy.handler);
    const port = (await server.listen(transport, 0, '127.0.0.1')).port;
    try {
      const r = await new Promise<string>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1');
        let b = '';
        s.on('data', (c) => { b += c.toString('latin1'); });
        s.on('error', reject);
        s.on('close', () => resolve(b));
        s.write('GET /public/..%2Fadmin/%5Cx?q=%2F HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n');
      });
      expect(r.split('\r\n')[0]).toBe('HTTP/1.1 307 Temporary Redirect');
      expect(r).toMatch(/\r\nlocation: \/admin\/x\?q=%2F\r\n/i);
      expect(up.seen).toEqual([]);
      const ok = await raw(port, 'GET /public/a HTTP/1.1\r\nHost: a.example\r\n\r\n');
      expect(ok.status).toBe(200);
      expect(up.seen).toEqual([{ url: '/public/a', host: 'a.example' }]);
    } finally {
      await server.close();
      proxy.close();
      await transport.close();
      await new Promise<void>((r) => up.server.close(() => r()));
    }
  });
});

describe('escapedSlashes in the config', () => {
  const cfg = (v: string): string => `listeners:\n  - { name: web, port: 8080${v} }\nclusters:\n  - { name: c, endpoints: ["10.0.0.1:80"] }\n`;
  it('defaults to REJECT_REQUEST, takes the four Envoy actions and refuses anything else with file:line', () => {
    expect(parseConfig(cfg(''), 'p.yaml').config!.listeners[0]!.escapedSlashes).toBe('REJECT_REQUEST');
    expect(parseConfig(cfg(', escapedSlashes: UNESCAPE_AND_REDIRECT'), 'p.yaml').config!.listeners[0]!.escapedSlashes).toBe('UNESCAPE_AND_REDIRECT');
    const bad = parseConfig(cfg(', escapedSlashes: decode'), 'p.yaml');
    expect(bad.ok).toBe(false);
    expect(bad.errors.map((e) => `p.yaml:${e.line}: ${e.field}: ${e.message}`)).toEqual(['p.yaml:2: listeners[0].escapedSlashes: must be one of KEEP_UNCHANGED, REJECT_REQUEST, UNESCAPE_AND_REDIRECT, UNESCAPE_AND_FORWARD']);
  });
});
