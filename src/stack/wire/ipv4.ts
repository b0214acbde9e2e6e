// IPv4 headers (RFC 791). See index.ts for the contract.
//
// ipv4Check() is the length check: when it returns WIRE_OK the header, its
// options and total length all lie inside buf[off, off+len), and every
// accessor below reads inside the packet. It also verifies the header
// checksum (RFC 1071) and walks the options so that each one's length is in
// bounds (RFC 791 §3.1: a malformed option makes the packet malformed).
import { DROP } from '../stats.js';
import { finish, sum16, update16 } from './checksum.js';

/** Returned by every check function when the packet is well formed. */
export const WIRE_OK = -1;

export const IP4 = {
  VER_IHL: 0, TOS: 1, TOTAL_LEN: 2, ID: 4, FLAGS_FRAG: 6, TTL: 8, PROTO: 9, CHECKSUM: 10, SRC: 12, DST: 16,
  HLEN: 20, MAX_HLEN: 60,
} as const;

export const IP4_FLAG = { DF: 0x4000, MF: 0x2000, OFFSET_MASK: 0x1fff } as const;
export const IP4_OPT = { EOL: 0, NOP: 1 } as const;
export const IP4_BROADCAST = 0xffffffff;

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const u32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const put16 = (b: Uint8Array, o: number, v: number): void => { b[o] = (v >>> 8) & 255; b[o + 1] = v & 255; };
const put32 = (b: Uint8Array, o: number, v: number): void => { b[o] = v >>> 24; b[o + 1] = (v >>> 16) & 255; b[o + 2] = (v >>> 8) & 255; b[o + 3] = v & 255; };

/**
 * Validates the header at buf[off] against the len bytes available.
 * Returns WIRE_OK, or the DROP reason. `verifyChecksum` may be turned off
 * when the device already did it.
 */
export function ipv4Check(buf: Uint8Array, off: number, len: number, verifyChecksum = true): number {
  if (len < IP4.HLEN) return DROP.IP_SHORT;
  const vi = buf[off]!;
  if (vi >>> 4 !== 4) return DROP.IP_BAD_VERSION;
  const hl = (vi & 15) << 2;
  if (hl < IP4.HLEN) return DROP.IP_BAD_HEADER_LEN;
  if (hl > len) return DROP.IP_SHORT;
  const total = u16(buf, off + IP4.TOTAL_LEN);
  // Frames may carry Ethernet padding after the datagram, never less.
  if (total < hl || total > len) return DROP.IP_BAD_LENGTH;
  if (verifyChecksum && finish(sum16(buf, off, hl)) !== 0) return DROP.IP_BAD_CHECKSUM;
  if (hl > IP4.HLEN) {
    let i = off + IP4.HLEN;
    const end = off + hl;
    while (i < end) {
      const t = buf[i]!;
      if (t === IP4_OPT.EOL) break;
      if (t === IP4_OPT.NOP) { i++; continue; }
      if (i + 1 >= end) return DROP.IP_BAD_OPTIONS;
      const ol = buf[i + 1]!;
      if (ol < 2 || i + ol > end) return DROP.IP_BAD_OPTIONS;
      i += ol;
    }
  }
  return WIRE_OK;
}

/**
 * Offset (from off) of the first malformed option of a header that
 * ipv4Check refused with IP_BAD_OPTIONS, for ICMP parameter problem's
 * pointer (RFC 792); -1 when the options are fine. Slow path only.
 */
export function ipv4BadOptionOffset(buf: Uint8Array, off: number): number {
  const end = off + ipv4HeaderLen(buf, off);
  let i = off + IP4.HLEN;
  while (i < end) {
    const t = buf[i]!;
    if (t === IP4_OPT.EOL) return -1;
    if (t === IP4_OPT.NOP) { i++; continue; }
    if (i + 1 >= end) return i - off;
    const ol = buf[i + 1]!;
    if (ol < 2 || i + ol > end) return i - off; // Linux points at the option itself
    i += ol;
  }
  return -1;
}

