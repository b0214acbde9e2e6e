// TCP connection tracking for a middle box that sees both directions
// (gVisor's tcpconntrack: one handler per direction; netfilter's
// nf_conntrack_proto_tcp.c: state names, the per-direction transition table
// and tcp_in_window()). Read first: RFC 793 §3.2-3.5 (states, sequence
// space), RFC 7323 §2 (window scale), RFC 5961 §3 (RST acceptance), then
// netfilter's "The TCP state transition table needs a few words…" comment.
//
// State lives in one Uint32Array of 32-byte per-direction stream records
// (index entry*2+dir), so a packet allocates nothing and touches one line. A handler gets
// the entry's state and returns either the next state (>= 0) or a verdict:
// IGNORE (accept, no state change, no refresh: netfilter's sIG), REOPEN
// (the tuple is being reused by a new connection: kill and re-track) or
// invalid (-100 - CT_INVALID reason).
//
// Where we differ from netfilter, on purpose:
// - FIN handling is precise. netfilter moves FIN_WAIT→CLOSE_WAIT on any ACK;
//   we track each side's FIN sequence number and move only when the peer
//   acknowledges it (as gVisor does), so TIME_WAIT means both FINs acked.
// - A RST closes the entry only when its sequence number is exact (the
//   sender's next sequence or the receiver's last ACK, RFC 5961 §3.2). An
//   in-window, inexact RST is accepted without a state change so the
//   endpoint can answer it with a challenge ACK; out of window it is invalid.
// - Mid-stream pickup (loose) marks both directions liberal (no window
//   checks), since the window scale negotiated in the SYNs was not seen.

import { CT_INVALID, CT_STATE, TCPF, type CtPacket } from './types.js';

// Word offsets in a stream record (see TcpStreams.m).
const END = 0;
const MAXEND = 1;
const MAXWIN = 2;
const ISN = 3;
const FINEND = 4;
const LASTACK = 5;
const FLAGS = 6;
const SCALE = 7;

/** Stream flags, per direction. */
export const SF = {
  /** Stream facts initialised (by its SYN or by pickup). */
  SEEN: 1,
  /** Its SYN carried a window scale option. */
  WSCALE: 2,
  /** It sent a FIN (finEnd holds FIN's seq + 1). */
  FIN: 4,
  /** Its FIN was acknowledged by the peer. */
  FIN_ACKED: 8,
  /** No window checks (picked up mid-stream, or the table is liberal). */
  LIBERAL: 16,
  /** lastAck holds an ACK it sent. */
  ACK_SEEN: 32,
} as const;

export const TCP_IGNORE = -1;
export const TCP_REOPEN = -2;
export const TCP_INVALID_BASE = -100;
const invalid = (reason: number): number => TCP_INVALID_BASE - reason;

/** Events, from the flags (netfilter's get_conntrack_index). */
export const TCP_EV = { SYN: 0, SYNACK: 1, FIN: 2, ACK: 3, RST: 4, NONE: 5 } as const;

export function tcpEvent(flags: number): number {
  if (flags & TCPF.RST) return TCP_EV.RST;
  if (flags & TCPF.SYN) return flags & TCPF.ACK ? TCP_EV.SYNACK : TCP_EV.SYN;
  if (flags & TCPF.FIN) return TCP_EV.FIN;
  if (flags & TCPF.ACK) return TCP_EV.ACK;
  return TCP_EV.NONE;
}

/**
 * netfilter's tcp_valid_flags with PSH, URG, ECE and CWR masked off: SYN,
 * SYN|ACK, RST, RST|ACK, FIN|ACK and ACK. Everything else (SYN|FIN, SYN|RST,
 * FIN without ACK, no flags: scans and fingerprinting) is bad_flags.
 */
export function tcpValidFlags(flags: number): boolean {
  const f = flags & (TCPF.FIN | TCPF.SYN | TCPF.RST | TCPF.ACK);
  return f === TCPF.SYN || f === (TCPF.SYN | TCPF.ACK) || f === TCPF.RST || f === (TCPF.RST | TCPF.ACK)
    || f === (TCPF.FIN | TCPF.ACK) || f === TCPF.ACK;
}

// Sequence space comparisons (RFC 793 §3.3), on uint32 values.
const before = (a: number, b: number): boolean => ((a - b) | 0) < 0;
const after = (a: number, b: number): boolean => ((b - a) | 0) < 0;

/** netfilter's MAXACKWINDOW floor: ACKs may lag this far behind. */
const MAX_ACK_WINDOW_FLOOR = 66000;

