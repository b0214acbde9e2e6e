// A fast 53-bit string hash (cyrb53-style, two 32-bit murmur-like lanes) for
// consistent hashing: ring positions, Maglev permutations and request keys.
// Not cryptographic; stable across platforms and runs.

export function hash53(s: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed, h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** The low 32 bits of hash53, for table indexing. */
export function hash32(s: string, seed = 0): number {
  return hash53(s, seed) >>> 0;
}
