// MemLink: an in-process link pair with seeded impairments on a clock that
// the caller controls (usually a VirtualClock), for deterministic tests and
// simulations (smoltcp's netsim habit: same seed, same run).
//
// Each end has its own frame memory. A frame sent on one end is copied into
// a frame of the other end's memory (the only copy in strata, and only here),
// then held until its delivery time. Impairments are applied per frame in a
// fixed order, each decision drawn from the direction's own PRNG stream:
//   loss -> corruption (flip one random bit) -> duplication -> delay
//   (base + jitter) -> reordering (an extra delay so later frames overtake).
// Frames due at the same time leave in send order.
import { Burst, emptyStats, type Link, type LinkStats } from './types.js';
import { Prng } from '../util/prng.js';
import type { Clock } from '../util/clock.js';
import { InvalidArgumentError } from '../util/errors.js';

export interface Impairments {
  /** Probability a frame is lost. */
  loss?: number;
  /** Probability a frame is delivered twice. */
  duplicate?: number;
  /** Probability a frame is held back by reorderDelay so later frames overtake it. */
  reorder?: number;
  /** Extra delay of a reordered frame, ms. Default 1. */
  reorderDelay?: number;
  /** Base one-way delay, ms. */
  delay?: number;
  /** Uniform extra delay in [0, jitter), ms. Frames may then reorder. */
  jitter?: number;
  /** Probability one random bit of the frame is flipped. */
  corrupt?: number;
}

export interface MemLinkOptions {
  seed: number;
  clock: Clock;
  /** Impairments in both directions, or per direction. */
  impair?: Impairments;
  impairAtoB?: Impairments;
  impairBtoA?: Impairments;
  mtu?: number;
  frameSize?: number;
  /** Frames of memory per end. */
  frames?: number;
  names?: [string, string];
}

export interface MemLinkStats extends LinkStats {
  lost: number;
  corrupted: number;
  duplicated: number;
  reordered: number;
}


/** One end of a MemLink pair. */
export class MemLink implements Link {
  readonly kind = 'mem' as const;
  readonly name: string;
  readonly mtu: number;
  readonly frameSize: number;
  readonly mac: Uint8Array;
  readonly mem: Uint8Array;
  peer!: MemLink;

  private readonly freeStack: Int32Array;
  private freeTop: number;
  private readonly owned: Uint8Array; // 1 = frame is out of the free stack (debug check against double free)
  // Frames on their way to this end: a min-heap of frame indices ordered by
  // (due, seq), over preallocated arrays, so a busy link allocates nothing.
  private readonly heap: Int32Array;
  private heapLen = 0;
  private readonly due: Float64Array;
  private readonly order: Float64Array;
  private readonly flen: Uint32Array;
  private seq = 0;
  private readonly st: MemLinkStats = { ...emptyStats(), lost: 0, corrupted: 0, duplicated: 0, reordered: 0 };
  private ready: (() => void) | null = null;
  private readyScheduled = false;
  private closed = false;

