// GenLink: an in-process traffic source and sink that implements Link, for
// measuring the echo pipeline alone (no device, no copy between two ends).
//
// recv() hands out frames that already hold a UDP/IPv4 request: the template
// is written into every frame once, at construction, and only the source
// port (one of `flows` ports) and the fields the echo swapped are restored
// per frame; so recv() is a few stores per frame, never a copy of a whole
// packet, and it allocates nothing. send() checks that each frame is the
// echo of what recv() handed out (addresses and ports swapped, IPv4 checksum
// valid) and counts good and bad replies; free() counts drops. Every frame
// sits at a fixed offset, and ownership is tracked like a real link's, so a
// leak or a double hand-back is an error.
import { Burst, emptyStats, type Link, type LinkStats } from '../link/types.js';
import { InvalidArgumentError } from '../util/errors.js';
import { parseIPv4 } from './udp-echo.js';

export interface GenLinkOptions {
  /** Address the requests are sent to (the echo's address). */
  dst: string;
  /** Address they come from. Default 10.200.0.1. */
  src?: string;
  dstPort?: number;
  /** Source ports srcPort .. srcPort + flows - 1. */
  srcPort?: number;
  flows?: number;
  /** UDP payload bytes. Default 64. */
  payload?: number;
  /** Frames of memory. Default 4096. */
  frames?: number;
  /** Stop producing after this many frames (Infinity: never). */
  limit?: number;
}

const FRAME = 2048;

