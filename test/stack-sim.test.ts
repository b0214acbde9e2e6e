// Two stacks over a MemLink pair on a virtual clock (sim.ts): ARP, ping,
// UDP, fragmentation and reassembly (also under seeded impairments), PMTU,
// ICMP errors and their rate limits, and every drop counted by reason.
// Crafted frames are injected straight into a link to play a third party.
import { describe, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import { Sim } from '../src/stack/sim.js';
import { Stack, runStack } from '../src/stack/iface.js';
import { DROP, registerStackMetrics, stackDropEvents, type StackDropEvent } from '../src/stack/stats.js';
import { Registry } from '../src/obs/metrics.js';
import { Conntrack } from '../src/stack/conntrack/table.js';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { NUD } from '../src/stack/arp.js';
import { CT_RESULT, IPPROTO, ip4FromString, type TransportDispatcher } from '../src/stack/registration.js';
import { Burst } from '../src/link/types.js';
import { MemLink } from '../src/link/mem.js';
import { monotonicClock } from '../src/util/clock.js';
import { ETHERTYPE, ethEmit, ethHeaderLen, ethType } from '../src/stack/wire/ethernet.js';
import { IP4, ipv4Emit, ipv4FragOffset, ipv4MoreFragments, ipv4Protocol, ipv4TotalLen, ipv4Dst } from '../src/stack/wire/ipv4.js';
import { icmpEmit, icmpType, icmpCode } from '../src/stack/wire/icmp.js';
import { udpEmit } from '../src/stack/wire/udp.js';
import type { UdpSocket } from '../src/stack/udp.js';
import { WireTap } from './helpers/stack-frames.js';

const A = ip4FromString(Sim.ADDR_A), B = ip4FromString(Sim.ADDR_B);
const nSeedsAll = (): number => Math.max(1, Number(process.env.STRATA_SIM_SEEDS ?? 5) || 5);

/** Records a copy of every frame a link sends (a wrapper, smoltcp style). */
class RecordingLink extends WireTap {
  /** IPv4 packets sent (link header stripped). */
  ipPackets(): Uint8Array[] {
    return this.sent.filter((f) => ethType(f, 0, ethHeaderLen(f, 0, f.length)) === ETHERTYPE.IPV4).map((f) => f.subarray(ethHeaderLen(f, 0, f.length)));
  }
}

function recordingSim(opts: ConstructorParameters<typeof Sim>[0] = {}): { sim: Sim; recA: RecordingLink; recB: RecordingLink } {
  const rec: Record<string, RecordingLink> = {};
  const sim = new Sim({ ...opts, wrap: (l, side) => (rec[side] = new RecordingLink(l)) });
  return { sim, recA: rec.a!, recB: rec.b! };
}

/** Sends raw bytes as one frame on `link` (playing a third party on the wire). */
function inject(link: MemLink, frame: Uint8Array): void {
  const b = new Burst(1);
  expect(link.alloc(b, 1)).toBe(1);
  link.mem.set(frame, b.off(0));
  b.setLen(0, frame.length);
  link.send(b);
}

/** An Ethernet+IPv4 frame from A's MAC to B's MAC. */
function ipFrame(sim: Sim, ip: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + ip.length);
  ethEmit(f, 0, sim.linkB.mac, 0, sim.linkA.mac, 0, ETHERTYPE.IPV4);
  f.set(ip, 14);
  return f;
}

function ipPacket(src: number, dst: number, proto: number, payload: Uint8Array, id = 1, flagsFrag = 0, totalOverride?: number): Uint8Array {
  const b = new Uint8Array(20 + payload.length);
  ipv4Emit(b, 0, src, dst, proto, totalOverride ?? b.length, id, flagsFrag, 64, 0);
  b.set(payload, 20);
  return b;
}

function udpSegment(src: number, dst: number, sport: number, dport: number, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(8 + payload.length);
  b.set(payload, 8);
  udpEmit(b, 0, sport, dport, b.length, src, dst);
  return b;
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 255; }
  return b;
}

function expectNoLeaks(sim: Sim): void {
  sim.a.close(); sim.b.close();
  expect(sim.linkA.outstanding()).toBe(0);
  expect(sim.linkB.outstanding()).toBe(0);
}

function echoServer(stack: Stack, port: number): UdpSocket {
  const s = stack.createUdpSocket();
  s.bind(port);
  s.on('message', (m: Buffer, r) => s.send(m, r.port, r.address));
  return s;
}

