// The admin listener and the flow records against a hostile or careless
// world (issue 10, "Admin and CLI"): query strings are redacted wherever a
// request target is written down (flow records, the follow stream, the
// access log) unless logging.showQueryStrings; a non-loopback admin bind
// logs a warning; one client cannot take every follow slot; request bodies,
// connection floods and slow followers are bounded and counted. Real HTTP
// clients on loopback, and a spawned `strata proxy` (STRATA_LAB=off) for the
// end-to-end paths.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as http from 'node:http';
import * as net from 'node:net';
import { Readable } from 'node:stream';
import { AdminServer } from '../src/admin/server.js';
import { FlowBus } from '../src/flows/bus.js';
import { encodeCborSequence, readCborSequence } from '../src/flows/export.js';
import { formatFlowLine } from '../src/flows/format.js';
import { buildHttpRecord, type FlowRecord, type HttpFlowFacts } from '../src/flows/record.js';
import { Registry } from '../src/obs/metrics.js';
import { Logger } from '../src/proxy-runtime/log.js';
import { closedPort } from './helpers/ports.js';

const execFileP = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const SECRET = 's3cr3t-Value';
/** The documented default of PER_CLIENT. */
const PER_CLIENT = 4;

function facts(url: string, query?: 'redacted' | 'all'): HttpFlowFacts {
  return {
    ctx: { transport: 'kernel', ...(query ? { query } : {}) }, wallMs: Date.now(),
    req: { method: 'GET', url, httpVersion: '1.1', rawHeaders: ['Host', 'svc', 'Referer', `https://web.example/page?session=${SECRET}`] }, status: 200,
    src: { address: '127.0.0.1', port: 40000 }, dst: { address: '127.0.0.1', port: 80 }, timings: { totalNs: 1000 },
  };
}

function metric(reg: Registry, line: string): number {
  for (const l of reg.render().split('\n')) if (l.startsWith(`${line} `)) return Number(l.slice(line.length + 1));
  return 0;
}

/** Opens a follow stream from a given local address; resolves with the status once the head arrived. */
function follow(port: number, localAddress: string, path = '/flows?follow=1'): Promise<{ res: http.IncomingMessage; req: http.ClientRequest; body: () => Promise<string> }> {
  return new Promise((res0, rej) => {
    const req = http.get({ host: '127.0.0.1', port, path, localAddress, agent: false }, (res) => {
      res.on('error', () => { /* we hang up on purpose */ });
      const parts: Buffer[] = [];
      const ended = new Promise<string>((r) => { res.on('end', () => r(Buffer.concat(parts).toString())); res.on('close', () => r(Buffer.concat(parts).toString())); });
      res.on('data', (c: Buffer) => parts.push(c));
      res0({ res, req, body: () => ended });
    });
    req.on('error', rej);
  });
}

async function until(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!pred()) throw new Error(`timed out waiting for ${what}`);
}

