// TcpServer/TcpSocket (node:net shape, stream.Duplex) over two real Stacks
// joined by an impaired MemLink pair on a virtual clock (src/stack/sim.ts):
// stream.pipeline through an echo server, backpressure closing the window,
// tls.TLSSocket over a pair of TcpSockets, error propagation, and urgent data
// (writeUrgent, 'urgent', urgentPending; RFC 9293 §3.8.5).
import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable, pipeline } from 'node:stream';
import * as tls from 'node:tls';
import { Sim } from '../src/stack/sim.js';
import { Tcp } from '../src/stack/tcp/tcp.js';
import { TcpServer, TcpSocket } from '../src/stack/tcp/socket.js';
import { Prng } from '../src/util/prng.js';
import type { Impairments } from '../src/link/mem.js';

let sim: Sim | null = null;
afterEach(() => { sim?.close(); sim = null; });

function setup(seed: number, impair: Impairments = {}) {
  sim = new Sim({ seed, impair, frames: 4096 });
  const a = Tcp.attach(sim.a, { seed: seed * 3 + 1 });
  const b = Tcp.attach(sim.b, { seed: seed * 3 + 2 });
  return { sim, a, b };
}

/** Steps the simulation while yielding to the event loop so streams make progress. */
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

function randomBytes(seed: number, n: number): Buffer {
  const p = new Prng(seed);
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = p.u32() & 255;
  return b;
}