describe('ARP', () => {
  test('packets wait for resolution in order; the cache learns both ways; gratuitous ARP creates nothing', () => {
    const sim = new Sim({ seed: 1 });
    // The first polls send gratuitous ARP; neither side learns from it (arp_accept=0).
    sim.pollNow();
    expect(sim.a.arp.size).toBe(0);
    expect(sim.b.stats.dropsOf('ARP_NOT_FOR_US')).toBe(1);
    const got: string[] = [];
    const srv = sim.b.createUdpSocket();
    srv.bind(7000);
    srv.on('message', (m: Buffer) => got.push(m.toString()));
    const cli = sim.a.createUdpSocket();
    for (let i = 0; i < 5; i++) cli.send(`m${i}`, 7000, Sim.ADDR_B);
    expect(sim.a.arp.lookup(B)?.state).toBe(NUD.INCOMPLETE);
    expect(sim.a.arp.lookup(B)?.queued).toBe(5);
    sim.runUntil(() => got.length === 5, 1000);
    expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(sim.a.arp.lookup(B)?.state).toBe(NUD.REACHABLE);
    // B learned A from the request addressed to it (Linux: STALE).
    expect(sim.b.arp.lookup(A)?.state).toBe(NUD.STALE);
    expect(sim.a.stats.arpRequestsSent).toBe(2); // the announcement and one resolution
    expect(sim.b.stats.arpRepliesSent).toBe(1);
    expectNoLeaks(sim);
  });

  test('a full pending queue drops new packets, counted ARP_QUEUE_FULL', () => {
    const sim = new Sim({ seed: 2, a: { arp: { queueLen: 2 } } });
    const got: string[] = [];
    const srv = sim.b.createUdpSocket();
    srv.bind(7000).on('message', (m: Buffer) => got.push(m.toString()));
    const cli = sim.a.createUdpSocket();
    for (let i = 0; i < 5; i++) cli.send(`m${i}`, 7000, Sim.ADDR_B);
    sim.run(100);
    expect(got).toEqual(['m0', 'm1']);
    expect(sim.a.stats.dropsOf('ARP_QUEUE_FULL')).toBe(3);
    expectNoLeaks(sim);
  });

  test('an address nobody answers fails after the retries, dropping and counting what waited', () => {
    const sim = new Sim({ seed: 3 });
    const cli = sim.a.createUdpSocket();
    for (let i = 0; i < 4; i++) cli.send('x', 9, '10.0.0.9');
    sim.run(1500);
    expect(sim.a.arp.lookup(ip4FromString('10.0.0.9'))?.probes).toBe(2);
    sim.run(5000);
    expect(sim.a.arp.lookup(ip4FromString('10.0.0.9'))).toBeUndefined();
    expect(sim.a.stats.dropsOf('ARP_FAILED')).toBe(4);
    // 1 announcement + 3 broadcast probes (mcast_solicit)
    expect(sim.a.stats.arpRequestsSent).toBe(4);
    expect(sim.a.framesHeld()).toBe(0);
    expectNoLeaks(sim);
  });

  test('a failed resolution is reported to the sending transport as host unreachable (Linux arp_error_report)', async () => {
    const sim = new Sim({ seed: 45 });
    const errors: number[][] = [];
    sim.a.attach({ protocol: 99, deliver: () => {}, deliverError: (type, code, mtu, src, dst) => errors.push([type, code, mtu, src, dst]) });
    const net = sim.a.network;
    const off = net.begin(ip4FromString('10.0.0.9'), 99, sim.now);
    net.mem.fill(0, off, off + 8);
    net.commit(8, sim.now);
    const cli = sim.a.createUdpSocket();
    const codes: string[] = [];
    cli.on('error', (e: Error & { code: string }) => codes.push(e.code));
    cli.connect(53, '10.0.0.9');
    await new Promise((r) => setImmediate(r));
    cli.send('q');
    sim.run(5000);
    expect(errors).toEqual([[3, 1, 0, A, ip4FromString('10.0.0.9')]]);
    expect(codes).toEqual(['EHOSTUNREACH']);
  });

  test('REACHABLE ages to STALE; use moves it through DELAY and PROBE back to REACHABLE; a silent peer is forgotten', () => {
    const sim = new Sim({ seed: 4, a: { arp: { reachableMs: 1000, delayFirstProbeMs: 200, retransMs: 100, gcStaleMs: 60_000 } } });
    let replies = 0;
    sim.a.icmp.onEchoReply = () => { replies++; };
    sim.a.ping(Sim.ADDR_B, 1, 1, new Uint8Array(8));
    sim.runUntil(() => replies === 1, 100);
    expect(sim.a.arp.lookup(B)?.state).toBe(NUD.REACHABLE);
    sim.run(1001);
    expect(sim.a.arp.lookup(B)?.state).toBe(NUD.STALE);
    sim.a.ping(Sim.ADDR_B, 1, 2, new Uint8Array(8));
    expect(sim.a.arp.lookup(B)?.state).toBe(NUD.DELAY);
    sim.runUntil(() => replies === 2, 100);
    sim.run(250);
    // After the delay a unicast probe went out and B answered it.
    expect(sim.a.arp.lookup(B)?.state).toBe(NUD.REACHABLE);
    expect(replies).toBe(2);
    // B goes silent: the next use probes ucast_solicit times, then the entry is removed.
    sim.b.close();
    sim.run(1001);
    sim.a.ping(Sim.ADDR_B, 1, 3, new Uint8Array(8));
    sim.run(200 + 3 * 100 + 50);
    expect(sim.a.arp.lookup(B)).toBeUndefined();
    sim.a.close();
    expect(sim.linkA.outstanding()).toBe(0);
  });

  test('another host claiming our address is counted and the address defended, at most once per 10 s', () => {
    const sim = new Sim({ seed: 47 });
    sim.pollNow();
    const sent0 = sim.b.stats.arpRequestsSent;
    // A gratuitous ARP from a stranger's MAC for 10.0.0.2 (B's address).
    const f = new Uint8Array(42);
    ethEmit(f, 0, new Uint8Array(6).fill(0xff), 0, Uint8Array.of(2, 7, 7, 7, 7, 7), 0, ETHERTYPE.ARP);
    f.set([0, 1, 8, 0, 6, 4, 0, 1, 2, 7, 7, 7, 7, 7, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2], 14);
    inject(sim.linkA, f);
    inject(sim.linkA, f);
    sim.run(10);
    expect(sim.b.stats.arpConflicts).toBe(2);
    expect(sim.b.stats.arpRequestsSent - sent0).toBe(1);
    sim.run(10_000);
    inject(sim.linkA, f);
    sim.run(10);
    expect(sim.b.stats.arpRequestsSent - sent0).toBe(2);
    // Nobody learned the stranger as 10.0.0.2.
    expect(sim.a.arp.lookup(B)).toBeUndefined();
  });

  test('requests for other addresses are not answered', () => {
    const sim = new Sim({ seed: 5 });
    sim.pollNow();
    const f = new Uint8Array(42);
    ethEmit(f, 0, new Uint8Array(6).fill(0xff), 0, sim.linkA.mac, 0, ETHERTYPE.ARP);
    f.set([0, 1, 8, 0, 6, 4, 0, 1], 14);
    f.set(sim.linkA.mac, 22); f.set([10, 0, 0, 1], 28); f.set([10, 0, 0, 77], 38);
    inject(sim.linkA, f);
    sim.run(10);
    expect(sim.b.stats.arpRepliesSent).toBe(0);
    expect(sim.b.stats.dropsOf('ARP_NOT_FOR_US')).toBe(2);
    // A truncated request is malformed.
    inject(sim.linkA, f.subarray(0, 40));
    sim.run(10);
    expect(sim.b.stats.dropsOf('ARP_MALFORMED')).toBe(1);
  });
});

