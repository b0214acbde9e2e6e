// Flow records: building one from every layer's facts (fakes in the exact
// shapes the stack, conntrack, TLS, policy and proxy modules export), the
// zero-cost rule (no listener: no builder call), exporters read back
// (JSON lines and CBOR sequence, from files and from chunked streams),
// filters, the one-line format, and the busiest-flows sources.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { FlowBus } from '../src/flows/bus.js';
import { buildHttpRecord, buildL4Record, findTcpInfo, REDACTED, type FlowRecord, type HttpFlowFacts } from '../src/flows/record.js';
import { CborExporter, JsonLinesExporter, exporterFor, encodeCborSequence, readCborSequence, readJsonLines } from '../src/flows/export.js';
import { compileFilter, FlowFilterError } from '../src/flows/filter.js';
import { formatFlowLine } from '../src/flows/format.js';
import { FlowJoin, observeHttp } from '../src/flows/http.js';
import { compilePolicies } from '../src/l7/policy/compile.js';
import { forbiddenResponse } from '../src/l7/policy/verdict.js';
import { RecordTop, conntrackTop, topFlows, watchConntrack } from '../src/flows/top.js';
import { Conntrack, CT_HOOK, TCPF, conntrackEndEvents, type CtEntryInfo } from '../src/stack/conntrack/index.js';
import { IPPROTO } from '../src/stack/registration.js';
import type { TcpInfo } from '../src/stack/tcp/connection.js';
import type { Verdict } from '../src/l7/policy/types.js';
import type { AccessLogEntry } from '../src/l7/proxy/proxy.js';
import { HttpServer } from '../src/l7/server/index.js';
import { KernelTransport } from '../src/l7/transport/kernel.js';

const tcpInfo: TcpInfo = {
  state: 'ESTABLISHED', localAddress: 0x0ac80003, localPort: 80, remoteAddress: 0x0ac80001, remotePort: 40000,
  srtt: 1.25, rttvar: 0.5, rto: 201, cwnd: 14600, ssthresh: 29200, mss: 1460,
  sndWnd: 65535, rcvWnd: 65535, inFlight: 0, sndBuffered: 0, rcvBuffered: 0,
  retransmits: 3, fastRetransmits: 2, rtoExpirations: 1, outOfOrder: 4, sackBlocksIn: 5,
  zeroWindowStalls: 1, zeroWindowProbes: 2, dupAcksIn: 6, bytesIn: 1000, bytesOut: 50_000,
  segsIn: 20, segsOut: 40, cc: 'cubic', windowScale: [7, 7], sack: true, timestamps: true,
};

const ctInfo: CtEntryInfo = {
  id: 4242, proto: 6, src: 0x0ac80001, dst: 0x0ac80003, sport: 40000, dport: 80, state: 'ESTABLISHED', result: 2,
  origin: CT_HOOK.IN, replied: true, denied: false, pickedUp: false, firstSeen: 1000, lastSeen: 1250.5, expiresAt: 9e9, timeoutClass: 'established',
  packets: [20, 40], bytes: [1800, 52_000], flowId: 0, firstFin: null,
};

const allow: Verdict = { action: 'allow', allowed: true, policy: 'web', rule: 'ingress[0].toPorts[0].rules.http[1]', reason: 'matched' };
const deny: Verdict = { action: 'deny', allowed: false, policy: null, rule: 'default-deny', reason: 'no rule matched' };
const upstream: AccessLogEntry = { method: 'GET', url: '/api/v1/items?x=1', status: 503, cluster: 'backend', host: '10.201.0.1:8080', tries: 3, reason: 'upstream_503', client: '10.200.0.1' };

const fakeTls = {
  getProtocol: () => 'TLSv1.3',
  getCipher: () => ({ name: 'TLS_AES_128_GCM_SHA256', standardName: 'TLS_AES_128_GCM_SHA256', version: 'TLSv1.3' }),
} as unknown as TLSSocket;

