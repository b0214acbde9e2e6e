// The seeded packet fuzzer (issue 10, Deliver §8): random and mutated
// Ethernet/ARP/IPv4/ICMP/UDP/TCP frames fed into two strata stacks over a
// MemLink pair on a virtual clock, while real connections between them carry
// data. Some frames are built from live connection state: in-window data,
// overlapping data, RST and SYN in the window, bad ACKs, urgent pointers and
// options around the real SEQ/ACK of established connections, and ACKs that
// complete handshakes begun by spoofed SYNs.
//
// Invariants, checked as it runs and at the end of each episode:
//   - no exception escapes the stacks;
//   - frame accounting is exact: every frame taken from a link is handed
//     back (both links' outstanding() is 0 once the stacks are closed);
//   - memory is bounded: receive rings within the window they advertised and
//     their capacity, reassembly buffers, conntrack entries and the ARP
//     table under their caps;
//   - no endless exchanges: once the fuzzing stops, frames per virtual second
//     settle to what rate-limited answers allow (2 per connection per side);
//   - the legit connections' data arrives intact, or they fail cleanly (closed
//     with an error). Legit connections are attacked only blindly (sequence
//     numbers outside their window): TCP by design accepts a segment that
//     hits the window, so in-window attacks target the victim connections.
//
// The budget is wall-clock time: STRATA_FUZZ_SECONDS (default 30 under CI,
// 10 otherwise). A failure prints its seed and episode; replay with
//   STRATA_FUZZ_SEED=0x… STRATA_FUZZ_EPISODE=n npx vitest run test/stack-packet-fuzz.test.ts
import { describe, expect, it } from 'vitest';
import { Sim } from '../src/stack/sim.js';
import { Tcp } from '../src/stack/tcp/tcp.js';
import type { TcpConnection, TcpHandler } from '../src/stack/tcp/connection.js';
import { Conntrack } from '../src/stack/conntrack/table.js';
import { ip4FromString } from '../src/stack/registration.js';
import type { Burst } from '../src/link/types.js';
import type { MemLink } from '../src/link/mem.js';
import { Prng } from '../src/util/prng.js';
import { ETHERTYPE, MAC_BROADCAST, ethEmit } from '../src/stack/wire/ethernet.js';
import { ARP_OP, arpEmit } from '../src/stack/wire/arp.js';
import { IP4_FLAG, ipv4FillChecksum } from '../src/stack/wire/ipv4.js';
import { ICMP_TYPE, icmpEmit } from '../src/stack/wire/icmp.js';
import { udpEmit } from '../src/stack/wire/udp.js';
import { FLAG } from '../src/stack/wire/tcp.js';
import { finish, pseudo4, sum16 } from '../src/stack/wire/checksum.js';
import { WireTap, inject, ipv4Frame, tcpSegment } from './helpers/stack-frames.js';
import { fuzzSeed } from './helpers/fuzz.js';

const A = ip4FromString(Sim.ADDR_A), B = ip4FromString(Sim.ADDR_B);
const SUBNET_BCAST = ip4FromString('10.0.0.255');
const BUDGET_S = Number(process.env.STRATA_FUZZ_SECONDS ?? (process.env.CI ? 30 : 10));
const SEED = fuzzSeed();
const FIRST_EPISODE = Number(process.env.STRATA_FUZZ_EPISODE ?? 0);
const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

const CT_MAX = 512;
const LEGIT_BYTES = 48 * 1024;
const RECENT = 64;

/** Keeps copies of the last RECENT frames a link sent (material for mutation) and counts them. */
class Recorder extends WireTap {
  readonly recent: Uint8Array[] = [];
  constructor(inner: MemLink) { super(inner, false); }
  override send(b: Burst): number {
    for (let i = 0; i < b.count; i++) {
      const f = this.inner.mem.slice(b.off(i), b.off(i) + b.len(i));
      if (this.recent.length < RECENT) this.recent.push(f); else this.recent[(this.frames + i) % RECENT] = f;
    }
    return super.send(b);
  }
}