describe('ICMP echo', () => {
  test('ping: the reply carries the payload back, answered in place', () => {
    const { sim, recB } = recordingSim({ seed: 6 });
    const seen: [number, number, string][] = [];
    sim.a.icmp.onEchoReply = (src, id, seq, payload) => seen.push([id, seq, Buffer.from(payload).toString('hex')]);
    const payload = pattern(56, 1);
    for (let seq = 1; seq <= 3; seq++) sim.a.ping(Sim.ADDR_B, 0x42, seq, payload);
    sim.runUntil(() => seen.length === 3, 1000);
    expect(seen).toEqual([1, 2, 3].map((s) => [0x42, s, payload.toString('hex')]));
    expect(sim.b.stats.icmpEchoRequests).toBe(3);
    // The replies are the requests turned around: same IP id and length.
    const replies = recB.ipPackets().filter((p) => ipv4Protocol(p, 0) === IPPROTO.ICMP);
    expect(replies.length).toBe(3);
    for (const r of replies) { expect(icmpType(r, 20)).toBe(0); expect(r[8]).toBe(64); }
    expectNoLeaks(sim);
  });

  test('a 4000-byte ping is fragmented, reassembled, answered and fragmented back', () => {
    const { sim, recB } = recordingSim({ seed: 7 });
    let got: Buffer | null = null;
    sim.a.icmp.onEchoReply = (_s, _i, _q, p) => { got = Buffer.from(p); };
    const payload = pattern(4000, 2);
    sim.a.ping(Sim.ADDR_B, 1, 1, payload);
    sim.runUntil(() => got !== null, 1000);
    expect(got!.equals(payload)).toBe(true);
    expect(sim.a.stats.fragmentsSent).toBe(3);
    expect(sim.b.stats.reassembled).toBe(1);
    expect(sim.b.stats.fragmentsSent).toBe(3);
    expect(sim.a.stats.reassembled).toBe(1);
    for (const p of recB.ipPackets()) expect(p.length).toBeLessThanOrEqual(1500);
    expectNoLeaks(sim);
  });

  test('echo to a broadcast address is ignored', () => {
    const sim = new Sim({ seed: 8 });
    let replies = 0;
    sim.a.icmp.onEchoReply = () => { replies++; };
    sim.a.ping('10.0.0.255', 1, 1, new Uint8Array(8));
    sim.run(100);
    expect(replies).toBe(0);
    expect(sim.b.stats.icmpEchoRequests).toBe(1);
  });
});

describe('UDP', () => {
  test('an exchange shaped like node:dgram', async () => {
    const sim = new Sim({ seed: 9 });
    const srv = echoServer(sim.b, 5353);
    const cli = sim.a.createUdpSocket();
    const got: [string, object][] = [];
    cli.on('message', (m: Buffer, r) => got.push([m.toString(), r]));
    let sentBytes = -1;
    cli.send(Buffer.from('hello'), 5353, Sim.ADDR_B, (err, n) => { expect(err).toBeNull(); sentBytes = n!; });
    cli.send('0123456789', 2, 3, 5353, Sim.ADDR_B);
    cli.send(['a', Buffer.from('b')], 5353, Sim.ADDR_B);
    sim.runUntil(() => got.length === 3, 1000);
    await new Promise((r) => setImmediate(r));
    expect(sentBytes).toBe(5);
    expect(got.map((g) => g[0])).toEqual(['hello', '234', 'ab']);
    expect(got[0]![1]).toEqual({ address: Sim.ADDR_B, family: 'IPv4', port: 5353, size: 5 });
    const port = cli.address().port;
    expect(port).toBeGreaterThanOrEqual(32768);
    expect(port).toBeLessThanOrEqual(60999);
    expect(srv.address()).toEqual({ address: '0.0.0.0', family: 'IPv4', port: 5353 });
    expect(() => sim.b.createUdpSocket().bind(5353)).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
    expect(() => sim.b.createUdpSocket().bind(1, '10.9.9.9')).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL' }));
    expect(sim.b.stats.udpRxDatagrams).toBe(3);
    srv.close(); cli.close();
    expect(sim.b.udp.bound).toBe(0);
    expectNoLeaks(sim);
  });

  test('no socket: port unreachable; a connected socket sees ECONNREFUSED', async () => {
    const sim = new Sim({ seed: 10 });
    const cli = sim.a.createUdpSocket();
    const errors: string[] = [];
    cli.on('error', (e: Error & { code: string }) => errors.push(e.code));
    cli.connect(4444, Sim.ADDR_B);
    await new Promise((r) => setImmediate(r));
    cli.send('anyone?');
    sim.run(100);
    expect(sim.b.stats.dropsOf('UDP_NO_SOCKET')).toBe(1);
    expect(sim.b.stats.icmpErrorsSent).toBe(1);
    expect(sim.a.stats.icmpErrorsReceived).toBe(1);
    expect(errors).toEqual(['ECONNREFUSED']);
  });

  test('datagrams with bad checksums or lengths are dropped by reason; zero checksum accepted', () => {
    const sim = new Sim({ seed: 11 });
    const got: string[] = [];
    sim.b.createUdpSocket().bind(53).on('message', (m: Buffer) => got.push(m.toString()));
    // Resolve first so injected frames reach a stack that knows A.
    sim.pollNow();
    const good = udpSegment(A, B, 1000, 53, Buffer.from('ok'));
    const badSum = good.slice(); badSum[9]! ^= 0xff;
    const noSum = good.slice(); noSum[6] = 0; noSum[7] = 0;
    const badLen = good.slice(); badLen[5] = 50;
    for (const seg of [good, badSum, noSum, badLen]) inject(sim.linkA, ipFrame(sim, ipPacket(A, B, IPPROTO.UDP, seg)));
    sim.run(10);
    expect(got).toEqual(['ok', 'ok']);
    expect(sim.b.stats.dropsOf('UDP_BAD_CHECKSUM')).toBe(1);
    expect(sim.b.stats.dropsOf('UDP_BAD_LENGTH')).toBe(1);
  });

  test('port unreachable is rate-limited per peer like Linux (burst 6)', () => {
    const sim = new Sim({ seed: 12 });
    const cli = sim.a.createUdpSocket();
    for (let i = 0; i < 20; i++) cli.send('x', 5000 + i, Sim.ADDR_B);
    sim.run(10);
    expect(sim.b.stats.dropsOf('UDP_NO_SOCKET')).toBe(20);
    expect(sim.b.stats.icmpErrorsSent).toBe(6);
    expect(sim.b.stats.dropsOf('ICMP_RATE_LIMITED')).toBe(14);
    // One token per second comes back.
    sim.run(2000);
    for (let i = 0; i < 5; i++) cli.send('x', 6000 + i, Sim.ADDR_B);
    sim.run(10);
    expect(sim.b.stats.icmpErrorsSent).toBe(8);
  });
});

