// Addresses and prefixes for policy: parse once at compile time into four
// 32-bit words (IPv4 uses word 3 only, as an IPv4-mapped address would), and
// match a request's source address without allocating: parseAddrInto()
// writes into a caller-owned Uint32Array.
//
// IPv4-mapped IPv6 sources (::ffff:a.b.c.d, what a dual-stack node:net
// server reports for IPv4 peers) are matched as IPv4, as the Linux stack and
// Cilium treat them.
import { isIP } from 'node:net';

export interface Prefix {
  readonly family: 4 | 6;
  /** network address, 4 words big-endian; IPv4 as ::ffff:a.b.c.d (words[2] = 0xffff), like parseAddrInto */
  readonly words: Uint32Array;
  readonly len: number;
  /** canonical text, e.g. 10.0.0.0/8 or 2001:db8::/32 */
  readonly text: string;
}

const HEX = (c: number): number => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1);

/** Parses dotted-quad IPv4 in s[from, to); returns the address or -1. No allocation. */
function parseV4(s: string, from: number, to: number): number {
  let acc = 0; let part = 0; let digits = 0; let dots = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || ++dots > 3) return -1;
      acc = acc * 256 + part; part = 0; digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && part === 0) return -1; // no leading zeros (ambiguous octal)
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return -1;
    } else return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  return acc * 256 + part;
}

/**
 * Parses an IPv4 or IPv6 address into out[0..3]; returns 4, 6 or 0 (invalid).
 * IPv4-mapped IPv6 addresses return 4. Allocation-free.
 */
export function parseAddrInto(s: string, out: Uint32Array): 0 | 4 | 6 {
  const n = s.length;
  if (n === 0) return 0;
  let hasColon = false;
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) === 0x3a) { hasColon = true; break; }
  if (!hasColon) {
    const v = parseV4(s, 0, n);
    if (v < 0) return 0;
    out[0] = 0; out[1] = 0; out[2] = 0xffff; out[3] = v >>> 0;
    return 4;
  }
  // IPv6: up to 8 groups, one "::", optional trailing dotted quad. Zone ids are not accepted.
  // Groups are collected in SCR in order; `gap` remembers where "::" was, and
  // the expansion below shifts the groups after it to the right end.
  let ngroups = 0; let gap = -1; let i = 0;
  if (s.charCodeAt(0) === 0x3a) {
    if (s.charCodeAt(1) !== 0x3a) return 0;
    gap = 0; i = 2;
    if (i === n) { out[0] = 0; out[1] = 0; out[2] = 0; out[3] = 0; return 6; }
  }
  while (i < n) {
    let j = i; let val = 0; let isV4 = false;
    while (j < n) {
      const c = s.charCodeAt(j);
      if (c === 0x3a) break;
      if (c === 0x2e) { isV4 = true; break; }
      const h = HEX(c);
      if (h < 0) return 0;
      val = val * 16 + h;
      if (j - i >= 4) return 0;
      j++;
    }
    if (isV4) {
      const v = parseV4(s, i, n);
      if (v < 0 || ngroups > 6) return 0;
      SCR[ngroups++] = v >>> 16; SCR[ngroups++] = v & 0xffff;
      i = n;
      break;
    }
    if (j === i) return 0;
    if (ngroups >= 8) return 0;
    SCR[ngroups++] = val;
    if (j === n) { i = n; break; }
    // at ':'
    if (s.charCodeAt(j + 1) === 0x3a) {
      if (gap >= 0) return 0;
      gap = ngroups; i = j + 2;
      if (i === n) break;
    } else {
      i = j + 1;
      if (i === n) return 0;
    }
  }
  if (gap < 0 && ngroups !== 8) return 0;
  if (gap >= 0 && ngroups > 7) return 0;
  // expand into 8 groups
  const fill = 8 - ngroups;
  for (let k = 7; k >= 0; k--) {
    let v: number;
    if (gap < 0) v = SCR[k]!;
    else if (k < gap) v = SCR[k]!;
    else if (k < gap + fill) v = 0;
    else v = SCR[k - fill]!;
    G8[k] = v;
  }
  out[0] = ((G8[0]! << 16) | G8[1]!) >>> 0;
  out[1] = ((G8[2]! << 16) | G8[3]!) >>> 0;
  out[2] = ((G8[4]! << 16) | G8[5]!) >>> 0;
  out[3] = ((G8[6]! << 16) | G8[7]!) >>> 0;
  if (out[0] === 0 && out[1] === 0 && out[2] === 0xffff) return 4;
  return 6;
}
const SCR = new Uint32Array(8);
const G8 = new Uint32Array(8);

