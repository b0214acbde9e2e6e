// Test and simulation utilities for TCP without the rest of the stack:
//   - CaptureWriter: a NetworkWriter that records every segment sent, so a
//     test can assert on the exact replies (packetimpact style);
//   - buildSegment()/parseSegment(): template segments in and out;
//   - LoopNet: several Tcp endpoints joined by a seeded lossy, duplicating,
//     reordering, corrupting path on a virtual clock (smoltcp's netsim), with
//     run() driving it deterministically: same seed, same run.
import type { NetworkWriter } from '../registration.js';
import { finish, pseudo4, sum16 } from '../wire/checksum.js';
import {
  FLAG, TCP, TcpOptions, TcpOptionsOut, parseTcpOptions, tcpAck, tcpDstPort, tcpFlags, tcpHeaderLen, tcpSeq, tcpSrcPort,
  tcpUrgent, tcpWindow, wr16, writeTcpHeader, writeTcpOptions, flagsToString,
} from '../wire/tcp.js';
import { Prng } from '../../util/prng.js';
import { Tcp, type TcpOptionsInit } from './tcp.js';

/** A segment as a test sees it. */
export interface SegmentView {
  src: number; dst: number; sport: number; dport: number;
  seq: number; ack: number; flags: number; wnd: number;
  /** The urgent pointer field (meaningful with URG). */
  urgent: number;
  payload: Uint8Array;
  mss: number; wscale: number; sackPermitted: boolean; ts: [number, number] | null; sack: [number, number][];
  /** tcpdump-style flags, e.g. "S.", "R", "F.". */
  f: string;
  bytes: Uint8Array;
}

export function parseSegment(src: number, dst: number, bytes: Uint8Array): SegmentView {
  const o = new TcpOptions();
  parseTcpOptions(bytes, 0, o);
  const hl = tcpHeaderLen(bytes, 0);
  const sack: [number, number][] = [];
  for (let k = 0; k < o.sackCount; k++) sack.push([o.sack[2 * k]!, o.sack[2 * k + 1]!]);
  return {
    src, dst, sport: tcpSrcPort(bytes, 0), dport: tcpDstPort(bytes, 0), seq: tcpSeq(bytes, 0), ack: tcpAck(bytes, 0),
    flags: tcpFlags(bytes, 0), wnd: tcpWindow(bytes, 0), urgent: tcpUrgent(bytes, 0), payload: bytes.slice(hl),
    mss: o.mss, wscale: o.wscale, sackPermitted: o.sackPermitted, ts: o.hasTimestamps ? [o.tsVal, o.tsEcr] : null, sack,
    f: flagsToString(tcpFlags(bytes, 0)), bytes,
  };
}

export interface SegmentSpec {
  src: number; dst: number; sport: number; dport: number;
  seq?: number; ack?: number; flags: number; wnd?: number;
  /** The urgent pointer field; set FLAG.URG in flags for it to mean anything. */
  urgent?: number;
  payload?: Uint8Array;
  mss?: number; wscale?: number; sackPermitted?: boolean; ts?: [number, number]; sack?: [number, number][];
  /** Corrupt the checksum on purpose. */
  badChecksum?: boolean;
}