describe('IPv4', () => {
  test('an 8 KiB datagram at MTU 1500 goes as 6 fragments and comes back whole', () => {
    const { sim, recA } = recordingSim({ seed: 13 });
    echoServer(sim.b, 7);
    const cli = sim.a.createUdpSocket();
    let back: Buffer | null = null;
    cli.on('message', (m: Buffer) => { back = m; });
    const data = pattern(8192, 3);
    cli.send(data, 7, Sim.ADDR_B);
    sim.runUntil(() => back !== null, 1000);
    expect(back!.equals(data)).toBe(true);
    const frags = recA.ipPackets().filter((p) => ipv4Protocol(p, 0) === IPPROTO.UDP);
    expect(frags.length).toBe(6);
    expect(frags.map((p) => ipv4FragOffset(p, 0))).toEqual([0, 1480, 2960, 4440, 5920, 7400]);
    expect(frags.map((p) => ipv4MoreFragments(p, 0))).toEqual([true, true, true, true, true, false]);
    expect(frags.map((p) => ipv4TotalLen(p, 0))).toEqual([1500, 1500, 1500, 1500, 1500, 20 + 8200 - 7400]);
    expectNoLeaks(sim);
  });

  // STRATA_SIM_SEEDS=N runs N seeds (CI may raise it); a failure names its seed.
  const nSeeds = Math.max(1, Number(process.env.STRATA_SIM_SEEDS ?? 5) || 5);
  for (const seed of Array.from({ length: nSeeds }, (_, i) => 21 + i)) {
    test(`8 KiB datagrams under reordering, duplication and loss (seed ${seed})`, () => {
      const sim = new Sim({ seed, impair: { loss: 0.03, duplicate: 0.05, reorder: 0.2, reorderDelay: 3, delay: 1, jitter: 2 } });
      const sent = new Map<string, number>();
      const received: string[] = [];
      const srv = sim.b.createUdpSocket();
      srv.bind(9000).on('message', (m: Buffer) => received.push(createHash('sha256').update(m).digest('hex')));
      const cli = sim.a.createUdpSocket();
      for (let i = 0; i < 40; i++) {
        const d = pattern(8192, seed * 1000 + i);
        sent.set(createHash('sha256').update(d).digest('hex'), i);
        cli.send(d, 9000, Sim.ADDR_B);
        sim.run(5);
      }
      sim.run(31_000);
      // Every datagram delivered is one that was sent, intact.
      for (const h of received) expect(sent.has(h)).toBe(true);
      expect(new Set(received).size).toBeGreaterThan(20);
      const st = sim.b.stats;
      // Incomplete datagrams expired and freed their memory.
      expect(sim.b.ipv4.reasm.pending).toBe(0);
      expect(sim.b.ipv4.reasm.bytes).toBe(0);
      if (new Set(received).size < 40) expect(st.dropsOf('REASM_TIMEOUT')).toBeGreaterThan(0);
      expect(st.dropsOf('FRAG_OVERLAP')).toBe(0);
      expectNoLeaks(sim);
    });
  }

  test('an incomplete datagram times out after 30 s; fragment zero earns ICMP time exceeded', () => {
    const sim = new Sim({ seed: 14 });
    sim.pollNow();
    const udp = udpSegment(A, B, 1, 2, pattern(2000, 5));
    inject(sim.linkA, ipFrame(sim, ipPacket(A, B, IPPROTO.UDP, udp.subarray(0, 1480), 77, IP4_MF)));
    inject(sim.linkA, ipFrame(sim, ipPacket(A, B, IPPROTO.UDP, udp.subarray(1480, 1488), 78, IP4_MF | (1480 >> 3))));
    sim.run(29_000);
    expect(sim.b.ipv4.reasm.pending).toBe(2);
    expect(sim.b.stats.dropsOf('REASM_TIMEOUT')).toBe(0);
    sim.run(1_100);
    expect(sim.b.ipv4.reasm.pending).toBe(0);
    expect(sim.b.stats.dropsOf('REASM_TIMEOUT')).toBe(2);
    // Only the datagram whose fragment zero arrived is reported (RFC 792).
    expect(sim.b.stats.icmpErrorsSent).toBe(1);
    expect(sim.a.stats.icmpErrorsReceived).toBe(1);
  });

  test('reassembly memory is bounded in bytes and datagrams', () => {
    const sim = new Sim({ seed: 15, b: { ipv4: { reassembly: { maxDatagrams: 4, maxBytes: 1 << 20 } } } });
    sim.pollNow();
    for (let id = 0; id < 10; id++) inject(sim.linkA, ipFrame(sim, ipPacket(A, B, IPPROTO.UDP, pattern(1480, id), id, IP4_MF)));
    sim.run(10);
    expect(sim.b.ipv4.reasm.pending).toBe(4);
    expect(sim.b.stats.dropsOf('REASM_MEMORY_FULL')).toBe(6);
    const sim2 = new Sim({ seed: 16, b: { ipv4: { reassembly: { maxBytes: 8 * 1024 } } } });
    sim2.pollNow();
    for (let id = 0; id < 10; id++) inject(sim2.linkA, ipFrame(sim2, ipPacket(A, B, IPPROTO.UDP, pattern(1480, id), id, IP4_MF)));
    sim2.run(10);
    expect(sim2.b.ipv4.reasm.bytes).toBeLessThanOrEqual(8 * 1024);
    expect(sim2.b.stats.dropsOf('REASM_MEMORY_FULL')).toBeGreaterThan(0);
    expect(sim2.b.ipv4.reasm.pending + sim2.b.stats.dropsOf('REASM_MEMORY_FULL')).toBe(10);
  });

  test('exact duplicate fragments are ignored; overlapping ones discard the datagram (RFC 5722)', () => {
    const sim = new Sim({ seed: 17 });
    const got: Buffer[] = [];
    sim.b.createUdpSocket().bind(2).on('message', (m: Buffer) => got.push(m));
    sim.pollNow();
    const data = pattern(1000, 9);
    const udp = udpSegment(A, B, 1, 2, data);
    const f0 = ipFrame(sim, ipPacket(A, B, IPPROTO.UDP, udp.subarray(0, 512), 5, IP4_MF));
    const f1 = ipFrame(sim, ipPacket(A, B, IPPROTO.UDP, udp.subarray(512), 5, 512 >> 3));
    inject(sim.linkA, f0); inject(sim.linkA, f0); inject(sim.linkA, f1);
    sim.run(10);
    expect(got.length).toBe(1);
    expect(got[0]!.equals(data)).toBe(true);
    expect(sim.b.stats.dropsOf('FRAG_DUPLICATE')).toBe(1);
    // Overlap: [0,512) then [256, …) — the whole datagram goes.
    inject(sim.linkA, ipFrame(sim, ipPacket(A, B, IPPROTO.UDP, udp.subarray(0, 512), 6, IP4_MF)));
    inject(sim.linkA, ipFrame(sim, ipPacket(A, B, IPPROTO.UDP, udp.subarray(256), 6, 256 >> 3)));
    inject(sim.linkA, ipFrame(sim, ipPacket(A, B, IPPROTO.UDP, udp.subarray(512), 6, 512 >> 3)));
    sim.run(10);
    expect(sim.b.stats.dropsOf('FRAG_OVERLAP')).toBe(1);
    expect(got.length).toBe(1);
    // A middle fragment whose length is not a multiple of 8 is malformed.
    inject(sim.linkA, ipFrame(sim, ipPacket(A, B, IPPROTO.UDP, udp.subarray(0, 500), 7, IP4_MF)));
    sim.run(10);
    expect(sim.b.stats.dropsOf('FRAG_BAD_LENGTH')).toBe(1);
    sim.run(31_000);
    expect(sim.b.ipv4.reasm.pending).toBe(0);
  });

  test('validation drops, each by reason', () => {
    const sim = new Sim({ seed: 18 });
    sim.pollNow();
    const udp = udpSegment(A, B, 1, 2, Buffer.from('x'));
    const okPkt = ipPacket(A, B, IPPROTO.UDP, udp);
    const badSum = okPkt.slice(); badSum[10]! ^= 1;
    const badVer = okPkt.slice(); badVer[0] = 0x55;
    const badLen = ipPacket(A, B, IPPROTO.UDP, udp, 1, 0, 200);
    const notUs = ipPacket(A, ip4FromString('10.0.0.77'), IPPROTO.UDP, udp);
    const martian = ipPacket(ip4FromString('127.0.0.1'), B, IPPROTO.UDP, udp);
    for (const p of [badSum, badVer, badLen, notUs, martian]) inject(sim.linkA, ipFrame(sim, p));
    const v6 = new Uint8Array(60); ethEmit(v6, 0, sim.linkB.mac, 0, sim.linkA.mac, 0, ETHERTYPE.IPV6);
    const other = new Uint8Array(60); ethEmit(other, 0, sim.linkB.mac, 0, sim.linkA.mac, 0, 0x88cc);
    const elsewhere = new Uint8Array(60); ethEmit(elsewhere, 0, Uint8Array.of(2, 9, 9, 9, 9, 9), 0, sim.linkA.mac, 0, ETHERTYPE.IPV4);
    const tagged = new Uint8Array(60); ethEmit(tagged, 0, sim.linkB.mac, 0, sim.linkA.mac, 0, ETHERTYPE.IPV4, 5);
    for (const f of [v6, other, elsewhere, tagged, new Uint8Array(10)]) inject(sim.linkA, f);
    sim.run(10);
    const d = sim.b.stats.snapshot().drops;
    expect([d.IP_BAD_CHECKSUM, d.IP_BAD_VERSION, d.IP_BAD_LENGTH, d.IP_NOT_FOR_US, d.IP_MARTIAN_SOURCE]).toEqual([1, 1, 1, 1, 1]);
    expect([d.IPV6_UNSUPPORTED, d.ETH_UNKNOWN_TYPE, d.ETH_NOT_FOR_US, d.ETH_VLAN, d.ETH_SHORT]).toEqual([1, 1, 1, 1, 1]);
  });

  test('a malformed option earns ICMP parameter problem pointing at it', () => {
    const { sim, recB } = recordingSim({ seed: 48 });
    sim.pollNow();
    const udp = udpSegment(A, B, 1, 2, Buffer.from('x'));
    const p = new Uint8Array(32 + udp.length);
    ipv4Emit(p, 0, A, B, IPPROTO.UDP, p.length, 9, 0, 64, 0);
    p[0] = 0x48; // IHL 8: 12 bytes of options
    p.set([1, 1, 7, 11, 4, 0, 0, 0, 0, 0, 0, 0], 20); // record route claiming 11 bytes: past the header
    p.set(udp, 32);
    p[10] = 0; p[11] = 0;
    const sum = (() => { let x = 0; for (let i = 0; i < 32; i += 2) x += (p[i]! << 8) | p[i + 1]!; while (x > 0xffff) x = (x & 0xffff) + (x >>> 16); return ~x & 0xffff; })();
    p[10] = sum >>> 8; p[11] = sum & 255;
    inject(sim.linkA, ipFrame(sim, p));
    sim.run(10);
    expect(sim.b.stats.dropsOf('IP_BAD_OPTIONS')).toBe(1);
    const err = recB.ipPackets().find((x) => ipv4Protocol(x, 0) === IPPROTO.ICMP)!;
    expect([icmpType(err, 20), icmpCode(err, 20), err[24]]).toEqual([12, 0, 22]);
    expect(sim.a.stats.icmpErrorsReceived).toBe(1);
  });

  test('an unknown protocol earns protocol unreachable, delivered to the sender\'s transport', () => {
    const sim = new Sim({ seed: 19 });
    const errors: number[][] = [];
    const t: TransportDispatcher = {
      protocol: 99,
      deliver: () => {},
      deliverError: (type, code, mtu, src, dst) => errors.push([type, code, mtu, src, dst]),
    };
    sim.a.attach(t);
    const net = sim.a.network;
    const off = net.begin(B, 99, sim.now);
    expect(off).toBeGreaterThan(0);
    expect(net.src).toBe(A);
    expect(net.room).toBe(1480);
    net.mem.fill(0xab, off, off + 16);
    expect(net.commit(16, sim.now)).toBe(true);
    sim.run(100);
    expect(sim.b.stats.dropsOf('IP_UNKNOWN_PROTOCOL')).toBe(1);
    expect(errors).toEqual([[3, 2, 0, A, B]]);
  });

  test('fragmentation needed lowers the path MTU, tells the transport, and later packets fit (RFC 1191)', () => {
    const { sim, recA } = recordingSim({ seed: 20 });
    const errors: number[][] = [];
    sim.a.attach({ protocol: 99, deliver: () => {}, deliverError: (type, code, mtu) => errors.push([type, code, mtu]) });
    sim.b.attach({ protocol: 99, deliver: () => {}, deliverError: () => {} });
    const net = sim.a.network;
    expect(net.pathMtu(B)).toBe(1500);
    const off = net.begin(B, 99, sim.now);
    net.mem.fill(1, off, off + 1400);
    net.commit(1400, sim.now, { dontFragment: true });
    sim.run(10);
    const sent = recA.ipPackets().find((p) => ipv4Protocol(p, 0) === 99)!;
    // A router on the path answers: fragmentation needed, next-hop MTU 1200.
    const body = new Uint8Array(8 + 28);
    body.set(sent.subarray(0, 28), 8);
    icmpEmit(body, 0, 3, 4, 1200, body.length);
    inject(sim.linkB, (() => {
      const p = ipPacket(ip4FromString('10.0.0.254'), A, IPPROTO.ICMP, body);
      const f = new Uint8Array(14 + p.length);
      ethEmit(f, 0, sim.linkA.mac, 0, sim.linkB.mac, 0, ETHERTYPE.IPV4);
      f.set(p, 14);
      return f;
    })());
    sim.run(10);
    expect(errors).toEqual([[3, 4, 1200]]);
    expect(net.pathMtu(B)).toBe(1200);
    expect(net.begin(B, 99, sim.now)).toBeGreaterThan(0);
    expect(net.room).toBe(1180);
    net.abort();
    expect(sim.a.stats.pmtuUpdates).toBe(1);
    // With DF, a packet over the path MTU is refused; without, fragmented to fit.
    const o2 = net.begin(B, 99, sim.now);
    expect(net.commit(1400, sim.now, { dontFragment: true })).toBe(false);
    expect(sim.a.stats.dropsOf('FRAG_NEEDED_DF')).toBe(1);
    void o2;
    const got: Buffer[] = [];
    sim.b.createUdpSocket().bind(1234).on('message', (m: Buffer) => got.push(m));
    sim.a.createUdpSocket().send(pattern(1400, 1), 1234, Sim.ADDR_B);
    sim.run(10);
    expect(got.length).toBe(1);
    const udpFrags = recA.ipPackets().filter((p) => ipv4Protocol(p, 0) === IPPROTO.UDP);
    expect(udpFrags.map((p) => p.length)).toEqual([20 + 1176, 20 + 1408 - 1176]);
    // A smaller-than-minimum MTU is clamped (Linux min_pmtu 552); the estimate expires after 10 minutes.
    sim.a.ipv4.learnPmtu(B, 300, 1200, sim.now);
    expect(net.pathMtu(B)).toBe(552);
    sim.run(600_001);
    expect(net.pathMtu(B)).toBe(1500);
  });

  test('connection tracking sees every datagram both ways and can drop', () => {
    const seen: string[] = [];
    const sim = new Sim({
      seed: 26,
      b: {
        conntrack: {
          track(buf, ipOff, hook) {
            seen.push(`${hook}:${ipv4Protocol(buf, ipOff)}:${ipv4TotalLen(buf, ipOff)}`);
            return ipv4Dst(buf, ipOff) === B && buf[ipOff + 23] === 99 ? CT_RESULT.DROP : CT_RESULT.ALIVE;
          },
        },
      },
    });
    echoServer(sim.b, 98);
    echoServer(sim.b, 99);
    const cli = sim.a.createUdpSocket();
    let back = 0;
    cli.on('message', () => { back++; });
    cli.send(pattern(3000, 1), 98, Sim.ADDR_B);
    cli.send('x', 99, Sim.ADDR_B);
    sim.run(100);
    expect(back).toBe(1);
    // In after reassembly (one 3028-byte datagram), out before fragmentation.
    expect(seen).toEqual(['0:17:3028', '1:17:3028', '0:17:29']);
    expect(sim.b.stats.dropsOf('CONNTRACK')).toBe(1);
  });
});

