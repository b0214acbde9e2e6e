// `strata proxy` as a long-lived node proxy, spawned as a process on
// loopback (STRATA_LAB=off, kernel transport): SIGHUP swaps a route under a
// wrk run with zero failed requests, an invalid config on SIGHUP is logged
// and the old one keeps serving, SIGTERM under load lets slow in-flight
// requests finish with 200 and exits 0, the admin listener's /metrics
// parses as Prometheus text and /readyz flips to 503 while draining. The
// proxy's own log is read as JSON lines.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as net from 'node:net';
import * as http from 'node:http';
import * as tls from 'node:tls';
import { copyFileSync, readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

const execFileP = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
let dir = '';
let runner = '';
/** Every proxy spawned, killed in afterAll so a failed or timed-out test leaves none running. */
const spawned: ChildProcess[] = [];

interface Proc {
  p: ChildProcess;
  /** Parsed JSON log events so far (stderr). */
  events: Record<string, unknown>[];
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
  /** Resolves with the first event with this msg (and matching pred) seen from now or already seen after `from`. */
  event(msg: string, from?: number, pred?: (e: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

function start(config: string): Proc {
  const p = spawn(process.execPath, ['--import', 'tsx', runner, 'proxy', '--config', config], { cwd: root, env: { ...process.env, STRATA_LAB: 'off' }, stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.push(p);
  let out = '', err = '', partial = '';
  const events: Record<string, unknown>[] = [];
  const waiters: { msg: string; from: number; pred: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }[] = [];
  const check = (): void => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      const e = events.slice(w.from).find((x) => x.msg === w.msg && w.pred(x));
      if (e) { waiters.splice(i, 1); w.resolve(e); }
    }
  };
  p.stdout!.on('data', (d) => { out += d; });
  p.stderr!.on('data', (d) => {
    err += d; partial += d;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) { try { events.push(JSON.parse(l) as Record<string, unknown>); } catch { /* not a log line */ } }
    check();
  });
  const exit = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  return {
    p, events, stdout: () => out, stderr: () => err, exit,
    event(msg, from = 0, pred = () => true) {
      return new Promise((res, rej) => {
        waiters.push({ msg, from, pred, resolve: res });
        check();
        void exit.then((code) => rej(new Error(`exited ${code} before '${msg}': ${out}${err}`)));
      });
    },
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

interface Upstream { server: http.Server; port: number; hits: number }
async function upstream(name: string, delayMs = 0): Promise<Upstream> {
  const u: Upstream = { server: null as unknown as http.Server, port: 0, hits: 0 };
  u.server = http.createServer((req, res) => {
    u.hits++;
    const answer = (): void => { res.end(`${name} ${req.url}`); };
    if (delayMs > 0) setTimeout(answer, delayMs); else answer();
  });
  u.server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => u.server.listen(0, '127.0.0.1', () => r()));
  u.port = (u.server.address() as net.AddressInfo).port;
  return u;
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (r) => {
      let b = '';
      r.on('data', (c) => { b += c; });
      r.on('end', () => res({ status: r.statusCode!, body: b }));
    });
    req.on('error', rej);
  });
}

function route(name: string, prefix: string, cluster: string): string[] {
  return [
    '  - apiVersion: gateway.networking.k8s.io/v1', '    kind: HTTPRoute', `    metadata: { name: ${name} }`, '    spec:',
    '      parentRefs: [{ name: web }]', '      rules:', `        - matches: [{ path: { type: PathPrefix, value: ${prefix} } }]`, `          backendRefs: [{ name: ${cluster} }]`,
  ];
}

function config(o: { port: number; admin?: number; clusters: Record<string, number>; routes: [string, string][]; drain?: string; extra?: string[] }): string {
  return [
    'logging: { level: info, format: json, accessLog: { enabled: false } }',
    ...(o.admin !== undefined ? [`admin: { address: 127.0.0.1, port: ${o.admin} }`] : []),
    ...(o.drain !== undefined ? [`drain: { timeout: ${o.drain} }`] : []),
    'listeners:', '  - name: web', '    address: 127.0.0.1', `    port: ${o.port}`,
    'clusters:', ...Object.entries(o.clusters).flatMap(([n, p]) => [`  - name: ${n}`, `    endpoints: [127.0.0.1:${p}]`]),
    'routes:', ...o.routes.flatMap(([prefix, cluster], i) => route(`r${i}`, prefix, cluster)),
    ...(o.extra ?? []), '',
  ].join('\n');
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-node-'));
  runner = join(dir, 'run.mts');
  writeFileSync(runner, `const m = await import(${JSON.stringify(`${root}/src/cli/main.ts`)});\nprocess.exitCode = await m.run(process.argv.slice(2));\n`);
});
afterAll(() => {
  for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('SIGHUP reload', () => {
  let a: Upstream, b: Upstream;
  beforeAll(async () => { a = await upstream('A'); b = await upstream('B'); });
  afterAll(async () => { for (const u of [a, b]) { u.server.closeAllConnections(); await new Promise<void>((r) => u.server.close(() => r())); } });

  it('a changed route takes effect during a wrk run with zero failed requests; an invalid config keeps the old one', async () => {
    const port = await freePort();
    const f = join(dir, 'reload.yaml');
    writeFileSync(f, config({ port, clusters: { a: a.port, b: b.port }, routes: [['/app', 'a']] }));
    const pr = start(f);
    try {
      const chosen = await pr.event('transport chosen');
      expect(chosen).toMatchObject({ level: 'info', listener: 'web', transport: 'kernel' });
      expect(String(chosen.summary)).toMatch(/loopback/);
      await pr.event('ready');
      // stdout and stderr are separate pipes: the line may trail the log event.
      for (let i = 0; i < 200 && !pr.stdout().includes('\n'); i++) await new Promise((r) => setTimeout(r, 10));
      expect(pr.stdout().trim()).toBe(`listening 127.0.0.1:${port} transport=kernel`);
      expect((await get(port, '/app/x')).body).toBe('A /app/x');
      expect((await get(port, '/new')).status).toBe(404);

      const wrk = execFileP('wrk', ['-t1', '-c10', '-d4s', `http://127.0.0.1:${port}/app/x`]);
      await new Promise((r) => setTimeout(r, 1500));
      const hitsA = a.hits;
      expect(hitsA).toBeGreaterThan(10);
      writeFileSync(f, config({ port, clusters: { a: a.port, b: b.port }, routes: [['/app', 'b'], ['/new', 'b']] }));
      const mark = pr.events.length;
      pr.p.kill('SIGHUP');
      const ok = await pr.event('reload ok', mark);
      expect(ok).toMatchObject({ generation: 2, previous: 1, kept: ['web'], added: [], removed: [] });
      // The old generation (its upstream pools) closes once its last request is done.
      expect(await pr.event('generation closed', mark)).toMatchObject({ generation: 1, reason: 'idle' });
      const w = await wrk;
      const total = Number(/(\d+) requests in/.exec(w.stdout)?.[1] ?? 0);
      expect(total).toBeGreaterThan(100);
      expect(w.stdout).not.toMatch(/Non-2xx|Socket errors/);
      // Both upstreams served part of the same run: the switch happened under load.
      expect(b.hits).toBeGreaterThan(10);
      expect(a.hits + b.hits).toBeGreaterThanOrEqual(total);
      expect((await get(port, '/app/y')).body).toBe('B /app/y');
      expect((await get(port, '/new/z')).body).toBe('B /new/z');

      // Invalid: logged with file, line and field; the old config keeps serving.
      writeFileSync(f, config({ port, clusters: { a: a.port, b: b.port }, routes: [['/app', 'nowhere']] }));
      const mark2 = pr.events.length;
      pr.p.kill('SIGHUP');
      const bad = await pr.event('reload failed', mark2);
      expect(bad).toMatchObject({ level: 'error', error: 'invalid config', generation: 2, keeping: 'previous config' });
      expect((bad.errors as string[]).join('\n')).toContain(`${f}:`);
      expect((bad.errors as string[]).join('\n')).toContain('backendRefs[0].name: no cluster named "nowhere"');
      expect((await get(port, '/app/q')).body).toBe('B /app/q');

      const mark3 = pr.events.length;
      pr.p.kill('SIGTERM');
      expect(await pr.exit).toBe(0);
      expect(pr.events.slice(mark3).map((e) => e.msg)).toEqual(['drain start', 'listener closed', 'transport closed', 'drain end']);
    } finally {
      pr.p.kill('SIGKILL');
    }
  }, 30_000);

  it('A reload kills the proxy: a valid YAML with 101 alias references fails the SIGHUP reload with file:line, counted, and the old config keeps serving', async () => {
    const [port, admin] = [await freePort(), await freePort()];
    const f = join(dir, 'aliases.yaml');
    writeFileSync(f, config({ port, admin, clusters: { a: a.port, b: b.port }, routes: [['/app', 'a']] }));
    const pr = start(f);
    try {
      await pr.event('ready');
      expect((await get(port, '/app/1')).body).toBe('A /app/1');
      // 101 references to one anchor: valid YAML, over the yaml library's alias limit (it throws).
      const hostnames = `      hostnames: [&h a.example, ${Array(101).fill('*h').join(', ')}]`;
      const aliased = config({ port, admin, clusters: { a: a.port, b: b.port }, routes: [['/app', 'b']] }).replace('      parentRefs: [{ name: web }]', `      parentRefs: [{ name: web }]\n${hostnames}`);
      writeFileSync(f, aliased);
      const mark = pr.events.length;
      pr.p.kill('SIGHUP');
      const bad = await pr.event('reload failed', mark);
      expect(bad).toMatchObject({ level: 'error', error: 'invalid config', generation: 1, keeping: 'previous config' });
      const line = aliased.split('\n').findIndex((l) => l.includes('&h')) + 1;
      expect((bad.errors as string[])[0]).toBe(`${f}:${line}: YAML: more than 100 alias expansions (the anchor counts as one; at *h); aliases are limited so a small file cannot expand into a huge one`);
      expect(pr.p.exitCode).toBeNull();
      expect((await get(port, '/app/2')).body).toBe('A /app/2');
      const metrics = await get(admin, '/metrics');
      expect(metrics.body).toMatch(/strata_proxy_reloads_total\{result="failed"\} 1\b/);
      expect(metrics.body).toMatch(/strata_proxy_config_generation 1\b/);
      pr.p.kill('SIGTERM');
      expect(await pr.exit).toBe(0);
    } finally {
      pr.p.kill('SIGKILL');
    }
  }, 30_000);

  it('a listener added on reload serves, a removed one closes', async () => {
    const [port, port2] = [await freePort(), await freePort()];
    const f = join(dir, 'listeners.yaml');
    writeFileSync(f, config({ port, clusters: { a: a.port }, routes: [['/', 'a']] }));
    const pr = start(f);
    try {
      await pr.event('ready');
      const two = config({ port, clusters: { a: a.port }, routes: [['/', 'a']] }).replace('clusters:', `  - name: extra\n    address: 127.0.0.1\n    port: ${port2}\nclusters:`)
        .replace('parentRefs: [{ name: web }]', 'parentRefs: [{ name: web }, { name: extra }]');
      writeFileSync(f, two);
      let mark = pr.events.length;
      pr.p.kill('SIGHUP');
      expect(await pr.event('reload ok', mark)).toMatchObject({ kept: ['web'], added: ['extra'] });
      expect((await get(port2, '/via-extra')).body).toBe('A /via-extra');
      // Now drop 'web' and change 'extra' to the first port: removed + replaced.
      writeFileSync(f, config({ port: port2, clusters: { a: a.port }, routes: [['/', 'a']] }));
      mark = pr.events.length;
      pr.p.kill('SIGHUP');
      const ok = await pr.event('reload ok', mark);
      expect(ok).toMatchObject({ removed: ['extra'], replaced: ['web'] });
      expect((await get(port2, '/web-now')).body).toBe('A /web-now');
      await expect(get(port, '/')).rejects.toThrow(/ECONNREFUSED/);
      pr.p.kill('SIGTERM');
      expect(await pr.exit).toBe(0);
    } finally {
      pr.p.kill('SIGKILL');
    }
  }, 30_000);
});

describe('SIGTERM drain and the admin listener', () => {
  let slow: Upstream;
  beforeAll(async () => { slow = await upstream('slow', 1000); });
  afterAll(async () => { slow.server.closeAllConnections(); await new Promise<void>((r) => slow.server.close(() => r())); });

  it('in-flight requests complete with 200, /readyz flips to 503, /metrics parses, exit 0', async () => {
    const [port, admin] = [await freePort(), await freePort()];
    const f = join(dir, 'drain.yaml');
    // A drain timeout longer than the test's: an idle keep-alive connection that held up the drain would fail it.
    writeFileSync(f, config({ port, admin, drain: '60s', clusters: { slow: slow.port }, routes: [['/', 'slow']] }));
    const pr = start(f);
    try {
      await pr.event('ready');
      expect(await pr.event('admin listening')).toMatchObject({ port: admin });
      expect((await get(admin, '/readyz')).status).toBe(200);
      expect((await get(port, '/warm')).body).toBe('slow /warm');

      const m = await get(admin, '/metrics');
      expect(m.status).toBe(200);
      const families = parsePrometheusTextFormat(m.body) as { name: string; type: string; metrics: { value?: string; labels?: Record<string, string> }[] }[];
      const fam = (n: string) => families.find((x) => x.name === n);
      expect(fam('strata_proxy_requests_total')).toMatchObject({ type: 'COUNTER', metrics: [{ labels: { listener: 'web' }, value: '1' }] });
      expect(fam('strata_http_server_connections_total')?.metrics[0]).toMatchObject({ labels: { listener: 'web' }, value: '1' });
      expect(fam('strata_proxy_config_generation')?.metrics[0]?.value).toBe('1');
      expect(fam('strata_proxy_reloads_total')?.metrics.map((x) => x.labels?.result).sort()).toEqual(['failed', 'ok']);
      expect(fam('strata_admin_requests_total')).toBeDefined();

      // /flows?follow=1 on the admin port: one L7 record per proxied request (built only while followed).
      const flows = await new Promise<http.IncomingMessage>((res, rej) => { http.get({ host: '127.0.0.1', port: admin, path: '/flows?follow=1&http_method=GET', agent: false }, res).on('error', rej); });
      let flowText = '';
      flows.on('data', (d) => { flowText += d; });
      flows.on('error', () => { /* closed by the drain */ });
      expect((await get(port, '/followed')).body).toBe('slow /followed');
      for (let i = 0; i < 300 && !flowText.includes('/followed'); i++) await new Promise((r) => setTimeout(r, 10));
      const rec = JSON.parse(flowText.split('\n').find((l) => l.includes('/followed'))!) as { verdict: string; Type: string; l7: { http: { code: number; method: string; url: string } }; strata: { transport?: string; upstream: { cluster: string | null; endpoint: string | null; retries: number } | null } };
      expect(rec).toMatchObject({ verdict: 'FORWARDED', Type: 'L7', l7: { http: { code: 200, method: 'GET', url: 'http://127.0.0.1:' + port + '/followed' } } });
      // The upstream the proxy chose, and the retries it made, are joined to the request's record.
      expect(rec.strata.upstream).not.toBeNull();
      expect(typeof rec.strata.upstream!.cluster).toBe('string');
      expect(rec.strata.upstream!.endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(rec.strata.upstream!.retries).toBe(0);
      flows.destroy();

      // An idle keep-alive client: the drain must close it, not wait for it.
      const idle = net.connect(port, '127.0.0.1');
      let idleGot = '';
      idle.on('data', (d) => { idleGot += d; });
      const idleClosed = new Promise<void>((r) => idle.on('close', () => r()));
      idle.write('GET /keep HTTP/1.1\r\nHost: x\r\n\r\n');
      for (let i = 0; i < 300 && !idleGot.includes('slow /keep'); i++) await new Promise((r) => setTimeout(r, 10));
      expect(idleGot).toMatch(/^HTTP\/1.1 200/);

      const before = slow.hits;
      const inflight = Array.from({ length: 5 }, (_, i) => get(port, `/slow/${i}`));
      for (let i = 0; i < 200 && slow.hits < before + 5; i++) await new Promise((r) => setTimeout(r, 10));
      expect(slow.hits).toBe(before + 5);
      const mark = pr.events.length;
      pr.p.kill('SIGTERM');
      expect(await pr.event('drain start', mark)).toMatchObject({ signal: 'SIGTERM', inflight: 5, timeoutMs: 60_000, connections: 6 });
      const rz = await get(admin, '/readyz');
      expect(rz.status).toBe(503);
      expect(rz.body).toContain('draining');
      // No new connections once draining.
      await expect(get(port, '/late')).rejects.toThrow(/ECONNREFUSED/);
      const res = await Promise.all(inflight);
      expect(res.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      expect(res.map((r) => r.body)).toEqual([0, 1, 2, 3, 4].map((i) => `slow /slow/${i}`));
      await idleClosed;
      expect(await pr.exit).toBe(0);
      expect(pr.events.slice(mark).find((e) => e.msg === 'drain end')).toMatchObject({ signal: 'SIGTERM', unfinished: 0 });
    } finally {
      pr.p.kill('SIGKILL');
    }
  }, 30_000);

  it('logging.format text writes one human line per event', async () => {
    const port = await freePort();
    const f = join(dir, 'text.yaml');
    writeFileSync(f, config({ port, clusters: { slow: slow.port }, routes: [['/', 'slow']] }).replace('format: json', 'format: text'));
    const pr = start(f);
    try {
      for (let i = 0; i < 300 && !pr.stdout().includes('listening'); i++) await new Promise((r) => setTimeout(r, 20));
      pr.p.kill('SIGTERM');
      expect(await pr.exit).toBe(0);
      const lines = pr.stderr().trim().split('\n');
      expect(lines.some((l) => /^\S+Z INFO  transport chosen listener=web transport=kernel /.test(l))).toBe(true);
      expect(lines.some((l) => /^\S+Z INFO  drain end signal=SIGTERM /.test(l))).toBe(true);
      expect(lines.every((l) => !l.startsWith('{'))).toBe(true);
    } finally {
      pr.p.kill('SIGKILL');
    }
  }, 30_000);
});

describe('SIGHUP reloads TLS files', () => {
  let up: Upstream;
  beforeAll(async () => { up = await upstream('tls-up'); });
  afterAll(async () => { up.server.closeAllConnections(); await new Promise<void>((r) => up.server.close(() => r())); });

  /** One request on a TLS connection; resolves with the response head line and body once it is complete. */
  function exchange(s: tls.TLSSocket, path: string): Promise<string> {
    return new Promise((res) => {
      let got = '';
      const on = (d: Buffer): void => {
        got += d;
        const end = got.indexOf('\r\n\r\n');
        const m = end < 0 ? null : /\r\ncontent-length: (\d+)/i.exec(got.slice(0, end + 2));
        if (m && got.length >= end + 4 + Number(m[1])) { s.off('data', on); res(got); }
      };
      s.on('data', on);
      s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    });
  }
  function connect(port: number): Promise<tls.TLSSocket> {
    return new Promise((res, rej) => { const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => res(s)); s.on('error', rej); });
  }

  it('new handshakes get the rewritten certificate; a connection opened before keeps working', async () => {
    const pki = (out: string, td: string) => execFileP(process.execPath, ['--import', 'tsx', runner, 'certs', 'dev', '--out', out, '--trust-domain', td], { cwd: root });
    await pki(join(dir, 'pki1'), 'one.example');
    await pki(join(dir, 'pki2'), 'two.example');
    const live = join(dir, 'live');
    const install = (from: string): void => {
      rmSync(live, { recursive: true, force: true });
      for (const [src, dst] of [['server/chain.pem', 'cert.pem'], ['server/key.pem', 'key.pem'], ['ca/bundle.pem', 'ca.pem']]) {
        execFileSync('mkdir', ['-p', live]);
        copyFileSync(join(from, src!), join(live, dst!));
      }
    };
    install(join(dir, 'pki1'));
    const fp = (pkiDir: string) => new X509Certificate(readFileSync(join(pkiDir, 'server/cert.pem'))).fingerprint256;
    const port = await freePort();
    const f = join(dir, 'tls.yaml');
    writeFileSync(f, config({ port, clusters: { up: up.port }, routes: [['/', 'up']], extra: [
      'tls:', '  - name: srv', `    cert: ${live}/cert.pem`, `    key: ${live}/key.pem`, `    ca: ${live}/ca.pem`, '    requireClientCert: false', '    watch: false',
    ] }).replace(`    port: ${port}\n`, `    port: ${port}\n    tls: srv\n`));
    const pr = start(f);
    try {
      await pr.event('ready');
      const before = await connect(port);
      expect(before.getPeerCertificate().fingerprint256).toBe(fp(join(dir, 'pki1')));
      expect(await exchange(before, '/first')).toMatch(/^HTTP\/1.1 200[\s\S]*tls-up \/first$/);

      install(join(dir, 'pki2'));
      const mark = pr.events.length;
      pr.p.kill('SIGHUP');
      expect(await pr.event('reload ok', mark)).toMatchObject({ kept: ['web'] });
      const after = await connect(port);
      expect(after.getPeerCertificate().fingerprint256).toBe(fp(join(dir, 'pki2')));
      expect(await exchange(after, '/second')).toMatch(/tls-up \/second$/);
      // The connection from before the reload still has its session and still proxies.
      expect(await exchange(before, '/again')).toMatch(/tls-up \/again$/);
      before.destroy();
      after.destroy();
      pr.p.kill('SIGTERM');
      expect(await pr.exit).toBe(0);
    } finally {
      pr.p.kill('SIGKILL');
    }
  }, 30_000);
});

describe('start failures', () => {
  it('a port in use is one logged error and exit 1, with nothing left running', async () => {
    const hold = net.createServer();
    await new Promise<void>((r) => hold.listen(0, '127.0.0.1', () => r()));
    const port = (hold.address() as net.AddressInfo).port;
    const f = join(dir, 'inuse.yaml');
    writeFileSync(f, config({ port, clusters: { a: 9 }, routes: [['/', 'a']] }));
    const pr = start(f);
    expect(await pr.exit).toBe(1);
    expect(pr.events.find((e) => e.msg === 'start failed')).toMatchObject({ level: 'error', error: expect.stringContaining('EADDRINUSE') });
    expect(pr.stderr()).toContain(`strata proxy: listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
    expect(pr.stdout()).not.toContain('listening');
    await new Promise<void>((r) => hold.close(() => r()));
  }, 30_000);
});

describe('transport on the host without a lab', () => {
  it('auto on 0.0.0.0 probes for real and falls back to the kernel, saying why AF_XDP and TAP were passed over', async () => {
    const port = await freePort();
    const f = join(dir, 'auto-host.yaml');
    writeFileSync(f, config({ port, clusters: { a: 9 }, routes: [['/', 'a']] }).replace('    address: 127.0.0.1\n', '    address: 0.0.0.0\n'));
    const pr = start(f);
    try {
      const c = await pr.event('transport chosen');
      expect(c).toMatchObject({ listener: 'web', transport: 'kernel', reason: 'no kernel-bypass transport is available' });
      const skipped = c.skipped as { kind: string; reason: string }[];
      expect(skipped.map((s) => s.kind)).toEqual(['afxdp', 'tap']);
      // Whatever the host lacks (root, the addon, the device), each reason names it.
      for (const s of skipped) expect(s.reason).toMatch(/no interface (s0|tap0) here|needs root|addon|not built|AF_XDP|tun/);
      await pr.event('ready');
      pr.p.kill('SIGTERM');
      expect(await pr.exit).toBe(0);
    } finally {
      pr.p.kill('SIGKILL');
    }
  }, 30_000);

  it('an explicit transport that cannot run here fails clearly (exit 3)', async () => {
    const port = await freePort();
    const f = join(dir, 'tap-host.yaml');
    writeFileSync(f, config({ port, clusters: { a: 9 }, routes: [['/', 'a']] }).replace('    address: 127.0.0.1\n', '    address: 10.201.0.2\n    transport: tap\n'));
    const pr = start(f);
    expect(await pr.exit).toBe(3);
    expect(pr.stderr()).toMatch(/strata proxy: tap transport unavailable: .+/);
    expect(pr.events.find((e) => e.msg === 'transport configured')).toMatchObject({ listener: 'web', transport: 'tap' });
  }, 30_000);
});
