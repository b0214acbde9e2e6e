// Issue 5 acceptance, "Cross-layer record": loss injected on ONE connection's
// path shows up as non-zero retransmits in that connection's HTTP request
// records, next to their status and latency, while a clean connection on the
// same stacks shows none.
//
// Everything is real except the wire: two strata Stacks over a MemLink pair
// on a virtual clock (src/stack/sim.ts), strata's TCP (TcpServer/TcpSocket),
// the conntrack table on the server stack, and the project's HTTP/1.1 server
// (src/l7/server) adopting the stack's sockets, its handler wrapped by
// observeHttp(). Loss comes from a wrapping link (smoltcp's habit: fault
// injection is a link that wraps a link) that drops, with a seeded PRNG,
// only segments to or from port 8080; port 8081 is left clean.
import { afterEach, describe, expect, it } from 'vitest';
import { Sim } from '../src/stack/sim.js';
import { Tcp } from '../src/stack/tcp/tcp.js';
import { TcpServer, TcpSocket } from '../src/stack/tcp/socket.js';
import { Conntrack } from '../src/stack/conntrack/table.js';
import { HttpServer } from '../src/l7/server/index.js';
import { FlowBus } from '../src/flows/bus.js';
import { observeHttp } from '../src/flows/http.js';
import type { FlowRecord } from '../src/flows/record.js';
import { Burst, type Link, type LinkStats } from '../src/link/types.js';
import type { MemLink } from '../src/link/mem.js';
import { Prng } from '../src/util/prng.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issueSvid, TlsContextManager, wrapClient, wrapServer } from '../src/l7/tls/index.js';

/** Drops, with probability p, frames carrying TCP port `port` (either side) that this end sends. */
class PortLossLink implements Link {
  readonly kind: Link['kind'];
  readonly name: string;
  readonly mtu: number;
  readonly frameSize: number;
  readonly mac: Uint8Array;
  readonly mem: Uint8Array;
  dropped = 0;
  private readonly keep: Burst;
  private readonly drop: Burst;
  private readonly rng: Prng;
  constructor(private readonly inner: MemLink, private readonly port: number, private readonly p: number, seed: number) {
    this.kind = inner.kind; this.name = inner.name; this.mtu = inner.mtu; this.frameSize = inner.frameSize; this.mac = inner.mac; this.mem = inner.mem;
    this.keep = new Burst(256); this.drop = new Burst(256);
    this.rng = new Prng(seed);
  }
  private matches(off: number, len: number): boolean {
    const m = this.mem;
    if (len < 14 + 20 + 20 || m[off + 12] !== 0x08 || m[off + 13] !== 0x00 || m[off + 23] !== 6) return false;
    const t = off + 14 + (m[off + 14]! & 15) * 4;
    const sp = (m[t]! << 8) | m[t + 1]!, dp = (m[t + 2]! << 8) | m[t + 3]!;
    return sp === this.port || dp === this.port;
  }
  recv(b: Burst): number { return this.inner.recv(b); }
  alloc(b: Burst, n: number): number { return this.inner.alloc(b, n); }
  send(b: Burst): number {
    let queued = 0;
    for (let i = 0; i < b.count; i++) {
      const off = b.off(i), len = b.len(i);
      if (this.matches(off, len) && this.rng.u32() / 2 ** 32 < this.p) { this.dropped++; this.drop.push(off, len); }
      else this.keep.push(off, len);
      if (this.keep.space === 0) queued += this.inner.send(this.keep);
      if (this.drop.space === 0) this.inner.free(this.drop);
    }
    b.clear();
    if (this.keep.count > 0) queued += this.inner.send(this.keep);
    if (this.drop.count > 0) this.inner.free(this.drop);
    return queued;
  }
  free(b: Burst): void { this.inner.free(b); }
  setReadyHandler(fn: (() => void) | null): void { this.inner.setReadyHandler(fn); }
  stats(): LinkStats { return this.inner.stats(); }
  close(): void { this.inner.close(); }
}