describe('corruption', () => {
  for (const seed of Array.from({ length: Math.max(3, Math.ceil(nSeedsAll() / 2)) }, (_, i) => 31 + i * 101)) {
    test(`bit flips on the wire are caught by a checksum or a check, never delivered (seed ${seed})`, () => {
      const sim = new Sim({ seed, impair: { corrupt: 0.2, delay: 0.5 } });
      // ARP carries no checksum: a flipped bit in a reply would poison the
      // cache for 30 s (as on any Ethernet). Static entries keep this test
      // about the checksummed layers.
      sim.a.arp.addStatic(B, sim.linkB.mac);
      sim.b.arp.addStatic(A, sim.linkA.mac);
      const sent = new Set<string>();
      let delivered = 0, bad = 0;
      sim.b.createUdpSocket().bind(9).on('message', (m: Buffer) => { delivered++; if (!sent.has(m.toString('hex'))) bad++; });
      const cli = sim.a.createUdpSocket();
      for (let i = 0; i < 300; i++) {
        const d = pattern(64 + (i % 200), seed * 7919 + i);
        sent.add(d.toString('hex'));
        cli.send(d, 9, Sim.ADDR_B);
        sim.run(1);
      }
      sim.run(5000);
      expect(bad).toBe(0);
      expect(delivered).toBeGreaterThan(150);
      const d = sim.b.stats.snapshot();
      expect(d.dropsTotal).toBeGreaterThan(0);
      // Every frame B received was delivered or dropped for a counted reason.
      expect(d.drops.UDP_BAD_CHECKSUM + d.drops.IP_BAD_CHECKSUM).toBeGreaterThan(0);
      expectNoLeaks(sim);
    });
  }
});