/** Per-direction stream facts of every entry: index entry*2 + dir. */
export class TcpStreams {
  /**
   * Per stream (entry*2 + dir) eight uint32 words, one 32-byte record so a
   * packet touches one cache line: 0 end (highest seq + len sent, netfilter's
   * td_end), 1 maxEnd (highest ack + window the peer allowed: the most this
   * side may send, td_maxend), 2 maxWin (largest scaled window it advertised,
   * td_maxwin), 3 isn, 4 finEnd (its FIN's seq + 1), 5 lastAck, 6 flags (SF),
   * 7 window scale shift.
   */
  readonly m: Uint32Array;
  /** Per entry: 0 no FIN yet, 1 originator sent the first FIN, 2 responder did. */
  readonly firstFin: Uint8Array;

  constructor(entries: number) {
    this.m = new Uint32Array(entries * 16);
    this.firstFin = new Uint8Array(entries);
  }

  reset(i: number): void {
    this.m.fill(0, i * 16, i * 16 + 16);
    this.firstFin[i] = 0;
  }

  // Sequence numbers reach 2^32, beyond V8's small integers: passed as call
  // arguments they would be boxed (one heap number per call). So the
  // segment travels as the CtPacket and is read field by field (unboxed
  // loads), and only small values are passed as arguments.

  /** Initialises direction k's stream from its SYN (or SYN-ACK). */
  private initFromSyn(k: number, p: CtPacket): void {
    const m = this.m;
    const b = k * 8;
    m[b + ISN] = p.seq;
    m[b + END] = m[b + MAXEND] = p.seq + p.payloadLen + 1;
    m[b + MAXWIN] = p.win > 0 ? p.win : 1;
    m[b + SCALE] = p.wscale >= 0 ? Math.min(p.wscale, 14) : 0;
    m[b + FLAGS] = SF.SEEN | (p.wscale >= 0 ? SF.WSCALE : 0) | (m[b + FLAGS]! & SF.LIBERAL);
    m[b + FINEND] = 0;
  }

  /** Window scaling holds only when both SYNs offered it (RFC 7323 §2.2). */
  private settleScale(i: number): void {
    const m = this.m;
    const a = i * 16;
    if (!(m[a + FLAGS]! & SF.WSCALE) || !(m[a + 8 + FLAGS]! & SF.WSCALE)) m[a + SCALE] = m[a + 8 + SCALE] = 0;
  }

  /** Records the ACK in p, sent by direction k with (scaled) window win: moves the peer's right edge, notes FIN acknowledgement. */
  private noteAck(k: number, peer: number, p: CtPacket, win: number): void {
    const m = this.m;
    const ack = p.ack;
    m[k * 8 + LASTACK] = ack;
    m[k * 8 + FLAGS] = m[k * 8 + FLAGS]! | SF.ACK_SEEN;
    const edge = (ack + win + (win === 0 ? 1 : 0)) >>> 0; // a zero window still admits a 1-byte probe
    if (after(edge, m[peer * 8 + MAXEND]!)) m[peer * 8 + MAXEND] = edge;
    if ((m[peer * 8 + FLAGS]! & (SF.FIN | SF.FIN_ACKED)) === SF.FIN && !before(ack, m[peer * 8 + FINEND]!)) {
      m[peer * 8 + FLAGS] = m[peer * 8 + FLAGS]! | SF.FIN_ACKED;
    }
  }

  /**
   * A new entry's first packet, from the originator. SYN opens SYN_SENT;
   * with `loose`, a bare ACK picks up an established connection mid-stream
   * (netfilter's nf_conntrack_tcp_loose). Anything else cannot start a flow.
   */
  open(i: number, ev: number, p: CtPacket, loose: boolean, liberal: boolean): number {
    this.reset(i);
    const m = this.m;
    const a = i * 2;
    if (liberal) m[a * 8 + FLAGS] = m[(a + 1) * 8 + FLAGS] = SF.LIBERAL;
    if (ev === TCP_EV.SYN) {
      this.initFromSyn(a, p);
      return CT_STATE.SYN_SENT;
    }
    if (ev === TCP_EV.ACK && loose) {
      m[a * 8 + FLAGS] = SF.SEEN | SF.LIBERAL;
      m[(a + 1) * 8 + FLAGS] = SF.LIBERAL;
      m[a * 8 + END] = m[a * 8 + MAXEND] = p.seq + p.payloadLen;
      m[a * 8 + MAXWIN] = p.win > 0 ? p.win : 1;
      m[(a + 1) * 8 + END] = m[(a + 1) * 8 + MAXEND] = p.ack;
      this.noteAck(a, a + 1, p, p.win);
      return CT_STATE.ESTABLISHED;
    }
    return invalid(ev === TCP_EV.ACK ? CT_INVALID.NO_ENTRY : CT_INVALID.INVALID_STATE);
  }

