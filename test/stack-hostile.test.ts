// Hostile input against two strata stacks over a MemLink pair on a virtual
// clock (issue 10, TCP/IP): each test plays a third party on the wire and
// asserts what the stacks send, hold and count afterwards.
import { describe, expect, it } from 'vitest';
import { Sim } from '../src/stack/sim.js';
import { Tcp, type TcpConfig } from '../src/stack/tcp/tcp.js';
import type { TcpConnection, TcpHandler } from '../src/stack/tcp/connection.js';
import { ip4FromString } from '../src/stack/registration.js';
import { ETHERTYPE, MAC_BROADCAST, ethEmit, ethHeaderLen, ethType } from '../src/stack/wire/ethernet.js';
import { ARP_OP, arpEmit } from '../src/stack/wire/arp.js';
import { IP4_FLAG, ipv4TotalLen } from '../src/stack/wire/ipv4.js';
import { ICMP_TYPE, icmpEmit } from '../src/stack/wire/icmp.js';
import { FLAG } from '../src/stack/wire/tcp.js';
import { WireTap, inject, ipv4Frame, tcpSegment } from './helpers/stack-frames.js';

const A = ip4FromString(Sim.ADDR_A), B = ip4FromString(Sim.ADDR_B);

const sink: TcpHandler = { onData: (_c, _b, _o, n) => n };

interface Pair { sim: Sim; ta: Tcp; tb: Tcp; cli: TcpConnection; srv: TcpConnection; la: WireTap; lb: WireTap }

/** A connection A -> B:80 over a 1 ms path, established and idle. */
function connected(o: { seed?: number; cfg?: Partial<TcpConfig>; keep?: boolean; fill?: number } = {}): Pair {
  const links: Record<string, WireTap> = {};
  const sim = new Sim({ seed: o.seed ?? 3, impair: { delay: 1 }, wrap: (l, side) => (links[side] = new WireTap(l, o.keep ?? false)) });
  if (o.fill !== undefined) { sim.linkA.mem.fill(o.fill); sim.linkB.mem.fill(o.fill); }
  const ta = Tcp.attach(sim.a, { seed: 1, config: o.cfg });
  const tb = Tcp.attach(sim.b, { seed: 2, config: o.cfg });
  const l = tb.listen(80);
  let srv: TcpConnection | null = null;
  l.onAcceptable = () => { srv = l.accept(sink); };
  const cli = ta.connect(B, 80, { handler: sink });
  expect(sim.runUntil(() => srv !== null && cli.state === 'ESTABLISHED', 5000)).toBe(true);
  sim.run(1000);
  return { sim, ta, tb, cli, srv: srv!, la: links.a!, lb: links.b! };
}

/** Plays B on the wire: a TCP segment from B to A, arriving at A. */
function spoofToA(p: Pair, seg: Parameters<typeof tcpSegment>[2]): void {
  expect(inject(p.sim.linkB, ipv4Frame(p.sim.linkA.mac, p.sim.linkB.mac, B, A, 6, tcpSegment(B, A, seg)))).toBe(true);
}

function expectNoLeaks(sim: Sim): void {
  sim.a.close(); sim.b.close();
  expect(sim.linkA.outstanding()).toBe(0);
  expect(sim.linkB.outstanding()).toBe(0);
}