function chunks(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

describe('TcpSocket over two stacks (Sim)', () => {
  it('stream.pipeline through an echo server over a lossy, reordering path: SHA-256 matches', async () => {
    const { sim: s, a, b } = setup(11, { loss: 0.01, reorder: 0.02, duplicate: 0.01, delay: 2 });
    const server = new TcpServer(b, {}, (sock) => { sock.pipe(sock); });
    let listening = false;
    server.listen(7000, '10.0.0.2', () => { listening = true; });
    await drive(s, () => listening, 100);
    const data = randomBytes(5, 512 * 1024);
    const client = new TcpSocket(a);
    const got: Buffer[] = [];
    let finished = false;
    let err: Error | null = null;
    const sink = new Writable({ write(c: Buffer, _e, cb) { got.push(c); cb(); } });
    client.connect(7000, '10.0.0.2', () => {
      expect(client.remoteAddress).toBe('10.0.0.2');
      expect(client.remotePort).toBe(7000);
      expect(client.localAddress).toBe('10.0.0.1');
    });
    pipeline(Readable.from(chunks(data, 10_000)), client, sink, (e) => { err = e ?? null; finished = true; });
    const ok = await drive(s, () => finished, 600_000);
    expect(ok).toBe(true);
    expect(err).toBeNull();
    const echoed = Buffer.concat(got);
    expect(echoed.length).toBe(data.length);
    expect(createHash('sha256').update(echoed).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    expect(s.linkA.stats().lost + s.linkB.stats().lost).toBeGreaterThan(0);
    server.close();
  });

  it('backpressure: a reader that does not read closes the window; the writer waits, then everything arrives', async () => {
    const { sim: s, a, b } = setup(12, { delay: 1 });
    let serverSock: TcpSocket | null = null;
    const server = new TcpServer(b, { highWaterMark: 16 * 1024 }, (sock) => { serverSock = sock; sock.pause(); });
    server.listen(7001);
    const client = new TcpSocket(a);
    client.connect(7001, '10.0.0.2');
    const data = randomBytes(6, 2 * 1024 * 1024);
    let accepted = 0;
    let blocked = false;
    const pump = (): void => {
      while (accepted < data.length) {
        const ok = client.write(data.subarray(accepted, accepted + 65536));
        accepted += 65536;
        if (!ok) { blocked = true; client.once('drain', pump); return; }
      }
      client.end();
    };
    client.once('connect', pump);
    await drive(s, () => blocked && serverSock !== null, 10_000);
    await drive(s, () => false, 5_000);
    // The receiver is paused: its window is shut and the sender is stalled.
    const srvConn = serverSock!.connection!;
    // Shut, or down to a sliver below one MSS that sender SWS avoidance will not use.
    expect(srvConn.info().rcvWnd).toBeLessThan(srvConn.mss);
    expect(client.connection!.info().zeroWindowStalls).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(data.length);
    const got: Buffer[] = [];
    let ended = false;
    serverSock!.on('data', (c: Buffer) => got.push(c));
    serverSock!.on('end', () => { ended = true; });
    serverSock!.resume();
    const ok = await drive(s, () => ended, 600_000);
    expect(ok).toBe(true);
    expect(Buffer.concat(got).equals(data)).toBe(true);
    server.close();
  });

  it('connect to a closed port fails with ECONNREFUSED', async () => {
    const { sim: s, a } = setup(13);
    const client = new TcpSocket(a);
    let err: NodeJS.ErrnoException | null = null;
    client.on('error', (e) => { err = e; });
    client.connect(9, '10.0.0.2');
    await drive(s, () => err !== null, 10_000);
    expect(err!.code).toBe('ECONNREFUSED');
  });

  it('peer reset surfaces as ECONNRESET on the stream', async () => {
    const { sim: s, a, b } = setup(14);
    const server = new TcpServer(b, {}, (sock) => { sock.once('data', () => sock.resetAndDestroy()); });
    server.listen(7002);
    const client = new TcpSocket(a);
    let err: NodeJS.ErrnoException | null = null;
    client.on('error', (e) => { err = e; });
    client.connect(7002, '10.0.0.2', () => { client.write('hello'); });
    await drive(s, () => err !== null, 10_000);
    expect(err!.code).toBe('ECONNRESET');
  });
});

describe('TcpSocket direct mode (L7 fast path, src/l7/transport/bytes.ts)', () => {
  /** A receiver that records what it hears. */
  function recorder() {
    const r = { chunks: [] as Buffer[], ended: false, drains: 0, errors: [] as Error[], closed: false };
    return {
      r,
      rx: {
        onData: (c: Buffer) => { r.chunks.push(c); },
        onEnd: () => { r.ended = true; },
        onDrain: () => { r.drains++; },
        onError: (e: Error) => { r.errors.push(e); },
        onClose: () => { r.closed = true; },
      },
    };
  }

  it('echo through attachBytes on both ends: bytes arrive as calls, writes need no stream, SHA-256 matches over a lossy path', async () => {
    const { attachBytes } = await import('../src/l7/transport/bytes.js');
    const { sim: s, a, b } = setup(21, { loss: 0.01, reorder: 0.02, delay: 1 });
    let serverSeen = 0;
    const server = new TcpServer(b, {}, (sock) => {
      // The server echoes through a ByteConn: what its receiver gets goes straight back.
      const io = attachBytes(sock as never, {
        onData: (c) => { serverSeen += c.length; io.write(c); },
        onEnd: () => io.end(), onDrain: () => {}, onError: () => {}, onClose: () => {},
      });
    });
    server.listen(7100);
    const client = new TcpSocket(a);
    const { r, rx } = recorder();
    const io = attachBytes(client as never, rx);
    const data = randomBytes(21, 300 * 1024);
    let sent = 0;
    let queued = 0;
    client.connect(7100, '10.0.0.2');
    await drive(s, () => client.connection?.state === 'ESTABLISHED', 10_000);
    // More than the send ring holds: write() says false and onDrain says when to go on.
    const pump = (): void => {
      while (sent < data.length) {
        const ok = io.write(data.subarray(sent, sent + 32 * 1024));
        sent += 32 * 1024;
        if (!ok) { queued++; return; }
      }
      io.end();
    };
    rx.onDrain = () => { r.drains++; pump(); };
    pump();
    const ok = await drive(s, () => r.ended, 600_000);
    expect(ok).toBe(true);
    const echoed = Buffer.concat(r.chunks);
    expect(echoed.length).toBe(data.length);
    expect(createHash('sha256').update(echoed).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    expect(serverSeen).toBe(data.length);
    expect(queued).toBeGreaterThan(0);
    expect(r.drains).toBe(queued);
    expect(client.bytesWritten).toBe(data.length);
    expect(client.bytesRead).toBe(data.length);
    expect(client.listenerCount('data')).toBe(0); // nothing went through the stream
    await drive(s, () => r.closed, 60_000);
    expect(r.closed).toBe(true); // 'close' still reaches observers
    expect(r.errors).toEqual([]);
    server.close();
  });

  it('pauseDirect closes the window (bytes stay in the ring), resumeDirect delivers them in order', async () => {
    const { attachBytes } = await import('../src/l7/transport/bytes.js');
    const { sim: s, a, b } = setup(22, { delay: 1 });
    let serverSock: TcpSocket | null = null;
    const { r, rx } = recorder();
    let sio: ReturnType<typeof attachBytes> | null = null;
    const server = new TcpServer(b, {}, (sock) => { serverSock = sock; sio = attachBytes(sock as never, rx); sio.pause(); });
    server.listen(7101);
    const client = new TcpSocket(a);
    const data = randomBytes(22, 3 * 1024 * 1024);
    let accepted = 0;
    const pump = (): void => {
      while (accepted < data.length) {
        const ok = client.write(data.subarray(accepted, accepted + 65536));
        accepted += 65536;
        if (!ok) { client.once('drain', pump); return; }
      }
      client.end();
    };
    client.connect(7101, '10.0.0.2', pump);
    await drive(s, () => serverSock !== null, 10_000);
    await drive(s, () => false, 5_000);
    const srvConn = serverSock!.connection!;
    expect(r.chunks).toEqual([]);
    expect(srvConn.info().rcvWnd).toBeLessThan(srvConn.mss);
    expect(client.connection!.info().zeroWindowStalls).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(data.length);
    sio!.resume();
    const ok = await drive(s, () => r.ended, 600_000);
    expect(ok).toBe(true);
    expect(Buffer.concat(r.chunks).equals(data)).toBe(true);
    server.close();
  });

  it('a reset reaches the receiver as onError (ECONNRESET) then onClose; the Duplex emits no error', async () => {
    const { attachBytes } = await import('../src/l7/transport/bytes.js');
    const { sim: s, a, b } = setup(23);
    const server = new TcpServer(b, {}, (sock) => { sock.once('data', () => sock.resetAndDestroy()); });
    server.listen(7102);
    const client = new TcpSocket(a);
    const { r, rx } = recorder();
    const io = attachBytes(client as never, rx);
    client.connect(7102, '10.0.0.2', () => { io.write('hello'); });
    await drive(s, () => r.closed, 10_000);
    expect(r.errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ECONNRESET']);
    expect(r.closed).toBe(true);
  });

  it('detach hands the socket back to the stream: unread bytes and queued direct writes keep their order', async () => {
    const { attachBytes } = await import('../src/l7/transport/bytes.js');
    const { sim: s, a, b } = setup(24, { delay: 1 });
    const fromClient: Buffer[] = [];
    let srv: TcpSocket | null = null;
    const server = new TcpServer(b, {}, (sock) => { srv = sock; });
    server.listen(7103);
    const client = new TcpSocket(a);
    const { r, rx } = recorder();
    const io = attachBytes(client as never, rx);
    client.connect(7103, '10.0.0.2');
    await drive(s, () => srv !== null, 10_000);
    // Direct phase: a write larger than the send ring, so part of it is still queued at the hand-off.
    const big = randomBytes(24, 2 * 1024 * 1024);
    expect(io.write(big)).toBe(false);
    // The server says something while the client is still direct, and more after the hand-off.
    srv!.write('one|');
    await drive(s, () => r.chunks.length > 0, 10_000);
    expect(Buffer.concat(r.chunks).toString()).toBe('one|');
    io.detach();
    const streamed: Buffer[] = [];
    client.on('data', (c: Buffer) => streamed.push(c));
    srv!.write('two');
    client.end('tail'); // a stream write after detach: it must follow every queued direct byte
    srv!.on('data', (c: Buffer) => fromClient.push(c));
    let ended = false;
    srv!.on('end', () => { ended = true; });
    await drive(s, () => ended && streamed.length > 0, 600_000);
    expect(Buffer.concat(streamed).toString()).toBe('two');
    const got = Buffer.concat(fromClient);
    expect(got.length).toBe(big.length + 4);
    expect(got.subarray(0, big.length).equals(big)).toBe(true);
    expect(got.subarray(big.length).toString()).toBe('tail');
    expect(r.chunks.length).toBe(1); // nothing reached the receiver after detach
    server.close();
  });

  it('strings are written as latin1 (header text), one byte per char', async () => {
    const { attachBytes } = await import('../src/l7/transport/bytes.js');
    const { sim: s, a, b } = setup(25);
    const got: Buffer[] = [];
    let ended = false;
    const server = new TcpServer(b, {}, (sock) => { sock.on('data', (c: Buffer) => got.push(c)); sock.on('end', () => { ended = true; sock.end(); }); });
    server.listen(7104);
    const client = new TcpSocket(a);
    const { rx } = recorder();
    const io = attachBytes(client as never, rx);
    client.connect(7104, '10.0.0.2', () => { io.write('caf\u00e9: \u00ff\r\n'); io.end(); });
    await drive(s, () => ended, 10_000);
    expect([...Buffer.concat(got)]).toEqual([0x63, 0x61, 0x66, 0xe9, 0x3a, 0x20, 0xff, 0x0d, 0x0a]);
  });
});

describe('tls.TLSSocket over TcpSocket', () => {
  let dir = '';
  afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); dir = ''; });

  it('completes a TLS 1.3 handshake and echoes data (self-signed P-256 cert from openssl)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-tcp-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=strata-test', '-addext', 'subjectAltName=DNS:strata-test',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const key = readFileSync(join(dir, 'key.pem'));
    const cert = readFileSync(join(dir, 'cert.pem'));
    const { sim: s, a, b } = setup(15, { loss: 0.005, delay: 1 });
    const server = new TcpServer(b, {}, (sock) => {
      const t = new tls.TLSSocket(sock, { isServer: true, key, cert });
      t.pipe(t);
    });
    server.listen(8443);
    const raw = new TcpSocket(a);
    raw.connect(8443, '10.0.0.2');
    const c = tls.connect({ socket: raw, ca: cert, servername: 'strata-test' });
    let secure = false;
    c.on('secureConnect', () => { secure = true; });
    const data = randomBytes(7, 200 * 1024);
    const got: Buffer[] = [];
    let n = 0;
    c.on('data', (d: Buffer) => { got.push(d); n += d.length; });
    let err: Error | null = null;
    c.on('error', (e) => { err = e; });
    await drive(s, () => secure || err !== null, 60_000);
    expect(err).toBeNull();
    expect(secure).toBe(true);
    expect(c.getProtocol()).toBe('TLSv1.3');
    expect(c.authorized).toBe(true);
    c.write(data);
    await drive(s, () => n >= data.length || err !== null, 600_000);
    expect(err).toBeNull();
    expect(Buffer.concat(got).equals(data)).toBe(true);
    c.end();
    server.close();
  });
});

