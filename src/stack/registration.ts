// Every contract between the stack's layers, in one file (gVisor's
// stack/registration.go habit). Calls are named by direction: deliver…
// going up, write… going down. Each says who owns the bytes.
//
// Addresses: IPv4 addresses are unsigned 32-bit numbers in host order
// (10.200.0.3 = 0x0ac80003). Time: `now` is milliseconds from the caller's
// clock; no layer reads a clock.

/** IP protocol numbers. */
export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58 } as const;

/** A transport protocol (UDP, TCP) registered with the network layer. */
export interface TransportDispatcher {
  readonly protocol: number;
  /**
   * Delivers one transport segment going up. buf[off, off+len) is the
   * transport header and payload, already length-checked against the IP
   * header. The bytes belong to the network layer and are only valid during
   * the call (the frame is returned to the link afterwards): copy what you
   * keep. `ttl` and `tos` come from the IP header.
   */
  deliver(src: number, dst: number, buf: Uint8Array, off: number, len: number, now: number): void;
  /**
   * Delivers an ICMP error that quotes a packet this protocol sent: type and
   * code from ICMP; `mtu` is the next-hop MTU for fragmentation-needed (else
   * 0). quoted[off, off+len) starts at the quoted transport header (at least
   * 8 bytes). src/dst are the quoted packet's addresses (ours, theirs).
   */
  deliverError(type: number, code: number, mtu: number, src: number, dst: number, quoted: Uint8Array, off: number, len: number, now: number): void;
  /**
   * Optional burst bracketing. deliverBegin() says that the segments of one
   * receive burst (a link recv()) follow; until deliverEnd() the transport may
   * defer work that can wait for the burst's end (TCP: the ACK and the
   * hand-off to the application, once per connection per burst, the effect
   * Linux gets from GRO). deliverEnd(now, false) does that work, and
   * application callbacks may run (and throw) in it; deliverEnd(now, true)
   * only queues it for the next poll, for a caller unwinding from an
   * exception. A deliver() outside a bracket is never deferred.
   */
  deliverBegin?(): void;
  deliverEnd?(now: number, defer: boolean): void;
}

/**
 * The network layer as seen by transports going down. Building a packet is
 * zero-copy: begin() reserves a frame with room for link and IP headers and
 * returns where the transport header goes; the transport writes its header
 * and payload straight into `mem`, then calls commit().
 */
export interface NetworkWriter {
  /** Frame memory the offsets below refer to (the link's memory). */
  readonly mem: Uint8Array;
  /**
   * Starts a packet to dst. Returns the offset in mem for the transport header,
   * or -1 when no frame or no route is available (the reason is counted by
   * the network layer). After it succeeds, `src` holds the source address the
   * route chose (needed for the pseudo-header checksum) and `room` the most
   * transport bytes the packet may carry without fragmentation (path MTU).
   */
  begin(dst: number, protocol: number, now: number): number;
  readonly src: number;
  readonly room: number;
  /** Sends the packet begun last, with `len` transport bytes. Returns false if it was dropped (the reason is counted). */
  commit(len: number, now: number, opts?: { ttl?: number; tos?: number; dontFragment?: boolean }): boolean;
  /** Abandons the packet begun last and returns its frame. */
  abort(): void;
  /** Path MTU towards dst as currently known (for TCP's MSS). */
  pathMtu(dst: number): number;
  /** True when addr is one of the stack's own addresses. */
  isLocal(addr: number): boolean;
  /** The source address the stack would use towards dst, or -1 with no route. */
  sourceFor(dst: number): number;
  /**
   * True while a datagram sent to a broadcast address (IP or link level) is
   * being delivered: transports that are unicast only (TCP) drop it.
   */
  readonly curBroadcast?: boolean;
}

/** Verdicts of connection tracking for one packet (gVisor's tcpconntrack result enum). */
export const CT_RESULT = {
  DROP: 0,
  CONNECTING: 1,
  ALIVE: 2,
  RESET: 3,
  CLOSED_BY_ORIGINATOR: 4,
  CLOSED_BY_RESPONDER: 5,
} as const;

/** Formats a host-order IPv4 address. */
export function ip4ToString(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** Parses a dotted-quad IPv4 address to host order; -1 when malformed. */
export function ip4FromString(s: string): number {
  const p = s.split('.');
  if (p.length !== 4) return -1;
  let v = 0;
  for (const x of p) {
    if (!/^\d{1,3}$/.test(x)) return -1;
    const n = Number(x);
    if (n > 255) return -1;
    v = v * 256 + n;
  }
  return v >>> 0;
}
