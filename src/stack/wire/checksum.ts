// The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//
// sum16() accumulates 16-bit big-endian words into a plain number without
// folding (safe for any packet size: 2^53 / 0xffff words), so a pseudo-header,
// a header and a payload can be summed in pieces; finish() folds and inverts.
// A received packet is valid when finish(sum over it, checksum included) is 0.

/** Adds buf[off, off+len) as 16-bit big-endian words to acc (odd tail padded with zero). */
export function sum16(buf: Uint8Array, off: number, len: number, acc = 0): number {
  let s = acc;
  const end = off + (len & ~1);
  let i = off;
  // Unrolled by 8 bytes: this loop is the hottest code for bulk data.
  for (; i + 8 <= end; i += 8) {
    s += ((buf[i]! << 8) | buf[i + 1]!) + ((buf[i + 2]! << 8) | buf[i + 3]!)
      + ((buf[i + 4]! << 8) | buf[i + 5]!) + ((buf[i + 6]! << 8) | buf[i + 7]!);
  }
  for (; i < end; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  if (len & 1) s += buf[off + len - 1]! << 8;
  return s;
}

/** Folds an accumulator to 16 bits and returns the ones' complement: the value to store in a header. */
export function finish(acc: number): number {
  let s = acc;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return ~s & 0xffff;
}

/** The IPv4 pseudo-header sum for TCP/UDP (RFC 793 / RFC 768). Addresses in host order. */
export function pseudo4(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}

/** The IPv6 pseudo-header sum (RFC 8200 §8.1); addresses are 16-byte views. */
export function pseudo6(buf: Uint8Array, srcOff: number, dstOff: number, nextHeader: number, length: number): number {
  return sum16(buf, srcOff, 16, sum16(buf, dstOff, 16, 0)) + (length >>> 16) + (length & 0xffff) + nextHeader;
}

/**
 * RFC 1624 eqn. 3: the new checksum after one 16-bit field changes from
 * oldField to newField, without re-summing: HC' = ~(~HC + ~m + m').
 */
export function update16(check: number, oldField: number, newField: number): number {
  let s = (~check & 0xffff) + (~oldField & 0xffff) + (newField & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** update16 for a 32-bit field (an IPv4 address, a sequence number). */
export function update32(check: number, oldField: number, newField: number): number {
  return update16(update16(check, oldField >>> 16, newField >>> 16), oldField & 0xffff, newField & 0xffff);
}