  private constructor(
    name: string, index: number, mtu: number, frameSize: number, frames: number,
    private readonly clock: Clock, private readonly rng: Prng, private readonly imp: Required<Impairments>,
  ) {
    this.name = name;
    this.mtu = mtu;
    this.frameSize = frameSize;
    this.mac = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, index + 1);
    this.mem = new Uint8Array(frameSize * frames);
    this.freeStack = new Int32Array(frames);
    for (let i = 0; i < frames; i++) this.freeStack[i] = (frames - 1 - i) * frameSize;
    this.freeTop = frames;
    this.owned = new Uint8Array(frames);
    this.heap = new Int32Array(frames);
    this.due = new Float64Array(frames);
    this.order = new Float64Array(frames);
    this.flen = new Uint32Array(frames);
  }

  /** Creates two connected ends. Frames sent on one are received on the other. */
  static pair(opts: MemLinkOptions): [MemLink, MemLink] {
    const mtu = opts.mtu ?? 1514;
    const frameSize = opts.frameSize ?? 2048;
    const frames = opts.frames ?? 4096;
    if (mtu > frameSize) throw new InvalidArgumentError('mtu larger than frameSize');
    const names = opts.names ?? ['mem0', 'mem1'];
    // Impairments configured on an end apply to frames that end RECEIVES.
    const ab = fill(opts.impairAtoB ?? opts.impair);
    const ba = fill(opts.impairBtoA ?? opts.impair);
    const a = new MemLink(names[0], 0, mtu, frameSize, frames, opts.clock, new Prng((opts.seed ^ 0x5bd1e995) >>> 0), ba);
    const b = new MemLink(names[1], 1, mtu, frameSize, frames, opts.clock, new Prng((opts.seed ^ 0x1b873593) >>> 0), ab);
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  private take(): number {
    if (this.freeTop === 0) return -1;
    const off = this.freeStack[--this.freeTop]!;
    this.owned[off / this.frameSize] = 1;
    return off;
  }

  private give(off: number): void {
    const i = off / this.frameSize;
    if (!Number.isInteger(i) || i < 0 || i >= this.owned.length || this.owned[i] === 0) {
      throw new InvalidArgumentError(`${this.name}: frame ${off} is not owned by the caller`);
    }
    this.owned[i] = 0;
    this.freeStack[this.freeTop++] = off;
  }

  recv(b: Burst): number {
    const now = this.clock.now();
    let n = 0;
    while (b.count < b.capacity && this.heapLen > 0 && this.due[this.heap[0]!]! <= now) {
      const i = this.heapPop();
      const len = this.flen[i]!;
      b.push(i * this.frameSize, len);
      this.st.rxPackets++;
      this.st.rxBytes += len;
      n++;
    }
    return n;
  }

  alloc(b: Burst, n: number): number {
    let got = 0;
    while (got < n && b.count < b.capacity) {
      const off = this.take();
      if (off < 0) break;
      b.push(off, 0);
      got++;
    }
    return got;
  }

  send(b: Burst): number {
    let queued = 0;
    for (let i = 0; i < b.count; i++) {
      const off = b.off(i);
      const len = b.len(i);
      if (len > this.mtu || this.closed) {
        this.st.txDropped++;
      } else {
        this.st.txPackets++;
        this.st.txBytes += len;
        this.peer.arrive(this.mem, off, len);
        queued++;
      }
      this.give(off);
    }
    b.clear();
    return queued;
  }

  free(b: Burst): void {
    for (let i = 0; i < b.count; i++) this.give(b.off(i));
    b.clear();
  }

  /** A frame from the peer enters this end's impairment pipeline. */
  private arrive(src: Uint8Array, srcOff: number, len: number): void {
    const imp = this.imp;
    const rng = this.rng;
    if (rng.chance(imp.loss)) { this.st.lost++; return; }
    const copies = rng.chance(imp.duplicate) ? 2 : 1;
    if (copies === 2) this.st.duplicated++;
    const corrupt = rng.chance(imp.corrupt);
    const flipBit = corrupt ? rng.int(len * 8) : -1;
    if (corrupt) this.st.corrupted++;
    const now = this.clock.now();
    for (let c = 0; c < copies; c++) {
      const off = this.take();
      if (off < 0) { this.st.rxDropped++; continue; }
      // A byte loop, not set(subarray(...)): a busy test link must not make a
      // view per frame, or allocation checks over MemLink would see its garbage.
      const dst = this.mem;
      for (let k = 0; k < len; k++) dst[off + k] = src[srcOff + k]!;
      if (flipBit >= 0) this.mem[off + (flipBit >> 3)]! ^= 1 << (flipBit & 7);
      let due = now + imp.delay + (imp.jitter > 0 ? rng.float() * imp.jitter : 0);
      if (rng.chance(imp.reorder)) { due += imp.reorderDelay; this.st.reordered++; }
      // Frames in the heap are not owned by the caller; recv() hands them over.
      const i = off / this.frameSize;
      this.due[i] = due;
      this.order[i] = this.seq++;
      this.flen[i] = len;
      this.heapPush(i);
    }
    this.notify();
  }

  private notify(): void {
    if (this.ready === null || this.readyScheduled) return;
    this.readyScheduled = true;
    setImmediate(() => {
      this.readyScheduled = false;
      if (this.ready !== null && this.pending() > 0) this.ready();
    });
  }

  /** Frames deliverable now. */
  pending(): number {
    const now = this.clock.now();
    let n = 0;
    for (let k = 0; k < this.heapLen; k++) if (this.due[this.heap[k]!]! <= now) n++;
    return n;
  }

  /** Earliest delivery time of a frame in flight to this end, or undefined. */
  nextDue(): number | undefined { return this.heapLen > 0 ? this.due[this.heap[0]!] : undefined; }

  /** Frames in flight to this end. */
  inFlight(): number { return this.heapLen; }

  /** Frames currently owned by the caller (neither free nor in flight): for leak checks. */
  outstanding(): number { return this.owned.length - this.freeTop - this.heapLen; }

  private before(x: number, y: number): boolean {
    const dx = this.due[x]!, dy = this.due[y]!;
    return dx < dy || (dx === dy && this.order[x]! < this.order[y]!);
  }

  private heapPush(e: number): void {
    const h = this.heap;
    let i = this.heapLen++;
    h[i] = e;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(h[i]!, h[p]!)) break;
      const t = h[i]!; h[i] = h[p]!; h[p] = t;
      i = p;
    }
  }

  private heapPop(): number {
    const h = this.heap;
    const top = h[0]!;
    const n = --this.heapLen;
    if (n > 0) {
      h[0] = h[n]!;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < n && this.before(h[l]!, h[m]!)) m = l;
        if (r < n && this.before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        const t = h[i]!; h[i] = h[m]!; h[m] = t;
        i = m;
      }
    }
    return top;
  }

  setReadyHandler(fn: (() => void) | null): void {
    this.ready = fn;
    if (fn !== null) this.notify();
  }

  stats(): MemLinkStats { return { ...this.st }; }

  close(): void {
    this.closed = true;
    this.ready = null;
  }
}

function fill(i: Impairments | undefined): Required<Impairments> {
  const r: Required<Impairments> = {
    loss: i?.loss ?? 0, duplicate: i?.duplicate ?? 0, reorder: i?.reorder ?? 0, reorderDelay: i?.reorderDelay ?? 1,
    delay: i?.delay ?? 0, jitter: i?.jitter ?? 0, corrupt: i?.corrupt ?? 0,
  };
  for (const k of ['loss', 'duplicate', 'reorder', 'corrupt'] as const) {
    if (!(r[k] >= 0 && r[k] <= 1)) throw new InvalidArgumentError(`impairment ${k} must be a probability in [0, 1]`);
  }
  for (const k of ['reorderDelay', 'delay', 'jitter'] as const) {
    if (!(r[k] >= 0)) throw new InvalidArgumentError(`impairment ${k} must be >= 0 ms`);
  }
  return r;
}

export { Burst };