let sim: Sim | null = null;
afterEach(() => { sim?.close(); sim = null; });

async function drive(s: Sim, done: () => boolean, maxVirtualMs: number): Promise<boolean> {
  const end = s.now + maxVirtualMs;
  let idle = 0;
  while (!done() && s.now < end) {
    await new Promise<void>((r) => setImmediate(r));
    const before = s.now;
    s.step(s.now + 5);
    idle = s.now === before ? idle + 1 : 0;
    if (idle > 10_000) break;
  }
  return done();
}

/** A keep-alive HTTP/1.1 client over a TcpSocket: POSTs a body, reads one Content-Length response per request. */
class MiniClient {
  private buf = Buffer.alloc(0);
  readonly statuses: number[] = [];
  readonly bodies: number[] = [];
  constructor(readonly sock: import('node:stream').Duplex) {
    sock.on('data', (c: Buffer) => { this.buf = Buffer.concat([this.buf, c]); this.parse(); });
  }
  post(path: string, body: Buffer): void {
    this.sock.write(`POST ${path} HTTP/1.1\r\nHost: svc.test\r\nContent-Length: ${body.length}\r\nAuthorization: Bearer secret\r\n\r\n`);
    this.sock.write(body);
  }
  private parse(): void {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.subarray(0, end).toString('latin1');
      const cl = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? '0');
      if (this.buf.length < end + 4 + cl) return;
      this.statuses.push(Number(head.split(' ')[1]));
      this.bodies.push(cl);
      this.buf = this.buf.subarray(end + 4 + cl);
    }
  }
}

