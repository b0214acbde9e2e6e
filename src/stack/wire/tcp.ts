// TCP header (RFC 9293 §3.1) and options: MSS (RFC 9293 §3.2), window scale,
// timestamps (RFC 7323), SACK-permitted and SACK blocks (RFC 2018).
//
// Contract (smoltcp's): once tcpHeaderOk() has passed for (buf, off, len),
// no accessor can fail or read outside the segment. Accessors are plain
// functions over (buf, off); nothing is allocated per segment. Options are
// parsed into one reusable TcpOptions record (numbers and a preallocated
// SACK table), which the caller owns and re-points for every segment.
//
// Sequence numbers are unsigned 32-bit numbers; arithmetic on them lives in
// tcp/seq.ts.

/** Field offsets from the start of the TCP header. */
export const TCP = {
  SRC_PORT: 0,
  DST_PORT: 2,
  SEQ: 4,
  ACK: 8,
  DATA_OFF: 12,
  FLAGS: 13,
  WINDOW: 14,
  CHECKSUM: 16,
  URGENT: 18,
  HEADER_LEN: 20,
  MAX_HEADER_LEN: 60,
} as const;

/** Control bits (the low byte of the flags field). */
export const FLAG = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** Option kinds (IANA registry). */
export const OPT = {
  EOL: 0,
  NOP: 1,
  MSS: 2,
  WSCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMPS: 8,
} as const;

/** Most SACK blocks that fit in 40 option bytes (4; 3 with timestamps). */
export const MAX_SACK_BLOCKS = 4;

export function rd16(b: Uint8Array, o: number): number { return (b[o]! << 8) | b[o + 1]!; }
export function rd32(b: Uint8Array, o: number): number { return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0; }
export function wr16(b: Uint8Array, o: number, v: number): void { b[o] = (v >>> 8) & 255; b[o + 1] = v & 255; }
export function wr32(b: Uint8Array, o: number, v: number): void { b[o] = (v >>> 24) & 255; b[o + 1] = (v >>> 16) & 255; b[o + 2] = (v >>> 8) & 255; b[o + 3] = v & 255; }

/** True when buf[off, off+len) holds a whole TCP header (options included). After it, every accessor is safe. */
export function tcpHeaderOk(buf: Uint8Array, off: number, len: number): boolean {
  if (len < TCP.HEADER_LEN) return false;
  const hl = (buf[off + TCP.DATA_OFF]! >>> 4) * 4;
  return hl >= TCP.HEADER_LEN && hl <= len;
}

export const tcpSrcPort = (b: Uint8Array, o: number): number => rd16(b, o + TCP.SRC_PORT);
export const tcpDstPort = (b: Uint8Array, o: number): number => rd16(b, o + TCP.DST_PORT);
export const tcpSeq = (b: Uint8Array, o: number): number => rd32(b, o + TCP.SEQ);
export const tcpAck = (b: Uint8Array, o: number): number => rd32(b, o + TCP.ACK);
export const tcpHeaderLen = (b: Uint8Array, o: number): number => (b[o + TCP.DATA_OFF]! >>> 4) * 4;
export const tcpFlags = (b: Uint8Array, o: number): number => b[o + TCP.FLAGS]!;
export const tcpWindow = (b: Uint8Array, o: number): number => rd16(b, o + TCP.WINDOW);
export const tcpChecksum = (b: Uint8Array, o: number): number => rd16(b, o + TCP.CHECKSUM);
export const tcpUrgent = (b: Uint8Array, o: number): number => rd16(b, o + TCP.URGENT);

/** Parsed options of one segment. Reused: parseTcpOptions() resets every field. */
export class TcpOptions {
  /** MSS option value, or -1 when absent. */
  mss = -1;
  /** Window scale shift, or -1 when absent (values > 14 are clamped to 14, RFC 7323 §2.3). */
  wscale = -1;
  sackPermitted = false;
  hasTimestamps = false;
  tsVal = 0;
  tsEcr = 0;
  /** SACK blocks as (left, right) pairs in sack[0 .. 2*sackCount). */
  sackCount = 0;
  readonly sack = new Uint32Array(2 * MAX_SACK_BLOCKS);
  /** Offset (from the TCP header) of each option seen, by kind, or 0: the offset table. */
  readonly at = new Uint8Array(16);

  reset(): void {
    this.mss = -1;
    this.wscale = -1;
    this.sackPermitted = false;
    this.hasTimestamps = false;
    this.tsVal = 0;
    this.tsEcr = 0;
    this.sackCount = 0;
    this.at.fill(0);
  }
}

/**
 * Parses the options of the header at buf[off]. Returns false when an option
 * is malformed (length runs past the header, a known option with the wrong
 * length): the segment is then dropped and counted. Unknown options are skipped.
 */
