// IPv6 headers (RFC 8200): the fixed header and a walk over the extension
// header chain to the upper-layer header. Parse side only for now: the
// stack counts IPv6 as unsupported, but conntrack, the XDP mirror and tests
// use these views. See index.ts for the contract: ipv6Check() checks the
// fixed header; ipv6Walk() checks each extension header's length before
// stepping over it.
import { DROP } from '../stats.js';
import { WIRE_OK } from './ipv4.js';

export const IP6 = { VER_TC_FLOW: 0, PAYLOAD_LEN: 4, NEXT_HEADER: 6, HOP_LIMIT: 7, SRC: 8, DST: 24, HLEN: 40 } as const;

export const IP6_NEXT = {
  HOP_BY_HOP: 0, TCP: 6, UDP: 17, ROUTING: 43, FRAGMENT: 44, ESP: 50, AH: 51, ICMPV6: 58, NO_NEXT: 59, DEST_OPTS: 60, MOBILITY: 135,
} as const;

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;

/** Validates the fixed header at buf[off] against len available bytes (payload length included). */
export function ipv6Check(buf: Uint8Array, off: number, len: number): number {
  if (len < IP6.HLEN) return DROP.IP_SHORT;
  if (buf[off]! >>> 4 !== 6) return DROP.IP_BAD_VERSION;
  // A zero payload length with a Jumbo option (RFC 2675) is not supported.
  if (IP6.HLEN + u16(buf, off + IP6.PAYLOAD_LEN) > len) return DROP.IP_BAD_LENGTH;
  return WIRE_OK;
}

export function ipv6TrafficClass(buf: Uint8Array, off: number): number { return ((buf[off]! & 15) << 4) | (buf[off + 1]! >>> 4); }
export function ipv6FlowLabel(buf: Uint8Array, off: number): number { return ((buf[off + 1]! & 15) << 16) | (buf[off + 2]! << 8) | buf[off + 3]!; }
export function ipv6PayloadLen(buf: Uint8Array, off: number): number { return u16(buf, off + IP6.PAYLOAD_LEN); }
export function ipv6NextHeader(buf: Uint8Array, off: number): number { return buf[off + IP6.NEXT_HEADER]!; }
export function ipv6HopLimit(buf: Uint8Array, off: number): number { return buf[off + IP6.HOP_LIMIT]!; }
/** Offset of the 16-byte source address. */
export function ipv6SrcOff(off: number): number { return off + IP6.SRC; }
export function ipv6DstOff(off: number): number { return off + IP6.DST; }

/**
 * The result of walking an extension-header chain: one instance is reused
 * for every packet (re-pointed by ipv6Walk), so walking allocates nothing.
 */
export class Ipv6Walk {
  /** Upper-layer protocol (TCP, UDP, ICMPv6 …) or NO_NEXT / ESP when the chain ends there. */
  protocol = 0;
  /** Offset of the upper-layer header. */
  upperOff = 0;
  /** Bytes from upperOff to the end of the payload. */
  upperLen = 0;
  /** Extension headers crossed. */
  extCount = 0;
  /** Whether a Fragment header was seen, and its fields. */
  fragment = false;
  fragOffset = 0;
  fragMore = false;
  fragId = 0;
}

/** At most this many extension headers are walked (Linux caps option processing similarly). */
export const IP6_MAX_EXT = 16;

/**
 * Walks from the fixed header at buf[off] (already ipv6Check-ed) through the
 * extension headers, filling w. Returns WIRE_OK or a DROP reason.
 */
export function ipv6Walk(buf: Uint8Array, off: number, w: Ipv6Walk): number {
  const end = off + IP6.HLEN + ipv6PayloadLen(buf, off);
  let nh = buf[off + IP6.NEXT_HEADER]!;
  let p = off + IP6.HLEN;
  w.fragment = false; w.fragMore = false; w.fragOffset = 0; w.fragId = 0; w.extCount = 0;
  for (;;) {
    let hl: number;
    if (nh === IP6_NEXT.HOP_BY_HOP || nh === IP6_NEXT.ROUTING || nh === IP6_NEXT.DEST_OPTS || nh === IP6_NEXT.MOBILITY) {
      if (p + 8 > end) return DROP.IP_BAD_OPTIONS;
      // RFC 8200 §4.3: Hop-by-Hop only directly after the fixed header.
      if (nh === IP6_NEXT.HOP_BY_HOP && w.extCount > 0) return DROP.IP_BAD_OPTIONS;
      hl = (buf[p + 1]! + 1) << 3;
    } else if (nh === IP6_NEXT.FRAGMENT) {
      if (p + 8 > end) return DROP.IP_BAD_OPTIONS;
      hl = 8;
      const fo = u16(buf, p + 2);
      w.fragment = true;
      w.fragOffset = fo & 0xfff8;
      w.fragMore = (fo & 1) === 1;
      w.fragId = ((buf[p + 4]! << 24) | (buf[p + 5]! << 16) | (buf[p + 6]! << 8) | buf[p + 7]!) >>> 0;
    } else if (nh === IP6_NEXT.AH) {
      if (p + 8 > end) return DROP.IP_BAD_OPTIONS;
      hl = (buf[p + 1]! + 2) << 2;
    } else {
      break; // upper layer, ESP or No Next Header
    }
    if (p + hl > end) return DROP.IP_BAD_OPTIONS;
    if (++w.extCount > IP6_MAX_EXT) return DROP.IP_BAD_OPTIONS;
    nh = buf[p]!;
    p += hl;
  }
  w.protocol = nh;
  w.upperOff = p;
  w.upperLen = end - p;
  return WIRE_OK;
}

/** Formats a 16-byte address (RFC 5952 zero compression). */
export function ip6ToString(buf: Uint8Array, off: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(u16(buf, off + 2 * i));
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}
