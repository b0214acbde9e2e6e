// The admin listener over loopback: /metrics parsed by a Prometheus text
// parser (not a regex), /flows with history, filters, follow (JSON lines and
// CBOR sequence), /top from a real conntrack table, /healthz and /readyz;
// then the spawned CLIs against it: `strata flows --follow` printing records
// as they are published, and `strata top --once`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import { createInterface } from 'node:readline';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { AdminServer } from '../src/admin/server.js';
import { FlowBus } from '../src/flows/bus.js';
import { readCborSequence } from '../src/flows/export.js';
import { buildHttpRecord, buildL4Record, type FlowRecord, type HttpFlowFacts } from '../src/flows/record.js';
import { conntrackTop } from '../src/flows/top.js';
import { Registry, logLinearBuckets } from '../src/obs/metrics.js';
import { Conntrack, CT_HOOK, registerConntrackMetrics } from '../src/stack/conntrack/index.js';
import { IPPROTO } from '../src/stack/registration.js';

const ROOT = new URL('..', import.meta.url).pathname;

function rec(method: string, status: number, path = '/x', identity: string | null = null): FlowRecord {
  const f: HttpFlowFacts = {
    ctx: { transport: 'afxdp', queue: 0 }, wallMs: Date.now(),
    req: { method, url: path, httpVersion: '1.1', rawHeaders: ['Host', 'svc'] }, status,
    src: { address: '10.200.0.1', port: 40000 }, dst: { address: '10.200.0.3', port: 80 }, identity,
    timings: { totalNs: 1_500_000 },
  };
  return buildHttpRecord(f);
}

interface Got { status: number; headers: http.IncomingHttpHeaders; body: string }
function get(port: number, path: string, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens a follow stream; resolves once the response headers arrived. */
function follow(port: number, path: string): Promise<{ res: http.IncomingMessage; req: http.ClientRequest }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => { res.on('error', () => { /* we hang up on purpose */ }); resolve({ res, req }); });
    req.on('error', reject);
  });
}

async function until(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!pred()) throw new Error(`timed out waiting for ${what}`);
}

/** Runs `strata <mod> …` through the command's dispatcher (src/cli/main.ts run()) in a child process, from source. */
function cli(mod: 'flows' | 'top', args: string[]): { done: Promise<{ code: number; stdout: string; stderr: string }>; lines: string[] } {
  const code = `const m = await import(${JSON.stringify(`${ROOT}src/cli/main.ts`)}); process.exitCode = await m.run(process.argv.slice(1));`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, '--', mod, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stdout = '', stderr = '';
  createInterface({ input: child.stdout }).on('line', (l) => { lines.push(l); stdout += `${l}\n`; });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const done = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (c) => { clearTimeout(killer); resolve({ code: c ?? -1, stdout, stderr }); });
  });
  return { done, lines };
}