export function parseTcpOptions(buf: Uint8Array, off: number, o: TcpOptions): boolean {
  o.reset();
  const end = off + tcpHeaderLen(buf, off);
  let i = off + TCP.HEADER_LEN;
  while (i < end) {
    const kind = buf[i]!;
    if (kind === OPT.EOL) break;
    if (kind === OPT.NOP) { i++; continue; }
    if (i + 1 >= end) return false;
    const l = buf[i + 1]!;
    if (l < 2 || i + l > end) return false;
    if (kind < 16) o.at[kind] = i - off;
    switch (kind) {
      case OPT.MSS:
        if (l !== 4) return false;
        o.mss = rd16(buf, i + 2);
        break;
      case OPT.WSCALE:
        if (l !== 3) return false;
        o.wscale = Math.min(buf[i + 2]!, 14);
        break;
      case OPT.SACK_PERMITTED:
        if (l !== 2) return false;
        o.sackPermitted = true;
        break;
      case OPT.TIMESTAMPS:
        if (l !== 10) return false;
        o.hasTimestamps = true;
        o.tsVal = rd32(buf, i + 2);
        o.tsEcr = rd32(buf, i + 6);
        break;
      case OPT.SACK: {
        if ((l - 2) % 8 !== 0) return false;
        const n = Math.min((l - 2) / 8, MAX_SACK_BLOCKS);
        for (let k = 0; k < n; k++) {
          o.sack[2 * k] = rd32(buf, i + 2 + 8 * k);
          o.sack[2 * k + 1] = rd32(buf, i + 6 + 8 * k);
        }
        o.sackCount = n;
        break;
      }
      default:
        break;
    }
    i += l;
  }
  return true;
}

/** What to put in an outgoing segment's options. Reused by the sender. */
export class TcpOptionsOut {
  mss = -1;
  wscale = -1;
  sackPermitted = false;
  timestamps = false;
  tsVal = 0;
  tsEcr = 0;
  sackCount = 0;
  readonly sack = new Uint32Array(2 * MAX_SACK_BLOCKS);
  clear(): void {
    this.mss = -1; this.wscale = -1; this.sackPermitted = false; this.timestamps = false; this.sackCount = 0;
  }
}

/** Bytes the options in o take, padded to 4. */
export function tcpOptionsLen(o: TcpOptionsOut): number {
  let n = 0;
  if (o.mss >= 0) n += 4;
  if (o.wscale >= 0) n += 4; // NOP + 3
  if (o.timestamps) n += 12; // (SACK_PERM or NOP NOP) + 10, or NOP NOP + 10
  if (o.sackPermitted && !o.timestamps) n += 4; // NOP NOP + 2
  if (o.sackCount > 0) n += 4 + 8 * o.sackCount; // NOP NOP + 2 + 8n
  return n;
}

/**
 * Writes the options at buf[p] in Linux's layout (MSS; SACK_PERM+TS or
 * NOP NOP TS; NOP WS; NOP NOP SACK) and returns the bytes written (a multiple of 4).
 */
export function writeTcpOptions(buf: Uint8Array, p: number, o: TcpOptionsOut): number {
  const s = p;
  if (o.mss >= 0) { buf[p] = OPT.MSS; buf[p + 1] = 4; wr16(buf, p + 2, o.mss); p += 4; }
  if (o.timestamps) {
    if (o.sackPermitted) { buf[p] = OPT.SACK_PERMITTED; buf[p + 1] = 2; } else { buf[p] = OPT.NOP; buf[p + 1] = OPT.NOP; }
    buf[p + 2] = OPT.TIMESTAMPS; buf[p + 3] = 10; wr32(buf, p + 4, o.tsVal); wr32(buf, p + 8, o.tsEcr);
    p += 12;
  } else if (o.sackPermitted) {
    buf[p] = OPT.NOP; buf[p + 1] = OPT.NOP; buf[p + 2] = OPT.SACK_PERMITTED; buf[p + 3] = 2; p += 4;
  }
  if (o.wscale >= 0) { buf[p] = OPT.NOP; buf[p + 1] = OPT.WSCALE; buf[p + 2] = 3; buf[p + 3] = o.wscale; p += 4; }
  if (o.sackCount > 0) {
    buf[p] = OPT.NOP; buf[p + 1] = OPT.NOP; buf[p + 2] = OPT.SACK; buf[p + 3] = 2 + 8 * o.sackCount; p += 4;
    for (let k = 0; k < o.sackCount; k++) { wr32(buf, p, o.sack[2 * k]!); wr32(buf, p + 4, o.sack[2 * k + 1]!); p += 8; }
  }
  return p - s;
}

/**
 * Writes a 20-byte base header plus optLen option bytes already in place; the
 * checksum field is zeroed. `urgent` is the urgent pointer, meaningful only
 * with FLAG.URG (RFC 9293 §3.1).
 */
export function writeTcpHeader(buf: Uint8Array, off: number, srcPort: number, dstPort: number, seq: number, ack: number,
  flags: number, window: number, optLen: number, urgent = 0): void {
  wr16(buf, off + TCP.SRC_PORT, srcPort);
  wr16(buf, off + TCP.DST_PORT, dstPort);
  wr32(buf, off + TCP.SEQ, seq);
  wr32(buf, off + TCP.ACK, ack);
  buf[off + TCP.DATA_OFF] = ((TCP.HEADER_LEN + optLen) / 4) << 4;
  buf[off + TCP.FLAGS] = flags;
  wr16(buf, off + TCP.WINDOW, window);
  wr16(buf, off + TCP.CHECKSUM, 0);
  wr16(buf, off + TCP.URGENT, urgent);
}

/** Formats flags like tcpdump ("S.", "F.", "R", "P."), for tests and traces. */
export function flagsToString(f: number): string {
  let s = '';
  if (f & FLAG.SYN) s += 'S';
  if (f & FLAG.FIN) s += 'F';
  if (f & FLAG.RST) s += 'R';
  if (f & FLAG.PSH) s += 'P';
  if (f & FLAG.URG) s += 'U';
  if (f & FLAG.ACK) s += '.';
  return s === '' ? 'none' : s;
}
