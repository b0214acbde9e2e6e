// Proxy differential fuzzing (issue 10, Deliver §8): the HTTP differential
// fuzzing against llhttp (http1-differential.test.ts) carried through the
// proxy. Seeded random requests (dot-segments, percent-escapes, backslashes,
// absolute-forms with odd schemes, several or no Host fields, HTTP/1.0 …)
// go over loopback into our HttpServer + Proxy. Three observers record what
// each request looked like to them: the policy hook, the route match, and a
// real upstream (node:http, llhttp) on the other side. For every request:
//   - the three agree: the policy's authority is the upstream's Host and its
//     target the upstream's request-target; the router matched that path,
//     query and host;
//   - the path is canonical: normalising it again changes nothing, and a
//     WHATWG URL parser (what an upstream that normalises paths does) reads
//     the same path, so no upstream can serve another resource than the one
//     the policy allowed;
//   - a refused request (400) reached no observer.
// Runs STRATA_FUZZ_SECONDS (default 3) seconds; STRATA_FUZZ_SEED replays a
// run. It prints how many inputs it tried, and the seed of any failure.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import * as http from 'node:http';
import * as net from 'node:net';
import { HttpServer } from '../src/l7/server/index.js';
import { KernelTransport } from '../src/l7/transport/index.js';
import { Proxy, Cluster, normalisePath, type CanonicalRequest, type EscapedSlashAction, type RouteRequest } from '../src/l7/proxy/index.js';
import { Prng } from '../src/util/prng.js';
import { fuzzSeed } from './helpers/fuzz.js';

const SECONDS = Number(process.env.STRATA_FUZZ_SECONDS ?? 3);
const SEED = fuzzSeed();
/** Requests in flight at once (each on its own connection). */
const PARALLEL = 16;

interface Seen { policy?: { authority: string; target: string }; route?: { host: string; path: string; query: string }; upstream?: { host: string | undefined; url: string } }

const SEGMENTS = ['a', 'public', 'admin', 'x.y', '.', '..', '%2e', '%2E%2e', '.%2e', '%2e.', '', '%2f', '%2F', '%5c', '%5C', '\\', '%41', '%7e', '%7E', '%5f',
  '%20', '%zz', '%', '%4', 'b%2Fc', '..;', ';x', '%25', '%252e', '~u', '...', '.well-known', '%C3%A9', '%3f', '%23'];
const VALID_HOSTS = ['good.example', 'GOOD.Example.', 'evil.example:8080', '[::1]:80', '[::1]', 'h:', 'h:080', '127.0.0.1:1', 'a_b.example'];
const INVALID_HOSTS = ['a..b', '', 'x@y', 'h:99999', 'a b', '%41', '[::1', 'h:8o'];
const SCHEMES = ['http', 'HTTP', 'https', 'hTTp', 'foo', 'ftp', 'h2c', 'file', 'http+x'];

function pick<T>(r: Prng, a: readonly T[]): T { return a[r.int(a.length)]!; }
const randomHost = (r: Prng): string => pick(r, r.chance(0.85) ? VALID_HOSTS : INVALID_HOSTS);

function randomPath(r: Prng): string {
  let p = '';
  const n = r.int(7);
  for (let i = 0; i < n; i++) p += (r.chance(0.15) ? '//' : '/') + pick(r, SEGMENTS);
  if (p === '' || r.chance(0.1)) p += '/';
  if (r.chance(0.3)) p += `?${pick(r, ['q=1', 'a=/../%2e', 'x=%2F', '', 'k=v&k=w'])}`;
  return p;
}
function randomRequest(r: Prng, id: number): string {
  const method = r.chance(0.85) ? 'GET' : pick(r, ['POST', 'OPTIONS', 'HEAD', 'DELETE']);
  let target: string;
  const form = r.float();
  if (form < 0.65) target = randomPath(r);
  else if (form < 0.93) target = `${pick(r, SCHEMES)}://${randomHost(r)}${r.chance(0.8) ? randomPath(r) : ''}`;
  else if (form < 0.97) target = '*';
  else target = pick(r, ['a/b', 'x', '//a']);
  const version = r.chance(0.85) ? '1.1' : '1.0';
  let head = `${method} ${target} HTTP/${version}\r\n`;
  const hosts = r.chance(0.9) ? 1 : r.chance(0.5) ? 0 : 2;
  for (let i = 0; i < hosts; i++) head += `${r.chance(0.2) ? 'HOST' : 'Host'}: ${randomHost(r)}\r\n`;
  if (method === 'POST') head += 'Content-Length: 0\r\n';
  return `${head}X-Fuzz-Id: ${id}\r\nConnection: close\r\n\r\n`;
}

/** Status code of the response to one request on its own connection (0 when the server closed without one). */
function send(port: number, bytes: string): Promise<number> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    s.on('data', (c) => { buf += c.toString('latin1'); });
    s.on('error', () => {});
    s.on('close', () => { const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf); resolve(m ? Number(m[1]) : 0); });
    s.write(Buffer.from(bytes, 'latin1'));
  });
}

/** Host without port, as the router matches it. */
function hostOf(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  const c = authority.lastIndexOf(':');
  return c < 0 ? authority : authority.slice(0, c);
}

