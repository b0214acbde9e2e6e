// The Link contract: how frames enter and leave strata.
//
// Every link owns one block of frame memory (`mem`), carved into fixed-size
// frames. A frame is named by its byte offset into `mem`; packet bytes are
// never copied between the device and JavaScript. Frames move in bursts: a
// Burst is a preallocated Uint32Array of (offset, length) pairs.
//
// Ownership (stated once here, and on every method):
//   recv(b)  link -> caller. Appended frames belong to the caller, who must
//            hand each one back exactly once, through send() or free().
//   alloc(b) link -> caller. Empty frames for building packets; same rule.
//   send(b)  caller -> link, for ALL frames in b. Frames the device cannot
//            queue (full ring) are dropped and counted in stats().txDropped,
//            as Snabb does; the caller never gets them back. b is emptied.
//   free(b)  caller -> link. b is emptied.
// The caller may modify a frame it owns in place (e.g. to echo it back).
//
// Readiness: links call the ready handler (from the event loop) when recv()
// may return frames. A caller may also busy-poll recv().

export class Burst {
  /** (offset, length) pairs: desc[2i] = offset, desc[2i+1] = length. */
  readonly desc: Uint32Array;
  readonly capacity: number;
  count = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('burst capacity must be a positive integer');
    this.capacity = capacity;
    this.desc = new Uint32Array(capacity * 2);
  }

  off(i: number): number { return this.desc[2 * i]!; }
  len(i: number): number { return this.desc[2 * i + 1]!; }
  setLen(i: number, len: number): void { this.desc[2 * i + 1] = len; }
  /** Appends a frame; returns false (and appends nothing) when full. */
  push(off: number, len: number): boolean {
    if (this.count === this.capacity) return false;
    this.desc[2 * this.count] = off;
    this.desc[2 * this.count + 1] = len;
    this.count++;
    return true;
  }
  get space(): number { return this.capacity - this.count; }
  clear(): void { this.count = 0; }
}

export interface LinkStats {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Frames passed to send() that the device could not queue. */
  txDropped: number;
  /** Frames the device dropped on receive for lack of buffers, where known. */
  rxDropped: number;
}

export type LinkKind = 'afxdp' | 'tap' | 'mem' | 'pcap';

export interface Link {
  readonly kind: LinkKind;
  readonly name: string;
  /** Largest L2 frame (without FCS) the link carries. */
  readonly mtu: number;
  /** Size of every frame slot in mem; a frame's length never exceeds it. */
  readonly frameSize: number;
  /** The link's MAC address (6 bytes). */
  readonly mac: Uint8Array;
  /** All frame memory. A frame is mem.subarray(off, off + len). */
  readonly mem: Uint8Array;

  /** Appends up to b.space received frames to b. Ownership: link -> caller. Returns how many. */
  recv(b: Burst): number;
  /** Appends up to min(n, b.space) empty frames (length 0) to b. Ownership: link -> caller. */
  alloc(b: Burst, n: number): number;
  /** Transmits every frame in b. Ownership: caller -> link for all of them. Returns how many were queued; the rest are dropped and counted. Empties b. */
  send(b: Burst): number;
  /** Returns every frame in b to the link. Ownership: caller -> link. Empties b. */
  free(b: Burst): void;
  /** Called when recv() may yield frames; null stops notifications. */
  setReadyHandler(fn: (() => void) | null): void;
  stats(): LinkStats;
  close(): void;
}

export function emptyStats(): LinkStats {
  return { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, txDropped: 0, rxDropped: 0 };
}