/** Builds a segment with a correct checksum (unless badChecksum). */
export function buildSegment(s: SegmentSpec): Uint8Array {
  const o = new TcpOptionsOut();
  if (s.mss !== undefined) o.mss = s.mss;
  if (s.wscale !== undefined) o.wscale = s.wscale;
  if (s.sackPermitted) o.sackPermitted = true;
  if (s.ts) { o.timestamps = true; o.tsVal = s.ts[0]; o.tsEcr = s.ts[1]; }
  if (s.sack) { o.sackCount = s.sack.length; s.sack.forEach(([a, b], k) => { o.sack[2 * k] = a >>> 0; o.sack[2 * k + 1] = b >>> 0; }); }
  const payload = s.payload ?? new Uint8Array(0);
  const buf = new Uint8Array(TCP.MAX_HEADER_LEN + payload.length);
  const optLen = writeTcpOptions(buf, TCP.HEADER_LEN, o);
  writeTcpHeader(buf, 0, s.sport, s.dport, (s.seq ?? 0) >>> 0, (s.ack ?? 0) >>> 0, s.flags, s.wnd ?? 65535, optLen, s.urgent ?? 0);
  const hl = TCP.HEADER_LEN + optLen;
  buf.set(payload, hl);
  const total = hl + payload.length;
  const out = buf.slice(0, total);
  let ck = finish(sum16(out, 0, total, pseudo4(s.src, s.dst, 6, total)));
  if (s.badChecksum) ck ^= 0x5a5a;
  wr16(out, TCP.CHECKSUM, ck);
  return out;
}

/** A NetworkWriter that records what is sent (and hands it to a sink, if any). */
export class CaptureWriter implements NetworkWriter {
  readonly mem = new Uint8Array(65536 + 128);
  src = 0;
  room: number;
  readonly sent: SegmentView[] = [];
  private dst = 0;
  /** Called with every committed segment (bytes are a copy). */
  sink: ((src: number, dst: number, bytes: Uint8Array, now: number) => void) | null = null;
  /** When false, sent segments are not kept in `sent` (long simulations). */
  keep = true;
  /** Frames available; begin() fails (-1) at 0 when finite. */
  frames = Infinity;

  constructor(readonly addr: number, readonly mtu = 1500) {
    this.room = mtu - 20;
  }

  begin(dst: number, _protocol: number, _now: number): number {
    if (this.frames <= 0) return -1;
    this.dst = dst;
    this.src = this.addr;
    return 64;
  }

  commit(len: number, now: number): boolean {
    const bytes = this.mem.slice(64, 64 + len);
    if (this.keep) this.sent.push(parseSegment(this.addr, this.dst, bytes));
    this.sink?.(this.addr, this.dst, bytes, now);
    return true;
  }

  abort(): void {}
  pathMtu(_dst: number): number { return this.mtu; }
  isLocal(a: number): boolean { return a === this.addr; }
  sourceFor(_dst: number): number { return this.addr; }

  /** Takes the segments sent so far. */
  take(): SegmentView[] { return this.sent.splice(0); }
}

export interface PathImpairments {
  loss?: number;
  duplicate?: number;
  reorder?: number;
  /** Extra delay of a reordered segment, ms. */
  reorderDelay?: number;
  corrupt?: number;
  /** One-way delay, ms. */
  delay?: number;
  jitter?: number;
  /** Bottleneck: bytes per ms (0 = unlimited); a queue of queueLimit segments drops the excess (tail drop). */
  rate?: number;
  queueLimit?: number;
}

interface InFlight { due: number; order: number; src: number; dst: number; bytes: Uint8Array }

export interface LoopHost { addr: number; writer: CaptureWriter; tcp: Tcp }