describe('drop events', () => {
  test('drops are published on strata:stack:drop only while subscribed', () => {
    const sim = new Sim({ seed: 46 });
    const seen: StackDropEvent[] = [];
    const fn = (e: StackDropEvent): void => { seen.push(e); };
    const cli = sim.a.createUdpSocket();
    cli.send('x', 4000, Sim.ADDR_B);
    sim.run(10);
    expect(seen).toEqual([]);
    stackDropEvents.subscribe(fn);
    try {
      cli.send('x', 4001, Sim.ADDR_B);
      sim.run(10);
    } finally {
      stackDropEvents.unsubscribe(fn);
    }
    expect(seen).toEqual([{ link: 'simB', reason: 'UDP_NO_SOCKET' }]);
  });
});

describe('metrics', () => {
  test('drops by reason and the plain counters render for Prometheus', () => {
    const sim = new Sim({ seed: 40 });
    const cli = sim.a.createUdpSocket();
    for (let i = 0; i < 3; i++) cli.send('x', 4000 + i, Sim.ADDR_B);
    sim.run(10);
    const reg = new Registry();
    registerStackMetrics(reg, sim.b.stats, { stack: 'b' });
    const fams = parsePrometheusTextFormat(reg.render()) as { name: string; metrics: { value: string; labels?: Record<string, string> }[] }[];
    const v = (n: string, reason?: string): number => Number(fams.find((f) => f.name === n)!.metrics.find((m) => reason === undefined || m.labels!.reason === reason)!.value);
    expect(v('strata_stack_drops_total', 'udp_no_socket')).toBe(3);
    expect(v('strata_stack_icmp_errors_sent_total')).toBe(3);
    expect(v('strata_stack_arp_replies_sent_total')).toBe(1);
    expect(fams.find((f) => f.name === 'strata_stack_drops_total')!.metrics.length).toBe(Object.keys(DROP).length);
    expect(fams.find((f) => f.name === 'strata_stack_rx_frames_total')!.metrics[0]!.labels!.stack).toBe('b');
  });
});

