// ICMP for IPv4 (RFC 792, RFC 1122 §3.2.2, RFC 1191), built into the IPv4
// layer like Linux's icmp.c:
//
//   - Echo requests are answered. When the request sits whole in the frame
//     that carried it (no IP options), the frame itself is turned around in
//     place: MACs and addresses swapped, TTL reset, type changed, both
//     checksums updated incrementally (RFC 1624). A reassembled request is
//     answered through sendDatagram(), fragmented on the way back. Echo to a
//     broadcast address is ignored (Linux icmp_echo_ignore_broadcasts=1).
//   - Destination unreachable (protocol, port) and time exceeded
//     (reassembly) are sent as RFC 1122 §3.2.2 allows: never about an ICMP
//     error, a broadcast, a non-first fragment or a martian source; quoting
//     as much of the packet as fits in 576 bytes (RFC 1812 §4.3.2.3).
//   - Errors are rate-limited like Linux: a global token bucket
//     (icmp_msgs_per_sec 1000, icmp_msgs_burst 50) and one per peer
//     (icmp_ratelimit 1 s, burst 6 = XRLIM_BURST_FACTOR), refilled from the
//     `now` each call is given. Echo replies are not limited (not in Linux's
//     icmp_ratemask).
//   - Errors received are checked (quoted header ours and long enough) and
//     passed to the quoted transport's deliverError(). Fragmentation needed
//     lowers the path MTU first (RFC 1191), so the transport sees the new
//     pathMtu() when it is told.
import { IPPROTO } from './registration.js';
import { DROP } from './stats.js';
import type { StackCore } from './iface.js';
import type { Ipv4 } from './ipv4.js';
import { ethSwapMacs, ETH, macCopy } from './wire/ethernet.js';
import { IP4, WIRE_OK, ipv4Dst, ipv4FragOffset, ipv4HeaderLen, ipv4Protocol, ipv4SetTtl, ipv4Src, ipv4SwapAddrs, ipv4TotalLen } from './wire/ipv4.js';
import {
  ICMP, ICMP_TIME_EXCEEDED, ICMP_TYPE, ICMP_UNREACH, icmpCheck, icmpCode, icmpEchoId, icmpEchoSeq, icmpEchoToReply, icmpEmit, icmpIsError, icmpNextMtu, icmpType,
} from './wire/icmp.js';
import { CT_RESULT } from './registration.js';
import { CT_HOOK } from './conntrack/types.js';

export interface IcmpOptions {
  /** Global error budget per second. Linux icmp_msgs_per_sec: 1000. */
  errorsPerSec?: number;
  /** Global burst. Linux icmp_msgs_burst: 50. */
  errorBurst?: number;
  /** One error per peer per this many ms on average. Linux icmp_ratelimit: 1000. */
  peerIntervalMs?: number;
  /** Per-peer burst. Linux XRLIM_BURST_FACTOR: 6. */
  peerBurst?: number;
  /** Peers tracked for rate limiting. */
  peerMaxEntries?: number;
  /** Answer echo requests. Default true. */
  echoReply?: boolean;
  /** Largest ICMP error datagram. RFC 1812: 576. */
  errorMaxLen?: number;
}

class PeerBucket { constructor(public tokens: number, public last: number) {} }

/** Called for each echo reply received: payload is valid only during the call. */
export type EchoReplyHandler = (src: number, id: number, seq: number, payload: Uint8Array, now: number) => void;

export class Icmp {
  onEchoReply: EchoReplyHandler | null = null;
  private readonly o: Required<IcmpOptions>;
  private tokens: number;
  private last = -Infinity;
  private readonly peers = new Map<number, PeerBucket>();

  constructor(private readonly s: StackCore, private readonly ip: Ipv4, opts: IcmpOptions = {}) {
    this.o = {
      errorsPerSec: opts.errorsPerSec ?? 1000, errorBurst: opts.errorBurst ?? 50, peerIntervalMs: opts.peerIntervalMs ?? 1000,
      peerBurst: opts.peerBurst ?? 6, peerMaxEntries: opts.peerMaxEntries ?? 1024, echoReply: opts.echoReply ?? true, errorMaxLen: opts.errorMaxLen ?? 576,
    };
    this.tokens = this.o.errorBurst;
  }

