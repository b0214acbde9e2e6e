// ARP packets for IPv4 over Ethernet (RFC 826). See index.ts for the contract.
// arpCheck() is the length and format check: after it returns true every
// accessor reads inside the packet.

export const ARP = {
  HTYPE: 0, PTYPE: 2, HLEN: 4, PLEN: 5, OPER: 6,
  SHA: 8, SPA: 14, THA: 18, TPA: 24,
  LEN: 28,
} as const;

export const ARP_OP = { REQUEST: 1, REPLY: 2 } as const;

/** True for a well-formed Ethernet/IPv4 ARP packet in buf[off, off+len). */
export function arpCheck(buf: Uint8Array, off: number, len: number): boolean {
  return len >= ARP.LEN
    && buf[off + ARP.HTYPE] === 0 && buf[off + ARP.HTYPE + 1] === 1
    && buf[off + ARP.PTYPE] === 0x08 && buf[off + ARP.PTYPE + 1] === 0x00
    && buf[off + ARP.HLEN] === 6 && buf[off + ARP.PLEN] === 4;
}

const u32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const put32 = (b: Uint8Array, o: number, v: number): void => { b[o] = v >>> 24; b[o + 1] = (v >>> 16) & 255; b[o + 2] = (v >>> 8) & 255; b[o + 3] = v & 255; };

export function arpOper(buf: Uint8Array, off: number): number { return (buf[off + ARP.OPER]! << 8) | buf[off + ARP.OPER + 1]!; }
/** Sender protocol address, host order. */
export function arpSpa(buf: Uint8Array, off: number): number { return u32(buf, off + ARP.SPA); }
/** Target protocol address, host order. */
export function arpTpa(buf: Uint8Array, off: number): number { return u32(buf, off + ARP.TPA); }
/** Offset of the sender hardware address (6 bytes). */
export function arpShaOff(off: number): number { return off + ARP.SHA; }
export function arpThaOff(off: number): number { return off + ARP.THA; }

/**
 * Writes an ARP packet at buf[off]: oper, sender (sha, spa), target (tha, tpa).
 * tha may be null for all-zero (a request). Returns ARP.LEN.
 */
export function arpEmit(buf: Uint8Array, off: number, oper: number, sha: Uint8Array, shaOff: number, spa: number, tha: Uint8Array | null, thaOff: number, tpa: number): number {
  buf[off] = 0; buf[off + 1] = 1; buf[off + 2] = 0x08; buf[off + 3] = 0; buf[off + 4] = 6; buf[off + 5] = 4;
  buf[off + ARP.OPER] = oper >>> 8; buf[off + ARP.OPER + 1] = oper & 0xff;
  for (let i = 0; i < 6; i++) buf[off + ARP.SHA + i] = sha[shaOff + i]!;
  put32(buf, off + ARP.SPA, spa);
  for (let i = 0; i < 6; i++) buf[off + ARP.THA + i] = tha === null ? 0 : tha[thaOff + i]!;
  put32(buf, off + ARP.TPA, tpa);
  return ARP.LEN;
}

/**
 * Turns a request at buf[off] into the reply in place (RFC 826 "swap fields"):
 * target := old sender, sender := (mac, the address asked for).
 */
export function arpTurnToReply(buf: Uint8Array, off: number, mac: Uint8Array, macOff: number): void {
  const asked = arpTpa(buf, off);
  for (let i = 0; i < 10; i++) buf[off + ARP.THA + i] = buf[off + ARP.SHA + i]!;
  for (let i = 0; i < 6; i++) buf[off + ARP.SHA + i] = mac[macOff + i]!;
  put32(buf, off + ARP.SPA, asked);
  buf[off + ARP.OPER] = 0; buf[off + ARP.OPER + 1] = ARP_OP.REPLY;
}

/** Parsed form for control paths and tests (allocates). */
export interface ArpRepr { oper: number; sha: Uint8Array; spa: number; tha: Uint8Array; tpa: number }
export function arpParse(buf: Uint8Array, off: number, len: number): ArpRepr | null {
  if (!arpCheck(buf, off, len)) return null;
  return { oper: arpOper(buf, off), sha: buf.slice(off + ARP.SHA, off + ARP.SHA + 6), spa: arpSpa(buf, off), tha: buf.slice(off + ARP.THA, off + ARP.THA + 6), tpa: arpTpa(buf, off) };
}