/** One end of a legit transfer: sends its stream, hashes what it receives. */
class Legit {
  sent = 0; got = 0; ended = false; closed = false; err: unknown = null;
  /** What arrived, in order (checked against the peer's stream: it must be a prefix of it). */
  readonly received = new Uint8Array(LEGIT_BYTES);
  overrun = 0;
  conn: TcpConnection | null = null;
  constructor(readonly data: Uint8Array) {}
  readonly handler: TcpHandler = {
    onConnect: (c) => this.pump(c),
    onDrain: (c) => this.pump(c),
    onData: (_c, buf, off, len) => {
      const n = Math.min(len, LEGIT_BYTES - this.got);
      this.received.set(buf.subarray(off, off + n), this.got);
      this.got += n; this.overrun += len - n;
      return len;
    },
    onEnd: () => { this.ended = true; },
    onClose: (_c, err) => { this.closed = true; this.err = err; },
  };
  pump(c: TcpConnection): void {
    this.conn = c;
    while (this.sent < this.data.length) {
      const n = c.write(this.data, this.sent, Math.min(8192, this.data.length - this.sent));
      if (n === 0) return;
      this.sent += n;
    }
    c.end();
  }
}

const sink: TcpHandler = { onData: (_c, _b, _o, n) => n };

function bytes(p: Prng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = p.u32() & 255;
  return b;
}
const pick = <T>(p: Prng, xs: readonly T[]): T => xs[p.int(xs.length)]!;
const pow2ceil = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(n, 1)));

interface Side { stack: Sim['a']; tcp: Tcp; link: MemLink; rec: Recorder; addr: number }

class Episode {
  readonly sim: Sim;
  readonly p: Prng;
  readonly a: Side;
  readonly b: Side;
  readonly ct = new Conntrack({ maxEntries: CT_MAX });
  readonly legit: [Legit, Legit][] = [];
  /** Local ports (on A) of legit connections: blind attacks only. */
  readonly legitPorts = new Set<number>();
  tried = 0;
  completions = 0;

  constructor(readonly seed: number) {
    this.p = new Prng(seed);
    const rec: Record<string, Recorder> = {};
    this.sim = new Sim({ seed, impair: { delay: 1, jitter: 1 }, b: { conntrack: this.ct }, wrap: (l, side) => (rec[side] = new Recorder(l)) });
    const ta = Tcp.attach(this.sim.a, { seed: seed ^ 1 });
    const tb = Tcp.attach(this.sim.b, { seed: seed ^ 2 });
    this.a = { stack: this.sim.a, tcp: ta, link: this.sim.linkA, rec: rec.a!, addr: A };
    this.b = { stack: this.sim.b, tcp: tb, link: this.sim.linkB, rec: rec.b!, addr: B };
    // B serves legit transfers and victims on 80; A has a listener on 81; UDP echo on B:7.
    const roles = new Map<number, Legit>();
    const l80 = tb.listen(80);
    l80.onAcceptable = () => {
      for (let c = l80.accept(); c !== null; c = l80.accept()) {
        const lg = roles.get(c.remotePort);
        if (lg !== undefined) { c.handler = lg.handler; lg.pump(c); } else c.handler = sink;
      }
    };
    const l81 = ta.listen(81);
    l81.onAcceptable = () => { for (let c = l81.accept(sink); c !== null; c = l81.accept(sink)) void c; };
    const echo = this.sim.b.createUdpSocket();
    echo.bind(7);
    echo.on('message', (m: Buffer, r) => echo.send(m, r.port, r.address));
    echo.on('error', () => { /* an echo to a spoofed, unroutable source: dgram semantics, reported on the socket */ });
    for (let i = 0; i < 2; i++) {
      const cli = new Legit(bytes(this.p, LEGIT_BYTES)), srv = new Legit(bytes(this.p, LEGIT_BYTES));
      const c = ta.connect(B, 80, { handler: cli.handler });
      roles.set(c.localPort, srv);
      this.legitPorts.add(c.localPort);
      this.legit.push([cli, srv]);
    }
    // Victims: idle connections both ways, attacked with their live state.
    for (let i = 0; i < 2; i++) { ta.connect(B, 80, { handler: sink }); tb.connect(A, 81, { handler: sink }); }
  }