describe('with the conntrack table', () => {
  test('flows are tracked both ways, and the poll loop expires them (non-TCP: 60 s)', () => {
    const ct = new Conntrack();
    const sim = new Sim({ seed: 43, b: { conntrack: ct } });
    echoServer(sim.b, 7);
    const cli = sim.a.createUdpSocket();
    let back = 0;
    cli.on('message', () => { back++; });
    cli.send('hi', 7, Sim.ADDR_B);
    sim.runUntil(() => back === 1, 100);
    const flows = ct.snapshot();
    expect(flows.length).toBe(1);
    expect(flows[0]).toMatchObject({ proto: 17, src: A, dst: B, sport: cli.address().port, dport: 7, replied: true, packets: [1, 1] });
    expect(sim.b.pollAt()).toBeLessThanOrEqual(flows[0]!.expiresAt);
    sim.run(59_000);
    expect(ct.size).toBe(1);
    sim.run(2_000);
    expect(ct.size).toBe(0);
    expect(ct.stats.expirations).toBe(1);
  });
});

describe('802.1Q', () => {
  test('two stacks on VLAN 7 talk; untagged frames are dropped', () => {
    const sim = new Sim({ seed: 27, a: { vlan: 7 }, b: { vlan: 7 } });
    let replies = 0;
    sim.a.icmp.onEchoReply = () => { replies++; };
    sim.a.ping(Sim.ADDR_B, 1, 1, new Uint8Array(1000));
    sim.runUntil(() => replies === 1, 100);
    expect(replies).toBe(1);
    // The tag takes 4 bytes of MemLink's 1514-byte frames.
    expect(sim.a.network.room).toBe(1476);
    inject(sim.linkA, ipFrame(sim, ipPacket(A, B, IPPROTO.UDP, udpSegment(A, B, 1, 2, Buffer.from('x')))));
    sim.run(10);
    expect(sim.b.stats.dropsOf('ETH_VLAN')).toBe(1);
  });
});

