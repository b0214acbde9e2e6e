// TapLink: a Link over a TAP device (/dev/net/tun, IFF_TAP | IFF_NO_PI).
//
// Frame memory is one pool the addon allocates and owns (so a transfer of
// the ArrayBuffer can never free memory the addon reads into), carved into
// frameSize slots; a TS-side free stack hands them out. recv() lends up to a burst of
// empty slots to the addon, which read()s frames into them until EAGAIN in
// one N-API call; send() write()s a burst in one call. A TAP copies through
// the kernel by nature (read/write), so unlike AF_XDP a sent frame is back in
// the pool as soon as send() returns.
//
// The TAP's kernel side (e.g. tap0 with 10.201.0.1) has its own MAC; the
// dataplane is the other end of the wire and needs a different one, so `mac`
// defaults to the kernel's MAC with the last byte flipped (locally
// administered), and `kernelMac` reports the kernel's.
import { markAsUntransferable } from 'node:worker_threads';
import { type Burst, type Link, type LinkStats } from './types.js';
import { loadNative, type NativeTap, type TapStats } from './native.js';
import { InvalidArgumentError, StrataError } from '../util/errors.js';

export interface TapLinkOptions {
  /** TAP device name (e.g. 'tap0'). */
  name: string;
  /** Network namespace name holding the device; default: the current one. */
  netns?: string;
  /** Create the device if missing (default false: attach to an existing persistent TAP). */
  create?: boolean;
  /** Make a created device persistent. */
  persist?: boolean;
  /** Slot size (default 2048, must hold mtu + 14). */
  frameSize?: number;
  /** Slots in the pool (default 4096). */
  frameCount?: number;
  /** The dataplane's MAC; default derived from the kernel side's. */
  mac?: Uint8Array;
  /** Frames read per recv() at most, even if the burst has more room (default 64). */
  rxBatch?: number;
}

const FREE = 0, USER = 1;

/** Largest frame pool (frameSize x frameCount) a TAP link takes: 1 GiB, as the addon's kMaxPoolBytes. */
export const TAP_POOL_MAX_BYTES = 2 ** 30;

export class TapLink implements Link {
  readonly kind = 'tap' as const;
  readonly name: string;
  readonly mtu: number;
  readonly frameSize: number;
  readonly frameCount: number;
  readonly mac: Uint8Array;
  readonly kernelMac: Uint8Array;
  readonly mem: Uint8Array;
  readonly ifindex: number;
  private readonly t: NativeTap;
  private readonly freeStack: Uint32Array;
  private freeTop: number;
  private readonly owner: Uint8Array;
  private readonly rxBatch: number;
  private txDroppedLocal = 0;
  private badFrees = 0;
  private allocFailed = 0;
  private closed = false;

  private constructor(o: TapLinkOptions) {
    const n = loadNative('tap');
    this.frameSize = o.frameSize ?? 2048;
    this.frameCount = o.frameCount ?? 4096;
    if (!Number.isInteger(this.frameSize) || this.frameSize < 256 || this.frameSize > 65536) throw new InvalidArgumentError('frameSize must be in 256..65536');
    if (!Number.isInteger(this.frameCount) || this.frameCount < 1) throw new InvalidArgumentError('frameCount must be a positive integer');
    if (this.frameSize * this.frameCount > TAP_POOL_MAX_BYTES) throw new InvalidArgumentError(`frameSize x frameCount must be at most ${TAP_POOL_MAX_BYTES} bytes`);
    this.rxBatch = o.rxBatch ?? 64;
    this.freeStack = new Uint32Array(this.frameCount);
    for (let i = 0; i < this.frameCount; i++) this.freeStack[i] = (this.frameCount - 1 - i) * this.frameSize;
    this.freeTop = this.frameCount;
    this.owner = new Uint8Array(this.frameCount);
    this.t = new n.Tap({ name: o.name, netns: o.netns, create: o.create ?? false, persist: o.persist ?? false }, this.frameSize * this.frameCount);
    // A transfer could at most detach this view (the addon keeps the memory;
    // Node 20 already copies external buffers): mark it so every Node copies,
    // and the stack never sees an empty `mem`.
    markAsUntransferable(this.t.mem);
    this.mem = new Uint8Array(this.t.mem);
    const info = this.t.info();
    this.name = info.name;
    this.ifindex = info.ifindex;
    this.mtu = Math.min(info.mtu + 14, this.frameSize);
    this.kernelMac = info.mac;
    if (o.mac) {
      if (o.mac.length !== 6) throw new InvalidArgumentError('mac must be 6 bytes');
      this.mac = Uint8Array.from(o.mac);
    } else {
      const m = Uint8Array.from(info.mac);
      m[0] = (m[0]! | 0x02) & 0xfe;
      m[5] = m[5]! ^ 0x01;
      this.mac = m;
    }
  }