  /** One ICMP message: the datagram buf[ipOff, ipOff+total), header length hl. */
  input(buf: Uint8Array, ipOff: number, hl: number, total: number, src: number, dst: number, bcast: boolean, inFrame: boolean, now: number): void {
    const s = this.s;
    const off = ipOff + hl;
    const len = total - hl;
    const r = icmpCheck(buf, off, len);
    if (r !== WIRE_OK) { s.stats.drop(r); return; }
    const type = icmpType(buf, off);
    switch (type) {
      case ICMP_TYPE.ECHO_REQUEST:
        s.stats.icmpEchoRequests++;
        if (bcast || !this.o.echoReply) { s.stats.drop(DROP.IP_NOT_FOR_US); return; }
        this.echoReply(buf, ipOff, hl, total, src, inFrame, now);
        return;
      case ICMP_TYPE.ECHO_REPLY:
        s.stats.icmpEchoReplies++;
        if (this.onEchoReply !== null) this.onEchoReply(src, icmpEchoId(buf, off), icmpEchoSeq(buf, off), buf.subarray(off + ICMP.HLEN, off + len), now);
        return;
      case ICMP_TYPE.DEST_UNREACHABLE:
      case ICMP_TYPE.TIME_EXCEEDED:
      case ICMP_TYPE.PARAMETER_PROBLEM:
      case ICMP_TYPE.SOURCE_QUENCH:
        s.stats.icmpErrorsReceived++;
        this.errorInput(buf, off, len, type, now);
        return;
      default:
        s.stats.drop(DROP.ICMP_UNHANDLED_TYPE);
    }
  }

  private echoReply(buf: Uint8Array, ipOff: number, hl: number, total: number, src: number, inFrame: boolean, now: number): void {
    const s = this.s;
    const off = ipOff + hl;
    if (inFrame && hl === IP4.HLEN && buf === s.mem && s.routes.lookup(src) >= 0) {
      // Turn the request frame around in place.
      const f = s.currentFrame;
      ethSwapMacs(buf, f);
      macCopy(buf, f + ETH.SRC, s.mac, 0);
      ipv4SwapAddrs(buf, ipOff);
      ipv4SetTtl(buf, ipOff, 64);
      icmpEchoToReply(buf, off);
      if (this.ip.conntrack !== null && this.ip.conntrack.track(buf, ipOff, CT_HOOK.OUT, now) === CT_RESULT.DROP) { s.stats.drop(DROP.CONNTRACK); return; }
      s.stats.ipTxPackets++;
      s.reuseCurrentFrame(ipOff - f + total);
      return;
    }
    icmpEchoToReply(buf, off);
    this.ip.sendDatagram(src, IPPROTO.ICMP, buf, off, total - hl, now);
  }

  private errorInput(buf: Uint8Array, off: number, len: number, type: number, now: number): void {
    const s = this.s;
    const q = off + ICMP.HLEN;
    const qlen = len - ICMP.HLEN;
    // The quote must hold an IPv4 header and 8 bytes of what follows (RFC 792).
    if (qlen < IP4.HLEN || buf[q]! >>> 4 !== 4) { s.stats.drop(DROP.ICMP_BAD_QUOTE); return; }
    const qhl = ipv4HeaderLen(buf, q);
    if (qhl < IP4.HLEN || qlen < qhl + 8) { s.stats.drop(DROP.ICMP_BAD_QUOTE); return; }
    const qsrc = ipv4Src(buf, q), qdst = ipv4Dst(buf, q);
    if (!s.isLocal(qsrc)) { s.stats.drop(DROP.ICMP_BAD_QUOTE); return; }
    const code = icmpCode(buf, off);
    let mtu = 0;
    if (type === ICMP_TYPE.DEST_UNREACHABLE && code === ICMP_UNREACH.FRAG_NEEDED) {
      mtu = this.ip.learnPmtu(qdst, icmpNextMtu(buf, off), ipv4TotalLen(buf, q), now);
    }
    // Only a quote of a first fragment holds the transport header.
    if (ipv4FragOffset(buf, q) !== 0) return;
    const proto = ipv4Protocol(buf, q);
    const t = this.ip.transport(proto);
    if (t !== null) t.deliverError(type, code, mtu, qsrc, qdst, buf, q + qhl, qlen - qhl, now);
  }

  /** Sends protocol unreachable about the datagram being delivered. */
  protocolUnreachable(now: number): void { this.errorAboutCurrent(ICMP_TYPE.DEST_UNREACHABLE, ICMP_UNREACH.PROTOCOL, now); }
  /** Sends port unreachable about the datagram being delivered (a transport calls this from deliver()). */
  portUnreachable(now: number): void { this.errorAboutCurrent(ICMP_TYPE.DEST_UNREACHABLE, ICMP_UNREACH.PORT, now); }

