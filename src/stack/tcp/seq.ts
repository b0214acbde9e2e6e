// Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4, RFC 1982 style):
// a < b when the signed 32-bit difference a - b is negative. Valid while the
// two numbers are less than 2^31 apart, which the window guarantees.

export const seqLt = (a: number, b: number): boolean => ((a - b) | 0) < 0;
export const seqLe = (a: number, b: number): boolean => ((a - b) | 0) <= 0;
export const seqGt = (a: number, b: number): boolean => ((a - b) | 0) > 0;
export const seqGe = (a: number, b: number): boolean => ((a - b) | 0) >= 0;
/** a + n as an unsigned sequence number. */
export const seqAdd = (a: number, n: number): number => (a + n) >>> 0;
/** b - a as a signed distance (b after a is positive). */
export const seqDiff = (b: number, a: number): number => (b - a) | 0;
export const seqMax = (a: number, b: number): number => (seqGt(a, b) ? a : b);
export const seqMin = (a: number, b: number): number => (seqLt(a, b) ? a : b);
/** lo <= x < hi in sequence space. */
export const seqInRange = (x: number, lo: number, hi: number): boolean => seqLe(lo, x) && seqLt(x, hi);