/** Characters WHATWG URL leaves alone in a path: only then is its reading comparable byte for byte. */
const PLAIN_PATH = /^[A-Za-z0-9\-._~%/!$&'()*+,;=:@]*$/;

describe('proxy differential: policy, router and upstream see one canonical authority and path', () => {
  const seen = new Map<number, Seen>();
  const upstream = http.createServer((req, res) => {
    const id = Number(req.headers['x-fuzz-id']);
    const s = seen.get(id) ?? {};
    s.upstream = { host: req.headers.host, url: req.url! };
    seen.set(id, s);
    res.writeHead(200, { 'Content-Length': 0 });
    res.end();
  });
  const transport = new KernelTransport();
  const proxies: { proxy: Proxy; server: HttpServer; port: number; action: EscapedSlashAction }[] = [];

  beforeAll(async () => {
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const up = (upstream.address() as net.AddressInfo).port;
    for (const action of ['REJECT_REQUEST', 'UNESCAPE_AND_FORWARD', 'KEEP_UNCHANGED'] as EscapedSlashAction[]) {
      const note = (req: { header(n: string): string | undefined }, f: (s: Seen) => void): void => {
        const id = Number(req.header('x-fuzz-id'));
        const s = seen.get(id) ?? {};
        f(s);
        seen.set(id, s);
      };
      const proxy = new Proxy({
        routes: [{ name: 'all', rules: [{ backendRefs: [{ name: 'up' }] }] }],
        clusters: [new Cluster({ name: 'up', endpoints: [{ address: '127.0.0.1', port: up }], transport, rng: new Prng(1) })],
        rng: new Prng(2), escapedSlashes: action,
        policy: (req, t: CanonicalRequest) => { note(req, (s) => { s.policy = { authority: t.authority, target: t.target }; }); return true; },
      });
      // The route match, instrumented in place: what the router was asked to match.
      const match = proxy.router.match.bind(proxy.router);
      proxy.router.match = (q: RouteRequest) => { note(q, (s) => { s.route = { host: q.host, path: q.path, query: q.query }; }); return match(q); };
      const server = new HttpServer(proxy.handler);
      const port = (await server.listen(transport, 0, '127.0.0.1')).port;
      proxies.push({ proxy, server, port, action });
    }
  });
  afterAll(async () => {
    for (const p of proxies) { await p.server.close(); p.proxy.close(); }
    await transport.close();
    await new Promise<void>((r) => upstream.close(() => r()));
  });

  it(`agrees on every fuzzed request for ${SECONDS} s (seed 0x${SEED.toString(16)})`, async () => {
    const r = new Prng(SEED);
    const problems: string[] = [];
    const end = Date.now() + SECONDS * 1000;
    let n = 0, refused = 0, forwarded = 0;
    while (Date.now() < end || n < 200) {
      const batch: Promise<void>[] = [];
      for (let k = 0; k < PARALLEL; k++) {
        const id = n++;
        const p = proxies[id % proxies.length]!;
        const bytes = randomRequest(r, id);
        batch.push(send(p.port, bytes).then((status) => {
          const s = seen.get(id) ?? {};
          seen.delete(id);
          const line = bytes.slice(0, bytes.indexOf('\r\nX-Fuzz-Id')).replace(/\r\n/g, ' | ');
          const bad = (why: string): void => { if (problems.length < 20) problems.push(`${p.action} ${JSON.stringify(line)} → ${status}: ${why} ${JSON.stringify(s)}`); };
          if (status === 400) {
            refused++;
            if (s.policy || s.route || s.upstream) bad('refused, yet an observer saw it');
            return;
          }
          if (status !== 200) { bad('neither forwarded nor refused'); return; }
          if (!s.policy || !s.route || !s.upstream) { bad('an observer missed it'); return; }
          forwarded++;
          const { authority, target } = s.policy;
          if (s.upstream.host !== authority) bad('upstream Host differs from the policy authority');
          if (s.upstream.url !== target) bad('upstream target differs from the policy target');
          if (`${s.route.path}${s.route.query ? `?${s.route.query}` : ''}` !== target) bad('router path and query differ from the policy target');
          if (s.route.host !== hostOf(authority)) bad('router host differs from the policy authority');
          if (authority !== authority.toLowerCase()) bad('authority not lowercase');
          const path = s.route.path;
          if (path !== '*') {
            if (normalisePath(path, p.action) !== path) bad('path not a fixed point of normalisation');
            if (/\/\/|\/\.\.?(\/|$)|\\/.test(path)) bad('dot-segment, empty segment or backslash left in the path');
            if (/%(2[dDeE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|7[eE])/.test(path)) bad('an unreserved character left escaped');
            if (PLAIN_PATH.test(path) && new URL(path, 'http://h').pathname !== path) bad(`a normalising upstream reads ${new URL(path, 'http://h').pathname}`);
          }
        }));
      }
      await Promise.all(batch);
    }
    const summary = `proxy differential: ${n} inputs, ${problems.length} disagreements, seed 0x${SEED.toString(16)} (${forwarded} forwarded, ${refused} refused with 400)`;
    console.log(summary);
    if (problems.length > 0) console.log(`replay with STRATA_FUZZ_SEED=0x${SEED.toString(16)}\n${problems.join('\n')}`);
    expect(problems).toEqual([]);
    // Both outcomes were exercised: the fuzzer reached the policy, and reached the refusals.
    expect(forwarded).toBeGreaterThan(n / 10);
    expect(refused).toBeGreaterThan(n / 10);
  }, (SECONDS + 60) * 1000);
});