describe('TCP under attack', () => {
  it('Out-of-window ACK ping-pong: one spoofed segment between two strata endpoints does not start an endless ACK exchange', () => {
    const p = connected();
    const { sim, cli, ta, tb } = p;
    const before = p.la.frames + p.lb.frames;
    // 10 bytes "from B" at exactly RCV.NXT: A accepts them, and from then on
    // A and B disagree on B's sequence space. B sees A's ACK for bytes it
    // never sent (challenge ACK, RFC 5961 §5.2); A sees B's segments as old
    // (out-of-window ACK). Unlimited, they answer each other at path speed.
    spoofToA(p, { sport: 80, dport: cli.localPort, seq: cli.rcvNxt, ack: cli.sndNxt, flags: FLAG.ACK | FLAG.PSH, data: new Uint8Array(10) });
    const perSecond: number[] = [];
    for (let s = 0; s < 60; s++) {
      const t0 = p.la.frames + p.lb.frames;
      sim.run(1000);
      perSecond.push(p.la.frames + p.lb.frames - t0);
    }
    const total = p.la.frames + p.lb.frames - before;
    const why = JSON.stringify({ total, perSecond: perSecond.slice(0, 5), a: ta.snapshot(), b: tb.snapshot() });
    // One answer per 500 ms per connection (Linux tcp_invalid_ratelimit):
    // each side's next answer falls inside its own 500 ms, so the exchange
    // dies out after a handful of frames (on main: 1000 a second for 60 s).
    expect(Math.max(...perSecond), why).toBeLessThanOrEqual(4);
    expect(total, why).toBeLessThanOrEqual(10);
    expect(ta.counters.limitedOf('OUT_OF_WINDOW_ACK') + tb.counters.limitedOf('CHALLENGE_ACK'), why).toBeGreaterThan(0);
    expectNoLeaks(sim);
  });

  it('Out-of-window ACK ping-pong: answers to invalid segments are limited per connection and per stack, resets to closed ports too', () => {
    const p = connected();
    const { sim, cli, ta } = p;
    const a0 = p.la.frames;
    // 50 out-of-window pure ACKs 1 ms apart: the connection answers the first only.
    for (let i = 0; i < 50; i++) {
      spoofToA(p, { sport: 80, dport: cli.localPort, seq: cli.rcvNxt + 0x40000000 + i, ack: cli.sndNxt, flags: FLAG.ACK });
      sim.run(1);
    }
    expect(p.la.frames - a0).toBe(1);
    expect(ta.counters.limitedOf('OUT_OF_WINDOW_ACK')).toBe(49);
    expect(ta.counters.limitedPerConnection).toBe(49);
    // Out-of-window data is still answered every time (not an ACK loop; the sender's recovery needs it).
    const a1 = p.la.frames;
    for (let i = 0; i < 5; i++) {
      spoofToA(p, { sport: 80, dport: cli.localPort, seq: cli.rcvNxt + 0x40000000, ack: cli.sndNxt, flags: FLAG.ACK, data: new Uint8Array(10) });
      sim.run(1);
    }
    expect(p.la.frames - a1).toBe(5);
    // Closed ports: resets come from a stack-wide budget, randomised in [limit/2, 1.5·limit).
    const r0 = ta.counters.rstsSent;
    // In batches the link's memory holds, all within one second of virtual time.
    sim.run(1000 - (sim.now % 1000) + 1);
    const second = Math.floor(sim.now / 1000);
    for (let k = 0; k < 10; k++) {
      for (let i = 0; i < 500; i++) spoofToA(p, { sport: 1000 + k * 500 + i, dport: 9, seq: i, ack: 0, flags: FLAG.SYN });
      sim.run(1);
    }
    expect(Math.floor(sim.now / 1000)).toBe(second);
    const rsts = ta.counters.rstsSent - r0;
    expect(rsts).toBeGreaterThanOrEqual(500);
    expect(rsts).toBeLessThan(1500);
    expect(ta.counters.limitedOf('RST_NO_SOCKET')).toBe(5000 - rsts);
    expectNoLeaks(sim);

    // The stack-wide budget for answers (challengeAckLimit, randomised the
    // same way), seen alone with the per-connection limit off.
    const q = connected({ cfg: { invalidRateLimitMs: 0, challengeAckLimit: 10 } });
    q.sim.run(1000 - (q.sim.now % 1000) + 1);
    const b0 = q.la.frames;
    for (let i = 0; i < 100; i++) {
      spoofToA(q, { sport: 80, dport: q.cli.localPort, seq: q.cli.rcvNxt + 0x40000000 + i, ack: q.cli.sndNxt, flags: FLAG.ACK });
      q.sim.run(1);
    }
    const allowed = q.la.frames - b0;
    expect(allowed).toBeGreaterThanOrEqual(5);
    expect(allowed).toBeLessThan(15);
    expect(q.ta.counters.limitedPerStack).toBe(100 - allowed);
    expect(q.ta.counters.limitedOf('OUT_OF_WINDOW_ACK')).toBe(100 - allowed);
    expectNoLeaks(q.sim);
  });

  it('SYN to broadcast: a SYN to 255.255.255.255 or the subnet broadcast opens nothing and draws no SYN-ACK', () => {
    const p = connected();
    const { sim, tb } = p;
    const b0 = p.lb.frames;
    const conns0 = tb.counters.connections;
    let port = 40000;
    for (const dst of [0xffffffff, ip4FromString('10.0.0.255')]) {
      for (const mac of [MAC_BROADCAST, sim.linkB.mac]) {
        // A -> B's link: inject on A's end.
        expect(inject(sim.linkA, ipv4Frame(mac, sim.linkA.mac, A, dst, 6, tcpSegment(A, dst, { sport: port++, dport: 80, seq: 1000, ack: 0, flags: FLAG.SYN })))).toBe(true);
      }
    }
    // A unicast IP in a link broadcast frame is not for TCP either (Linux: PACKET_BROADCAST).
    expect(inject(sim.linkA, ipv4Frame(MAC_BROADCAST, sim.linkA.mac, A, B, 6, tcpSegment(A, B, { sport: port++, dport: 80, seq: 1000, ack: 0, flags: FLAG.SYN })))).toBe(true);
    sim.run(100);
    expect(tb.counters.connections).toBe(conns0);
    expect(tb.counters.passiveOpens).toBe(1);
    expect(p.lb.frames - b0).toBe(0);
    expect(tb.counters.drop('NOT_UNICAST')).toBe(5);
    expectNoLeaks(sim);
  });
});