export class GenLink implements Link {
  readonly kind = 'mem' as const;
  readonly name = 'gen0';
  readonly mtu = 1514;
  readonly frameSize = FRAME;
  readonly mac = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x0e, 0x01);
  /** The requester's MAC (the Ethernet source of requests). */
  readonly peerMac = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x0e, 0x02);
  readonly mem: Uint8Array;
  readonly frameLen: number;

  private readonly free_: Int32Array;
  private top: number;
  private readonly owned: Uint8Array;
  private readonly src: number;
  private readonly dst: number;
  private readonly dstPort: number;
  private readonly srcPort: number;
  private readonly flows: number;
  private flow = 0;
  private readonly limit: number;
  /** Requests handed out so far. */
  produced = 0;
  private readonly st: LinkStats = emptyStats();
  /** Replies that were the exact echo of a request. */
  goodReplies = 0;
  /** Replies that were not (wrong addresses, ports or checksum). */
  badReplies = 0;
  /** Frames returned through free() (dropped by the caller). */
  freed = 0;

  constructor(opts: GenLinkOptions) {
    const frames = opts.frames ?? 4096;
    const payload = opts.payload ?? 64;
    if (payload < 0 || payload > 1472) throw new InvalidArgumentError(`bad payload ${payload}`);
    this.src = parseIPv4(opts.src ?? '10.200.0.1');
    this.dst = parseIPv4(opts.dst);
    this.dstPort = opts.dstPort ?? 7;
    this.srcPort = opts.srcPort ?? 40000;
    this.flows = opts.flows ?? 8;
    this.limit = opts.limit ?? Infinity;
    this.mem = new Uint8Array(FRAME * frames);
    this.free_ = new Int32Array(frames);
    this.owned = new Uint8Array(frames);
    for (let i = 0; i < frames; i++) this.free_[i] = (frames - 1 - i) * FRAME;
    this.top = frames;
    this.frameLen = 14 + 20 + 8 + payload;
    for (let i = 0; i < frames; i++) this.template(i * FRAME, payload);
  }

  private template(f: number, payload: number): void {
    const m = this.mem;
    m.set(this.mac, f);
    m.set(this.peerMac, f + 6);
    m[f + 12] = 0x08; m[f + 13] = 0x00;
    const ip = f + 14;
    const tot = 20 + 8 + payload;
    m[ip] = 0x45; m[ip + 1] = 0; m[ip + 2] = tot >> 8; m[ip + 3] = tot & 0xff;
    m[ip + 4] = 0; m[ip + 5] = 0; m[ip + 6] = 0x40; m[ip + 7] = 0; // DF
    m[ip + 8] = 64; m[ip + 9] = 17;
    put32(m, ip + 12, this.src);
    put32(m, ip + 16, this.dst);
    m[ip + 10] = 0; m[ip + 11] = 0;
    let s = 0;
    for (let k = 0; k < 20; k += 2) s += (m[ip + k]! << 8) | m[ip + k + 1]!;
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    s = ~s & 0xffff;
    m[ip + 10] = s >> 8; m[ip + 11] = s & 0xff;
    const u = ip + 20;
    m[u + 4] = (8 + payload) >> 8; m[u + 5] = (8 + payload) & 0xff;
    m[u + 6] = 0; m[u + 7] = 0; // UDP checksum 0: "not computed" (RFC 768), since source ports vary per frame
    for (let k = 0; k < payload; k++) m[u + 8 + k] = k & 0xff;
  }

  recv(b: Burst): number {
    const m = this.mem;
    let n = 0;
    while (b.count < b.capacity && this.top > 0 && this.produced < this.limit) {
      const f = this.free_[--this.top]!;
      this.owned[f / FRAME] = 1;
      // Restore what a previous echo of this frame swapped.
      const mac = this.mac, peer = this.peerMac;
      for (let k = 0; k < 6; k++) { m[f + k] = mac[k]!; m[f + 6 + k] = peer[k]!; }
      const ip = f + 14;
      m[ip + 8] = 64;
      put32(m, ip + 12, this.src);
      put32(m, ip + 16, this.dst);
      // The template's checksum holds for TTL 64 and these addresses in either order.
      const sp = this.srcPort + this.flow;
      this.flow = this.flow + 1 === this.flows ? 0 : this.flow + 1;
      const u = ip + 20;
      m[u] = sp >> 8; m[u + 1] = sp & 0xff;
      m[u + 2] = this.dstPort >> 8; m[u + 3] = this.dstPort & 0xff;
      b.push(f, this.frameLen);
      this.produced++;
      n++;
    }
    this.st.rxPackets += n;
    this.st.rxBytes += n * this.frameLen;
    return n;
  }

  alloc(b: Burst, n: number): number {
    let got = 0;
    while (got < n && b.count < b.capacity && this.top > 0) {
      const f = this.free_[--this.top]!;
      this.owned[f / FRAME] = 1;
      b.push(f, 0);
      got++;
    }
    return got;
  }

  send(b: Burst): number {
    const m = this.mem;
    const n = b.count;
    for (let i = 0; i < n; i++) {
      const f = b.off(i);
      if (this.isEcho(m, f, b.len(i))) this.goodReplies++;
      else this.badReplies++;
      this.give(f);
    }
    this.st.txPackets += n;
    b.clear();
    return n;
  }

  private isEcho(m: Uint8Array, f: number, len: number): boolean {
    if (len !== this.frameLen) return false;
    for (let k = 0; k < 6; k++) if (m[f + k] !== this.peerMac[k] || m[f + 6 + k] !== this.mac[k]) return false;
    const ip = f + 14;
    if (get32(m, ip + 12) !== this.dst || get32(m, ip + 16) !== this.src) return false;
    const u = ip + 20;
    const sp = (m[u]! << 8) | m[u + 1]!;
    const dp = (m[u + 2]! << 8) | m[u + 3]!;
    if (sp !== this.dstPort || dp < this.srcPort || dp >= this.srcPort + this.flows) return false;
    let s = 0;
    for (let k = 0; k < 20; k += 2) s += (m[ip + k]! << 8) | m[ip + k + 1]!;
    s = (s & 0xffff) + (s >>> 16);
    s = (s & 0xffff) + (s >>> 16);
    return s === 0xffff;
  }

  free(b: Burst): void {
    for (let i = 0; i < b.count; i++) this.give(b.off(i));
    this.freed += b.count;
    b.clear();
  }

  private give(f: number): void {
    const i = f / FRAME;
    if (!Number.isInteger(i) || i < 0 || i >= this.owned.length || this.owned[i] === 0) {
      throw new InvalidArgumentError(`gen0: frame ${f} is not owned by the caller`);
    }
    this.owned[i] = 0;
    this.free_[this.top++] = f;
  }

  /** Frames the caller holds: 0 after every burst has been handed back. */
  outstanding(): number { return this.owned.length - this.top; }

  setReadyHandler(): void { /* always ready: callers busy-poll */ }
  stats(): LinkStats { return { ...this.st }; }
  close(): void { /* nothing to release */ }
}

function put32(m: Uint8Array, o: number, v: number): void {
  m[o] = v >>> 24; m[o + 1] = (v >>> 16) & 0xff; m[o + 2] = (v >>> 8) & 0xff; m[o + 3] = v & 0xff;
}
function get32(m: Uint8Array, o: number): number {
  return ((m[o]! << 24) | (m[o + 1]! << 16) | (m[o + 2]! << 8) | m[o + 3]!) >>> 0;
}
