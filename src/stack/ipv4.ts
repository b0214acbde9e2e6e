// The IPv4 layer (RFC 791, RFC 1122 §3.2.1): input validation, local
// delivery to the registered transports, fragment reassembly, the routing
// table, path MTU (RFC 1191) and output with fragmentation. It implements
// NetworkWriter (registration.ts) for the transports going down.
//
// Input: every packet is validated by ipv4Check (version, IHL, total length
// against the frame, options, header checksum) and dropped with its reason
// otherwise. Following RFC 1122 §3.2.1.7 (and Linux), a packet delivered
// locally is never dropped for its TTL; this host does not forward, so a
// packet for another address is dropped (IP_NOT_FOR_US) and TTL_EXCEEDED
// stays unused until forwarding exists. Martian sources are dropped like
// Linux's rp checks do. Connection tracking, when attached, sees every
// datagram after reassembly (as netfilter's defrag-then-conntrack) and every
// datagram we send before fragmentation.
//
// Output: begin() reserves a frame with room for the link and IP headers;
// the transport writes in place; commit() writes the IP header and hands the
// frame to ARP. DF follows Linux's IP_PMTUDISC_WANT by default: set when the
// packet fits the path MTU, otherwise the packet is fragmented locally.
// sendDatagram() sends a transport segment held in any buffer (for
// datagrams larger than a frame), copying it into as many fragments as needed.
import type { NetworkWriter, TransportDispatcher } from './registration.js';
import { CT_RESULT, IPPROTO } from './registration.js';
import { CT_HOOK } from './conntrack/types.js';
import { DROP } from './stats.js';
import type { StackCore } from './iface.js';
import { Reassembler, type FragQueue, type ReassemblyOptions } from './ipv4-reasm.js';
import { ETHERTYPE, MAC_BROADCAST } from './wire/ethernet.js';
import {
  IP4, IP4_FLAG, WIRE_OK, ipv4BadOptionOffset, ipv4Check, ipv4Dst, ipv4Emit, ipv4FragOffset, ipv4HeaderLen, ipv4IsFragment, ipv4IsMartianSource, ipv4Protocol, ipv4Src, ipv4TotalLen,
} from './wire/ipv4.js';
import { InvalidArgumentError } from '../util/errors.js';
import type { Icmp } from './icmp.js';
import { ICMP_TYPE } from './wire/icmp.js';

/**
 * The optional connection-tracking hook: called for every IPv4 datagram in
 * (hook CT_HOOK.IN, after reassembly) and out (CT_HOOK.OUT, before
 * fragmentation) with the whole, validated datagram at buf[ipOff…] (its
 * total length field is exact). Returning CT_RESULT.DROP drops it (counted
 * CONNTRACK). conntrack/table.ts's Conntrack fits as is.
 */
export interface ConntrackHook {
  track(buf: Uint8Array, ipOff: number, hook: number, now: number): number;
  /** When present, poll() expires idle entries (at most `budget` per poll)… */
  expire?(now: number, budget?: number): number;
  /** …and pollAt() wakes up for the next expiry. */
  nextExpiry?(): number | undefined;
}

export interface Ipv4Options {
  reassembly?: ReassemblyOptions;
  /** Default TTL of our packets. Linux: 64. */
  ttl?: number;
  /** Lifetime of a learned path MTU, ms. Linux mtu_expires: 10 min. */
  pmtuExpiresMs?: number;
  /** Smallest path MTU believed from ICMP. Linux min_pmtu: 552. */
  minPmtu?: number;
  /** Path MTU cache bound (entries). */
  pmtuMaxEntries?: number;
  /** Validate header checksums on input (turn off only when the device does). */
  verifyChecksum?: boolean;
}

export interface SendOptions { ttl?: number; tos?: number; dontFragment?: boolean }