describe('admin listener', () => {
  const reg = new Registry();
  const bus = new FlowBus('strata:test:admin:flows');
  const ct = new Conntrack({ seed: 9, metricLabels: { table: 'afxdp' } });
  let ready = false;
  let admin: AdminServer;
  let port = 0;

  beforeAll(async () => {
    // Layers register their own families; the admin adds its own.
    registerConntrackMetrics(reg, ct);
    const drops = reg.reasons('strata_stack_drops_total', 'Stack drops by reason.', ['ip_bad_checksum', 'no_route'] as const);
    drops.inc(0, 3);
    const lat = reg.histogram('strata_http_request_duration_seconds', 'Request latency.', logLinearBuckets(-4, 0), ['transport']);
    lat.labels('afxdp').record(0.0021);
    bus.registerMetrics(reg);
    const p = ct.pkt;
    for (const [sport, n, len] of [[1001, 10, 1000], [1002, 3, 100], [1003, 1, 40_000]] as const) {
      for (let i = 0; i < n; i++) {
        p.proto = IPPROTO.UDP; p.src = 0x0ac80001; p.dst = 0x0ac80003; p.sport = sport; p.dport = 9; p.ipLen = len; p.related = false; p.icmpType = -1; p.flags = 0;
        ct.trackPacket(p, CT_HOOK.IN, 1 + i);
      }
    }
    admin = new AdminServer({ port: 0, registry: reg, bus, history: 100, top: [conntrackTop(ct, 'afxdp')], ready: () => (ready ? true : { ready: false, reason: 'XDP program not attached' }) });
    port = (await admin.listen()).port;
  });
  afterAll(async () => { await admin.close(); await bus.close(); });

  it('/metrics is Prometheus text: every layer\'s families and the admin\'s own parse', async () => {
    await get(port, '/healthz');
    const r = await get(port, '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const fams = parsePrometheusTextFormat(r.body) as { name: string; type: string; metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string }[] }[];
    const by = new Map(fams.map((f) => [f.name, f]));
    expect(by.get('strata_conntrack_entries')!.type).toBe('GAUGE');
    expect(by.get('strata_conntrack_entries')!.metrics[0]).toEqual({ value: '3', labels: { table: 'afxdp' } });
    expect(by.get('strata_stack_drops_total')!.metrics).toContainEqual({ value: '3', labels: { reason: 'ip_bad_checksum' } });
    const h = by.get('strata_http_request_duration_seconds')!;
    expect(h.type).toBe('HISTOGRAM');
    // The parser flattens a labelled histogram to its buckets (it drops labelled _sum/_count, as prom2json does).
    expect(h.metrics[0]!.buckets!['+Inf']).toBe('1');
    expect(h.metrics[0]!.buckets!['0.003']).toBe('1');
    expect(h.metrics[0]!.buckets!['0.002']).toBe('0');
    expect(by.get('strata_flows_records_total')!.metrics.map((m) => m.labels!['type']).sort()).toEqual(['l3_l4', 'l7']);
    const reqs = by.get('strata_admin_requests_total')!;
    expect(reqs.type).toBe('COUNTER');
    expect(reqs.metrics.find((m) => m.labels!['path'] === '/healthz')!.value).toBe('1');
    expect(by.has('strata_admin_flow_followers')).toBe(true);
  });

  it('/healthz, /readyz (503 with the reason until ready), 404, 405', async () => {
    expect((await get(port, '/healthz')).status).toBe(200);
    const nr = await get(port, '/readyz');
    expect(nr.status).toBe(503);
    expect(nr.body).toContain('XDP program not attached');
    ready = true;
    expect((await get(port, '/readyz')).status).toBe(200);
    expect((await get(port, '/nope')).status).toBe(404);
    expect((await get(port, '/metrics', 'POST')).status).toBe(405);
  });

  it('/flows: the retained history, last N, filtered on the server; bad filters are 400', async () => {
    const recs = [rec('GET', 200, '/a'), rec('POST', 503, '/b'), rec('GET', 404, '/c'), rec('GET', 502, '/d', 'spiffe://td/ns/x')];
    for (const r of recs) bus.publish(r);
    const all = await get(port, '/flows?last=100');
    expect(all.headers['content-type']).toBe('application/x-ndjson');
    const lines = all.body.trim().split('\n').map((l) => JSON.parse(l) as FlowRecord);
    expect(lines.slice(-4).map((r) => r.uuid)).toEqual(recs.map((r) => r.uuid));
    const last2 = (await get(port, '/flows?last=2')).body.trim().split('\n').map((l) => JSON.parse(l) as FlowRecord);
    expect(last2.map((r) => r.strata.http!.path)).toEqual(['/c', '/d']);
    const f = (await get(port, '/flows?filter=method%3DGET&filter=status%3D5xx')).body.trim().split('\n').map((l) => JSON.parse(l) as FlowRecord);
    expect(f.map((r) => r.strata.http!.path)).toEqual(['/d']);
    const f2 = (await get(port, '/flows?identity=spiffe://td/*')).body.trim().split('\n').map((l) => JSON.parse(l) as FlowRecord);
    expect(f2.map((r) => r.strata.http!.path)).toEqual(['/d']);
    const bad = await get(port, '/flows?filter=bogus%3D1');
    expect(bad.status).toBe(400);
    expect(bad.body).toContain("unknown filter key 'bogus'");
  });

  it('/flows?follow=1 streams new records as they are published, filtered; the follower leaves cleanly', async () => {
    const { res, req } = await follow(port, '/flows?follow=1&last=0&method=PUT');
    await until(() => admin.followerCount === 1, 'the follower');
    const got: FlowRecord[] = [];
    createInterface({ input: res }).on('line', (l) => got.push(JSON.parse(l) as FlowRecord)).on('error', () => { /* readline forwards our own hang-up */ });
    bus.publish(rec('PUT', 201, '/p1'));
    bus.publish(rec('GET', 200, '/g'));
    bus.publish(buildL4Record({ ctx: { transport: 'afxdp' }, wallMs: 0, proto: 6, src: { address: '1.1.1.1', port: 1 }, dst: { address: '2.2.2.2', port: 2 } }));
    bus.publish(rec('PUT', 500, '/p2'));
    await until(() => got.length === 2, 'two PUT records');
    expect(got.map((r) => `${r.l7!.http.method} ${r.strata.http!.path} ${r.l7!.http.code}`)).toEqual(['PUT /p1 201', 'PUT /p2 500']);
    req.destroy();
    await until(() => admin.followerCount === 0, 'the follower to leave');
  });

  it('/flows?follow=1&format=cbor is a CBOR sequence a reader decodes in order', async () => {
    const { res, req } = await follow(port, '/flows?follow=1&last=0&format=cbor');
    expect(res.headers['content-type']).toBe('application/cbor-seq');
    await until(() => admin.followerCount === 1, 'the follower');
    const sent = [rec('GET', 200, '/c1'), rec('DELETE', 204, '/c2'), rec('GET', 200, '/c3')];
    for (const r of sent) bus.publish(r);
    const got: FlowRecord[] = [];
    for await (const r of readCborSequence(res)) { got.push(r); if (got.length === 3) break; }
    req.destroy();
    expect(got).toEqual(sent);
    await until(() => admin.followerCount === 0, 'the follower to leave');
  });

  it('/top: the busiest conntrack flows by bytes or packets', async () => {
    const t = JSON.parse((await get(port, '/top?n=2')).body) as { by: string; total_flows: number; flows: { sport: number; bytes: number; state: string }[] };
    expect(t.by).toBe('bytes');
    expect(t.total_flows).toBe(3);
    expect(t.flows.map((f) => f.sport)).toEqual([1003, 1001]);
    expect(t.flows[0]!.bytes).toBe(40_000);
    const p = JSON.parse((await get(port, '/top?n=1&by=packets')).body) as { flows: { sport: number; packets: number }[] };
    expect(p.flows).toEqual([expect.objectContaining({ sport: 1001, packets: 10 })]);
    expect((await get(port, '/top?by=weight')).status).toBe(400);
  });

  it('strata flows --follow (spawned) prints matching records as they are published, then exits after --count', async () => {
    const c = cli('flows', ['--follow', '--admin', `127.0.0.1:${port}`, '--last', '0', '--filter', 'method=GET', '--http-status', '5xx', '--count', '2']);
    await until(() => admin.followerCount === 1, 'the CLI to follow');
    bus.publish(rec('GET', 503, '/one', 'spiffe://example.org/ns/a/sa/b'));
    bus.publish(rec('GET', 200, '/skip'));
    bus.publish(rec('POST', 500, '/skip2'));
    bus.publish(rec('GET', 502, '/two'));
    const r = await c.done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.stdout.trim().split('\n');
    expect(out).toHaveLength(2);
    expect(out[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} FORWARDED 10\.200\.0\.1:40000 -> 10\.200\.0\.3:80 afxdp\/q0 GET \/one 503 1\.50ms spiffe:\/\/example\.org\/ns\/a\/sa\/b$/);
    expect(out[1]).toContain('GET /two 502');
    await until(() => admin.followerCount === 0, 'the CLI to leave');
  });

  it('strata flows --json prints the records themselves; a bad filter fails before connecting', async () => {
    const c = cli('flows', ['--admin', `127.0.0.1:${port}`, '--json', '--last', '1']);
    const r = await c.done;
    expect(r.code).toBe(0);
    const one = JSON.parse(r.stdout) as FlowRecord;
    expect(one.Type).toBeDefined();
    const bad = await cli('flows', ['--admin', '127.0.0.1:1', '--filter', 'colour=red']).done;
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('ERR_STRATA_FLOW_FILTER');
  });

  it('strata top --once prints one table of the busiest flows and exits', async () => {
    const r = await cli('top', ['--once', '--admin', `127.0.0.1:${port}`, '--n', '2']).done;
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^strata top — 2 of 3 flows by bytes — /);
    expect(lines[2]).toMatch(/^PROTO\s+SOURCE\s+DESTINATION\s+STATE\s+PACKETS\s+BYTES/);
    expect(lines[3]).toMatch(/^UDP\s+10\.200\.0\.1:1003\s+10\.200\.0\.3:9\s+NEW\s+1\s+39\.1K/);
    expect(lines[4]).toMatch(/^UDP\s+10\.200\.0\.1:1001\s+10\.200\.0\.3:9\s+NEW\s+10\s+9\.8K/);
    expect(lines).toHaveLength(5);
    expect(r.stdout).not.toContain('\x1b[');
    const down = await cli('top', ['--once', '--admin', '127.0.0.1:1']).done;
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('ERR_STRATA_ADMIN_UNREACHABLE');
  });
});

describe('admin listener without history', () => {
  it('costs the flow bus nothing until someone follows', async () => {
    const bus = new FlowBus('strata:test:admin:idle');
    const admin = new AdminServer({ port: 0, bus });
    const { port } = await admin.listen();
    expect(bus.active).toBe(false);
    const { res, req } = await follow(port, '/flows?follow=1');
    await until(() => bus.active, 'the bus to turn active');
    req.destroy();
    res.destroy();
    await until(() => !bus.active, 'the bus to go idle');
    await admin.close();
  });
});