  /** The side a frame injected on `from`'s link arrives at. */
  private peerOf(s: Side): Side { return s === this.a ? this.b : this.a; }

  /** Injects a frame arriving at `to`. */
  private send(to: Side, frame: Uint8Array): void {
    this.tried++;
    inject(this.peerOf(to).link, frame);
  }

  private addr(to: Side): number {
    const p = this.p;
    return pick(p, [to.addr, to.addr, to.addr, this.peerOf(to).addr, 0xffffffff, SUBNET_BCAST, 0xe0000001, 0, ip4FromString('10.0.0.77'), ip4FromString('127.0.0.1'), p.u32() >>> 0]);
  }

  private srcAddr(to: Side): number {
    const p = this.p;
    return pick(p, [this.peerOf(to).addr, this.peerOf(to).addr, ip4FromString('10.0.0.77'), ip4FromString('10.0.0.78'), to.addr, 0, 0xffffffff, SUBNET_BCAST, 0xe0000005, p.u32() >>> 0]);
  }

  private dstMac(to: Side): Uint8Array {
    const r = this.p.int(10);
    return r < 7 ? to.link.mac : r < 9 ? MAC_BROADCAST : bytes(this.p, 6);
  }

  /** An Ethernet+IPv4 frame with random header fields around sane values; checksums right most of the time. */
  private ipFrame(to: Side, src: number, dst: number, proto: number, payload: Uint8Array): Uint8Array {
    const p = this.p;
    const f = ipv4Frame(this.dstMac(to), this.peerOf(to).link.mac, src, dst, proto, payload, {
      id: p.int(8), flagsFrag: p.int(10) === 0 ? (p.u32() & 0xffff) : p.int(4) === 0 ? IP4_FLAG.DF : 0, ttl: p.int(10) === 0 ? p.int(2) : 64,
    });
    if (p.int(20) === 0) f[14] = p.u32() & 255; // version/IHL
    if (p.int(20) === 0) { f[16] = p.u32() & 255; f[17] = p.u32() & 255; } // total length
    if (p.int(20) !== 0) ipv4FillChecksum(f, 14);
    return f;
  }

  private tcpTo(to: Side, src: number, dst: number, seg: Parameters<typeof tcpSegment>[2]): void {
    const t = tcpSegment(src, dst, seg);
    if (this.p.int(30) === 0) t[this.p.int(t.length)] ^= 1 << this.p.int(8); // a bad checksum now and then
    this.send(to, this.ipFrame(to, src, dst, 6, t));
  }

  private tcpOptions(c: TcpConnection | null): Uint8Array | undefined {
    const p = this.p;
    const r = p.int(8);
    if (r < 3) return undefined;
    const o: number[] = [];
    const n = 1 + p.int(4);
    for (let i = 0; i < n; i++) {
      switch (p.int(8)) {
        case 0: o.push(2, 4, p.int(256), p.int(256)); break; // MSS
        case 1: o.push(1, 3, 3, p.int(20)); break; // NOP + window scale
        case 2: o.push(4, 2); break; // SACK permitted
        case 3: { // timestamps near the live ones
          const v = c !== null ? (c.tsRecent + p.int(2000) - 1000) >>> 0 : p.u32();
          o.push(1, 1, 8, 10, v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255, p.int(256), p.int(256), p.int(256), p.int(256));
          break;
        }
        case 4: { // SACK blocks around what is in flight
          const base = c !== null ? c.sndUna : p.u32();
          const k = 1 + p.int(4);
          o.push(1, 1, 5, 2 + 8 * k);
          for (let j = 0; j < k; j++) {
            const s = (base + p.int(200_000) - 50_000) >>> 0, e = (s + p.int(100_000)) >>> 0;
            o.push(s >>> 24, (s >>> 16) & 255, (s >>> 8) & 255, s & 255, e >>> 24, (e >>> 16) & 255, (e >>> 8) & 255, e & 255);
          }
          break;
        }
        case 5: o.push(p.int(256), p.int(42)); break; // unknown or bad length
        case 6: o.push(0); break; // EOL
        default: o.push(1); break;
      }
    }
    return Uint8Array.from(o.slice(0, 40));
  }