function httpFacts(over: Partial<HttpFlowFacts> = {}): HttpFlowFacts {
  return {
    ctx: { transport: 'afxdp', queue: 1, iface: { index: 7, name: 's0' }, nodeName: 'node-a' },
    wallMs: Date.UTC(2026, 10, 25, 14, 0, 0, 123) + 0.456,
    req: { method: 'GET', url: '/api/v1/items?x=1', httpVersion: '1.1', rawHeaders: ['Host', 'shop.example', 'Authorization', 'Bearer t0ken', 'Accept', '*/*'] },
    status: 503,
    src: { address: '::ffff:10.200.0.1', port: 40000 },
    dst: { address: '10.200.0.3', port: 80 },
    tcp: tcpInfo,
    tls: fakeTls,
    identity: 'spiffe://example.org/ns/shop/sa/frontend',
    conntrack: ctInfo,
    xdpVerdict: 'redirected',
    upstream,
    policy: allow,
    timings: { firstByteNs: 2_000_000, upstreamNs: 1_500_000, totalNs: 2_500_000 },
    bytes: { request: 180, response: 52_000 },
    ...over,
  };
}

describe('building records', () => {
  it('an HTTP record joins L2 to L7 under Hubble names, strata facts under strata', () => {
    const r = buildHttpRecord(httpFacts());
    expect(r.time).toBe('2026-11-25T14:00:00.123456Z');
    expect(r.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(r.verdict).toBe('FORWARDED');
    expect(r.drop_reason_desc).toBeUndefined();
    expect(r.Type).toBe('L7');
    expect(r.IP).toEqual({ source: '10.200.0.1', destination: '10.200.0.3', ipVersion: 'IPv4' });
    expect(r.l4).toEqual({ TCP: { source_port: 40000, destination_port: 80 } });
    expect(r.source).toEqual({ labels: ['spiffe://example.org/ns/shop/sa/frontend'] });
    expect(r.node_name).toBe('node-a');
    expect(r.interface).toEqual({ index: 7, name: 's0' });
    expect(r.is_reply).toBe(true);
    expect(r.traffic_direction).toBe('INGRESS');
    expect(r.l7).toEqual({
      type: 'RESPONSE', latency_ns: 2_500_000,
      http: {
        code: 503, method: 'GET', url: 'https://shop.example/api/v1/items?x=HUBBLE_REDACTED', protocol: 'HTTP/1.1',
        headers: [{ key: 'Host', value: 'shop.example' }, { key: 'Authorization', value: REDACTED }, { key: 'Accept', value: '*/*' }],
      },
    });
    expect(r.strata).toEqual({
      version: 1, transport: 'afxdp', queue: 1, xdp_verdict: 'redirected',
      conntrack: { id: 4242, state: 'ESTABLISHED', packets: { original: 20, reply: 40 }, bytes: { original: 1800, reply: 52_000 } },
      tcp: {
        state: 'ESTABLISHED', srtt_us: 1250, rttvar_us: 500, rto_us: 201_000, cwnd: 14600, ssthresh: 29200, mss: 1460,
        retransmits: 3, fast_retransmits: 2, rto_expirations: 1, ooo_events: 4, sack_events: 5,
        zero_window_stalls: 1, zero_window_probes: 2, dup_acks_in: 6, bytes_in: 1000, bytes_out: 50_000, segs_in: 20, segs_out: 40, cc: 'cubic',
      },
      tls: { version: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', peer_spiffe_id: 'spiffe://example.org/ns/shop/sa/frontend' },
      http: { authority: 'shop.example', path: '/api/v1/items?x=HUBBLE_REDACTED' },
      upstream: { cluster: 'backend', endpoint: '10.201.0.1:8080', retries: 2, reason: 'upstream_503' },
      timings: { first_byte_ns: 2_000_000, upstream_ns: 1_500_000, total_ns: 2_500_000 },
      policy: { verdict: 'allow', rule: 'ingress[0].toPorts[0].rules.http[1]', policy: 'web', reason: 'matched' },
      bytes: { request: 180, response: 52_000 },
      flow: null,
    });
    expect(r.Summary).toBe('HTTP/1.1 503 2.50ms GET https://shop.example/api/v1/items?x=HUBBLE_REDACTED');
  });

  it('the kernel transport: unknown facts are null, not guessed', () => {
    const r = buildHttpRecord({
      ctx: { transport: 'kernel', headers: 'none' }, wallMs: 0,
      req: { method: 'POST', url: '/x', httpVersion: '1.0', rawHeaders: ['Host', 'h'] }, status: 201,
      src: { address: '127.0.0.1', port: 5000 }, dst: { address: '127.0.0.1', port: 8080 }, tcp: null,
    });
    expect(r.strata.tcp).toBeNull();
    expect(r.strata.tls).toBeNull();
    expect(r.strata.conntrack).toBeNull();
    expect(r.strata.xdp_verdict).toBeNull();
    expect(r.strata.queue).toBeNull();
    expect(r.strata.timings).toEqual({ first_byte_ns: null, upstream_ns: null, total_ns: null });
    expect(r.l7!.http.headers).toEqual([]);
    expect(r.l7!.http.url).toBe('http://h/x');
    expect(r.l7!.http.protocol).toBe('HTTP/1.0');
  });

  it('a policy deny is DROPPED with POLICY_DENIED; an unanswered request is an ERROR REQUEST', () => {
    const d = buildHttpRecord(httpFacts({ policy: deny, status: 403 }));
    expect(d.verdict).toBe('DROPPED');
    expect(d.drop_reason_desc).toBe('POLICY_DENIED');
    expect(d.strata.policy).toEqual({ verdict: 'deny', rule: 'default-deny', policy: null, reason: 'no rule matched' });
    const e = buildHttpRecord(httpFacts({ status: 0, aborted: true, policy: null }));
    expect(e.verdict).toBe('ERROR');
    expect(e.l7!.type).toBe('REQUEST');
    expect(e.is_reply).toBe(false);
  });

  it('an L4 record from a conntrack entry carries the flow totals, flags and duration', () => {
    const r = buildL4Record({
      ctx: { transport: 'tap' }, wallMs: 0, proto: 6, src: { address: '10.200.0.1', port: 40000 }, dst: { address: '10.201.0.2', port: 80 },
      tcpFlags: TCPF.SYN | TCPF.ACK | TCPF.FIN, conntrack: { ...ctInfo, state: 'TIME_WAIT' }, tcp: tcpInfo, end: 'expired',
    });
    expect(r.Type).toBe('L3_L4');
    expect(r.l7).toBeNull();
    expect(r.l4).toEqual({ TCP: { source_port: 40000, destination_port: 80, flags: { SYN: true, ACK: true, FIN: true } } });
    expect(r.strata.flow).toEqual({ packets: { original: 20, reply: 40 }, bytes: { original: 1800, reply: 52_000 }, duration_ns: 250_500_000, end: 'expired' });
    expect(r.strata.tcp!.retransmits).toBe(3);
    expect(r.Summary).toBe('TCP 10.200.0.1:40000 -> 10.201.0.2:80 TIME_WAIT (expired)');
    const denied = buildL4Record({ ctx: { transport: 'afxdp' }, wallMs: 0, proto: 17, src: { address: '10.0.0.9', port: 53 }, dst: { address: '10.0.0.1', port: 5353 }, conntrack: { ...ctInfo, proto: 17, denied: true } });
    expect(denied.verdict).toBe('DROPPED');
    expect(denied.drop_reason_desc).toBe('POLICY_DENIED');
    expect(denied.l4).toEqual({ UDP: { source_port: 53, destination_port: 5353 } });
  });

  it('findTcpInfo reads a stack socket (info()) and one under TLS (node\'s TLS handle keeps it as _parentWrap.stream); node:net gives null', () => {
    const stackSock = { info: () => tcpInfo };
    expect(findTcpInfo(stackSock)).toBe(tcpInfo);
    expect(findTcpInfo({ _parent: null, _handle: { _parentWrap: { stream: stackSock } }, getCipher() {}, getProtocol() {} })).toBe(tcpInfo);
    expect(findTcpInfo({ remoteAddress: '127.0.0.1' })).toBeNull();
    expect(findTcpInfo(null)).toBeNull();
  });
});

describe('zero cost when nobody listens', () => {
  it('emit1 never calls the builder without a listener, and calls it once with one', () => {
    const bus = new FlowBus('strata:test:flows:zero');
    let calls = 0;
    const spy = (f: HttpFlowFacts): FlowRecord => { calls++; return buildHttpRecord(f); };
    expect(bus.active).toBe(false);
    for (let i = 0; i < 1000; i++) bus.emit1(spy, httpFacts());
    expect(calls).toBe(0);
    expect(bus.stats.built).toBe(0);
    expect(bus.stats.skipped).toBe(1000);
    const got: FlowRecord[] = [];
    const off = bus.subscribe((r) => got.push(r));
    expect(bus.active).toBe(true);
    bus.emit1(spy, httpFacts());
    expect(calls).toBe(1);
    expect(got).toHaveLength(1);
    off();
    expect(bus.active).toBe(false);
    bus.emit1(spy, httpFacts());
    expect(calls).toBe(1);
    // An exporter is a listener too.
    const sink = { n: 0, write() { this.n++; } };
    const detach = bus.addSink(sink);
    bus.emit1(spy, httpFacts());
    expect(calls).toBe(2);
    expect(sink.n).toBe(1);
    detach();
    expect(bus.active).toBe(false);
  });

  it('observeHttp: with no listener the request is not even looked at; with one, one record per request', async () => {
    const bus = new FlowBus('strata:test:flows:observe');
    let handled = 0;
    const wrapped = observeHttp(() => { handled++; }, { bus, ctx: { transport: 'kernel' } });
    const touched: (string | symbol)[] = [];
    const spyObj = new Proxy({}, { get(_t, k) { touched.push(k); return undefined; } });
    wrapped(spyObj as never, spyObj as never);
    expect(handled).toBe(1);
    expect(touched).toEqual([]);
    expect(bus.stats.built).toBe(0);

    // The real server over the kernel transport: records only while subscribed.
    const srv = new HttpServer(observeHttp((req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end(`hi ${req.url}\n`); }, { bus, ctx: { transport: 'kernel' } }));
    const t = new KernelTransport();
    const l = await srv.listen(t, 0, '127.0.0.1');
    const get = (path: string): Promise<number> => new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: l.port, path, agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)); }).on('error', reject);
    });
    expect(await get('/a')).toBe(200);
    expect(bus.stats.built).toBe(0);
    const got: FlowRecord[] = [];
    const off = bus.subscribe((r) => got.push(r));
    expect(await get('/b')).toBe(200);
    await new Promise((r) => setTimeout(r, 50)); // the connection's close (agent: false) gives the L4 record
    off();
    expect(await get('/c')).toBe(200);
    const l7 = got.filter((r) => r.Type === 'L7');
    expect(l7).toHaveLength(1);
    expect(l7[0]!.strata.http!.path).toBe('/b');
    expect(l7[0]!.l7!.http.code).toBe(200);
    expect(l7[0]!.strata.tcp).toBeNull(); // node exposes no TCP_INFO
    expect(l7[0]!.strata.bytes.response).toBeGreaterThan(0);
    expect(l7[0]!.IP!.source).toBe('127.0.0.1');
    expect(bus.stats.built).toBe(got.length);
    await srv.close();
    await t.close();
  });

  it('FlowJoin: a real policy verdict and an upstream noted against the request land in its record', async () => {
    const bus = new FlowBus('strata:test:flows:join');
    const join = new FlowJoin(bus);
    const policy = compilePolicies([{ name: 'web', ingress: [{ fromCIDR: ['127.0.0.0/8'], toPorts: [{ rules: { http: [{ method: 'GET', path: '/ok' }] } }] }] }]).forListener('main');
    const handler = observeHttp((req, res) => {
      const v = policy.evaluate({ port: 0, srcAddr: req.remoteAddress, identity: null, method: req.method, path: req.url, host: req.header('host') ?? '', header: (n) => req.header(n) });
      join.notePolicy(req, v);
      if (!v.allowed) { const f = forbiddenResponse(); res.writeHead(f.status, Object.fromEntries(f.headers)); res.end(f.body); return; }
      join.noteUpstream(req, { cluster: 'backend', host: '10.201.0.1:8080', tries: 2, reason: null });
      join.noteUpstreamTime(req, 1234);
      res.writeHead(200); res.end('ok');
    }, { bus, ctx: { transport: 'kernel' }, enrich: join.enrich });
    const srv = new HttpServer(handler);
    const t = new KernelTransport();
    const l = await srv.listen(t, 0, '127.0.0.1');
    const got: FlowRecord[] = [];
    const off = bus.subscribe((r) => { if (r.Type === 'L7') got.push(r); });
    const get = (path: string): Promise<number> => new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: l.port, path }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)); }).on('error', reject);
    });
    expect(await get('/ok')).toBe(200);
    expect(await get('/admin')).toBe(403);
    off();
    expect(got).toHaveLength(2);
    expect(got[0]!.verdict).toBe('FORWARDED');
    expect(got[0]!.strata.policy).toMatchObject({ verdict: 'allow', policy: 'web' });
    expect(got[0]!.strata.upstream).toEqual({ cluster: 'backend', endpoint: '10.201.0.1:8080', retries: 1, reason: null });
    expect(got[0]!.strata.timings.upstream_ns).toBe(1234);
    expect(got[1]!.verdict).toBe('DROPPED');
    expect(got[1]!.drop_reason_desc).toBe('POLICY_DENIED');
    expect(got[1]!.l7!.http.code).toBe(403);
    expect(got[1]!.strata.policy).toMatchObject({ verdict: 'deny', rule: 'default-deny' });
    expect(got[1]!.strata.upstream).toBeNull();
    await srv.close();
    await t.close();
  });

  it('watchConntrack subscribes to conntrack end events only while the bus is active', () => {
    const bus = new FlowBus('strata:test:flows:ct');
    const stop = watchConntrack({ bus, ctx: { transport: 'afxdp' } });
    expect(conntrackEndEvents.active).toBe(false);
    const got: FlowRecord[] = [];
    const off = bus.subscribe((r) => got.push(r));
    expect(conntrackEndEvents.active).toBe(true);
    const ct = new Conntrack({ seed: 1 });
    const p = ct.pkt;
    p.proto = IPPROTO.UDP; p.src = 0x0a000001; p.dst = 0x0a000002; p.sport = 5000; p.dport = 53; p.ipLen = 128; p.related = false; p.icmpType = -1; p.flags = 0;
    ct.trackPacket(p, CT_HOOK.IN, 10);
    const id = ct.lookup(IPPROTO.UDP, 0x0a000001, 0x0a000002, 5000, 53);
    expect(id).toBeGreaterThan(0);
    ct.delete(id);
    expect(got).toHaveLength(1);
    expect(got[0]!.Type).toBe('L3_L4');
    expect(got[0]!.l4).toEqual({ UDP: { source_port: 5000, destination_port: 53 } });
    expect(got[0]!.strata.flow!.end).toBe('deleted');
    expect(got[0]!.strata.conntrack!.id).toBe(id);
    off();
    expect(conntrackEndEvents.active).toBe(false);
    stop();
  });
});