/** Tcp endpoints over a seeded impaired path on a virtual clock. */
export class LoopNet {
  now = 0;
  readonly hosts = new Map<number, LoopHost>();
  private readonly q: InFlight[] = [];
  private order = 0;
  private readonly prng: Prng;
  private linkFree = new Map<number, number>();
  readonly stats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, reordered: 0, corrupted: 0, queueDrops: 0 };

  constructor(readonly seed: number, readonly impair: PathImpairments = {}) {
    this.prng = new Prng(seed);
  }

  add(addr: number, init: TcpOptionsInit = {}, mtu = 1500): LoopHost {
    const writer = new CaptureWriter(addr, mtu);
    writer.keep = false;
    const tcp = new Tcp(writer, { seed: this.seed * 7919 + addr, ...init });
    writer.sink = (src, dst, bytes, now) => this.send(src, dst, bytes, now);
    const h = { addr, writer, tcp };
    this.hosts.set(addr, h);
    return h;
  }

  private send(src: number, dst: number, bytes: Uint8Array, now: number): void {
    const im = this.impair;
    const p = this.prng;
    this.stats.sent++;
    if (p.chance(im.loss ?? 0)) { this.stats.lost++; return; }
    let t = now + (im.delay ?? 1);
    if (im.rate && im.rate > 0) {
      // Serialisation at the bottleneck, with a bounded queue.
      const free = Math.max(this.linkFree.get(src) ?? 0, now);
      const backlog = (free - now) * im.rate;
      if (backlog > (im.queueLimit ?? 64) * 1500) { this.stats.queueDrops++; return; }
      const done = free + bytes.length / im.rate;
      this.linkFree.set(src, done);
      t = done + (im.delay ?? 1);
    }
    if (im.jitter) t += p.float() * im.jitter;
    if (p.chance(im.corrupt ?? 0)) {
      const i = p.int(bytes.length);
      bytes[i]! ^= 1 << p.int(8);
      this.stats.corrupted++;
    }
    if (p.chance(im.reorder ?? 0)) { t += im.reorderDelay ?? 5; this.stats.reordered++; }
    this.push({ due: t, order: this.order++, src, dst, bytes });
    if (p.chance(im.duplicate ?? 0)) {
      this.stats.duplicated++;
      this.push({ due: t + p.float() * 2, order: this.order++, src, dst, bytes: bytes.slice() });
    }
  }

  private push(f: InFlight): void {
    // Sorted insert from the back (most frames go last).
    const q = this.q;
    let i = q.length;
    while (i > 0 && (q[i - 1]!.due > f.due || (q[i - 1]!.due === f.due && q[i - 1]!.order > f.order))) i--;
    q.splice(i, 0, f);
  }

  /** The next time something happens, or undefined. */
  nextEvent(): number | undefined {
    let t = this.q.length > 0 ? this.q[0]!.due : Infinity;
    for (const h of this.hosts.values()) {
      const a = h.tcp.pollAt();
      if (a !== undefined && a < t) t = a;
    }
    return t === Infinity ? undefined : t;
  }

  /** Advances to time t: delivers what is due and polls every endpoint. */
  step(t: number): void {
    if (t > this.now) this.now = t;
    const now = this.now;
    for (const h of this.hosts.values()) h.tcp.poll(now);
    while (this.q.length > 0 && this.q[0]!.due <= now) {
      const f = this.q.shift()!;
      const h = this.hosts.get(f.dst);
      if (h === undefined) continue;
      this.stats.delivered++;
      h.tcp.deliver(f.src, f.dst, f.bytes, 0, f.bytes.length, now);
    }
    for (const h of this.hosts.values()) h.tcp.poll(now);
  }

  /**
   * Runs until done() or until the clock passes `until` ms. Returns whether
   * done() became true. `idleStep` bounds how far time jumps when idle.
   */
  run(done: () => boolean, until: number): boolean {
    let spins = 0;
    while (!done()) {
      const t = this.nextEvent();
      if (t === undefined) return done();
      if (t > until) { this.now = until; return done(); }
      if (t <= this.now) { if (++spins > 100000) throw new Error(`LoopNet stuck at ${this.now} (seed ${this.seed})`); }
      else spins = 0;
      this.step(t);
    }
    return true;
  }

  /** Like run() but yields to the event loop between steps (streams, TLS). */
  async runAsync(done: () => boolean, until: number, yieldEvery = 1): Promise<boolean> {
    let n = 0;
    while (!done()) {
      if (++n % yieldEvery === 0) await new Promise<void>((r) => setImmediate(r));
      if (done()) break;
      const t = this.nextEvent();
      if (t === undefined) { this.step(this.now + 1); continue; }
      if (t > until) { this.now = until; return done(); }
      this.step(Math.max(t, this.now));
    }
    return true;
  }
}

export { FLAG };