  /** The originator's handler (netfilter's ORIGINAL half of tcp_conntracks). */
  original(i: number, state: number, ev: number, p: CtPacket): number {
    const a = i * 2;
    switch (ev) {
      case TCP_EV.SYN:
        switch (state) {
          case CT_STATE.SYN_SENT:
            // A retransmitted SYN; a different ISN is a new attempt on the same tuple: restart the stream.
            if (p.seq !== this.m[a * 8 + ISN]) this.initFromSyn(a, p);
            return CT_STATE.SYN_SENT;
          case CT_STATE.SYN_SENT2:
            return CT_STATE.SYN_SENT2;
          case CT_STATE.TIME_WAIT:
          case CT_STATE.CLOSE:
            return TCP_REOPEN; // the tuple is reused by a new connection (RFC 793 TIME_WAIT reuse)
          default:
            return TCP_IGNORE; // a stale SYN in a synchronised state: the endpoint answers it (RFC 5961 §4)
        }
      case TCP_EV.SYNACK:
        // Only simultaneous open lets the originator send a SYN-ACK: it answers the responder's SYN.
        if (state === CT_STATE.SYN_SENT2) {
          if (!this.checkWindow(a, a + 1, p, true, p.payloadLen + 1)) return invalid(CT_INVALID.OUT_OF_WINDOW);
          this.noteAck(a, a + 1, p, p.win);
          return CT_STATE.SYN_RECV;
        }
        if (state === CT_STATE.SYN_RECV) return TCP_IGNORE;
        return invalid(CT_INVALID.INVALID_STATE);
      default:
        if (state === CT_STATE.SYN_SENT) return invalid(CT_INVALID.INVALID_STATE); // nothing but SYN before the responder speaks
        if (state === CT_STATE.SYN_SENT2) return ev === TCP_EV.RST ? this.common(i, 0, state, ev, p) : invalid(CT_INVALID.INVALID_STATE);
        return this.common(i, 0, state, ev, p);
    }
  }

  /** The responder's handler (netfilter's REPLY half). */
  reply(i: number, state: number, ev: number, p: CtPacket): number {
    const a = i * 2;
    const b = a + 1;
    switch (ev) {
      case TCP_EV.SYN:
        switch (state) {
          case CT_STATE.SYN_SENT:
            // Simultaneous open (RFC 793 figure 8): both sides sent SYN.
            this.initFromSyn(b, p);
            this.settleScale(i);
            return CT_STATE.SYN_SENT2;
          case CT_STATE.SYN_SENT2:
            return CT_STATE.SYN_SENT2;
          case CT_STATE.TIME_WAIT:
          case CT_STATE.CLOSE:
            return TCP_REOPEN; // the old responder reuses the tuple as originator
          default:
            return TCP_IGNORE;
        }
      case TCP_EV.SYNACK:
        switch (state) {
          case CT_STATE.SYN_SENT:
            // The SYN-ACK must acknowledge exactly the originator's SYN (RFC 793 §3.4).
            if (p.ack !== this.m[a * 8 + END]) return invalid(CT_INVALID.OUT_OF_WINDOW);
            this.initFromSyn(b, p);
            this.settleScale(i);
            this.noteAck(b, a, p, p.win);
            return CT_STATE.SYN_RECV;
          case CT_STATE.SYN_SENT2:
            if (!this.checkWindow(b, a, p, true, p.payloadLen + 1)) return invalid(CT_INVALID.OUT_OF_WINDOW);
            this.noteAck(b, a, p, p.win);
            return CT_STATE.SYN_RECV;
          case CT_STATE.SYN_RECV:
            return TCP_IGNORE; // retransmitted SYN-ACK (our ACK was lost)
          default:
            return TCP_IGNORE;
        }
      default:
        if (state === CT_STATE.SYN_SENT) {
          // A RST answering the SYN must acknowledge it (RFC 793 §3.4, "reset generation" case 1).
          if (ev === TCP_EV.RST) return (p.flags & TCPF.ACK) !== 0 && p.ack === this.m[a * 8 + END] ? CT_STATE.CLOSE : invalid(CT_INVALID.OUT_OF_WINDOW);
          return invalid(CT_INVALID.INVALID_STATE);
        }
        if (state === CT_STATE.SYN_SENT2) return ev === TCP_EV.RST ? this.common(i, 1, state, ev, p) : TCP_IGNORE;
        return this.common(i, 1, state, ev, p);
    }
  }