  private conns(s: Side, pred: (c: TcpConnection) => boolean): TcpConnection[] { return s.tcp.connections().filter(pred); }

  private isLegit(c: TcpConnection): boolean {
    return (c.remotePort === 80 && this.legitPorts.has(c.localPort)) || (c.localPort === 80 && this.legitPorts.has(c.remotePort));
  }

  /** A segment around a victim connection's live SEQ/ACK, from its peer. */
  private liveSegment(): void {
    const p = this.p;
    const to = p.int(2) === 0 ? this.a : this.b;
    const vs = this.conns(to, (c) => !this.isLegit(c) && c.state !== 'CLOSED');
    if (vs.length === 0) return;
    const c = pick(p, vs);
    const wnd = c.info().rcvWnd;
    const seq = (c.rcvNxt + pick(p, [0, 0, 0, -1, 1, p.int(wnd + 1), wnd, wnd - 1, wnd + 1, -p.int(70_000), p.u32(), 0x80000000])) >>> 0;
    const ack = (c.sndUna + pick(p, [0, 0, c.sndNxt - c.sndUna, 1, -1, p.int(70_000), -p.int(70_000), -(c.maxSndWnd + 1), 0x40000000])) >>> 0;
    let flags: number = FLAG.ACK;
    const r = p.int(12);
    if (r === 0) flags |= FLAG.RST; else if (r === 1) flags = FLAG.RST; else if (r === 2) flags |= FLAG.SYN;
    else if (r === 3) flags = FLAG.SYN; else if (r === 4) flags |= FLAG.FIN; else if (r === 5) flags = p.int(64);
    if (p.int(6) === 0) flags |= FLAG.URG;
    if (p.int(3) === 0) flags |= FLAG.PSH;
    const data = p.int(3) === 0 ? undefined : bytes(p, pick(p, [1, 10, 100, 536, 1400, p.int(1400)]));
    this.tcpTo(to, c.remoteAddr, c.localAddr, {
      sport: c.remotePort, dport: c.localPort, seq, ack, flags, wnd: p.int(4) === 0 ? 0 : p.int(65536),
      urg: p.int(65536), data, options: this.tcpOptions(c),
    });
  }

  /** Blind segments to legit connections: SEQ outside their window, anything else random. */
  private blindSegment(): void {
    const p = this.p;
    const to = p.int(2) === 0 ? this.a : this.b;
    const ls = this.conns(to, (c) => this.isLegit(c));
    if (ls.length === 0) return;
    const c = pick(p, ls);
    const seq = (c.rcvNxt + (1 << 30) + p.int(1 << 30)) >>> 0;
    this.tcpTo(to, c.remoteAddr, c.localAddr, {
      sport: c.remotePort, dport: c.localPort, seq, ack: p.u32(), flags: p.int(64), wnd: p.int(65536),
      urg: p.int(65536), data: p.int(2) === 0 ? bytes(p, p.int(1400)) : undefined, options: this.tcpOptions(null),
    });
  }