  /** Time exceeded in reassembly, quoting fragment zero (buf[ipOff, ipOff+quoteLen)). */
  timeExceededReassembly(buf: Uint8Array, ipOff: number, quoteLen: number, now: number): void {
    this.sendError(ICMP_TYPE.TIME_EXCEEDED, ICMP_TIME_EXCEEDED.REASSEMBLY, 0, buf, ipOff, quoteLen, false, now);
  }

  private errorAboutCurrent(type: number, code: number, now: number): void {
    const ip = this.ip;
    if (ip.curBuf === null) return;
    this.sendError(type, code, 0, ip.curBuf, ip.curIpOff, ip.curLen, ip.curBroadcast, now);
  }

  /**
   * Sends an ICMP error about the datagram at buf[ipOff] (quoteAvail bytes
   * available), honouring RFC 1122's "never about" rules and the rate limits.
   * Returns whether it was sent.
   */
  sendError(type: number, code: number, rest: number, buf: Uint8Array, ipOff: number, quoteAvail: number, bcast: boolean, now: number): boolean {
    const s = this.s;
    if (bcast) return false;
    const src = ipv4Src(buf, ipOff);
    if (s.isBroadcast(src) || src === 0) return false;
    if (ipv4FragOffset(buf, ipOff) !== 0) return false;
    const hl = ipv4HeaderLen(buf, ipOff);
    if (ipv4Protocol(buf, ipOff) === IPPROTO.ICMP && (quoteAvail <= hl || icmpIsError(buf[ipOff + hl]!))) return false;
    if (!this.allow(src, now)) { s.stats.drop(DROP.ICMP_RATE_LIMITED); return false; }
    const quote = Math.min(quoteAvail, this.o.errorMaxLen - IP4.HLEN - ICMP.HLEN);
    const off = this.ip.begin(src, IPPROTO.ICMP, now);
    if (off < 0) return false;
    s.mem.set(buf.subarray(ipOff, ipOff + quote), off + ICMP.HLEN);
    icmpEmit(s.mem, off, type, code, rest, ICMP.HLEN + quote);
    s.stats.icmpErrorsSent++;
    return this.ip.commit(ICMP.HLEN + quote, now, { tos: 0xc0, dontFragment: false });
  }

  /** Token buckets: global, then per peer (Linux icmp_global_allow + inet_peer_xrlim_allow). */
  private allow(peer: number, now: number): boolean {
    const o = this.o;
    if (now > this.last) {
      this.tokens = Math.min(o.errorBurst, this.tokens + ((now - this.last) * o.errorsPerSec) / 1000);
      this.last = now;
    }
    if (this.tokens < 1) return false;
    let b = this.peers.get(peer);
    if (b === undefined) {
      if (this.peers.size >= o.peerMaxEntries) {
        const oldest = this.peers.keys().next().value;
        if (oldest !== undefined) this.peers.delete(oldest);
      }
      b = new PeerBucket(o.peerBurst * o.peerIntervalMs, now);
      this.peers.set(peer, b);
    } else {
      b.tokens = Math.min(o.peerBurst * o.peerIntervalMs, b.tokens + (now - b.last));
      b.last = now;
    }
    if (b.tokens < o.peerIntervalMs) return false;
    b.tokens -= o.peerIntervalMs;
    this.tokens -= 1;
    return true;
  }

  /** Sends an echo request to dst carrying payload. Returns false when it could not be sent. */
  sendEcho(dst: number, id: number, seq: number, payload: Uint8Array, now: number): boolean {
    const s = this.s;
    const len = ICMP.HLEN + payload.length;
    const off = this.ip.begin(dst, IPPROTO.ICMP, now);
    if (off < 0) return false;
    if (len <= this.ip.room) {
      s.mem.set(payload, off + ICMP.HLEN);
      icmpEmit(s.mem, off, ICMP_TYPE.ECHO_REQUEST, 0, ((id & 0xffff) << 16 | (seq & 0xffff)) >>> 0, len);
      return this.ip.commit(len, now);
    }
    this.ip.abort();
    const scratch = new Uint8Array(IP4.HLEN + len);
    scratch.set(payload, IP4.HLEN + ICMP.HLEN);
    icmpEmit(scratch, IP4.HLEN, ICMP_TYPE.ECHO_REQUEST, 0, ((id & 0xffff) << 16 | (seq & 0xffff)) >>> 0, len);
    return this.ip.sendDatagram(dst, IPPROTO.ICMP, scratch, IP4.HLEN, len, now);
  }
}
