// PcapLink: wraps any Link and records every frame it receives and sends to
// a classic pcap file (LINKTYPE_ETHERNET, microsecond timestamps) that
// tcpdump and Wireshark read. smoltcp's habit: debugging is a wrapper, not a
// special path. Frames pass through untouched and ownership is exactly that
// of the inner link.
//
// Records are staged in one preallocated buffer and written with one
// writeSync per burst, so a crash loses at most the burst in progress.
import { openSync, writeSync, closeSync } from 'node:fs';
import type { Burst, Link, LinkStats } from './types.js';
import { wallClock, type Clock } from '../util/clock.js';

const PCAP_MAGIC_USEC = 0xa1b2c3d4;
const LINKTYPE_ETHERNET = 1;
const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;

export interface PcapOptions {
  /** Bytes of each frame kept; longer frames are truncated in the file only. Default 65535. */
  snaplen?: number;
  /** Timestamps come from here. Default: wall clock. */
  clock?: Clock;
  /** Record received frames, sent frames, or both (default). */
  direction?: 'rx' | 'tx' | 'both';
}

export class PcapLink implements Link {
  readonly kind = 'pcap' as const;
  readonly name: string;
  private readonly fd: number;
  private readonly stage: Buffer;
  private used = 0;
  private readonly snaplen: number;
  private readonly clock: Clock;
  private readonly rx: boolean;
  private readonly tx: boolean;
  private closed = false;
  /** Frames recorded. */
  recorded = 0;

  constructor(readonly inner: Link, readonly path: string, opts: PcapOptions = {}) {
    this.name = `pcap(${inner.name})`;
    this.snaplen = opts.snaplen ?? 65535;
    this.clock = opts.clock ?? wallClock;
    const dir = opts.direction ?? 'both';
    this.rx = dir !== 'tx';
    this.tx = dir !== 'rx';
    this.fd = openSync(path, 'w');
    // Room for a full burst of maximal frames is not needed: flush when full.
    this.stage = Buffer.allocUnsafe(Math.max(1 << 16, 4 * (inner.frameSize + RECORD_HEADER)));
    const h = Buffer.alloc(GLOBAL_HEADER);
    h.writeUInt32LE(PCAP_MAGIC_USEC, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeInt32LE(0, 8);
    h.writeUInt32LE(0, 12);
    h.writeUInt32LE(this.snaplen, 16);
    h.writeUInt32LE(LINKTYPE_ETHERNET, 20);
    writeSync(this.fd, h);
  }

  get mtu(): number { return this.inner.mtu; }
  get frameSize(): number { return this.inner.frameSize; }
  get mac(): Uint8Array { return this.inner.mac; }
  get mem(): Uint8Array { return this.inner.mem; }

  private record(b: Burst, from: number): void {
    if (this.closed) return;
    const t = this.clock.now();
    const sec = Math.floor(t / 1000);
    const usec = Math.floor((t - sec * 1000) * 1000);
    const mem = this.inner.mem;
    for (let i = from; i < b.count; i++) {
      const off = b.off(i);
      const len = b.len(i);
      const cap = Math.min(len, this.snaplen);
      if (this.used + RECORD_HEADER + cap > this.stage.length) this.flush();
      const s = this.stage;
      let p = this.used;
      s.writeUInt32LE(sec >>> 0, p); p += 4;
      s.writeUInt32LE(usec, p); p += 4;
      s.writeUInt32LE(cap, p); p += 4;
      s.writeUInt32LE(len, p); p += 4;
      s.set(mem.subarray(off, off + cap), p);
      this.used = p + cap;
      this.recorded++;
    }
    this.flush();
  }

  /** Writes staged records to the file. */
  flush(): void {
    if (this.used === 0) return;
    writeSync(this.fd, this.stage, 0, this.used);
    this.used = 0;
  }

  recv(b: Burst): number {
    const from = b.count;
    const n = this.inner.recv(b);
    if (n > 0 && this.rx) this.record(b, from);
    return n;
  }

  alloc(b: Burst, n: number): number { return this.inner.alloc(b, n); }

  send(b: Burst): number {
    if (b.count > 0 && this.tx) this.record(b, 0);
    return this.inner.send(b);
  }

  free(b: Burst): void { this.inner.free(b); }
  setReadyHandler(fn: (() => void) | null): void { this.inner.setReadyHandler(fn); }
  stats(): LinkStats { return this.inner.stats(); }

  /** Closes the capture file and the inner link. */
  close(): void {
    if (!this.closed) {
      this.flush();
      closeSync(this.fd);
      this.closed = true;
    }
    this.inner.close();
  }
}