  /** SYNs from spoofed or real sources to listeners and closed ports; and ACKs completing handshakes begun so. */
  private handshake(): void {
    const p = this.p;
    const to = p.int(2) === 0 ? this.a : this.b;
    const half = this.conns(to, (c) => c.state === 'SYN-RECEIVED' && !this.isLegit(c) && c.remoteAddr !== this.peerOf(to).addr);
    if (half.length > 0 && p.int(2) === 0) {
      const c = pick(p, half);
      this.completions++;
      this.tcpTo(to, c.remoteAddr, c.localAddr, {
        sport: c.remotePort, dport: c.localPort, seq: c.rcvNxt, ack: (c.iss + 1) >>> 0, flags: FLAG.ACK | (p.int(4) === 0 ? FLAG.PSH : 0),
        data: p.int(2) === 0 ? bytes(p, p.int(600)) : undefined, options: this.tcpOptions(null),
      });
      return;
    }
    const dst = to === this.b ? pick(p, [80, 80, 80, 9, p.int(65536)]) : pick(p, [81, 81, 9, p.int(65536)]);
    const src = pick(p, [ip4FromString('10.0.0.77'), ip4FromString('10.0.0.78'), this.peerOf(to).addr]);
    this.tcpTo(to, src, to.addr, {
      sport: 1024 + p.int(60000), dport: dst, seq: p.u32(), ack: p.int(3) === 0 ? p.u32() : 0,
      flags: p.int(8) === 0 ? p.int(256) : FLAG.SYN, options: this.tcpOptions(null), data: p.int(8) === 0 ? bytes(p, 100) : undefined,
    });
  }

  private arp(): void {
    const p = this.p;
    const to = p.int(2) === 0 ? this.a : this.b;
    const f = new Uint8Array(pick(p, [42, 42, 60, 28 + 14 - p.int(10), 100]));
    const from = this.peerOf(to).link.mac;
    ethEmit(f, 0, p.int(3) === 0 ? to.link.mac : MAC_BROADCAST, 0, from, 0, ETHERTYPE.ARP);
    if (f.length >= 42) {
      arpEmit(f, 14, pick(p, [ARP_OP.REQUEST, ARP_OP.REPLY, p.int(65536)]), p.int(4) === 0 ? bytes(p, 6) : from, 0,
        this.srcAddr(to), p.int(2) === 0 ? null : bytes(p, 6), 0, this.addr(to));
      if (p.int(10) === 0) f[14 + p.int(8)] = p.u32() & 255; // hardware/protocol type and lengths
    }
    this.send(to, f);
  }

  private icmp(): void {
    const p = this.p;
    const to = p.int(2) === 0 ? this.a : this.b;
    const type = pick(p, [ICMP_TYPE.ECHO_REQUEST, ICMP_TYPE.ECHO_REPLY, ICMP_TYPE.DEST_UNREACHABLE, ICMP_TYPE.TIME_EXCEEDED, 12, p.int(256)]);
    let body: Uint8Array;
    if (type === ICMP_TYPE.DEST_UNREACHABLE || type === ICMP_TYPE.TIME_EXCEEDED || type === 12) {
      // Quote one of our own packets (a recent frame of `to`), or garbage.
      const recent = to.rec.recent.filter((f) => f.length > 14 + 28 && f[12] === 0x08 && f[13] === 0x00);
      const q = recent.length > 0 && p.int(4) !== 0 ? pick(p, recent).subarray(14) : bytes(p, p.int(80));
      body = new Uint8Array(8 + Math.min(q.length, pick(p, [28, 48, 68, 576])));
      body.set(q.subarray(0, body.length - 8), 8);
    } else {
      body = new Uint8Array(8 + p.int(2000));
      body.set(bytes(p, body.length - 8), 8);
    }
    icmpEmit(body, 0, type, p.int(16), type === ICMP_TYPE.DEST_UNREACHABLE && p.int(2) === 0 ? pick(p, [0, 68, 576, 1280, 65535, p.int(1500)]) : p.u32(), body.length);
    if (body.length + 20 > 1500) { this.fragments(to, 1, body); return; }
    this.send(to, this.ipFrame(to, this.srcAddr(to), this.addr(to), 1, body));
  }

  private udp(): void {
    const p = this.p;
    const to = p.int(2) === 0 ? this.a : this.b;
    const src = this.srcAddr(to), dst = this.addr(to);
    const n = p.int(3) === 0 ? p.int(3000) : p.int(200);
    const u = new Uint8Array(8 + n);
    u.set(bytes(p, n), 8);
    udpEmit(u, 0, 1024 + p.int(60000), pick(p, [7, 7, 9, p.int(65536)]), u.length, src, dst);
    if (p.int(10) === 0) { u[4] = p.u32() & 255; u[5] = p.u32() & 255; } // length
    if (u.length + 20 > 1500) { this.fragments(to, 17, u, src, dst); return; }
    this.send(to, this.ipFrame(to, src, dst, 17, u));
  }

