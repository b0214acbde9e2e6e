// ICMP for IPv4 (RFC 792, RFC 1191 for fragmentation-needed) and the parse
// side of ICMPv6 (RFC 4443). See index.ts for the contract: icmpCheck() and
// icmp6Check() are the length (and checksum) checks.
import { DROP } from '../stats.js';
import { finish, pseudo6, sum16, update16 } from './checksum.js';
import { WIRE_OK } from './ipv4.js';

export const ICMP = { TYPE: 0, CODE: 1, CHECKSUM: 2, ID: 4, SEQ: 6, UNUSED: 4, NEXT_MTU: 6, HLEN: 8 } as const;

export const ICMP_TYPE = {
  ECHO_REPLY: 0,
  DEST_UNREACHABLE: 3,
  SOURCE_QUENCH: 4,
  REDIRECT: 5,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
  TIMESTAMP: 13,
  TIMESTAMP_REPLY: 14,
} as const;

export const ICMP_UNREACH = {
  NET: 0, HOST: 1, PROTOCOL: 2, PORT: 3, FRAG_NEEDED: 4, SOURCE_ROUTE: 5,
  NET_UNKNOWN: 6, HOST_UNKNOWN: 7, ADMIN_PROHIBITED: 13,
} as const;

export const ICMP_TIME_EXCEEDED = { TTL: 0, REASSEMBLY: 1 } as const;

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const put16 = (b: Uint8Array, o: number, v: number): void => { b[o] = (v >>> 8) & 255; b[o + 1] = v & 255; };

/** Validates an ICMPv4 message of len bytes: length and checksum. */
export function icmpCheck(buf: Uint8Array, off: number, len: number): number {
  if (len < ICMP.HLEN) return DROP.ICMP_SHORT;
  if (finish(sum16(buf, off, len)) !== 0) return DROP.ICMP_BAD_CHECKSUM;
  return WIRE_OK;
}

export function icmpType(buf: Uint8Array, off: number): number { return buf[off + ICMP.TYPE]!; }
export function icmpCode(buf: Uint8Array, off: number): number { return buf[off + ICMP.CODE]!; }
export function icmpChecksum(buf: Uint8Array, off: number): number { return u16(buf, off + ICMP.CHECKSUM); }
export function icmpEchoId(buf: Uint8Array, off: number): number { return u16(buf, off + ICMP.ID); }
export function icmpEchoSeq(buf: Uint8Array, off: number): number { return u16(buf, off + ICMP.SEQ); }
/** Next-hop MTU of a fragmentation-needed message (RFC 1191); 0 from pre-1191 routers. */
export function icmpNextMtu(buf: Uint8Array, off: number): number { return u16(buf, off + ICMP.NEXT_MTU); }
/** Offset of the quoted datagram in an error message. */
export function icmpQuoteOff(off: number): number { return off + ICMP.HLEN; }

/** True for types that are errors (never answered with an error, RFC 1122 §3.2.2). */
export function icmpIsError(type: number): boolean {
  return type === ICMP_TYPE.DEST_UNREACHABLE || type === ICMP_TYPE.SOURCE_QUENCH || type === ICMP_TYPE.REDIRECT
    || type === ICMP_TYPE.TIME_EXCEEDED || type === ICMP_TYPE.PARAMETER_PROBLEM;
}

/**
 * Writes an ICMP header at buf[off] whose body (len - 8 bytes) is already in
 * place after it, and fills the checksum over all len bytes. `rest` is the
 * 32-bit second word (id/seq, unused, or unused/next-MTU).
 */
export function icmpEmit(buf: Uint8Array, off: number, type: number, code: number, rest: number, len: number): number {
  buf[off] = type; buf[off + 1] = code; buf[off + 2] = 0; buf[off + 3] = 0;
  buf[off + 4] = rest >>> 24; buf[off + 5] = (rest >>> 16) & 255; buf[off + 6] = (rest >>> 8) & 255; buf[off + 7] = rest & 255;
  put16(buf, off + ICMP.CHECKSUM, finish(sum16(buf, off, len)));
  return ICMP.HLEN;
}

/** Turns an echo request into its reply in place; the checksum is updated incrementally. */
export function icmpEchoToReply(buf: Uint8Array, off: number): void {
  const oldWord = u16(buf, off);
  buf[off + ICMP.TYPE] = ICMP_TYPE.ECHO_REPLY;
  put16(buf, off + ICMP.CHECKSUM, update16(u16(buf, off + ICMP.CHECKSUM), oldWord, u16(buf, off)));
}

// ---- ICMPv6 (parse only) ----

export const ICMP6_TYPE = {
  DEST_UNREACHABLE: 1, PACKET_TOO_BIG: 2, TIME_EXCEEDED: 3, PARAMETER_PROBLEM: 4,
  ECHO_REQUEST: 128, ECHO_REPLY: 129,
  ROUTER_SOLICIT: 133, ROUTER_ADVERT: 134, NEIGHBOR_SOLICIT: 135, NEIGHBOR_ADVERT: 136, REDIRECT: 137,
} as const;

/**
 * Validates an ICMPv6 message at buf[off, off+len) whose IPv6 header starts
 * at ip6Off (for the mandatory pseudo-header checksum, RFC 4443 §2.3).
 */
export function icmp6Check(buf: Uint8Array, ip6Off: number, off: number, len: number): number {
  if (len < 4) return DROP.ICMP_SHORT;
  if (finish(sum16(buf, off, len, pseudo6(buf, ip6Off + 8, ip6Off + 24, 58, len))) !== 0) return DROP.ICMP_BAD_CHECKSUM;
  return WIRE_OK;
}
/** MTU of a Packet Too Big message (needs len >= 8). */
export function icmp6Mtu(buf: Uint8Array, off: number): number { return ((buf[off + 4]! << 24) | (buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!) >>> 0; }