describe('driver', () => {
  test('runStack drives two stacks on the real event loop', async () => {
    const [la, lb] = MemLink.pair({ seed: 1, clock: monotonicClock });
    const a = new Stack({ link: la, addrs: [{ addr: '10.0.0.1', prefixLen: 24 }] });
    const b = new Stack({ link: lb, addrs: [{ addr: '10.0.0.2', prefixLen: 24 }] });
    const da = runStack(a), db = runStack(b);
    try {
      echoServer(b, 7);
      const cli = a.createUdpSocket();
      const msgs: string[] = [];
      const done = new Promise<void>((resolve) => cli.on('message', (m: Buffer) => { msgs.push(m.toString()); if (msgs.length === 3) resolve(); }));
      for (const m of ['one', 'two', 'three']) cli.send(m, 7, '10.0.0.2');
      await done;
      expect(msgs.sort()).toEqual(['one', 'three', 'two']);
    } finally {
      da.stop(); db.stop();
      a.close(); b.close();
    }
    expect(la.outstanding()).toBe(0);
    expect(lb.outstanding()).toBe(0);
  });
});

const IP4_MF = 0x2000;
void IP4;

describe('loopback', () => {
  test('packets to our own address come back through the stack (UDP, ping, an 8 KiB datagram)', () => {
    const sim = new Sim({ seed: 41 });
    const srv = echoServer(sim.a, 7);
    const cli = sim.a.createUdpSocket();
    const got: Buffer[] = [];
    cli.on('message', (m: Buffer, r) => { got.push(m); expect(r.address).toBe(Sim.ADDR_A); });
    cli.send('self', 7, Sim.ADDR_A);
    const big = pattern(8192, 4);
    cli.send(big, 7, Sim.ADDR_A);
    let replies = 0;
    sim.a.icmp.onEchoReply = (src) => { expect(src).toBe(A); replies++; };
    sim.a.ping(Sim.ADDR_A, 1, 1, new Uint8Array(32));
    sim.run(10);
    expect(got.map((m) => m.length)).toEqual([4, 8192]);
    expect(got[1]!.equals(big)).toBe(true);
    expect(replies).toBe(1);
    // Nothing went on the wire but the announcement; ARP was never asked about ourselves.
    expect(sim.linkA.stats().txPackets).toBe(1);
    expect(sim.a.arp.size).toBe(0);
    expect(sim.a.stats.loopedFrames).toBeGreaterThan(0);
    srv.close();
    expectNoLeaks(sim);
  });
});

describe('robustness', () => {
  test('a throwing message listener propagates, and every frame of the burst still goes back', () => {
    const sim = new Sim({ seed: 42 });
    let calls = 0;
    sim.b.createUdpSocket().bind(5).on('message', () => { calls++; if (calls === 2) throw new Error('listener bug'); });
    sim.pollNow();
    // Resolve ARP first, then queue four datagrams that arrive in one burst.
    const cli = sim.a.createUdpSocket();
    cli.send('warmup', 5, Sim.ADDR_B);
    sim.run(5);
    for (let i = 0; i < 4; i++) cli.send(`d${i}`, 5, Sim.ADDR_B);
    sim.a.poll(sim.now);
    expect(() => sim.b.poll(sim.now)).toThrow('listener bug');
    expect(sim.linkB.outstanding()).toBe(0);
    // The stack keeps working.
    cli.send('after', 5, Sim.ADDR_B);
    sim.run(5);
    expect(calls).toBe(3);
    expectNoLeaks(sim);
  });
});

describe('UDP socket options', () => {
  test('setTTL sets the IP TTL; broadcast needs setBroadcast (EACCES otherwise) and reaches wildcard sockets', async () => {
    const { sim, recA } = recordingSim({ seed: 44 });
    const got: string[] = [];
    sim.b.createUdpSocket().bind(67).on('message', (m: Buffer) => got.push(m.toString()));
    const cli = sim.a.createUdpSocket();
    cli.setTTL(7);
    cli.send('ttl', 67, Sim.ADDR_B);
    sim.run(10);
    const p = recA.ipPackets().filter((x) => ipv4Protocol(x, 0) === IPPROTO.UDP);
    expect(p.map((x) => x[8])).toEqual([7]);
    const errs: string[] = [];
    cli.send('bcast', 67, '10.0.0.255', (e) => { if (e) errs.push((e as Error & { code: string }).code); });
    await new Promise((r) => setImmediate(r));
    expect(errs).toEqual(['EACCES']);
    cli.setBroadcast(true);
    cli.send('bcast', 67, '10.0.0.255');
    cli.send('all-ones', 67, '255.255.255.255');
    sim.run(10);
    expect(got).toEqual(['ttl', 'bcast', 'all-ones']);
    // Different destinations draw IP ids from different counters.
    expect(() => cli.setTTL(0)).toThrow();
  });
});