  /** A datagram cut into fragments with random sizes, overlaps, gaps, duplicates and lies. */
  private fragments(to: Side, proto: number, payload?: Uint8Array, src?: number, dst?: number): void {
    const p = this.p;
    const data = payload ?? bytes(p, p.int(5000));
    const s = src ?? this.srcAddr(to), d = dst ?? this.addr(to);
    const id = p.int(16);
    let off = 0;
    while (off < data.length) {
      let n = Math.min(8 * (1 + p.int(180)), data.length - off);
      const more = off + n < data.length;
      if (more) n &= ~7;
      if (n === 0) break;
      let fo = off;
      const r = p.int(20);
      if (r === 0) fo = Math.max(0, off - 8 * p.int(4)); // overlap
      else if (r === 1) fo = 8 * p.int(8192); // anywhere, up to 65528
      const f = this.ipFrame(to, s, d, proto, data.subarray(off, off + n));
      const ff = ((r === 2 ? !more : more) ? IP4_FLAG.MF : 0) | (fo >>> 3);
      f[20] = ff >>> 8; f[21] = ff & 255;
      f[18] = 0; f[19] = id;
      ipv4FillChecksum(f, 14);
      if (p.int(10) !== 0) this.send(to, f); // some get lost
      if (p.int(15) === 0) this.send(to, f); // some twice
      off += n;
    }
  }

  /** A recent real frame, mutated; a legit connection's frames only in ways every checksum catches. */
  private mutate(): void {
    const p = this.p;
    const from = p.int(2) === 0 ? this.a : this.b;
    if (from.rec.recent.length === 0) return;
    const f = pick(p, from.rec.recent).slice();
    const to = this.peerOf(from);
    const isTcp = f.length >= 54 && f[12] === 0x08 && f[13] === 0x00 && f[23] === 6;
    const ports = isTcp ? [(f[34]! << 8) | f[35]!, (f[36]! << 8) | f[37]!] : [];
    const legit = isTcp && (this.legitPorts.has(ports[0]!) || this.legitPorts.has(ports[1]!));
    if (legit) {
      f[14 + p.int(f.length - 14)] ^= 1 << p.int(8);
      this.send(to, f);
      return;
    }
    let g: Uint8Array = f;
    switch (p.int(5)) {
      case 0: for (let k = 1 + p.int(8); k > 0; k--) g[p.int(g.length)] ^= 1 << p.int(8); break;
      case 1: g = g.subarray(0, p.int(g.length + 1)); break;
      case 2: { const h = new Uint8Array(g.length + 1 + p.int(200)); h.set(g); h.set(bytes(p, h.length - g.length), g.length); g = h; break; }
      case 3: g[14 + p.int(Math.max(1, g.length - 14))] = p.u32() & 255; break;
      default: break; // a plain replay
    }
    // Fix the checksums half the time, so the mutation reaches the layers above.
    if (p.int(2) === 0 && g.length >= 34 && g[12] === 0x08 && g[13] === 0x00 && (g[14]! >>> 4) === 4) {
      const hl = (g[14]! & 15) * 4;
      if (hl >= 20 && g.length >= 14 + hl) {
        ipv4FillChecksum(g, 14);
        const l4 = 14 + hl, len = g.length - l4;
        const srcA = ((g[26]! << 24) | (g[27]! << 16) | (g[28]! << 8) | g[29]!) >>> 0;
        const dstA = ((g[30]! << 24) | (g[31]! << 16) | (g[32]! << 8) | g[33]!) >>> 0;
        const ck = g[23] === 6 ? 16 : g[23] === 17 ? 6 : g[23] === 1 ? 2 : -1;
        if (ck >= 0 && len >= ck + 2) {
          g[l4 + ck] = 0; g[l4 + ck + 1] = 0;
          const sum = finish(sum16(g, l4, len, g[23] === 1 ? 0 : pseudo4(srcA, dstA, g[23]!, len)));
          g[l4 + ck] = sum >>> 8; g[l4 + ck + 1] = sum & 255;
        }
      }
    }
    this.send(to, g);
  }