/** RFC 1191 §7 plateau table, for fragmentation-needed without a next-hop MTU. */
const PLATEAUS = [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

class PmtuEntry { constructor(public mtu: number, public expires: number) {} }

export class Ipv4 implements NetworkWriter {
  readonly mem: Uint8Array;
  src = 0;
  room = 0;
  readonly reasm: Reassembler;
  conntrack: ConntrackHook | null = null;
  icmp!: Icmp;
  private readonly transports: (TransportDispatcher | null)[] = new Array<TransportDispatcher | null>(256).fill(null);
  /** The attached transports that bracket receive bursts (deliverBegin/deliverEnd). */
  private readonly bursty: TransportDispatcher[] = [];
  private inBurst = false;
  private readonly pmtu = new Map<number, PmtuEntry>();
  // IP ids: 2048 counters picked by a keyed hash of (dst, protocol), as
  // Linux's ip_idents_reserve does, so ids are not one global sequence an
  // observer could use to count our traffic (RFC 7739 §5.3).
  private readonly idents = new Uint16Array(2048);
  private readonly idKey: number;
  private readonly ttl: number;
  readonly pmtuExpiresMs: number;
  readonly minPmtu: number;
  private readonly pmtuMax: number;
  private readonly verify: boolean;
  // The packet being built between begin() and commit().
  private bFrame = -1;
  private bDst = 0;
  private bProto = 0;
  private bNextHop = 0;
  private bMtu = 0;
  // The packet being delivered (for ICMP errors quoting it): set and cleared around delivery.
  curBuf: Uint8Array | null = null;
  curIpOff = 0;
  curLen = 0;
  /** True while delivering a datagram received as link broadcast or to a broadcast address. */
  curBroadcast = false;

  constructor(private readonly s: StackCore, opts: Ipv4Options = {}) {
    this.mem = s.mem;
    this.ttl = opts.ttl ?? 64;
    this.pmtuExpiresMs = opts.pmtuExpiresMs ?? 600_000;
    this.minPmtu = opts.minPmtu ?? 552;
    this.pmtuMax = opts.pmtuMaxEntries ?? 4096;
    this.verify = opts.verifyChecksum ?? true;
    for (let i = 0; i < this.idents.length; i++) this.idents[i] = s.random() & 0xffff;
    this.idKey = s.random();
    this.reasm = new Reassembler(s.timers, s.stats, opts.reassembly ?? {}, (q, now) => this.reasmTimedOut(q, now));
  }

  /** Registers a transport going up (attach, in gVisor's words). */
  attach(t: TransportDispatcher): void {
    if (!(t.protocol > 0 && t.protocol < 256)) throw new InvalidArgumentError(`bad protocol ${t.protocol}`);
    if (t.protocol === IPPROTO.ICMP) throw new InvalidArgumentError('ICMP is built into the IPv4 layer');
    const prev = this.transports[t.protocol];
    if (prev) { const i = this.bursty.indexOf(prev); if (i >= 0) this.bursty.splice(i, 1); }
    this.transports[t.protocol] = t;
    if (t.deliverBegin !== undefined && t.deliverEnd !== undefined) this.bursty.push(t);
  }

  /** A receive burst starts: transports may defer per-segment work until burstEnd() (registration.ts). */
  burstBegin(): void {
    if (this.inBurst) return;
    this.inBurst = true;
    const b = this.bursty;
    for (let i = 0; i < b.length; i++) b[i]!.deliverBegin!();
  }

  /** The burst ended: transports do the deferred work (defer: only queue it for the next poll). */
  burstEnd(now: number, defer = false): void {
    if (!this.inBurst) return;
    this.inBurst = false;
    const b = this.bursty;
    let i = 0;
    try {
      for (; i < b.length; i++) b[i]!.deliverEnd!(now, defer);
    } finally {
      // One transport's application threw: the others still close their bracket (deferring).
      for (let j = i + 1; j < b.length; j++) b[j]!.deliverEnd!(now, true);
    }
  }

  transport(protocol: number): TransportDispatcher | null { return this.transports[protocol] ?? null; }

  // ---- input ----

  /** One IPv4 packet of the current frame: buf[ipOff, ipOff+len) (len may include link padding). */
  input(buf: Uint8Array, ipOff: number, len: number, linkBroadcast: boolean, now: number): void {
    const s = this.s;
    s.stats.ipRxPackets++;
    const r = ipv4Check(buf, ipOff, len, this.verify);
    if (r !== WIRE_OK) {
      s.stats.drop(r);
      if (r === DROP.IP_BAD_OPTIONS) this.badOptions(buf, ipOff, linkBroadcast, now);
      return;
    }
    const src = ipv4Src(buf, ipOff);
    const dst = ipv4Dst(buf, ipOff);
    const bcast = s.isBroadcast(dst);
    if (!bcast && !s.isLocal(dst)) { s.stats.drop(DROP.IP_NOT_FOR_US); return; }
    // Our own address as a source is martian unless the packet came round the loopback queue.
    if (ipv4IsMartianSource(src) || (s.isLocal(src) && !s.looping)) { s.stats.drop(DROP.IP_MARTIAN_SOURCE); return; }
    if (s.isBroadcast(src)) { s.stats.drop(DROP.IP_BROADCAST_SOURCE); return; }
    if (ipv4IsFragment(buf, ipOff)) {
      const q = this.reasm.add(buf, ipOff, now);
      if (q === null) return;
      try {
        this.deliver(q.buf, q.ipOff, ipv4TotalLen(q.buf, q.ipOff), bcast || linkBroadcast, false, now);
      } finally {
        this.reasm.release(q);
      }
      return;
    }
    this.deliver(buf, ipOff, ipv4TotalLen(buf, ipOff), bcast || linkBroadcast, true, now);
  }

  /**
   * ICMP parameter problem pointing at the malformed option (RFC 792, RFC
   * 1122 §3.2.1.8; Linux does the same from ip_options_compile). The header
   * passed every other check, so its lengths and checksum can be trusted.
   */
  private badOptions(buf: Uint8Array, ipOff: number, linkBroadcast: boolean, now: number): void {
    const s = this.s;
    const dst = ipv4Dst(buf, ipOff), src = ipv4Src(buf, ipOff);
    if (!s.isLocal(dst) || ipv4IsMartianSource(src) || s.isLocal(src)) return;
    const ptr = ipv4BadOptionOffset(buf, ipOff);
    if (ptr < 0) return;
    this.icmp.sendError(ICMP_TYPE.PARAMETER_PROBLEM, 0, (ptr << 24) >>> 0, buf, ipOff, ipv4TotalLen(buf, ipOff), linkBroadcast, now);
  }

  /** Delivers a whole datagram buf[ipOff, ipOff+total) to ICMP or a transport. */
  private deliver(buf: Uint8Array, ipOff: number, total: number, bcast: boolean, inFrame: boolean, now: number): void {
    const s = this.s;
    if (this.conntrack !== null && this.conntrack.track(buf, ipOff, CT_HOOK.IN, now) === CT_RESULT.DROP) { s.stats.drop(DROP.CONNTRACK); return; }
    const hl = ipv4HeaderLen(buf, ipOff);
    const proto = ipv4Protocol(buf, ipOff);
    const src = ipv4Src(buf, ipOff);
    const dst = ipv4Dst(buf, ipOff);
    this.curBuf = buf; this.curIpOff = ipOff; this.curLen = total; this.curBroadcast = bcast;
    try {
      if (proto === IPPROTO.ICMP) {
        s.stats.ipRxDelivered++;
        this.icmp.input(buf, ipOff, hl, total, src, dst, bcast, inFrame, now);
        return;
      }
      const t = this.transports[proto];
      if (t == null) {
        s.stats.drop(DROP.IP_UNKNOWN_PROTOCOL);
        this.icmp.protocolUnreachable(now);
        return;
      }
      s.stats.ipRxDelivered++;
      t.deliver(src, dst, buf, ipOff + hl, total - hl, now);
    } finally {
      this.curBuf = null;
    }
  }

  /**
   * Reports an error about a packet we sent, without a wire ICMP message
   * (the next hop failed to resolve): the quoted transport's deliverError()
   * is called as if ICMP type/code had arrived. buf[ipOff, ipOff+len) is our
   * IPv4 packet; only a first fragment carries the transport header.
   */
  localError(buf: Uint8Array, ipOff: number, len: number, type: number, code: number, now: number): void {
    const hl = ipv4HeaderLen(buf, ipOff);
    if (len < hl + 8 || ipv4FragOffset(buf, ipOff) !== 0) return;
    const t = this.transports[ipv4Protocol(buf, ipOff)];
    if (t == null) return;
    t.deliverError(type, code, 0, ipv4Src(buf, ipOff), ipv4Dst(buf, ipOff), buf, ipOff + hl, len - hl, now);
  }

  private reasmTimedOut(q: FragQueue, now: number): void {
    // Quote fragment zero's header and first 8 data bytes (RFC 792).
    const o = q.ipOff;
    const b = q.buf;
    const quoteLen = q.hlen + Math.min(8, q.ranges[1]!);
    // The stored header still says "fragment zero": it is what the sender sent.
    this.icmp.timeExceededReassembly(b, o, quoteLen, now);
  }

  // ---- output: NetworkWriter ----

  begin(dst: number, protocol: number, now: number): number {
    const s = this.s;
    if (this.bFrame >= 0) this.abort();
    if (s.routes.lookup(dst) < 0) { s.stats.drop(DROP.NO_ROUTE); return -1; }
    const f = s.takeFrame();
    if (f < 0) { s.stats.drop(DROP.NO_FRAME); return -1; }
    this.bFrame = f;
    this.bDst = dst;
    this.bProto = protocol;
    this.bNextHop = s.routes.nextHop;
    this.src = s.routes.src;
    this.bMtu = this.pathMtuAt(dst, now);
    this.room = Math.min(this.bMtu, s.frameSize - s.l2Len) - IP4.HLEN;
    return f + s.l2Len + IP4.HLEN;
  }

  commit(len: number, now: number, opts?: SendOptions): boolean {
    const s = this.s;
    const f = this.bFrame;
    if (f < 0) throw new InvalidArgumentError('commit() without begin()');
    this.bFrame = -1;
    const total = IP4.HLEN + len;
    if (len < 0 || total > s.frameSize - s.l2Len) { s.releaseFrame(f); throw new InvalidArgumentError(`packet of ${len} bytes does not fit the frame`); }
    const ttl = opts?.ttl ?? this.ttl;
    if (!(ttl >= 1 && ttl <= 255)) { s.releaseFrame(f); throw new InvalidArgumentError('ttl must be 1..255'); }
    const fits = total <= this.bMtu;
    const df = opts?.dontFragment ?? fits;
    if (df && !fits) { s.stats.drop(DROP.FRAG_NEEDED_DF); s.releaseFrame(f); return false; }
    const ipOff = f + s.l2Len;
    ipv4Emit(this.mem, ipOff, this.src, this.bDst, this.bProto, total, this.nextId(this.bDst, this.bProto), df ? IP4_FLAG.DF : 0, ttl, opts?.tos ?? 0);
    if (this.conntrack !== null && this.conntrack.track(this.mem, ipOff, CT_HOOK.OUT, now) === CT_RESULT.DROP) {
      s.stats.drop(DROP.CONNTRACK); s.releaseFrame(f); return false;
    }
    s.stats.ipTxPackets++;
    if (fits) {
      s.writeL2(f, MAC_BROADCAST, ETHERTYPE.IPV4);
      s.arp.output(f, s.l2Len + total, this.bNextHop, now);
      return true;
    }
    const ok = this.fragment(this.mem, ipOff, total, this.bNextHop, this.bMtu, now);
    s.releaseFrame(f);
    return ok;
  }

  abort(): void {
    if (this.bFrame < 0) return;
    this.s.releaseFrame(this.bFrame);
    this.bFrame = -1;
  }

  /**
   * Sends a transport segment from any buffer: buf[off, off+len) is the
   * transport header and payload, and the 20 bytes before off are headroom
   * this call overwrites with the IP header. Fragments as needed (unless
   * dontFragment). Returns false when dropped (reason counted).
   */
  sendDatagram(dst: number, protocol: number, buf: Uint8Array, off: number, len: number, now: number, opts?: SendOptions): boolean {
    const s = this.s;
    if (off < IP4.HLEN) throw new InvalidArgumentError('sendDatagram needs 20 bytes of headroom');
    const total = IP4.HLEN + len;
    if (total > 65535) throw new InvalidArgumentError('datagram larger than 65535 bytes');
    if (s.routes.lookup(dst) < 0) { s.stats.drop(DROP.NO_ROUTE); return false; }
    const nextHop = s.routes.nextHop;
    const src = s.routes.src;
    const mtu = Math.min(this.pathMtuAt(dst, now), s.frameSize - s.l2Len);
    const fits = total <= mtu;
    const df = opts?.dontFragment ?? fits;
    if (df && !fits) { s.stats.drop(DROP.FRAG_NEEDED_DF); return false; }
    const ttl = opts?.ttl ?? this.ttl;
    const ipOff = off - IP4.HLEN;
    ipv4Emit(buf, ipOff, src, dst, protocol, total, this.nextId(dst, protocol), df ? IP4_FLAG.DF : 0, ttl, opts?.tos ?? 0);
    if (this.conntrack !== null && this.conntrack.track(buf, ipOff, CT_HOOK.OUT, now) === CT_RESULT.DROP) { s.stats.drop(DROP.CONNTRACK); return false; }
    s.stats.ipTxPackets++;
    if (fits) {
      const f = s.takeFrame();
      if (f < 0) { s.stats.drop(DROP.NO_FRAME); return false; }
      s.writeL2(f, MAC_BROADCAST, ETHERTYPE.IPV4);
      this.mem.set(buf.subarray(ipOff, ipOff + total), f + s.l2Len);
      s.arp.output(f, s.l2Len + total, nextHop, now);
      return true;
    }
    return this.fragment(buf, ipOff, total, nextHop, mtu, now);
  }

  /** Copies the datagram buf[ipOff, +total) (20-byte header) into fragments of at most mtu bytes. */
  private fragment(buf: Uint8Array, ipOff: number, total: number, nextHop: number, mtu: number, now: number): boolean {
    const s = this.s;
    const hl = ipv4HeaderLen(buf, ipOff);
    const per = ((Math.min(mtu, s.frameSize - s.l2Len) - hl) >>> 3) << 3;
    const dataLen = total - hl;
    const frames = Math.ceil(dataLen / per);
    s.stats.fragmentedPackets++;
    const id = (buf[ipOff + IP4.ID]! << 8) | buf[ipOff + IP4.ID + 1]!;
    const src = ipv4Src(buf, ipOff), dst = ipv4Dst(buf, ipOff);
    const proto = ipv4Protocol(buf, ipOff);
    const ttl = buf[ipOff + IP4.TTL]!, tos = buf[ipOff + IP4.TOS]!;
    for (let k = 0; k < frames; k++) {
      const start = k * per;
      const n = Math.min(per, dataLen - start);
      const f = s.takeFrame();
      if (f < 0) { s.stats.drop(DROP.NO_FRAME); return false; }
      s.writeL2(f, MAC_BROADCAST, ETHERTYPE.IPV4);
      const o = f + s.l2Len;
      const more = start + n < dataLen ? IP4_FLAG.MF : 0;
      ipv4Emit(this.mem, o, src, dst, proto, IP4.HLEN + n, id, more | (start >>> 3), ttl, tos);
      this.mem.set(buf.subarray(ipOff + hl + start, ipOff + hl + start + n), o + IP4.HLEN);
      s.stats.fragmentsSent++;
      s.arp.output(f, s.l2Len + IP4.HLEN + n, nextHop, now);
    }
    return true;
  }

  private nextId(dst: number, protocol: number): number {
    let h = Math.imul(dst ^ this.idKey, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 15) ^ protocol, 0x85ebca6b);
    const b = (h ^ (h >>> 13)) & 2047;
    return this.idents[b]++;
  }

  // ---- path MTU ----

  pathMtu(dst: number): number { return this.pathMtuAt(dst, this.s.now); }

  private pathMtuAt(dst: number, now: number): number {
    const e = this.pmtu.get(dst);
    if (e !== undefined) {
      if (e.expires > now) return e.mtu;
      this.pmtu.delete(dst);
    }
    return this.s.mtu;
  }

  /**
   * Learns from a fragmentation-needed message (RFC 1191): the path MTU to
   * dst is lowered to mtu (never raised, never below minPmtu; a zero MTU
   * from a pre-1191 router is estimated from the plateau table using the
   * quoted packet's length). Returns the new path MTU.
   */
  learnPmtu(dst: number, mtu: number, quotedTotalLen: number, now: number): number {
    const cur = this.pathMtuAt(dst, now);
    let m = mtu;
    if (m === 0) {
      m = PLATEAUS.find((p) => p < quotedTotalLen) ?? 68;
    }
    if (m < this.minPmtu) m = this.minPmtu;
    if (m >= cur) return cur;
    if (!this.pmtu.has(dst) && this.pmtu.size >= this.pmtuMax) {
      const oldest = this.pmtu.keys().next().value;
      if (oldest !== undefined) this.pmtu.delete(oldest);
    }
    this.pmtu.set(dst, new PmtuEntry(m, now + this.pmtuExpiresMs));
    this.s.stats.pmtuUpdates++;
    return m;
  }

  /** Forgets learned path MTUs (all, or to dst). */
  flushPmtu(dst?: number): void { if (dst === undefined) this.pmtu.clear(); else this.pmtu.delete(dst); }

  isLocal(addr: number): boolean { return this.s.isLocal(addr); }

  sourceFor(dst: number): number { return this.s.routes.lookup(dst) < 0 ? -1 : this.s.routes.src; }
}
