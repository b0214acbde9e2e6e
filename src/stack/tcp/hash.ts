// HalfSipHash-2-4 (Aumasson & Bernstein; Linux's hsiphash): a keyed 32-bit
// PRF over 32-bit words, cheap in JavaScript. Used for RFC 6528 ISNs and SYN
// cookies, where the key must stay secret and outputs unpredictable.

function rotl(x: number, b: number): number { return ((x << b) | (x >>> (32 - b))) >>> 0; }

let v0 = 0, v1 = 0, v2 = 0, v3 = 0;
function round(): void {
  v0 = (v0 + v1) >>> 0; v1 = rotl(v1, 5); v1 ^= v0; v0 = rotl(v0, 16);
  v2 = (v2 + v3) >>> 0; v3 = rotl(v3, 8); v3 ^= v2;
  v0 = (v0 + v3) >>> 0; v3 = rotl(v3, 7); v3 ^= v0;
  v2 = (v2 + v1) >>> 0; v1 = rotl(v1, 13); v1 ^= v2; v2 = rotl(v2, 16);
}
function absorb(m: number): void { v3 ^= m; round(); round(); v0 ^= m; }

/** hsiphash of up to four 32-bit words (a, b, c, d) under the 64-bit key (k0, k1). */
export function hsiphash4(k0: number, k1: number, a: number, b: number, c: number, d: number): number {
  v0 = k0 >>> 0; v1 = k1 >>> 0; v2 = (0x6c796765 ^ k0) >>> 0; v3 = (0x74656462 ^ k1) >>> 0;
  absorb(a >>> 0); absorb(b >>> 0); absorb(c >>> 0); absorb(d >>> 0);
  absorb((16 << 24) >>> 0);
  v2 ^= 0xff;
  round(); round(); round(); round();
  return (v1 ^ v3) >>> 0;
}