  private random(): void {
    const p = this.p;
    const to = p.int(2) === 0 ? this.a : this.b;
    const f = bytes(p, p.int(1515));
    if (f.length >= 14 && p.int(2) === 0) {
      ethEmit(f, 0, this.dstMac(to), 0, this.peerOf(to).link.mac, 0, pick(p, [ETHERTYPE.IPV4, ETHERTYPE.ARP, ETHERTYPE.VLAN, 0x86dd, p.int(65536)]));
      if (f.length >= 15 && p.int(2) === 0) f[14] = 0x45;
    }
    this.send(to, f);
  }

  /** One frame (or a few, for fragments) of a random kind. */
  fuzzOne(): void {
    switch (this.p.int(11)) {
      case 0: this.random(); break;
      case 1: case 2: this.mutate(); break;
      case 3: this.arp(); break;
      case 4: this.icmp(); break;
      case 5: this.udp(); break;
      case 6: this.fragments(this.p.int(2) === 0 ? this.a : this.b, pick(this.p, [1, 6, 17, 99])); break;
      case 7: this.handshake(); break;
      case 8: this.blindSegment(); break;
      default: this.liveSegment(); break;
    }
  }

  /** Memory bounds, checked after every step. */
  checkBounds(): void {
    for (const s of [this.a, this.b]) {
      const r = s.stack.ipv4.reasm;
      expect(r.bytes, 'reassembly bytes').toBeLessThanOrEqual(r.maxBytes);
      expect(r.pending, 'reassembly datagrams').toBeLessThanOrEqual(r.maxDatagrams);
      expect(s.stack.arp.size, 'ARP entries').toBeLessThanOrEqual(1024);
      for (const c of s.tcp.connections()) {
        const ring = c.rcvBuf.buf.length;
        expect(ring, `receive ring of ${c.localPort}<-${c.remotePort} (${c.state})`).toBeLessThanOrEqual(c.rcvBuf.capacity);
        // What the window let in: readable bytes plus the window (+ scale rounding), storage in powers of two.
        expect(ring, `receive ring of ${c.localPort}<-${c.remotePort} beyond its window (clamp ${c.rcvWndClamp})`)
          .toBeLessThanOrEqual(Math.max(4096, pow2ceil(2 * (c.rcvWndClamp ?? c.rcvBuf.capacity) + (1 << c.rcvWscale))));
      }
    }
    expect(this.ct.size, 'conntrack entries').toBeLessThanOrEqual(CT_MAX);
  }

  /** Frames both stacks sent in the next `ms` of virtual time. */
  framesOver(ms: number): number {
    const f0 = this.a.rec.frames + this.b.rec.frames;
    this.sim.run(ms);
    return this.a.rec.frames + this.b.rec.frames - f0;
  }

  close(): void {
    this.sim.a.close(); this.sim.b.close();
    expect(this.sim.linkA.outstanding(), 'frames held on link A after close').toBe(0);
    expect(this.sim.linkB.outstanding(), 'frames held on link B after close').toBe(0);
  }
}

