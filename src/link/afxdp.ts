// AfXdpLink: a Link over one AF_XDP socket (one interface queue).
//
// The UMEM is the link's `mem`: frames are named by their byte offset in it
// and packet bytes are never copied between the rings and JavaScript. Each
// Link method is exactly one N-API call moving a whole burst; the fill and
// completion rings are run inside the addon. Ownership follows
// src/link/types.ts: recv/alloc hand frames to the caller, send/free take
// them back (send drops and counts what the TX ring cannot take).
//
// Traffic reaches the socket only if the XDP program steers it there: pass
// `xdp` (an attached XdpProgram) and the socket is put in its XSKMAP for
// `queue` on open and taken out on close.
import { markAsUntransferable } from 'node:worker_threads';
import { type Burst, type Link, type LinkStats } from './types.js';
import { loadNative, type NativeXsk, type XskInfo, type XskStats } from './native.js';
import { InvalidArgumentError } from '../util/errors.js';
import type { XdpProgram } from '../xdp/program.js';

export interface AfXdpLinkOptions {
  iface: string;
  /** Interface queue (channel) to bind; default 0. */
  queue?: number;
  /** Network namespace name holding iface; default: the current one. */
  netns?: string;
  /** UMEM frame size: 2048 or 4096 (default 4096). */
  frameSize?: 2048 | 4096;
  /** UMEM frames (default 4096); half of them (at most fillSize) are kept in the fill ring. */
  frameCount?: number;
  rxSize?: number;
  txSize?: number;
  fillSize?: number;
  compSize?: number;
  /** Bind mode: 'auto' (default: zero-copy if the driver can), 'copy', 'zerocopy'. */
  mode?: 'auto' | 'copy' | 'zerocopy';
  /** Use XDP_USE_NEED_WAKEUP (default true): syscalls only when the kernel asks. */
  needWakeup?: boolean;
  /** Opt-in busy polling (SO_PREFER_BUSY_POLL etc.); the caller then spins on recv(). */
  busyPoll?: boolean | { usec?: number; budget?: number };
  /** The XDP program to register this socket with (XSKMAP[queue] = fd). */
  xdp?: XdpProgram;
  /** Link name for logs; default `${iface}q${queue}`. */
  name?: string;
}

export class AfXdpLink implements Link {
  readonly kind = 'afxdp' as const;
  readonly name: string;
  readonly mtu: number;
  readonly frameSize: number;
  readonly mac: Uint8Array;
  readonly mem: Uint8Array;
  readonly iface: string;
  readonly queue: number;
  readonly fd: number;
  /** What the kernel gave us: zero-copy or not, busy-poll options accepted, … */
  readonly info: XskInfo;
  private readonly x: NativeXsk;
  private xdp: XdpProgram | undefined;
  private closed = false;

  private constructor(x: NativeXsk, o: AfXdpLinkOptions, mtu: number, mac: Uint8Array) {
    this.x = x;
    this.iface = o.iface;
    this.queue = o.queue ?? 0;
    this.name = o.name ?? `${o.iface}q${this.queue}`;
    this.info = x.info();
    this.fd = this.info.fd;
    this.frameSize = this.info.frameSize;
    this.mtu = Math.min(mtu + 14, this.frameSize);
    this.mac = mac;
    // The UMEM is the addon's memory; a transfer could at most detach this
    // view (Node 20 copies external buffers): mark it so every Node copies.
    markAsUntransferable(x.mem);
    this.mem = new Uint8Array(x.mem);
  }

  static open(o: AfXdpLinkOptions): AfXdpLink {
    const n = loadNative('afxdp');
    const queue = o.queue ?? 0;
    if (!Number.isInteger(queue) || queue < 0) throw new InvalidArgumentError('queue must be a non-negative integer');
    const bp = o.busyPoll;
    const ifi = n.ifInfo(o.iface, o.netns);
    const x = new n.Xsk({
      ifname: o.iface, queue, netns: o.netns,
      frameSize: o.frameSize, frameCount: o.frameCount,
      rxSize: o.rxSize, txSize: o.txSize, fillSize: o.fillSize, compSize: o.compSize,
      bind: o.mode ?? 'auto', needWakeup: o.needWakeup ?? true,
      busyPoll: bp !== undefined && bp !== false,
      busyPollUsec: typeof bp === 'object' ? bp.usec : undefined,
      busyPollBudget: typeof bp === 'object' ? bp.budget : undefined,
    });
    const link = new AfXdpLink(x, o, ifi.mtu, ifi.mac);
    if (o.xdp) {
      try { o.xdp.bindXsk(queue, link.fd); } catch (e) { x.close(); throw e; }
      link.xdp = o.xdp;
    }
    return link;
  }

  /** Ownership: link -> caller for every appended frame. */
  recv(b: Burst): number {
    const n = this.x.rx(b.desc, b.count, b.capacity - b.count);
    b.count += n;
    return n;
  }

  /** Ownership: link -> caller; frames have length 0 and start at their slot. */
  alloc(b: Burst, n: number): number {
    const want = Math.min(n, b.capacity - b.count);
    if (want <= 0) return 0;
    const got = this.x.alloc(b.desc, b.count, want);
    b.count += got;
    return got;
  }

  /** Ownership: caller -> link for all frames; those the TX ring cannot take are dropped and counted. Empties b. */
  send(b: Burst): number {
    const q = b.count === 0 ? 0 : this.x.tx(b.desc, b.count);
    b.count = 0;
    return q;
  }

  /** Ownership: caller -> link. Empties b. */
  free(b: Burst): void {
    if (b.count) this.x.free(b.desc, b.count);
    b.count = 0;
  }

  setReadyHandler(fn: (() => void) | null): void {
    if (fn) this.x.startPoll(fn);
    else this.x.stopPoll();
  }

  /** Wakes the kernel for TX/RX even if need_wakeup did not ask (flushes a partially sent ring). */
  kick(): void { this.x.kick(); }

  stats(): LinkStats {
    const s = this.x.stats();
    return {
      rxPackets: s.rxPackets, rxBytes: s.rxBytes, txPackets: s.txPackets, txBytes: s.txBytes,
      txDropped: s.txDropped, rxDropped: (s.rxDropped ?? 0) + (s.rxRingFull ?? 0),
    };
  }

  /** Every counter the socket has, including the kernel's XDP_STATISTICS. */
  xskStats(): XskStats { return this.x.stats(); }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.xdp?.isAttached) {
      try { this.xdp.unbindXsk(this.queue); } catch { /* the program may be gone already */ }
    }
    this.x.close();
  }
}
