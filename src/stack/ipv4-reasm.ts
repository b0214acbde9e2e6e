// IPv4 fragment reassembly (RFC 791 §3.2, RFC 815), with the limits Linux
// applies (net/ipv4/ip_fragment.c):
//
//   - Datagrams are keyed by (src, dst, protocol, id). Each keeps the byte
//     ranges it has received, sorted and disjoint; it is complete when the
//     last fragment (MF clear) fixed the total length and the ranges cover
//     [0, total) - RFC 815's hole list, kept as its complement.
//   - An exact duplicate of a received fragment is dropped alone
//     (FRAG_DUPLICATE): duplication on the wire is harmless. A fragment that
//     partially overlaps another discards the whole datagram (FRAG_OVERLAP),
//     in the spirit of RFC 5722 and as Linux does since 2018.
//   - Memory is bounded: total buffer bytes (maxBytes, Linux's
//     ipfrag_high_thresh 4 MiB) and datagrams in progress (maxDatagrams).
//     A new datagram that does not fit is refused; one that cannot grow is
//     discarded; both counted REASM_MEMORY_FULL.
//   - Each datagram expires timeoutMs (30 s, ipfrag_time) after its first
//     fragment, counted REASM_TIMEOUT; if fragment zero arrived, the caller's
//     onTimeout sends ICMP time exceeded (RFC 792, code 1) quoting it.
//
// Fragment bytes are copied out of the frame (frames go back to the link
// immediately). The buffer keeps the first fragment's IP header just before
// the data (at HEAD - hlen), so a completed datagram is one contiguous IPv4
// packet with a fixed-up header: conntrack, ICMP and transports see it as if
// it had arrived whole. Buffers are allocated per datagram and grown in
// 2 KiB steps (fragments are not the fast path); they are not copied again.
import { Timer, type TimerWheel } from './timers.js';
import { DROP, type StackStats } from './stats.js';
import { IP4, IP4_FLAG, ipv4FillChecksum, ipv4FragOffset, ipv4HeaderLen, ipv4Id, ipv4MoreFragments, ipv4Protocol, ipv4Src, ipv4Dst, ipv4TotalLen } from './wire/ipv4.js';

/** Room kept before the data for the largest IP header. */
export const REASM_HEAD = IP4.MAX_HLEN;
const MAX_DATAGRAM = 65535;
const STEP = 2048;

export interface ReassemblyOptions {
  /** Datagram lifetime from its first fragment, ms. Default 30 000 (Linux ipfrag_time). */
  timeoutMs?: number;
  /** Total bytes of reassembly buffers. Default 4 MiB (Linux ipfrag_high_thresh). */
  maxBytes?: number;
  /** Datagrams in progress at once. Default 1024. */
  maxDatagrams?: number;
}

export class FragQueue {
  buf: Uint8Array;
  /** Sorted disjoint received ranges of data bytes: [start0, end0, start1, end1, …]. */
  ranges: number[] = [];
  received = 0;
  /** Data length, known once the last fragment arrived; -1 before. */
  total = -1;
  /** IP header length of fragment zero; 0 until it arrived. */
  hlen = 0;
  next: FragQueue | null = null;
  readonly timer: Timer;
  constructor(readonly key: number, readonly src: number, readonly dst: number, readonly protocol: number, readonly id: number, cap: number, fire: (q: FragQueue, now: number) => void) {
    this.buf = new Uint8Array(cap);
    this.timer = new Timer((now) => fire(this, now));
  }
  /** Offset of the reassembled IPv4 header in buf (valid once complete or fragment zero arrived). */
  get ipOff(): number { return REASM_HEAD - this.hlen; }
}

export class Reassembler {
  private readonly table = new Map<number, FragQueue>();
  private count = 0;
  /** Bytes held in reassembly buffers. */
  bytes = 0;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly maxDatagrams: number;
  private readonly fire = (q: FragQueue, now: number): void => this.expire(q, now);

