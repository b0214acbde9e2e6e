// Ethernet II frames with up to two 802.1Q / 802.1ad tags (IEEE 802.3,
// IEEE 802.1Q). See index.ts for the contract every wire/ module keeps.
//
// ethHeaderLen() is the length check: once it returns h >= 14, every
// accessor below with that h reads inside the frame.

export const ETH = {
  DST: 0,
  SRC: 6,
  TYPE: 12,
  HLEN: 14,
  /** Offset of the TCI after a tag's TPID at TYPE. */
  VLAN_TCI: 14,
  TAG_LEN: 4,
} as const;

/** The shortest Ethernet frame without its FCS (IEEE 802.3: 64 with it). Shorter frames are padded, with zeros. */
export const ETH_MIN_FRAME = 60;

export const ETHERTYPE = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  QINQ: 0x88a8,
  IPV6: 0x86dd,
} as const;

export const MAC_BROADCAST: Uint8Array = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

/**
 * Length of the link header (14, 18 or 22 with two tags), or -1 when the
 * frame is too short for it.
 */
export function ethHeaderLen(buf: Uint8Array, off: number, len: number): number {
  if (len < ETH.HLEN) return -1;
  let h = ETH.HLEN;
  let t = (buf[off + ETH.TYPE]! << 8) | buf[off + ETH.TYPE + 1]!;
  for (let tags = 0; tags < 2 && (t === ETHERTYPE.VLAN || t === ETHERTYPE.QINQ); tags++) {
    h += ETH.TAG_LEN;
    if (len < h) return -1;
    t = (buf[off + h - 2]! << 8) | buf[off + h - 1]!;
  }
  return h;
}

/** The EtherType of the payload (after any tags). */
export function ethType(buf: Uint8Array, off: number, hlen: number): number { return (buf[off + hlen - 2]! << 8) | buf[off + hlen - 1]!; }
/** VLAN id of the outermost tag, or -1 when untagged. */
export function ethVlanId(buf: Uint8Array, off: number, hlen: number): number { return hlen > ETH.HLEN ? ((buf[off + ETH.VLAN_TCI]! << 8) | buf[off + ETH.VLAN_TCI + 1]!) & 0x0fff : -1; }
/** Priority code point of the outermost tag (0 when untagged). */
export function ethVlanPcp(buf: Uint8Array, off: number, hlen: number): number { return hlen > ETH.HLEN ? buf[off + ETH.VLAN_TCI]! >>> 5 : 0; }
export function ethIsBroadcast(buf: Uint8Array, off: number): boolean {
  return (buf[off]! & buf[off + 1]! & buf[off + 2]! & buf[off + 3]! & buf[off + 4]! & buf[off + 5]!) === 0xff;
}
/** Group bit of the destination (multicast or broadcast). */
export function ethIsMulticast(buf: Uint8Array, off: number): boolean { return (buf[off + ETH.DST]! & 1) === 1; }

export function macEquals(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  return a[aOff] === b[bOff] && a[aOff + 1] === b[bOff + 1] && a[aOff + 2] === b[bOff + 2]
    && a[aOff + 3] === b[bOff + 3] && a[aOff + 4] === b[bOff + 4] && a[aOff + 5] === b[bOff + 5];
}

export function macCopy(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number): void {
  dst[dstOff] = src[srcOff]!; dst[dstOff + 1] = src[srcOff + 1]!; dst[dstOff + 2] = src[srcOff + 2]!;
  dst[dstOff + 3] = src[srcOff + 3]!; dst[dstOff + 4] = src[srcOff + 4]!; dst[dstOff + 5] = src[srcOff + 5]!;
}

/**
 * Writes an Ethernet header at buf[off]: destination, source, an 802.1Q tag
 * when vlan >= 0 (with priority pcp), and the EtherType. Returns its length.
 */
export function ethEmit(buf: Uint8Array, off: number, dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, type: number, vlan = -1, pcp = 0): number {
  macCopy(buf, off + ETH.DST, dst, dstOff);
  macCopy(buf, off + ETH.SRC, src, srcOff);
  let h = ETH.HLEN;
  if (vlan >= 0) {
    buf[off + ETH.TYPE] = ETHERTYPE.VLAN >>> 8; buf[off + ETH.TYPE + 1] = ETHERTYPE.VLAN & 0xff;
    const tci = ((pcp & 7) << 13) | (vlan & 0x0fff);
    buf[off + ETH.VLAN_TCI] = tci >>> 8; buf[off + ETH.VLAN_TCI + 1] = tci & 0xff;
    h += ETH.TAG_LEN;
  }
  buf[off + h - 2] = type >>> 8; buf[off + h - 1] = type & 0xff;
  return h;
}

/** Swaps destination and source MAC in place (turning a frame around). */
export function ethSwapMacs(buf: Uint8Array, off: number): void {
  for (let i = 0; i < 6; i++) { const t = buf[off + i]!; buf[off + i] = buf[off + 6 + i]!; buf[off + 6 + i] = t; }
}

/** Parsed form for control paths and tests (allocates; never on the receive path). */
export interface EthernetRepr { dst: string; src: string; type: number; vlan: number; hlen: number }
export function ethParse(buf: Uint8Array, off: number, len: number): EthernetRepr | null {
  const h = ethHeaderLen(buf, off, len);
  if (h < 0) return null;
  return { dst: macToString(buf, off + ETH.DST), src: macToString(buf, off + ETH.SRC), type: ethType(buf, off, h), vlan: ethVlanId(buf, off, h), hlen: h };
}

export function macToString(buf: Uint8Array, off = 0): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + buf[off + i]!.toString(16).padStart(2, '0');
  return s;
}

/** Parses aa:bb:cc:dd:ee:ff; null when malformed. */
export function macFromString(s: string): Uint8Array | null {
  const p = s.split(/[:-]/);
  if (p.length !== 6 || !p.every((x) => /^[0-9a-fA-F]{1,2}$/.test(x))) return null;
  return Uint8Array.from(p.map((x) => parseInt(x, 16)));
}