function sampleRecords(): FlowRecord[] {
  return [
    buildHttpRecord(httpFacts()),
    buildL4Record({ ctx: { transport: 'tap' }, wallMs: 1, proto: 6, src: { address: '10.0.0.1', port: 1 }, dst: { address: '10.0.0.2', port: 2 }, conntrack: ctInfo, tcpFlags: TCPF.SYN, end: 'expired' }),
    buildHttpRecord(httpFacts({ status: 200, policy: deny, tls: null, identity: null })),
    buildHttpRecord(httpFacts({ req: { method: 'PUT', url: '/ünïcode', httpVersion: '1.1', rawHeaders: [] }, status: 204 })),
  ];
}

describe('exporters round trip', () => {
  let dir = '';
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'strata-flows-')); });
  afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

  it('JSON lines through a file, read back equal; one record per line', async () => {
    const recs = sampleRecords();
    const file = join(dir, 'flows.jsonl');
    const bus = new FlowBus('strata:test:flows:jsonl');
    const exp = new JsonLinesExporter(file);
    bus.addSink(exp);
    for (const r of recs) bus.publish(r);
    await bus.close();
    expect(exp.written).toBe(recs.length);
    expect(readFileSync(file, 'utf8').split('\n')).toHaveLength(recs.length + 1);
    const back: FlowRecord[] = [];
    for await (const r of readJsonLines(file)) back.push(r);
    expect(back).toEqual(recs);
  });

  it('CBOR sequence through a file and through a stream cut into 7-byte chunks, read back equal', async () => {
    const recs = sampleRecords();
    const file = join(dir, 'flows.cbor');
    const exp = new CborExporter(file);
    for (const r of [...recs, ...recs]) exp.write(r);
    await exp.close();
    const back: FlowRecord[] = [];
    for await (const r of readCborSequence(file)) back.push(r);
    expect(back).toEqual([...recs, ...recs]);
    // Record structures: the second copy costs far less than the first.
    const once = encodeCborSequence(recs).length;
    const twice = readFileSync(file).length;
    expect(twice - once).toBeLessThan(once * 0.9);
    expect(twice).toBeLessThan(Buffer.byteLength(recs.map((r) => JSON.stringify(r)).join('\n')) * 2);

    const pt = new PassThrough();
    const sexp = new CborExporter(pt);
    const bytes: Buffer[] = [];
    pt.on('data', (c: Buffer) => bytes.push(c));
    for (const r of recs) sexp.write(r);
    pt.end();
    await new Promise((r) => pt.once('end', r));
    const all = Buffer.concat(bytes);
    const chunks: Buffer[] = [];
    for (let i = 0; i < all.length; i += 7) chunks.push(all.subarray(i, i + 7));
    const back2: FlowRecord[] = [];
    for await (const r of readCborSequence(Readable.from(chunks))) back2.push(r);
    expect(back2).toEqual(recs);
  });

  it('exporterFor picks the format from a prefix or the extension', async () => {
    const made = [exporterFor(join(dir, 'a.jsonl')), exporterFor(`cbor:${join(dir, 'b.log')}`), exporterFor(join(dir, 'c.cbor'))];
    expect(made.map((e) => e.constructor)).toEqual([JsonLinesExporter, CborExporter, CborExporter]);
    await Promise.all(made.map((e) => e.close()));
    expect(() => exporterFor(join(dir, 'd.txt'))).toThrow(/name the format/);
    const rec = sampleRecords()[1]!;
    const e = exporterFor(`jsonl:${join(dir, 'e.out')}`);
    e.write(rec);
    await e.close();
    const back: FlowRecord[] = [];
    for await (const r of readJsonLines(join(dir, 'e.out'))) back.push(r);
    expect(back).toEqual([rec]);
  });

  it('a JSON-lines exporter drops (and counts) records while its stream is full, and never throws into the caller', async () => {
    const pt = new PassThrough({ highWaterMark: 1024 });
    const exp = new JsonLinesExporter(pt);
    const r = buildHttpRecord(httpFacts());
    for (let i = 0; i < 100; i++) exp.write(r);
    expect(exp.written).toBeGreaterThan(0);
    expect(exp.dropped).toBeGreaterThan(0);
    expect(exp.written + exp.dropped).toBe(100);
    // Drained: writes resume.
    pt.resume();
    await new Promise((res) => setImmediate(res));
    const before = exp.written;
    exp.write(r);
    expect(exp.written).toBe(before + 1);
  });

  it('a sink that throws is detached and counted', () => {
    const bus = new FlowBus('strata:test:flows:badsink');
    bus.addSink({ write() { throw new Error('disk full'); } });
    const ok = { n: 0, write() { this.n++; } };
    bus.addSink(ok);
    bus.publish(sampleRecords()[0]!);
    bus.publish(sampleRecords()[0]!);
    expect(bus.stats.sinkErrors).toBe(1);
    expect(bus.sinkCount).toBe(1);
    expect(ok.n).toBe(2);
  });
});