  constructor(
    private readonly timers: TimerWheel, private readonly stats: StackStats, opts: ReassemblyOptions,
    /** Called for an expired datagram whose fragment zero arrived (to send ICMP time exceeded). */
    private readonly onTimeout: (q: FragQueue, now: number) => void,
  ) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxBytes = opts.maxBytes ?? 4 * 1024 * 1024;
    this.maxDatagrams = opts.maxDatagrams ?? 1024;
  }

  /** Datagrams in progress. */
  get pending(): number { return this.count; }

  /**
   * Adds the fragment at buf[ipOff] (validated, total length within buf).
   * Returns the completed datagram (the caller delivers it, then calls
   * release()), or null.
   */
  add(buf: Uint8Array, ipOff: number, now: number): FragQueue | null {
    this.stats.fragmentsReceived++;
    const hl = ipv4HeaderLen(buf, ipOff);
    const dataLen = ipv4TotalLen(buf, ipOff) - hl;
    const start = ipv4FragOffset(buf, ipOff);
    const end = start + dataLen;
    const more = ipv4MoreFragments(buf, ipOff);
    if (end + hl > MAX_DATAGRAM) { this.stats.drop(DROP.FRAG_TOO_BIG); return null; }
    // Every fragment but the last carries a multiple of 8 bytes (RFC 791).
    if (dataLen === 0 || (more && (dataLen & 7) !== 0)) { this.stats.drop(DROP.FRAG_BAD_LENGTH); return null; }
    const src = ipv4Src(buf, ipOff), dst = ipv4Dst(buf, ipOff), proto = ipv4Protocol(buf, ipOff), id = ipv4Id(buf, ipOff);
    const key = (src ^ ((dst << 7) | (dst >>> 25)) ^ (id << 8) ^ (id >>> 3) ^ proto) >>> 0;
    let q = this.table.get(key) ?? null;
    while (q !== null && !(q.src === src && q.dst === dst && q.protocol === proto && q.id === id)) q = q.next;
    if (q === null) {
      const cap = Math.min(REASM_HEAD + roundUp(end), REASM_HEAD + MAX_DATAGRAM);
      if (this.count >= this.maxDatagrams || this.bytes + cap > this.maxBytes) { this.stats.drop(DROP.REASM_MEMORY_FULL); return null; }
      q = new FragQueue(key, src, dst, proto, id, cap, this.fire);
      q.next = this.table.get(key) ?? null;
      this.table.set(key, q);
      this.count++;
      this.bytes += cap;
      this.timers.arm(q.timer, now + this.timeoutMs);
    }
    // The last fragment fixes the length; anything disagreeing is corrupt.
    if (!more) {
      if ((q.total >= 0 && q.total !== end) || (q.ranges.length > 0 && q.ranges[q.ranges.length - 1]! > end)) {
        this.stats.drop(DROP.FRAG_BAD_LENGTH); this.release(q); return null;
      }
      q.total = end;
    } else if (q.total >= 0 && end > q.total) {
      this.stats.drop(DROP.FRAG_BAD_LENGTH); this.release(q); return null;
    }
    // The whole datagram, fragment zero's header included, must fit IPv4's
    // 16-bit total length (RFC 791): a 60-byte header plus 65 512 data
    // bytes would wrap to 36. Each fragment alone was checked against its
    // own header length above; the datagram is checked once both are known.
    const hlen = start === 0 ? hl : q.hlen;
    if (hlen > 0 && hlen + Math.max(end, q.total, q.ranges.length > 0 ? q.ranges[q.ranges.length - 1]! : 0) > MAX_DATAGRAM) {
      this.stats.drop(DROP.FRAG_TOO_BIG); this.release(q); return null;
    }
    // Where does [start, end) go among the received ranges?
    const r = q.ranges;
    let i = 0;
    while (i < r.length && r[i + 1]! <= start) i += 2;
    if (i < r.length && r[i]! < end) {
      if (r[i] === start && r[i + 1] === end) { this.stats.drop(DROP.FRAG_DUPLICATE); return null; }
      this.stats.drop(DROP.FRAG_OVERLAP); this.release(q); return null;
    }
    const need = REASM_HEAD + end;
    if (need > q.buf.length) {
      const cap = Math.min(Math.max(REASM_HEAD + roundUp(end), Math.min(q.buf.length * 2, REASM_HEAD + MAX_DATAGRAM)), REASM_HEAD + MAX_DATAGRAM);
      if (this.bytes + cap - q.buf.length > this.maxBytes) { this.stats.drop(DROP.REASM_MEMORY_FULL); this.release(q); return null; }
      const nb = new Uint8Array(cap);
      nb.set(q.buf);
      this.bytes += cap - q.buf.length;
      q.buf = nb;
    }
    q.buf.set(buf.subarray(ipOff + hl, ipOff + hl + dataLen), REASM_HEAD + start);
    if (start === 0) {
      q.hlen = hl;
      q.buf.set(buf.subarray(ipOff, ipOff + hl), REASM_HEAD - hl);
    }
    r.splice(i, 0, start, end);
    q.received += dataLen;
    if (q.total < 0 || q.received !== q.total) return null;
    // Complete: make the stored header describe the whole datagram.
    const o = q.ipOff;
    const b = q.buf;
    const tl = q.hlen + q.total;
    b[o + IP4.TOTAL_LEN] = tl >>> 8; b[o + IP4.TOTAL_LEN + 1] = tl & 255;
    const ff = ((b[o + IP4.FLAGS_FRAG]! << 8) | b[o + IP4.FLAGS_FRAG + 1]!) & IP4_FLAG.DF;
    b[o + IP4.FLAGS_FRAG] = ff >>> 8; b[o + IP4.FLAGS_FRAG + 1] = 0;
    ipv4FillChecksum(b, o);
    this.stats.reassembled++;
    this.timers.cancel(q.timer);
    return q;
  }

  /** Forgets q and frees its memory. */
  release(q: FragQueue): void {
    if (!this.unlink(q)) return;
    this.timers.cancel(q.timer);
    this.count--;
    this.bytes -= q.buf.length;
  }

  private unlink(q: FragQueue): boolean {
    let p = this.table.get(q.key);
    if (p === undefined) return false;
    if (p === q) {
      if (q.next === null) this.table.delete(q.key); else this.table.set(q.key, q.next);
      q.next = null;
      return true;
    }
    while (p.next !== null && p.next !== q) p = p.next;
    if (p.next !== q) return false;
    p.next = q.next;
    q.next = null;
    return true;
  }

  private expire(q: FragQueue, now: number): void {
    this.stats.drop(DROP.REASM_TIMEOUT);
    if (q.hlen > 0) this.onTimeout(q, now);
    this.release(q);
  }

  /** Drops everything in progress. */
  clear(): void {
    for (const head of [...this.table.values()]) {
      for (let q: FragQueue | null = head; q !== null;) { const n: FragQueue | null = q.next; this.release(q); q = n; }
    }
  }
}

function roundUp(n: number): number { return Math.ceil(n / STEP) * STEP; }
