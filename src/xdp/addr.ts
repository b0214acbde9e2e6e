// Address parsing for the XDP maps: IPv4/IPv6 text -> 16 bytes, prefixes.
// Control plane only; throws InvalidArgumentError on bad input.
import { isIPv4, isIPv6 } from 'node:net';
import { InvalidArgumentError } from '../util/errors.js';

export interface ParsedAddr { family: 4 | 6; bytes: Uint8Array /* 4 or 16 */ }

export function parseAddr(s: string): ParsedAddr {
  if (isIPv4(s)) return { family: 4, bytes: Uint8Array.from(s.split('.').map(Number)) };
  if (isIPv6(s)) return { family: 6, bytes: parseIPv6(s) };
  throw new InvalidArgumentError(`not an IP address: '${s}'`);
}

function parseIPv6(s: string): Uint8Array {
  const out = new Uint8Array(16);
  let text = s;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // A trailing dotted quad (::ffff:1.2.3.4) becomes two groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const b = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const r = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill('0'), ...r];
  for (let i = 0; i < 8; i++) {
    const v = parseInt(groups[i]!, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  }
  return out;
}

export function formatAddr(family: number, b: Uint8Array): string {
  if (family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const g: string[] = [];
  for (let i = 0; i < 8; i++) g.push(((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return g.join(':');
  return `${g.slice(0, best).join(':')}::${g.slice(best + bestLen).join(':')}`;
}

export interface ParsedPrefix { family: 4 | 6; bytes: Uint8Array; len: number }

/** 'a.b.c.d/len', 'x::y/len' or a bare address (host prefix). Host bits must be zero. */
export function parsePrefix(s: string): ParsedPrefix {
  const slash = s.indexOf('/');
  const a = parseAddr(slash >= 0 ? s.slice(0, slash) : s);
  const max = a.family === 4 ? 32 : 128;
  const len = slash >= 0 ? Number(s.slice(slash + 1)) : max;
  if (!Number.isInteger(len) || len < 0 || len > max) throw new InvalidArgumentError(`bad prefix length in '${s}'`);
  for (let bit = len; bit < max; bit++) {
    if (a.bytes[bit >> 3]! & (0x80 >> (bit & 7))) throw new InvalidArgumentError(`'${s}' has host bits set`);
  }
  return { family: a.family, bytes: a.bytes, len };
}

/** The 16-byte form used by the deny trie: v4 as ::ffff:a.b.c.d, prefix + 96. */
export function mapped16(p: ParsedAddr | ParsedPrefix): { addr: Uint8Array; bits: number } {
  const addr = new Uint8Array(16);
  if (p.family === 4) {
    addr[10] = 0xff; addr[11] = 0xff;
    addr.set(p.bytes, 12);
    return { addr, bits: 96 + ('len' in p ? p.len : 32) };
  }
  addr.set(p.bytes);
  return { addr, bits: 'len' in p ? p.len : 128 };
}

/** Inverse of mapped16 for display. */
export function unmapped(addr: Uint8Array, bits: number): string {
  const v4 = addr.subarray(0, 10).every((x) => x === 0) && addr[10] === 0xff && addr[11] === 0xff && bits >= 96;
  return v4 ? `${formatAddr(4, addr.subarray(12))}/${bits - 96}` : `${formatAddr(6, addr)}/${bits}`;
}