describe('filters', () => {
  const [h503, l4, h200deny, h204] = sampleRecords() as [FlowRecord, FlowRecord, FlowRecord, FlowRecord];
  const sel = (terms: string[]): FlowRecord[] => [h503, l4, h200deny, h204].filter((r) => compileFilter(terms).match(r));
  it('keys AND, repeated keys OR, Hubble-style aliases', () => {
    expect(sel([])).toHaveLength(4);
    expect(sel(['method=get'])).toEqual([h503, h200deny]);
    expect(sel(['status=5xx'])).toEqual([h503]);
    expect(sel(['http-status=2+'])).toEqual([h503, h200deny, h204]);
    expect(sel(['status=204', 'status=503'])).toEqual([h503, h204]);
    expect(sel(['method=GET', 'status=200'])).toEqual([h200deny]);
    expect(sel(['verdict=dropped'])).toEqual([h200deny]);
    expect(sel(['identity=spiffe://example.org/ns/shop/*'])).toEqual([h503, h204]);
    expect(sel(['identity=spiffe://example.org/ns/shop/sa/frontend'])).toEqual([h503, h204]);
    expect(sel(['from-ip=10.200.0.0/16'])).toEqual([h503, h200deny, h204]);
    expect(sel(['to-ip=10.0.0.2'])).toEqual([l4]);
    expect(sel(['to-port=80', 'type=l7'])).toEqual([h503, h200deny, h204]);
    expect(sel(['type=l4'])).toEqual([l4]);
    expect(sel(['path=/api/*'])).toEqual([h503, h200deny]);
    expect(sel(['path=^/api/v[0-9]+/'])).toEqual([h503, h200deny]);
    expect(sel(['authority=SHOP.example'])).toEqual([h503, h200deny]); // h204 sent no Host
    expect(sel(['transport=tap'])).toEqual([l4]);
    expect(sel(['protocol=http'])).toHaveLength(3);
  });
  it('bad filters are usage errors with a stable code', () => {
    for (const t of ['nokey', 'bogus=1', 'status=abc', 'from-ip=10.0.0.0/40', 'to-port=70000', 'type=l9', 'method=']) {
      expect(() => compileFilter([t]), t).toThrow(FlowFilterError);
    }
    try { compileFilter(['x=1']); } catch (e) { expect((e as FlowFilterError).code).toBe('ERR_STRATA_FLOW_FILTER'); }
  });
});