  /**
   * FIN, ACK and RST once both sides are known: the same for both
   * directions, so it is shared; `d` is the sender's direction.
   */
  private common(i: number, d: number, state: number, ev: number, p: CtPacket): number {
    const m = this.m;
    const s = i * 2 + d;
    const r = i * 2 + (d ^ 1);
    if (ev === TCP_EV.NONE) return invalid(CT_INVALID.BAD_FLAGS);
    const hasAck = (p.flags & TCPF.ACK) !== 0;
    const fin = (p.flags & TCPF.FIN) !== 0;
    const winScaled = p.win * (1 << m[s * 8 + SCALE]!);
    const liberal = ((m[s * 8 + FLAGS]! | m[r * 8 + FLAGS]!) & SF.LIBERAL) !== 0;
    if (ev === TCP_EV.RST) {
      if (liberal) return CT_STATE.CLOSE;
      // RFC 5961 §3.2: only an exact RST resets; an in-window one gets a challenge ACK from the endpoint.
      if (p.seq === m[s * 8 + END] || ((m[r * 8 + FLAGS]! & SF.ACK_SEEN) !== 0 && p.seq === m[r * 8 + LASTACK])) return CT_STATE.CLOSE;
      return this.checkWindow(s, r, p, hasAck, 0) ? TCP_IGNORE : invalid(CT_INVALID.OUT_OF_WINDOW);
    }
    if (state === CT_STATE.CLOSE) return CT_STATE.CLOSE; // after a reset, stragglers are let through unchanged
    const segLen = p.payloadLen + (fin ? 1 : 0);
    if (!liberal && !this.checkWindow(s, r, p, hasAck, segLen)) return invalid(CT_INVALID.OUT_OF_WINDOW);
    // Accepted: update the sender's stream.
    const end = (p.seq + segLen) >>> 0;
    if (after(end, m[s * 8 + END]!)) m[s * 8 + END] = end;
    if (m[s * 8 + MAXEND] !== 0 && after(end, m[s * 8 + MAXEND]!)) m[s * 8 + MAXEND] = end;
    if (winScaled > m[s * 8 + MAXWIN]!) m[s * 8 + MAXWIN] = winScaled;
    if (fin && !(m[s * 8 + FLAGS]! & SF.FIN)) {
      m[s * 8 + FLAGS] = m[s * 8 + FLAGS]! | SF.FIN;
      m[s * 8 + FINEND] = end;
      if (this.firstFin[i] === 0) this.firstFin[i] = d + 1;
    }
    if (hasAck) this.noteAck(s, r, p, winScaled);

    switch (state) {
      case CT_STATE.SYN_RECV:
        // The originator's ACK of the SYN-ACK completes the handshake (RFC 793 §3.4 figure 7, line 4).
        if (d === 0 && hasAck && p.ack === m[r * 8 + END]) return fin ? this.closing(i) : CT_STATE.ESTABLISHED;
        // A FIN right after the handshake (the handshake ACK was lost or merged): netfilter allows it too.
        return fin ? this.closing(i) : CT_STATE.SYN_RECV;
      case CT_STATE.TIME_WAIT:
        return CT_STATE.TIME_WAIT; // retransmitted FINs and their ACKs
      default:
        return this.closing(i);
    }
  }

  /** The synchronised state implied by the FIN facts of both directions. */
  private closing(i: number): number {
    const f0 = this.m[i * 16 + FLAGS]!;
    const f1 = this.m[i * 16 + 8 + FLAGS]!;
    const fins = ((f0 & SF.FIN) >> 2) + ((f1 & SF.FIN) >> 2);
    if (fins === 0) return CT_STATE.ESTABLISHED;
    const acked = ((f0 & SF.FIN_ACKED) >> 3) + ((f1 & SF.FIN_ACKED) >> 3);
    if (fins === 1) return acked === 1 ? CT_STATE.CLOSE_WAIT : CT_STATE.FIN_WAIT;
    return acked === 2 ? CT_STATE.TIME_WAIT : CT_STATE.LAST_ACK;
  }

  /**
   * netfilter's tcp_in_window() bounds, sender s → receiver r, for p's
   * sequence span [seq, seq + segLen) and its ACK (or r.end when it has none):
   *  I   seq <= s.maxEnd               (data starts inside what r allowed)
   *  II  end >= s.end - r.maxWin       (not older than one window)
   *  III ack <= r.end                  (no ACK for data r never sent)
   *  IV  ack >= r.end - max(s.maxWin, 66000)
   */
  private checkWindow(s: number, r: number, p: CtPacket, hasAck: boolean, segLen: number): boolean {
    const m = this.m;
    if (!(m[r * 8 + FLAGS]! & SF.SEEN)) return true; // the receiver's stream is unknown yet
    const seq = p.seq;
    const rEnd = m[r * 8 + END]!;
    const ack = hasAck ? p.ack : rEnd;
    if (after(seq, m[s * 8 + MAXEND]!)) return false;
    const rWin = m[r * 8 + MAXWIN]!;
    if (rWin !== 0 && before((seq + segLen) >>> 0, (m[s * 8 + END]! - rWin) >>> 0)) return false;
    if (after(ack, rEnd)) return false;
    const ackWin = Math.max(m[s * 8 + MAXWIN]!, MAX_ACK_WINDOW_FLOOR);
    if (before(ack, (rEnd - ackWin) >>> 0)) return false;
    return true;
  }
}
