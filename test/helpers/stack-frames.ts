// Crafting frames for the hostile-input tests and the packet fuzzer: a
// third party on a Sim's wire (test/stack-hostile.test.ts,
// test/stack-packet-fuzz.test.ts). Everything here allocates; it is test code.
import { Burst, type Link, type LinkStats } from '../../src/link/types.js';
import type { MemLink } from '../../src/link/mem.js';
import { ETHERTYPE, ethEmit } from '../../src/stack/wire/ethernet.js';
import { ipv4Emit } from '../../src/stack/wire/ipv4.js';
import { finish, pseudo4, sum16 } from '../../src/stack/wire/checksum.js';
import { TCP, wr16, writeTcpHeader } from '../../src/stack/wire/tcp.js';

/** Sends raw bytes as one frame on `link`: the frame arrives at the link's peer. False when no frame was free. */
export function inject(link: MemLink, frame: Uint8Array): boolean {
  const b = new Burst(1);
  if (link.alloc(b, 1) !== 1) return false;
  const n = Math.min(frame.length, link.frameSize);
  link.mem.set(frame.subarray(0, n), b.off(0));
  b.setLen(0, n);
  if (link.send(b) !== 1) { link.free(b); return false; }
  return true;
}

/** Ethernet (dst, src MAC) + IPv4 header + payload. */
export function ipv4Frame(dstMac: Uint8Array, srcMac: Uint8Array, src: number, dst: number, proto: number, payload: Uint8Array,
  o: { id?: number; flagsFrag?: number; ttl?: number } = {}): Uint8Array {
  const f = new Uint8Array(14 + 20 + payload.length);
  ethEmit(f, 0, dstMac, 0, srcMac, 0, ETHERTYPE.IPV4);
  ipv4Emit(f, 14, src, dst, proto, 20 + payload.length, o.id ?? 1, o.flagsFrag ?? 0, o.ttl ?? 64, 0);
  f.set(payload, 34);
  return f;
}

export interface TcpSeg {
  sport: number; dport: number; seq: number; ack: number; flags: number;
  wnd?: number; urg?: number; data?: Uint8Array; options?: Uint8Array;
}

/** A TCP segment (header, options padded to 4, data) with a correct checksum for src -> dst. */
export function tcpSegment(src: number, dst: number, s: TcpSeg): Uint8Array {
  const optLen = s.options ? (s.options.length + 3) & ~3 : 0;
  const data = s.data ?? new Uint8Array(0);
  const b = new Uint8Array(TCP.HEADER_LEN + optLen + data.length);
  if (s.options) b.set(s.options, TCP.HEADER_LEN);
  writeTcpHeader(b, 0, s.sport, s.dport, s.seq >>> 0, s.ack >>> 0, s.flags, s.wnd ?? 65535, optLen, s.urg ?? 0);
  b.set(data, TCP.HEADER_LEN + optLen);
  wr16(b, TCP.CHECKSUM, finish(sum16(b, 0, b.length, pseudo4(src, dst, 6, b.length))));
  return b;
}

/** Wraps a MemLink end (smoltcp style): counts the frames it sends and, with keep, copies them. */
export class WireTap implements Link {
  frames = 0;
  readonly sent: Uint8Array[] = [];
  constructor(readonly inner: MemLink, private readonly keep = true) {}
  get kind() { return this.inner.kind; }
  get name() { return this.inner.name; }
  get mtu() { return this.inner.mtu; }
  get frameSize() { return this.inner.frameSize; }
  get mac() { return this.inner.mac; }
  get mem() { return this.inner.mem; }
  recv(b: Burst): number { return this.inner.recv(b); }
  alloc(b: Burst, n: number): number { return this.inner.alloc(b, n); }
  send(b: Burst): number {
    this.frames += b.count;
    if (this.keep) for (let i = 0; i < b.count; i++) this.sent.push(this.inner.mem.slice(b.off(i), b.off(i) + b.len(i)));
    return this.inner.send(b);
  }
  free(b: Burst): void { this.inner.free(b); }
  setReadyHandler(fn: (() => void) | null): void { this.inner.setReadyHandler(fn); }
  stats(): LinkStats { return this.inner.stats(); }
  close(): void { this.inner.close(); }
}