describe('flow records and the admin listener under attack', () => {
  const reg = new Registry();
  const bus = new FlowBus('strata:test:admin-hostile');
  let admin: AdminServer;
  let port = 0;
  beforeAll(async () => {
    admin = new AdminServer({ host: '127.0.0.1', port: 0, registry: reg, bus, maxConnections: 24 });
    port = (await admin.listen()).port;
  });
  afterAll(async () => { await admin.close(); await bus.close(); });

  it('Query strings unredacted: a record keeps parameter names and hides their values in url, path, Summary, the flow line and CBOR; query: all shows them', async () => {
    const target = `/search?q=cats&api_key=${SECRET}&flag&empty=`;
    const r = buildHttpRecord(facts(target));
    const cbor: FlowRecord[] = [];
    for await (const x of readCborSequence(Readable.from([encodeCborSequence([r])]))) cbor.push(x);
    expect(cbor).toHaveLength(1);
    const everything = [JSON.stringify(r), formatFlowLine(r), JSON.stringify(cbor)].join('\n');
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain('cats');
    expect(r.strata.http!.path).toBe('/search?q=HUBBLE_REDACTED&api_key=HUBBLE_REDACTED&HUBBLE_REDACTED&empty=HUBBLE_REDACTED');
    expect(r.l7!.http.url).toBe(`http://svc${r.strata.http!.path}`);
    expect(r.Summary).toContain('api_key=HUBBLE_REDACTED');
    expect(r.l7!.http.headers).toContainEqual({ key: 'Referer', value: 'https://web.example/page?session=HUBBLE_REDACTED' });
    // userinfo in an absolute-form target is a credential too
    expect(buildHttpRecord(facts(`http://bob:${SECRET}@svc/x?k=${SECRET}`)).l7!.http.url).toBe('http://HUBBLE_REDACTED@svc/x?k=HUBBLE_REDACTED');
    // nothing to hide: the same string
    expect(buildHttpRecord(facts('/plain/path')).strata.http!.path).toBe('/plain/path');
    expect(buildHttpRecord(facts(target, 'all')).strata.http!.path).toBe(target);
  });

  it(`Follower slots: one client can take all follower slots — ${PER_CLIENT} follow streams per client address, the next gets 429, another address still follows; refusals counted`, async () => {
    const mine = [];
    for (let i = 0; i < PER_CLIENT; i++) mine.push(await follow(port, '127.0.0.1'));
    expect(mine.map((f) => f.res.statusCode)).toEqual(new Array(PER_CLIENT).fill(200));
    const extra = await follow(port, '127.0.0.1');
    expect(extra.res.statusCode).toBe(429);
    expect(await extra.body()).toBe(`too many flow followers from 127.0.0.1 (limit ${PER_CLIENT} per client address)\n`);
    const other = await follow(port, '127.0.0.2');
    expect(other.res.statusCode).toBe(200);
    expect(admin.followerCount).toBe(PER_CLIENT + 1);
    expect(metric(reg, 'strata_admin_requests_refused_total{reason="followers_per_client"}')).toBe(1);
    // A slot given back is a slot to take again.
    mine[0]!.req.destroy();
    await until(() => admin.followerCount === PER_CLIENT, 'the follower to leave');
    const again = await follow(port, '127.0.0.1');
    expect(again.res.statusCode).toBe(200);
    for (const f of [...mine, again, other]) f.req.destroy();
    await until(() => admin.followerCount === 0, 'every follower to leave');
  });

  it('Admin listener hostile clients: a request body gets 413 and the connection closes; connections past maxConnections are closed on accept and counted', async () => {
    const body = await new Promise<{ status: number; text: string }>((res0, rej) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/metrics', method: 'GET', agent: false, headers: { 'content-length': '5' } }, (res) => {
        let t = '';
        res.on('data', (c: Buffer) => { t += c.toString(); });
        res.on('end', () => res0({ status: res.statusCode!, text: t }));
      });
      req.on('error', rej);
      req.end('hello');
    });
    expect(body).toEqual({ status: 413, text: 'admin requests take no body\n' });
    expect(metric(reg, 'strata_admin_requests_refused_total{reason="request_body"}')).toBe(1);
    // 24 connections held open; the 25th is closed without an answer.
    const held: net.Socket[] = [];
    for (let i = 0; i < 24; i++) {
      const s = net.connect(port, '127.0.0.1');
      await new Promise<void>((r) => s.once('connect', () => r()));
      held.push(s);
    }
    await until(() => admin.connections === 24, 'the server to see 24 connections');
    const late = net.connect(port, '127.0.0.1');
    let got = 0;
    late.on('data', (c: Buffer) => { got += c.length; });
    late.on('error', () => { /* reset is fine */ });
    await new Promise<void>((r) => late.once('close', () => r()));
    expect(got).toBe(0);
    expect(metric(reg, 'strata_admin_connections_dropped_total')).toBe(1);
    for (const s of held) s.destroy();
    await until(() => admin.connections === 0, 'the connections to close');
  });

  it('Admin listener hostile clients: a connection that sends no head, or half of one, gets 408 and is closed, freeing its slot', async () => {
    const reg1 = new Registry();
    const admin1 = new AdminServer({ host: '127.0.0.1', port: 0, registry: reg1, bus: new FlowBus('strata:test:admin-slowhead'), headersTimeoutMs: 300 });
    const p = (await admin1.listen()).port;
    const answers = await Promise.all(['', 'GET /metrics HTTP/1.1\r\nHost: a\r\n'].map((head) => new Promise<string>((res0) => {
      const s = net.connect(p, '127.0.0.1', () => { if (head) s.write(head); });
      let got = '';
      s.on('data', (c: Buffer) => { got += c.toString(); });
      s.on('error', () => { /* closed on us */ });
      s.on('end', () => { s.destroy(); res0(got.split('\r\n')[0]!); });
    })));
    expect(answers).toEqual(['HTTP/1.1 408 Request Timeout', 'HTTP/1.1 408 Request Timeout']);
    await until(() => admin1.connections === 0, 'the slots to be free');
    await admin1.close();
  });

  it('a follower that does not read loses records (counted) instead of queueing them: received + lost = published', async () => {
    // Its own listener and bus: nobody else's follow streams count here.
    const reg1 = new Registry(), bus1 = new FlowBus('strata:test:admin-slow');
    const admin1 = new AdminServer({ host: '127.0.0.1', port: 0, registry: reg1, bus: bus1 });
    const f = await follow((await admin1.listen()).port, '127.0.0.3');
    f.res.pause();
    const published = 20_000;
    const r = buildHttpRecord(facts(`/${'x'.repeat(900)}`));
    for (let i = 0; i < published; i++) bus1.publish(r);
    const lost = metric(reg1, 'strata_admin_flows_lost_total');
    expect(lost).toBeGreaterThan(0);
    let received = 0, rest = '';
    f.res.on('data', (c: Buffer) => { const s = rest + c.toString(); const lines = s.split('\n'); rest = lines.pop()!; received += lines.length; });
    f.res.resume();
    await until(() => received === published - lost, `${published - lost} records`);
    f.req.destroy();
    await until(() => admin1.followerCount === 0, 'the follower to leave');
    await admin1.close();
    await bus1.close();
  });

  it('Non-loopback admin bind silent: a bind on 0.0.0.0 logs a warning that says what is exposed and that there is no authentication; a loopback bind says nothing', async () => {
    const lines: string[] = [];
    const log = new Logger({ level: 'info', format: 'json', sink: { write: (s: string) => lines.push(s) } });
    const wide = new AdminServer({ host: '0.0.0.0', port: 0, registry: new Registry(), bus: new FlowBus('strata:test:admin-wide'), log });
    const a = await wide.listen();
    await wide.close();
    expect(lines).toHaveLength(1);
    const w = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(w).toMatchObject({ level: 'warn', address: '0.0.0.0', port: a.port, authentication: 'none' });
    expect(w.msg).toContain('not on loopback');
    expect(w.exposes).toEqual(['/metrics', '/flows', '/top', '/healthz', '/readyz']);
    const narrow = new AdminServer({ host: '127.0.0.1', port: 0, registry: new Registry(), bus: new FlowBus('strata:test:admin-narrow'), log });
    await narrow.listen();
    await narrow.close();
    expect(lines).toHaveLength(1);
  });
});

