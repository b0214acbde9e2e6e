// Builds Ethernet/IPv4/UDP frames in place in a link's memory, with correct
// IPv4 and UDP checksums, for link tests that have the kernel as peer.
import { finish, pseudo4, sum16 } from '../../src/stack/wire/checksum.js';

export function macBytes(s: string): Uint8Array { return Uint8Array.from(s.split(':').map((x) => parseInt(x, 16))); }
export function ip4(s: string): number {
  const p = s.split('.').map(Number);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

export interface Udp4 { srcMac: Uint8Array; dstMac: Uint8Array; src: string; dst: string; sport: number; dport: number; payload: Uint8Array }

/** Writes the frame at mem[off]; returns its length. */
export function writeUdp4(mem: Uint8Array, off: number, f: Udp4): number {
  const len = 14 + 20 + 8 + f.payload.length;
  const dv = new DataView(mem.buffer, mem.byteOffset + off, len);
  mem.set(f.dstMac, off);
  mem.set(f.srcMac, off + 6);
  dv.setUint16(12, 0x0800);
  dv.setUint8(14, 0x45); dv.setUint8(15, 0);
  dv.setUint16(16, 20 + 8 + f.payload.length);
  dv.setUint16(18, 0); dv.setUint16(20, 0x4000);   // DF
  dv.setUint8(22, 64); dv.setUint8(23, 17);
  dv.setUint16(24, 0);
  const src = ip4(f.src), dst = ip4(f.dst);
  dv.setUint32(26, src); dv.setUint32(30, dst);
  dv.setUint16(24, finish(sum16(mem, off + 14, 20)));
  const ulen = 8 + f.payload.length;
  dv.setUint16(34, f.sport); dv.setUint16(36, f.dport); dv.setUint16(38, ulen); dv.setUint16(40, 0);
  mem.set(f.payload, off + 42);
  let c = finish(sum16(mem, off + 34, ulen, pseudo4(src, dst, 17, ulen)));
  if (c === 0) c = 0xffff;
  dv.setUint16(40, c);
  return len;
}

/** Reads (dport, first payload u32) of an IPv4/UDP frame, or null. */
export function readUdp4(mem: Uint8Array, off: number, len: number): { dport: number; seq: number } | null {
  if (len < 46) return null;
  const dv = new DataView(mem.buffer, mem.byteOffset + off, len);
  if (dv.getUint16(12) !== 0x0800 || dv.getUint8(23) !== 17) return null;
  const l4 = 14 + (dv.getUint8(14) & 0xf) * 4;
  return { dport: dv.getUint16(l4 + 2), seq: dv.getUint32(l4 + 8) };
}