describe('TcpSocket: urgent data between two stacks (Sim)', () => {
  it('writeUrgent on one side; on the other the bytes arrive inline and \'urgent\' tells where the urgent data ends', async () => {
    const { sim: s, a, b } = setup(31, { loss: 0.05, delay: 2 });
    let got = '';
    const marks: number[] = [];
    const pendingSeen: number[] = [];
    let ended = false;
    const server = new TcpServer(b, {}, (sock) => {
      sock.on('urgent', (n: number) => { marks.push(got.length + n); });
      sock.on('data', (d: Buffer) => { pendingSeen.push(sock.urgentPending); got += d.toString(); });
      sock.on('end', () => { ended = true; pendingSeen.push(sock.urgentPending); });
    });
    server.listen(7000);
    const client = new TcpSocket(a);
    client.connect(7000, '10.0.0.2', () => {
      client.write('before');
      client.writeUrgent('URGENT');
      client.end('after');
    });
    expect(await drive(s, () => ended, 60_000)).toBe(true);
    expect(got).toBe('beforeURGENTafter');
    // One pointer, just past 'URGENT', however often loss made it travel again.
    expect(marks).toEqual([12]);
    expect(pendingSeen.at(-1)).toBe(0);
    expect(a.counters.urgSegsOut).toBeGreaterThanOrEqual(1);
    expect(b.counters.urgSegsIn).toBeGreaterThanOrEqual(1);
    expect(a.counters.urgSegsIn + b.counters.urgSegsOut).toBe(0);
    server.close();
  });

  it('urgentPending counts bytes the stream holds unread, and drops as the application reads', async () => {
    const { sim: s, a, b } = setup(32, { delay: 1 });
    let sock: TcpSocket | null = null;
    const events: number[] = [];
    const server = new TcpServer(b, {}, (x) => { sock = x; x.pause(); x.on('urgent', (n: number) => events.push(n)); });
    server.listen(7001);
    const client = new TcpSocket(a);
    client.connect(7001, '10.0.0.2', () => {
      client.write(Buffer.alloc(1000, 0x2e));
      client.writeUrgent(new Uint8Array([0x21]));
    });
    expect(await drive(s, () => events.length > 0 && sock !== null && sock.readableLength === 1001, 10_000)).toBe(true);
    const r = sock!;
    expect(events).toEqual([1001]);
    expect(r.urgentPending).toBe(1001);
    expect((r.read(600) as Buffer).length).toBe(600);
    expect(r.urgentPending).toBe(401);
    const rest = r.read() as Buffer;
    expect(rest.length).toBe(401);
    expect(rest[400]).toBe(0x21);
    expect(r.urgentPending).toBe(0);
    expect(r.connection!.urgentPending).toBe(0);
    client.destroy();
    r.destroy();
    server.close();
  });
});