describe('IPv4 and ARP under attack', () => {
  it('IPv4 reassembly overflow: a 60-byte header plus 65 512 data bytes is rejected, not wrapped to 36', () => {
    const sim = new Sim({ seed: 5 });
    sim.pollNow();
    const dataLen = 65512;
    const payload = new Uint8Array(dataLen);
    icmpEmit(payload, 0, ICMP_TYPE.ECHO_REQUEST, 0, 0x1234_0001, dataLen);
    // Fragment zero carries a 60-byte header (40 bytes of NOP options).
    let off = 0;
    let frags = 0;
    while (off < dataLen) {
      const first = off === 0;
      const hl = first ? 60 : 20;
      let n = Math.min(1480 - (hl - 20), dataLen - off);
      const more = off + n < dataLen;
      if (more) n &= ~7;
      const ip = new Uint8Array(hl + n);
      ip.set(payload.subarray(off, off + n), hl);
      const f = ipv4Frame(sim.linkB.mac, sim.linkA.mac, A, B, 1, new Uint8Array(0), { id: 77, flagsFrag: (more ? IP4_FLAG.MF : 0) | (off / 8) });
      // Rebuild the header in place with the right IHL and total length.
      const frame = new Uint8Array(14 + hl + n);
      frame.set(f.subarray(0, 34));
      frame[14] = 0x40 | (hl / 4);
      frame.fill(1, 34, 14 + hl); // NOP options
      frame[16] = (hl + n) >>> 8; frame[17] = (hl + n) & 255;
      frame[24] = 0; frame[25] = 0;
      let sum = 0;
      for (let i = 0; i < hl; i += 2) sum += (frame[14 + i]! << 8) | frame[15 + i]!;
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
      const ck = ~sum & 0xffff;
      frame[24] = ck >>> 8; frame[25] = ck & 255;
      frame.set(ip.subarray(hl), 14 + hl);
      expect(inject(sim.linkA, frame)).toBe(true);
      off += n;
      frags++;
    }
    sim.run(100);
    const why = JSON.stringify({ frags, reassembled: sim.b.stats.reassembled, drops: sim.b.stats.snapshot().drops });
    expect(sim.b.stats.dropsOf('FRAG_TOO_BIG'), why).toBe(1);
    expect(sim.b.stats.reassembled, why).toBe(0);
    expect(sim.b.stats.icmpEchoRequests, why).toBe(0);
    expect(sim.b.ipv4.reasm.pending, why).toBe(0);
    expectNoLeaks(sim);
  });

  it('ARP padding (Etherleak): every frame strata builds is the same in a dirty (0xAA) frame buffer as in a clean one, padding zeroed', () => {
    // The same seeded run twice: frame memory filled with 0x00, then with
    // 0xAA. Every byte a builder writes is a function of the run; a byte it
    // leaves unwritten shows what the memory held before. So the two runs'
    // frames must be identical, byte for byte: ARP requests and replies,
    // TCP SYN, SYN-ACK, data, ACK, FIN and RST, ICMP echo replies and
    // errors, UDP and IPv4 fragments.
    const run = (fill: number): Uint8Array[] => {
      const p = connected({ keep: true, fill, cfg: { timeWaitMs: 1000 } });
      const { sim, ta, cli } = p;
      // Data both ways, then a reset to a closed port and a close.
      cli.write(new TextEncoder().encode('hello over strata'), 0, 17);
      p.srv.write(new TextEncoder().encode('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 0, 40);
      sim.run(100);
      spoofToA(p, { sport: 80, dport: 9, seq: 5, ack: 0, flags: FLAG.SYN });
      // ARP requests as Linux sends them over veth and TAP: 42 bytes, no
      // padding. The reply is built in place, in a frame that held other data.
      for (let k = 0; k < 3; k++) {
        const req = new Uint8Array(42);
        ethEmit(req, 0, MAC_BROADCAST, 0, sim.linkA.mac, 0, ETHERTYPE.ARP);
        arpEmit(req, 14, ARP_OP.REQUEST, sim.linkA.mac, 0, A, null, 0, B);
        expect(inject(sim.linkA, req)).toBe(true);
        sim.run(5);
      }
      // ICMP echo, port unreachable, and a fragmented UDP datagram.
      sim.b.icmp.sendEcho(A, 1, 1, new Uint8Array(3000).fill(3), sim.now);
      const u = sim.a.createUdpSocket();
      u.send(new Uint8Array(3000).fill(7), 9999, Sim.ADDR_B);
      u.send(new Uint8Array(5).fill(7), 9999, Sim.ADDR_B);
      sim.run(100);
      // ARP again (the cache forgets), in both directions.
      sim.a.arp.clear(); sim.b.arp.clear();
      u.send(new Uint8Array(1).fill(1), 9999, Sim.ADDR_B);
      cli.close(); p.srv.close();
      sim.run(5000);
      void ta;
      const frames = [...p.la.sent, ...p.lb.sent];
      expectNoLeaks(sim);
      return frames;
    };
    const clean = run(0x00);
    const dirty = run(0xaa);
    expect(dirty.length).toBe(clean.length);
    const arp: Uint8Array[] = [];
    for (let i = 0; i < clean.length; i++) {
      const c = clean[i]!, d = dirty[i]!;
      const h = ethHeaderLen(d, 0, d.length);
      if (ethType(d, 0, h) === ETHERTYPE.ARP) arp.push(d);
      else if (ethType(d, 0, h) === ETHERTYPE.IPV4) expect(d.length, `frame ${i}: bytes past the IPv4 datagram`).toBe(h + ipv4TotalLen(d, h));
      expect(Buffer.from(d).toString('hex'), `frame ${i}`).toBe(Buffer.from(c).toString('hex'));
    }
    expect(arp.length).toBeGreaterThanOrEqual(7);
    for (const f of arp) {
      expect(f.length).toBe(60);
      expect([...f.subarray(42)].every((x) => x === 0), Buffer.from(f).toString('hex')).toBe(true);
    }
  });
});

describe('TCP receive window', () => {
  it('TCP receive ring grows beyond the window: a 1-byte segment at RCV.NXT + 1 MB does not grow the ring', () => {
    const p = connected();
    const { sim, cli, ta } = p;
    const held0 = cli.rcvBuf.buf.length;
    spoofToA(p, { sport: 80, dport: cli.localPort, seq: cli.rcvNxt + 1_000_000, ack: cli.sndNxt, flags: FLAG.ACK | FLAG.PSH, data: Uint8Array.of(0x41) });
    sim.run(10);
    const wnd = cli.info().rcvWnd;
    const why = JSON.stringify({ ring: cli.rcvBuf.buf.length, held0, wnd, drops: ta.counters.dropsByReason() });
    expect(cli.rcvBuf.buf.length, why).toBe(held0);
    expect(cli.rcvBuf.buf.length, why).toBeLessThanOrEqual(wnd);
    expect(ta.counters.drop('OUT_OF_WINDOW'), why).toBe(1);
    // In-window but past what rounding allows: trimmed to the advertised edge.
    const in0 = cli.info().bytesIn;
    spoofToA(p, { sport: 80, dport: cli.localPort, seq: cli.rcvNxt + wnd - 100, ack: cli.sndNxt, flags: FLAG.ACK | FLAG.PSH, data: new Uint8Array(1000) });
    sim.run(10);
    expect(cli.info().outOfOrder).toBe(1);
    // 100 bytes fit the window (plus what rounding to the window scale adds: < 2^wscale).
    expect(cli.info().bytesIn - in0, why).toBeGreaterThanOrEqual(100);
    expect(cli.info().bytesIn - in0, why).toBeLessThan(100 + (1 << cli.rcvWscale));
    // The ring's storage grows in powers of two up to what the window allows.
    expect(cli.rcvBuf.buf.length, why).toBeLessThanOrEqual(131072);
    expectNoLeaks(sim);
  });

  it('TCP receive ring grows beyond the window: the window grows with data received in order, up to the buffer', () => {
    const p = connected();
    const { sim, cli } = p;
    const w0 = cli.info().rcvWnd;
    expect(w0).toBeLessThanOrEqual(65535);
    const chunk = new Uint8Array(32768);
    let sent = 0, got = 0;
    cli.handler = { onData: (_c, _b, _o, n) => { got += n; return n; } };
    const pump = (): void => { while (sent < 4 << 20) { const n = p.srv.write(chunk, 0, Math.min(chunk.length, (4 << 20) - sent)); if (n === 0) return; sent += n; } };
    p.srv.handler = { ...sink, onDrain: pump };
    pump();
    sim.runUntil(() => got >= 4 << 20, 60_000);
    expect(got).toBe(4 << 20);
    expect(cli.rcvWndClamp).toBe(cli.rcvBuf.capacity);
    expectNoLeaks(sim);
  });
});