describe('strata proxy: query strings in flows and the access log', () => {
  let dir = '';
  let runner = '';
  let upstream: http.Server;
  let upPort = 0;
  const seen: string[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-admin-'));
    runner = join(dir, 'run.mts');
    writeFileSync(runner, `const [mod, ...args] = process.argv.slice(2);\nconst m = await import(${JSON.stringify(`${root}/src/cli/`)} + mod + '.ts');\nprocess.exitCode = await m.main(args);\n`);
    upstream = http.createServer((req, res) => { seen.push(req.url!); res.end('ok'); });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    upPort = (upstream.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((r) => upstream.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts `strata proxy` on loopback; resolves once it listens, with its output so far (and as it grows). */
  async function proxy(extra: string[], adminAddr = '127.0.0.1', port0 = 0): Promise<{ p: ChildProcess; port: number; adminPort: number; out: () => string; err: () => string }> {
    const port = port0 || await closedPort(), adminPort = await closedPort();
    const f = join(dir, `p${port}.yaml`);
    writeFileSync(f, [
      ...extra,
      `admin: { address: ${adminAddr}, port: ${adminPort} }`,
      'listeners:', '  - name: web', '    address: 127.0.0.1', `    port: ${port}`, '    transport: kernel',
      'clusters:', '  - name: backend', `    endpoints: [127.0.0.1:${upPort}]`,
      'routes:', '  - apiVersion: gateway.networking.k8s.io/v1', '    kind: HTTPRoute', '    metadata: { name: r1 }', '    spec:',
      '      parentRefs: [{ name: web }]', '      rules:', '        - backendRefs: [{ name: backend }]', '',
    ].join('\n'));
    const p = spawn(process.execPath, ['--import', 'tsx', runner, 'proxy', '--config', f], { cwd: root, env: { ...process.env, STRATA_LAB: 'off' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout!.on('data', (d) => { out += d; });
    p.stderr!.on('data', (d) => { err += d; });
    await new Promise<void>((res0, rej) => {
      const t = setInterval(() => { if (out.includes('listening ')) { clearInterval(t); res0(); } }, 20);
      p.once('exit', (code) => { clearInterval(t); rej(new Error(`proxy exited ${code}: ${out}${err}`)); });
    });
    return { p, port, adminPort, out: () => out, err: () => err };
  }

  async function stop(p: ChildProcess): Promise<void> {
    const done = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    await done;
  }

  /** One request through the proxy while following /flows; resolves with the L7 record. */
  async function oneRecord(port: number, adminPort: number, target: string): Promise<FlowRecord> {
    const f = await follow(adminPort, '127.0.0.1', '/flows?follow=1&type=l7');
    let buf = '';
    const rec = new Promise<FlowRecord>((r) => f.res.on('data', (c: Buffer) => { buf += c.toString(); const i = buf.indexOf('\n'); if (i >= 0) r(JSON.parse(buf.slice(0, i)) as FlowRecord); }));
    const c = await execFileP('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${port}${target}`]);
    expect(c.stdout).toBe('ok');
    const r = await rec;
    f.req.destroy();
    return r;
  }

  it('Query strings unredacted: /flows and the access log hide query values by default, the upstream still gets them, logging.showQueryStrings shows them; a loopback admin bind logs no warning', async () => {
    const target = `/app?api_key=${SECRET}&q=1`;
    // A policy that allows /app only, so the verdict log gets a denied target too.
    const port = await closedPort();
    const policy = ['policies:', '  - name: apponly', '    selector: { listeners: [web] }', '    ingress:', '      - toPorts:',
      `          - ports: [{ port: ${port} }]`, '            rules:', '              http:', '                - path: /app.*'];
    const a = await proxy(policy, '127.0.0.1', port);
    try {
      const denied = await execFileP('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', `http://127.0.0.1:${port}/deny?api_key=${SECRET}`]);
      expect(denied.stdout).toBe('403');
      const r = await oneRecord(a.port, a.adminPort, target);
      expect(JSON.stringify(r)).not.toContain(SECRET);
      expect(r.l7!.http.url).toBe(`http://127.0.0.1:${a.port}/app?api_key=HUBBLE_REDACTED&q=HUBBLE_REDACTED`);
      expect(seen).toContain(target);
      await until(() => a.out().includes('"url":"/app'), 'the access log line');
      expect(a.out()).not.toContain(SECRET);
      expect(a.out()).toContain('"url":"/app?api_key=HUBBLE_REDACTED&q=HUBBLE_REDACTED"');
      expect(a.out()).toContain('"verdict":"deny"');
      expect(a.out()).toContain('"path":"/deny?api_key=HUBBLE_REDACTED"');
      expect(a.out()).toContain('"url":"/deny?api_key=HUBBLE_REDACTED"');
      expect(a.err()).not.toContain('not on loopback');
    } finally { await stop(a.p); }
    const b = await proxy(['logging: { showQueryStrings: true }']);
    try {
      const r = await oneRecord(b.port, b.adminPort, target);
      expect(r.l7!.http.url).toBe(`http://127.0.0.1:${b.port}${target}`);
      await until(() => b.out().includes('"url":"/app'), 'the access log line');
      expect(b.out()).toContain(`"url":"${target}"`);
    } finally { await stop(b.p); }
  });

  it('Non-loopback admin bind silent: strata proxy with admin on 0.0.0.0 logs a warning at start', async () => {
    const a = await proxy(['logging: { accessLog: { enabled: false } }'], '0.0.0.0');
    try {
      const warn = a.err().split('\n').filter((l) => l.includes('not on loopback')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(warn).toHaveLength(1);
      expect(warn[0]).toMatchObject({ level: 'warn', address: '0.0.0.0', port: a.adminPort, authentication: 'none' });
    } finally { await stop(a.p); }
  });
});