  static open(o: TapLinkOptions): TapLink { return new TapLink(o); }

  /** Ownership: link -> caller for every appended frame. */
  recv(b: Burst): number {
    let want = b.capacity - b.count;
    if (want > this.rxBatch) want = this.rxBatch;
    if (want > this.freeTop) want = this.freeTop;
    if (want <= 0) return 0;
    const d = b.desc, start = b.count, fs = this.frameSize;
    // Lend `want` slots, then take back the ones the device did not fill.
    for (let i = 0; i < want; i++) {
      d[2 * (start + i)] = this.freeStack[--this.freeTop]!;
      d[2 * (start + i) + 1] = fs;
    }
    const got = this.t.rx(d, start, want);
    for (let i = want - 1; i >= got; i--) this.freeStack[this.freeTop++] = d[2 * (start + i)]!;
    for (let i = 0; i < got; i++) this.owner[(d[2 * (start + i)]! / fs) | 0] = USER;
    b.count += got;
    return got;
  }

  /** Ownership: link -> caller; empty frames (length 0). */
  alloc(b: Burst, n: number): number {
    let want = Math.min(n, b.capacity - b.count);
    if (want > this.freeTop) { this.allocFailed += want - this.freeTop; want = this.freeTop; }
    const d = b.desc, fs = this.frameSize;
    for (let i = 0; i < want; i++) {
      const off = this.freeStack[--this.freeTop]!;
      this.owner[(off / fs) | 0] = USER;
      d[2 * b.count] = off;
      d[2 * b.count + 1] = 0;
      b.count++;
    }
    return want;
  }

  /** Ownership: caller -> link for all frames; written synchronously, so all return to the pool. Empties b. */
  send(b: Burst): number {
    const n = b.count;
    if (n === 0) return 0;
    const d = b.desc, fs = this.frameSize;
    // Frames not owned by the caller are not written (and not returned twice).
    let bad = 0;
    for (let i = 0; i < n; i++) {
      const f = (d[2 * i]! / fs) | 0;
      if (f >= this.frameCount || this.owner[f] !== USER || d[2 * i + 1]! > this.mtu) { d[2 * i + 1] = 0; bad++; }
    }
    const written = this.t.tx(d, n);
    for (let i = 0; i < n; i++) {
      const f = (d[2 * i]! / fs) | 0;
      if (f < this.frameCount && this.owner[f] === USER) { this.owner[f] = FREE; this.freeStack[this.freeTop++] = f * fs; }
    }
    this.txDroppedLocal += bad;
    b.count = 0;
    return written;
  }

  /** Ownership: caller -> link. Empties b. */
  free(b: Burst): void {
    const d = b.desc, fs = this.frameSize;
    for (let i = 0; i < b.count; i++) {
      const f = (d[2 * i]! / fs) | 0;
      if (f >= this.frameCount || this.owner[f] !== USER) { this.badFrees++; continue; }
      this.owner[f] = FREE;
      this.freeStack[this.freeTop++] = f * fs;
    }
    b.count = 0;
  }

  setReadyHandler(fn: (() => void) | null): void {
    if (this.closed) throw new StrataError('ERR_STRATA_CLOSED', `tap ${this.name} is closed`);
    if (fn) this.t.startPoll(fn);
    else this.t.stopPoll();
  }

  stats(): LinkStats {
    const s = this.t.stats();
    return {
      rxPackets: s.rxPackets, rxBytes: s.rxBytes, txPackets: s.txPackets, txBytes: s.txBytes,
      txDropped: s.txDropped + this.txDroppedLocal, rxDropped: 0,
    };
  }

  /** Native counters plus pool state. */
  tapStats(): TapStats & { freeFrames: number; badFrees: number; allocFailed: number } {
    return { ...this.t.stats(), freeFrames: this.freeTop, badFrees: this.badFrees, allocFailed: this.allocFailed };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.t.close();
  }
}