export function ipv4HeaderLen(buf: Uint8Array, off: number): number { return (buf[off]! & 15) << 2; }
export function ipv4Tos(buf: Uint8Array, off: number): number { return buf[off + IP4.TOS]!; }
export function ipv4TotalLen(buf: Uint8Array, off: number): number { return u16(buf, off + IP4.TOTAL_LEN); }
export function ipv4Id(buf: Uint8Array, off: number): number { return u16(buf, off + IP4.ID); }
export function ipv4FlagsFrag(buf: Uint8Array, off: number): number { return u16(buf, off + IP4.FLAGS_FRAG); }
export function ipv4DontFragment(buf: Uint8Array, off: number): boolean { return (buf[off + IP4.FLAGS_FRAG]! & 0x40) !== 0; }
export function ipv4MoreFragments(buf: Uint8Array, off: number): boolean { return (buf[off + IP4.FLAGS_FRAG]! & 0x20) !== 0; }
/** Fragment offset in bytes. */
export function ipv4FragOffset(buf: Uint8Array, off: number): number { return (u16(buf, off + IP4.FLAGS_FRAG) & IP4_FLAG.OFFSET_MASK) << 3; }
/** True when the packet is a fragment (MF set or a non-zero offset). */
export function ipv4IsFragment(buf: Uint8Array, off: number): boolean { return (u16(buf, off + IP4.FLAGS_FRAG) & (IP4_FLAG.MF | IP4_FLAG.OFFSET_MASK)) !== 0; }
export function ipv4Ttl(buf: Uint8Array, off: number): number { return buf[off + IP4.TTL]!; }
export function ipv4Protocol(buf: Uint8Array, off: number): number { return buf[off + IP4.PROTO]!; }
export function ipv4Checksum(buf: Uint8Array, off: number): number { return u16(buf, off + IP4.CHECKSUM); }
export function ipv4Src(buf: Uint8Array, off: number): number { return u32(buf, off + IP4.SRC); }
export function ipv4Dst(buf: Uint8Array, off: number): number { return u32(buf, off + IP4.DST); }

/**
 * Writes a 20-byte header (no options) with its checksum at buf[off].
 * flagsFrag is the raw 16-bit flags/offset field (offset in 8-byte units).
 */
export function ipv4Emit(buf: Uint8Array, off: number, src: number, dst: number, protocol: number, totalLen: number, id: number, flagsFrag: number, ttl: number, tos: number): number {
  buf[off] = 0x45; buf[off + IP4.TOS] = tos;
  put16(buf, off + IP4.TOTAL_LEN, totalLen);
  put16(buf, off + IP4.ID, id);
  put16(buf, off + IP4.FLAGS_FRAG, flagsFrag);
  buf[off + IP4.TTL] = ttl; buf[off + IP4.PROTO] = protocol;
  buf[off + IP4.CHECKSUM] = 0; buf[off + IP4.CHECKSUM + 1] = 0;
  put32(buf, off + IP4.SRC, src);
  put32(buf, off + IP4.DST, dst);
  put16(buf, off + IP4.CHECKSUM, finish(sum16(buf, off, IP4.HLEN)));
  return IP4.HLEN;
}

/** Recomputes the header checksum of the header at buf[off] (any IHL). */
export function ipv4FillChecksum(buf: Uint8Array, off: number): void {
  buf[off + IP4.CHECKSUM] = 0; buf[off + IP4.CHECKSUM + 1] = 0;
  put16(buf, off + IP4.CHECKSUM, finish(sum16(buf, off, ipv4HeaderLen(buf, off))));
}

/** Sets the TTL, folding the change into the checksum (RFC 1624). */
export function ipv4SetTtl(buf: Uint8Array, off: number, ttl: number): void {
  const oldWord = u16(buf, off + IP4.TTL);
  buf[off + IP4.TTL] = ttl;
  put16(buf, off + IP4.CHECKSUM, update16(u16(buf, off + IP4.CHECKSUM), oldWord, u16(buf, off + IP4.TTL)));
}

/** Swaps source and destination in place; the checksum is unchanged (the sum commutes). */
export function ipv4SwapAddrs(buf: Uint8Array, off: number): void {
  for (let i = 0; i < 4; i++) { const t = buf[off + IP4.SRC + i]!; buf[off + IP4.SRC + i] = buf[off + IP4.DST + i]!; buf[off + IP4.DST + i] = t; }
}

/** Parsed form for control paths and tests (allocates). */
export interface Ipv4Repr {
  hlen: number; tos: number; totalLen: number; id: number; df: boolean; mf: boolean; fragOffset: number;
  ttl: number; protocol: number; checksum: number; src: number; dst: number;
}
export function ipv4Parse(buf: Uint8Array, off: number, len: number): Ipv4Repr | number {
  const r = ipv4Check(buf, off, len);
  if (r !== WIRE_OK) return r;
  return {
    hlen: ipv4HeaderLen(buf, off), tos: ipv4Tos(buf, off), totalLen: ipv4TotalLen(buf, off), id: ipv4Id(buf, off),
    df: ipv4DontFragment(buf, off), mf: ipv4MoreFragments(buf, off), fragOffset: ipv4FragOffset(buf, off),
    ttl: ipv4Ttl(buf, off), protocol: ipv4Protocol(buf, off), checksum: ipv4Checksum(buf, off), src: ipv4Src(buf, off), dst: ipv4Dst(buf, off),
  };
}

/** True for addresses that can never be a unicast source (RFC 1122 §3.2.1.3, Linux's martians). */
export function ipv4IsMartianSource(a: number): boolean {
  const top = a >>> 24;
  return top >= 224 /* multicast, class E and broadcast */ || top === 0 || top === 127;
}
