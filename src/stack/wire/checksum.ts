// The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//
// sum16() accumulates 16-bit big-endian words into a plain number without
// folding (safe for any packet size: 2^53 / 0xffff words), so a pseudo-header,
// a header and a payload can be summed in pieces; finish() folds and inverts.
// A received packet is valid when finish(sum over it, checksum included) is 0.

// Bulk data is summed 32 bits at a time through a Uint32Array over the
// buffer's memory (RFC 1071 §2(B): the sum is independent of byte order, so
// little-endian words are summed, folded and byte-swapped once). That is ~4x
// faster than reading bytes and it is the hottest code on the receive path.
// The word views are made once per ArrayBuffer (the link's frame memory), not
// per call; short, odd-aligned or big-endian cases take the byte loop.

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Below this many bytes the byte loop is as fast as setting up the word loop. */
const WORD_MIN = 32;
let viewBuf: ArrayBufferLike | null = null;
let view32: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
let view16: Uint16Array<ArrayBufferLike> = new Uint16Array(0);

/** Adds buf[off, off+len) as 16-bit big-endian words to acc (odd tail padded with zero). */
export function sum16(buf: Uint8Array, off: number, len: number, acc = 0): number {
  const abs = buf.byteOffset + off;
  if (len < WORD_MIN || (abs & 1) !== 0 || !LITTLE_ENDIAN) return sumBytes(buf, off, len, acc);
  const ab = buf.buffer;
  if (ab !== viewBuf) {
    viewBuf = ab;
    view32 = new Uint32Array(ab, 0, ab.byteLength >>> 2);
    view16 = new Uint16Array(ab, 0, ab.byteLength >>> 1);
  }
  const v32 = view32;
  let p = abs;
  let rem = len;
  let s = 0;
  if ((p & 2) !== 0) { s += view16[p >>> 1]!; p += 2; rem -= 2; }
  let w = p >>> 2;
  const wend = w + (rem >>> 2);
  for (; w + 4 <= wend; w += 4) s += v32[w]! + v32[w + 1]! + v32[w + 2]! + v32[w + 3]!;
  for (; w < wend; w++) s += v32[w]!;
  p = w << 2;
  if ((rem & 2) !== 0) { s += view16[p >>> 1]!; }
  // Fold the little-endian sum to 16 bits (2^32 ≡ 1 and 2^16 ≡ 1 mod 0xffff), then swap to big-endian.
  const hi = Math.floor(s / 4294967296);
  let f = (s >>> 16) + (s & 0xffff) + (hi >>> 16) + (hi & 0xffff);
  while (f > 0xffff) f = (f >>> 16) + (f & 0xffff);
  acc += ((f & 0xff) << 8) | (f >>> 8);
  if ((len & 1) !== 0) acc += buf[off + len - 1]! << 8;
  return acc;
}

/** The byte loop: any alignment, any host. */
function sumBytes(buf: Uint8Array, off: number, len: number, acc: number): number {
  let s = acc;
  const end = off + (len & ~1);
  let i = off;
  // Unrolled by 8 bytes.
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