/** Does addr (as parsed by parseAddrInto, family fam) fall in p? */
export function prefixContains(p: Prefix, fam: number, addr: Uint32Array): boolean {
  if (fam !== p.family) return false;
  let len = p.family === 4 ? p.len + 96 : p.len;
  for (let w = 0; w < 4 && len > 0; w++, len -= 32) {
    const mask = len >= 32 ? 0xffffffff : (0xffffffff << (32 - len)) >>> 0;
    if (((addr[w]! & mask) >>> 0) !== p.words[w]) return false;
  }
  return true;
}

function toBig(words: Uint32Array): bigint {
  return (BigInt(words[0]!) << 96n) | (BigInt(words[1]!) << 64n) | (BigInt(words[2]!) << 32n) | BigInt(words[3]!);
}
function fromBig(v: bigint): Uint32Array {
  return Uint32Array.of(Number((v >> 96n) & 0xffffffffn), Number((v >> 64n) & 0xffffffffn), Number((v >> 32n) & 0xffffffffn), Number(v & 0xffffffffn));
}

function formatPrefix(family: 4 | 6, words: Uint32Array, len: number): string {
  if (family === 4) {
    const v = words[3]!;
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}/${len}`;
  }
  const groups: string[] = [];
  for (let w = 0; w < 4; w++) groups.push((words[w]! >>> 16).toString(16), (words[w]! & 0xffff).toString(16));
  // compress the longest run of zero groups (RFC 5952)
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i; while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  let text: string;
  if (best < 0) text = groups.join(':');
  else text = `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
  return `${text}/${len}`;
}

function makePrefix(family: 4 | 6, words: Uint32Array, len: number): Prefix {
  return { family, words, len, text: formatPrefix(family, words, len) };
}

/**
 * Parses "a.b.c.d/n", "x::y/n" or a bare address (a host prefix). Host bits
 * must be zero, as Cilium and the kernel's `ip route` insist. Returns the
 * prefix or an error string.
 */
export function parsePrefix(text: string): Prefix | string {
  if (typeof text !== 'string') return 'must be a string';
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const fam = isIP(addrText);
  if (fam === 0) return `${JSON.stringify(addrText)} is not an IPv4 or IPv6 address`;
  const words = new Uint32Array(4);
  const parsedFam = parseAddrInto(addrText, words);
  if (parsedFam === 0) return `${JSON.stringify(addrText)} is not an IPv4 or IPv6 address`;
  const family: 4 | 6 = fam === 4 ? 4 : 6;
  if (family === 6 && parsedFam === 4) return `${JSON.stringify(text)}: write IPv4-mapped prefixes as IPv4`;
  const max = family === 4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const lt = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lt) || Number(lt) > max) return `prefix length must be 0..${max}`;
    len = Number(lt);
  }
  const masked = maskWords(family, words, len);
  for (let i = 0; i < 4; i++) if (masked[i] !== words[i]) return `${text} has host bits set (network is ${formatPrefix(family, masked, len)})`;
  const p = makePrefix(family, words, len);
  return p;
}

function maskWords(family: 4 | 6, words: Uint32Array, len: number): Uint32Array {
  const out = Uint32Array.from(words);
  let l = family === 4 ? len + 96 : len;
  for (let w = 0; w < 4; w++, l -= 32) {
    const mask = l >= 32 ? 0xffffffff : l <= 0 ? 0 : (0xffffffff << (32 - l)) >>> 0;
    out[w] = (out[w]! & mask) >>> 0;
  }
  return out;
}

/** True if a contains b (same family, a.len <= b.len, b's network inside a). */
export function prefixCovers(a: Prefix, b: Prefix): boolean {
  if (a.family !== b.family || a.len > b.len) return false;
  return prefixContains(a, a.family, b.words);
}

/**
 * p minus every prefix in except, as the smallest list of prefixes that
 * cover exactly the rest (what an LPM map can hold, since it has no
 * "except"). Control plane only: uses BigInt.
 */
export function subtractPrefixes(p: Prefix, except: readonly Prefix[]): Prefix[] {
  const bits = p.family === 4 ? 32 : 128;
  const ex = except.filter((e) => e.family === p.family && (prefixCovers(p, e) || prefixCovers(e, p)));
  const out: Prefix[] = [];
  const base = (q: Prefix) => (p.family === 4 ? BigInt(q.words[3]!) : toBig(q.words));
  const mk = (v: bigint, len: number): Prefix => p.family === 4
    ? makePrefix(4, Uint32Array.of(0, 0, 0xffff, Number(v)), len)
    : makePrefix(6, fromBig(v), len);
  const walk = (net: bigint, len: number): void => {
    const cur = mk(net, len);
    let overlap = false;
    for (const e of ex) {
      if (prefixCovers(e, cur)) return; // fully excepted
      if (prefixCovers(cur, e)) overlap = true;
    }
    if (!overlap) { out.push(cur); return; }
    const half = 1n << BigInt(bits - len - 1);
    walk(net, len + 1);
    walk(net | half, len + 1);
  };
  walk(base(p), p.len);
  return out;
}