describe('one-line format', () => {
  it('shows time, verdict, endpoints, transport, the exchange, TCP facts and identity', () => {
    const [h503, l4, h200deny] = sampleRecords() as [FlowRecord, FlowRecord, FlowRecord];
    expect(formatFlowLine(h503)).toBe('14:00:00.123 FORWARDED 10.200.0.1:40000 -> 10.200.0.3:80 afxdp/q1 GET /api/v1/items?x=HUBBLE_REDACTED 503 2.50ms up=backend/10.201.0.1:8080 retries=2 rtx=3 srtt=1.25ms xdp=redirected spiffe://example.org/ns/shop/sa/frontend');
    expect(formatFlowLine(l4)).toBe('00:00:00.001 FORWARDED 10.0.0.1:1 -> 10.0.0.2:2 tap TCP ESTABLISHED pkts=20/40 bytes=1.8K/50.8K');
    expect(formatFlowLine(h200deny)).toContain(' DROPPED ');
    expect(formatFlowLine(h200deny)).toContain('policy=default-deny');
  });
});

describe('busiest flows', () => {
  it('conntrackTop + topFlows: the n largest by bytes or packets, largest first', () => {
    const ct = new Conntrack({ seed: 3 });
    const p = ct.pkt;
    const send = (sport: number, n: number, len: number): void => {
      for (let i = 0; i < n; i++) {
        p.proto = IPPROTO.UDP; p.src = 0x0a000001; p.dst = 0x0a000002; p.sport = sport; p.dport = 9; p.ipLen = len; p.related = false; p.icmpType = -1; p.flags = 0;
        ct.trackPacket(p, CT_HOOK.IN, 100 + i);
      }
    };
    send(1001, 10, 1000); // 10 000 bytes, 10 packets
    send(1002, 100, 50); //   5 000 bytes, 100 packets
    send(1003, 1, 20_000); // 20 000 bytes, 1 packet
    send(1004, 2, 10); //        20 bytes
    const src = conntrackTop(ct, 'afxdp');
    const byBytes = topFlows([src], 2, 'bytes');
    expect(byBytes.total_flows).toBe(4);
    expect(byBytes.flows.map((f) => f.sport)).toEqual([1003, 1001]);
    expect(byBytes.flows[0]).toMatchObject({ proto: 'UDP', src: '10.0.0.1', dst: '10.0.0.2', dport: 9, bytes: 20_000, packets: 1, state: 'NEW', source: 'afxdp' });
    const byPackets = topFlows([src], 3, 'packets');
    expect(byPackets.flows.map((f) => f.sport)).toEqual([1002, 1001, 1004]);
  });

  it('RecordTop sums records per 5-tuple for transports without conntrack', () => {
    const bus = new FlowBus('strata:test:flows:recordtop');
    const rt = new RecordTop(bus, 'kernel');
    expect(bus.active).toBe(true);
    bus.publish(buildHttpRecord(httpFacts({ bytes: { request: 100, response: 1000 } })));
    bus.publish(buildHttpRecord(httpFacts({ bytes: { request: 100, response: 3000 } })));
    bus.publish(buildHttpRecord(httpFacts({ src: { address: '10.200.0.9', port: 1 }, bytes: { request: 10, response: 10 } })));
    const s = topFlows([rt], 10);
    expect(s.flows).toHaveLength(2);
    expect(s.flows[0]).toMatchObject({ src: '10.200.0.1', sport: 40000, bytes: 4200, bytes_original: 200, bytes_reply: 4000 });
    rt.close();
    expect(bus.active).toBe(false);
  });
});
