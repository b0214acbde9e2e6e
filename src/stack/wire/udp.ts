// UDP headers (RFC 768). See index.ts for the contract: udpCheck() is the
// length and checksum check.
import { DROP } from '../stats.js';
import { finish, pseudo4, sum16 } from './checksum.js';
import { WIRE_OK } from './ipv4.js';

export const UDP = { SRC_PORT: 0, DST_PORT: 2, LENGTH: 4, CHECKSUM: 6, HLEN: 8 } as const;

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const put16 = (b: Uint8Array, o: number, v: number): void => { b[o] = (v >>> 8) & 255; b[o + 1] = v & 255; };

/**
 * Validates a datagram in buf[off, off+len) where len is what the IP header
 * gives. The UDP length must fit (bytes after it are ignored, as Linux does
 * by trimming). A zero checksum means "none" for IPv4 (RFC 768).
 */
export function udpCheck(buf: Uint8Array, off: number, len: number, src: number, dst: number): number {
  if (len < UDP.HLEN) return DROP.UDP_SHORT;
  const ulen = u16(buf, off + UDP.LENGTH);
  if (ulen < UDP.HLEN || ulen > len) return DROP.UDP_BAD_LENGTH;
  if (u16(buf, off + UDP.CHECKSUM) !== 0 && finish(sum16(buf, off, ulen, pseudo4(src, dst, 17, ulen))) !== 0) return DROP.UDP_BAD_CHECKSUM;
  return WIRE_OK;
}

export function udpSrcPort(buf: Uint8Array, off: number): number { return u16(buf, off + UDP.SRC_PORT); }
export function udpDstPort(buf: Uint8Array, off: number): number { return u16(buf, off + UDP.DST_PORT); }
export function udpLength(buf: Uint8Array, off: number): number { return u16(buf, off + UDP.LENGTH); }
export function udpChecksum(buf: Uint8Array, off: number): number { return u16(buf, off + UDP.CHECKSUM); }

/**
 * Writes the header at buf[off] for a payload of len - 8 bytes already in
 * place, with the checksum (a computed 0 is sent as 0xffff, RFC 768).
 */
export function udpEmit(buf: Uint8Array, off: number, srcPort: number, dstPort: number, len: number, src: number, dst: number): number {
  put16(buf, off + UDP.SRC_PORT, srcPort);
  put16(buf, off + UDP.DST_PORT, dstPort);
  put16(buf, off + UDP.LENGTH, len);
  buf[off + UDP.CHECKSUM] = 0; buf[off + UDP.CHECKSUM + 1] = 0;
  const c = finish(sum16(buf, off, len, pseudo4(src, dst, 17, len)));
  put16(buf, off + UDP.CHECKSUM, c === 0 ? 0xffff : c);
  return UDP.HLEN;
}

/** Parsed form for control paths and tests (allocates). */
export interface UdpRepr { srcPort: number; dstPort: number; length: number; checksum: number; payload: Uint8Array }
export function udpParse(buf: Uint8Array, off: number, len: number, src: number, dst: number): UdpRepr | number {
  const r = udpCheck(buf, off, len, src, dst);
  if (r !== WIRE_OK) return r;
  const ulen = udpLength(buf, off);
  return { srcPort: udpSrcPort(buf, off), dstPort: udpDstPort(buf, off), length: ulen, checksum: udpChecksum(buf, off), payload: buf.subarray(off + 8, off + ulen) };
}