function runEpisode(seed: number, deadline: number): { tried: number; legitDone: number; stats: string } {
  const e = new Episode(seed);
  const p = new Prng(seed ^ 0x5eed);
  e.sim.run(5);
  for (let step = 0; step < 300 && Date.now() < deadline; step++) {
    const k = 1 + p.int(24);
    for (let i = 0; i < k; i++) e.fuzzOne();
    e.sim.run(1 + p.int(40));
    e.checkBounds();
  }
  // Quiet: the legit transfers finish (or fail), timers run out.
  e.sim.run(30_000);
  e.checkBounds();
  for (const [cli, srv] of e.legit) {
    for (const [me, peer] of [[cli, srv], [srv, cli]] as const) {
      const why = `legit transfer: sent ${peer.sent}, got ${me.got}, ended ${me.ended}, closed ${me.closed}, err ${String(me.err)}`;
      // Whatever arrived is exactly what was sent, in order: never bytes of the fuzzer's.
      expect(me.overrun, why).toBe(0);
      expect(Buffer.compare(me.received.subarray(0, me.got), peer.data.subarray(0, me.got)), why).toBe(0);
      // Complete, or failed cleanly: closed with an error, or still waiting
      // (an ARP reply the fuzzer spoofed can misdirect a peer's frames, as on
      // any LAN), never ended short without an error.
      if (me.ended && me.err === null) expect(me.got, why).toBe(peer.data.length);
    }
  }
  // Settled: at most one answer per 500 ms per connection and side (plus a little ARP).
  const conns = e.a.tcp.counters.connections + e.b.tcp.counters.connections;
  const settle = e.framesOver(10_000);
  expect(settle, `frames in 10 virtual s after fuzzing, ${conns} connections`).toBeLessThanOrEqual(10 * (2 * conns + 4));
  let legitDone = 0;
  for (const [cli, srv] of e.legit) if (cli.ended && srv.ended && cli.err === null && srv.err === null) legitDone++;
  const k = (t: Tcp): string => `segsIn ${t.counters.segsIn}, drops ${JSON.stringify(t.counters.dropsByReason())}, limited ${JSON.stringify(t.counters.limitedByReason?.())}`;
  const stats = `A: ${k(e.a.tcp)}; B: ${k(e.b.tcp)}; stack drops A ${e.sim.a.stats.snapshot().dropsTotal} B ${e.sim.b.stats.snapshot().dropsTotal}; handshakes completed ${e.completions}`;
  e.close();
  return { tried: e.tried, legitDone, stats };
}

describe('packet fuzzer', () => {
  it(`random, mutated and live-state frames against two stacks (seed ${hex(SEED)}, ${BUDGET_S} s)`, async () => {
    console.log(`packet fuzzer: seed ${hex(SEED)}; replay with STRATA_FUZZ_SEED=${hex(SEED)}`);
    const start = Date.now();
    const deadline = start + BUDGET_S * 1000;
    let frames = 0, episodes = 0, legitDone = 0;
    const seeds = new Prng(SEED);
    for (let i = 0; i < FIRST_EPISODE; i++) seeds.u32();
    for (let ep = FIRST_EPISODE; ep === FIRST_EPISODE || Date.now() < deadline; ep++) {
      const seed = seeds.u32() >>> 0;
      try {
        const r = runEpisode(seed, Math.min(deadline, Date.now() + 2000));
        frames += r.tried;
        legitDone += r.legitDone;
        if (process.env.STRATA_FUZZ_VERBOSE) console.log(`episode ${ep}: ${r.tried} frames; ${r.stats}`);
      } catch (err) {
        const msg = `packet fuzzer failed: seed ${hex(SEED)}, episode ${ep} (episode seed ${hex(seed)}) after ${frames} frames\n`
          + `  replay: STRATA_FUZZ_SEED=${hex(SEED)} STRATA_FUZZ_EPISODE=${ep} npx vitest run test/stack-packet-fuzz.test.ts`;
        console.error(msg);
        throw new Error(`${msg}\n  ${(err as Error)?.stack ?? String(err)}`);
      }
      episodes++;
      // Let vitest's worker talk to its parent between episodes (a long synchronous run times its RPC out).
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    console.log(`packet fuzzer: ${frames} frames, seed ${hex(SEED)}, ${episodes} episodes, ${legitDone}/${2 * episodes} legit transfers complete, in ${((Date.now() - start) / 1000).toFixed(1)} s`);
    expect(frames).toBeGreaterThan(0);
  }, (BUDGET_S + 120) * 1000);
});