describe('cross-layer flow record over the real stack', () => {
  it('loss on one connection: its request records show retransmits next to status and latency; the clean one shows none', async () => {
    const seed = 21;
    const links: PortLossLink[] = [];
    const ct = new Conntrack({ seed: 1 });
    sim = new Sim({
      seed, impair: { delay: 2 }, frames: 4096,
      wrap: (l, side) => { const w = new PortLossLink(l, 8080, 0.05, side === 'a' ? 101 : 202); links.push(w); return w; },
      b: { conntrack: ct },
    });
    const s = sim;
    const a = Tcp.attach(s.a, { seed: 5 });
    const b = Tcp.attach(s.b, { seed: 6 });

    const bus = new FlowBus('strata:test:flows:crosslayer');
    const records: FlowRecord[] = [];
    const unsubscribe = bus.subscribe((r) => records.push(r));
    const reply = Buffer.alloc(24 * 1024, 0x61);
    const app = async (req: Parameters<Parameters<typeof observeHttp>[0]>[0], res: Parameters<Parameters<typeof observeHttp>[0]>[1]): Promise<void> => {
      const body = await req.buffer(1 << 20);
      res.writeHead(body.length > 0 ? 200 : 400, { 'Content-Type': 'application/octet-stream' });
      res.end(reply);
    };
    const http = new HttpServer(observeHttp(app, { bus, ctx: { transport: 'mem', iface: { index: 1, name: 'simB' } }, clock: s.clock, conntrack: ct }), { clock: s.clock });
    const servers = [8080, 8081].map((port) => {
      const srv = new TcpServer(b, {}, (sock) => http.accept(sock));
      srv.listen(port, '10.0.0.2');
      return srv;
    });

    const clients = [8080, 8081].map((port) => new MiniClient(new TcpSocket(a).connect(port, '10.0.0.2')));
    const N = 5;
    const upload = Buffer.alloc(16 * 1024, 0x62);
    // Serial keep-alive exchanges on both connections, side by side.
    for (let i = 0; i < N; i++) {
      for (const c of clients) c.post(`/upload/${i}`, upload);
      const ok = await drive(s, () => clients.every((c) => c.statuses.length === i + 1), 300_000);
      expect(ok).toBe(true);
    }
    expect(clients[0]!.statuses).toEqual(Array(N).fill(200));
    expect(clients[1]!.statuses).toEqual(Array(N).fill(200));
    expect(links.reduce((n, l) => n + l.dropped, 0)).toBeGreaterThan(0);

    const l7 = records.filter((r) => r.Type === 'L7');
    expect(l7).toHaveLength(2 * N);
    const lossy = l7.filter((r) => r.l4?.TCP?.destination_port === 8080);
    const clean = l7.filter((r) => r.l4?.TCP?.destination_port === 8081);
    expect(lossy).toHaveLength(N);
    expect(clean).toHaveLength(N);

    // Every record joins the layers: HTTP, timings, bytes, TCP facts, conntrack.
    for (const r of l7) {
      expect(r.verdict).toBe('FORWARDED');
      expect(r.l7!.type).toBe('RESPONSE');
      expect(r.l7!.http.code).toBe(200);
      expect(r.l7!.http.method).toBe('POST');
      expect(r.l7!.http.url).toMatch(/^http:\/\/svc\.test\/upload\/\d$/);
      expect(r.l7!.http.headers.find((h) => h.key.toLowerCase() === 'authorization')?.value).toBe('HUBBLE_REDACTED');
      expect(r.IP).toEqual({ source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 'IPv4' });
      expect(r.strata.transport).toBe('mem');
      expect(r.interface).toEqual({ index: 1, name: 'simB' });
      // The upload takes round trips of virtual time: latency is the handler's wait for the body plus the reply.
      expect(r.l7!.latency_ns).toBeGreaterThan(0);
      expect(r.strata.timings.total_ns).toBe(r.l7!.latency_ns);
      expect(r.strata.timings.first_byte_ns).not.toBeNull();
      expect(r.strata.bytes.request).toBeGreaterThanOrEqual(upload.length);
      expect(r.strata.bytes.response).toBeGreaterThanOrEqual(reply.length);
      expect(r.strata.tcp).not.toBeNull();
      expect(r.strata.tcp!.srtt_us).toBeGreaterThan(0);
      expect(r.strata.tcp!.state).toBe('ESTABLISHED');
      expect(r.strata.conntrack).not.toBeNull();
      expect(r.strata.conntrack!.state).toBe('ESTABLISHED');
    }
    // The acceptance point: the lossy connection's records carry retransmits
    // (the server's TCP facts at the moment each exchange ended), the clean one's none.
    const withRtx = lossy.filter((r) => r.strata.tcp!.retransmits > 0);
    expect(withRtx.length).toBeGreaterThan(0);
    const last = lossy[lossy.length - 1]!;
    expect(last.strata.tcp!.retransmits).toBeGreaterThan(0);
    expect(last.l7!.http.code).toBe(200);
    expect(last.l7!.latency_ns).toBeGreaterThan(0);
    for (const r of clean) expect(r.strata.tcp!.retransmits).toBe(0);
    // Retransmits only grow along one connection.
    for (let i = 1; i < lossy.length; i++) expect(lossy[i]!.strata.tcp!.retransmits).toBeGreaterThanOrEqual(lossy[i - 1]!.strata.tcp!.retransmits);
    // Loss also costs time: the lossy connection's slowest exchange is slower than the clean one's.
    const slowest = (rs: FlowRecord[]): number => Math.max(...rs.map((r) => r.l7!.latency_ns));
    expect(slowest(lossy)).toBeGreaterThan(slowest(clean));
    // All records of one connection share the conntrack id; the two connections differ.
    expect(new Set(lossy.map((r) => r.strata.conntrack!.id)).size).toBe(1);
    expect(lossy[0]!.strata.conntrack!.id).not.toBe(clean[0]!.strata.conntrack!.id);

    // Closing the connections yields one L3_L4 record each, with the flow's totals.
    for (const c of clients) c.sock.end();
    await drive(s, () => records.filter((r) => r.Type === 'L3_L4').length === 2, 60_000);
    const l4 = records.filter((r) => r.Type === 'L3_L4');
    expect(l4).toHaveLength(2);
    for (const r of l4) {
      expect(r.strata.flow!.bytes.original).toBeGreaterThan(N * upload.length);
      expect(r.strata.tcp).not.toBeNull();
    }
    expect(l4.find((r) => r.l4?.TCP?.destination_port === 8080)!.strata.tcp!.retransmits).toBeGreaterThan(0);
    unsubscribe();
    for (const srv of servers) srv.close();
    await http.close();
  }, 60_000);

  it('mTLS over the stack: the record carries TLS version, cipher and the peer SPIFFE ID next to the TCP facts under it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-flows-tls-'));
    try {
      const ca = await createCa({ trustDomain: 'example.org' });
      writeFileSync(join(dir, 'ca.pem'), ca.certPem);
      const put = async (name: string, id: string): Promise<{ cert: string; key: string }> => {
        const svid = await issueSvid(ca, { spiffeId: id });
        const cert = join(dir, `${name}.pem`), key = join(dir, `${name}-key.pem`);
        writeFileSync(cert, svid.certPem);
        writeFileSync(key, svid.keyPem, { mode: 0o600 });
        return { cert, key };
      };
      const srvFiles = await put('server', 'spiffe://example.org/ns/shop/sa/api');
      const cliFiles = await put('client', 'spiffe://example.org/ns/shop/sa/frontend');
      const srvMgr = new TlsContextManager({ certFile: srvFiles.cert, keyFile: srvFiles.key, caFile: join(dir, 'ca.pem') });
      const cliMgr = new TlsContextManager({ certFile: cliFiles.cert, keyFile: cliFiles.key, caFile: join(dir, 'ca.pem') });

      sim = new Sim({ seed: 5, impair: { delay: 1 }, frames: 4096 });
      const s = sim;
      const a = Tcp.attach(s.a, { seed: 7 });
      const b = Tcp.attach(s.b, { seed: 8 });
      const bus = new FlowBus('strata:test:flows:tls');
      const records: FlowRecord[] = [];
      bus.subscribe((r) => records.push(r));
      const http = new HttpServer(observeHttp((_req, res) => { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('ok\n'); }, { bus, ctx: { transport: 'mem' }, clock: s.clock }), { clock: s.clock });
      const srv = new TcpServer(b, {}, (sock) => { const t = wrapServer(sock, srvMgr); t.once('strata:authenticated', () => http.accept(t)); t.on('error', () => {}); });
      srv.listen(8443, '10.0.0.2');
      const raw = new TcpSocket(a).connect(8443, '10.0.0.2');
      const tlsClient = wrapClient(raw, cliMgr, { expectServer: 'spiffe://example.org/ns/shop/sa/api' });
      const c = new MiniClient(tlsClient);
      c.post('/pay', Buffer.from('{}'));
      expect(await drive(s, () => c.statuses.length === 1, 60_000)).toBe(true);
      expect(c.statuses).toEqual([200]);
      const r = records.find((x) => x.Type === 'L7')!;
      expect(r).toBeDefined();
      expect(r.l7!.http.url).toBe('https://svc.test/pay');
      expect(r.strata.tls).toEqual({ version: 'TLSv1.3', cipher: expect.stringMatching(/^TLS_/), peer_spiffe_id: 'spiffe://example.org/ns/shop/sa/frontend' });
      expect(r.source!.labels).toEqual(['spiffe://example.org/ns/shop/sa/frontend']);
      // TCP facts come from the stack socket under TLS; bytes are HTTP bytes (inside TLS).
      expect(r.strata.tcp).not.toBeNull();
      expect(r.strata.tcp!.srtt_us).toBeGreaterThan(0);
      expect(r.strata.bytes.request).toBeGreaterThan(2);
      expect(r.strata.bytes.response).toBeGreaterThan(3);
      tlsClient.end();
      // Let the close cross the simulated wire so the server lets go of the connection.
      await drive(s, () => http.connectionCount === 0, 60_000);
      srv.close();
      await http.close();
      await bus.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
