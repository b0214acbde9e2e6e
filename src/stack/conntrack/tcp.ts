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

import { CT_INVALID, CT_STATE, TCPF } from './types.js';

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

  /** Initialises direction k's stream from its SYN (or SYN-ACK). */
  private initFromSyn(k: number, seq: number, win: number, wscale: number, len: number): void {
    this.m[(k) * 8 + 3] = seq;
    this.m[(k) * 8 + 0] = this.m[(k) * 8 + 1] = (seq + len + 1) >>> 0;
    this.m[(k) * 8 + 2] = win > 0 ? win : 1;
    this.m[(k) * 8 + 7] = wscale >= 0 ? Math.min(wscale, 14) : 0;
    this.m[(k) * 8 + 6] = SF.SEEN | (wscale >= 0 ? SF.WSCALE : 0) | (this.m[(k) * 8 + 6]! & SF.LIBERAL);
    this.m[(k) * 8 + 4] = 0;
  }

  /** Window scaling holds only when both SYNs offered it (RFC 7323 §2.2). */
  private settleScale(i: number): void {
    const a = i * 2;
    if (!(this.m[(a) * 8 + 6]! & SF.WSCALE) || !(this.m[(a + 1) * 8 + 6]! & SF.WSCALE)) this.m[(a) * 8 + 7] = this.m[(a + 1) * 8 + 7] = 0;
  }

  /** Records an ACK sent by direction k: moves the peer's right edge and notes FIN acknowledgement. */
  private noteAck(k: number, peer: number, ack: number, win: number): void {
    this.m[(k) * 8 + 5] = ack;
    this.m[(k) * 8 + 6] = this.m[(k) * 8 + 6]! | SF.ACK_SEEN;
    const edge = (ack + win + (win === 0 ? 1 : 0)) >>> 0; // a zero window still admits a 1-byte probe
    if (after(edge, this.m[(peer) * 8 + 1]!)) this.m[(peer) * 8 + 1] = edge;
    if ((this.m[(peer) * 8 + 6]! & (SF.FIN | SF.FIN_ACKED)) === SF.FIN && !before(ack, this.m[(peer) * 8 + 4]!)) {
      this.m[(peer) * 8 + 6] = this.m[(peer) * 8 + 6]! | SF.FIN_ACKED;
    }
  }

  /**
   * A new entry's first packet, from the originator. SYN opens SYN_SENT;
   * with `loose`, a bare ACK picks up an established connection mid-stream
   * (netfilter's nf_conntrack_tcp_loose). Anything else cannot start a flow.
   */
  open(i: number, ev: number, seq: number, ack: number, win: number, wscale: number, len: number, loose: boolean, liberal: boolean): number {
    this.reset(i);
    const a = i * 2;
    if (liberal) this.m[(a) * 8 + 6] = this.m[(a + 1) * 8 + 6] = SF.LIBERAL;
    if (ev === TCP_EV.SYN) {
      this.initFromSyn(a, seq, win, wscale, len);
      return CT_STATE.SYN_SENT;
    }
    if (ev === TCP_EV.ACK && loose) {
      this.m[(a) * 8 + 6] = SF.SEEN | SF.LIBERAL;
      this.m[(a + 1) * 8 + 6] = SF.LIBERAL;
      this.m[(a) * 8 + 0] = this.m[(a) * 8 + 1] = (seq + len) >>> 0;
      this.m[(a) * 8 + 2] = win > 0 ? win : 1;
      this.m[(a + 1) * 8 + 0] = this.m[(a + 1) * 8 + 1] = ack;
      this.noteAck(a, a + 1, ack, win);
      return CT_STATE.ESTABLISHED;
    }
    return invalid(ev === TCP_EV.ACK ? CT_INVALID.NO_ENTRY : CT_INVALID.INVALID_STATE);
  }

  /** The originator's handler (netfilter's ORIGINAL half of tcp_conntracks). */
  original(i: number, state: number, ev: number, seq: number, ack: number, win: number, wscale: number, len: number, hasAck: boolean, fin: boolean): number {
    const a = i * 2;
    switch (ev) {
      case TCP_EV.SYN:
        switch (state) {
          case CT_STATE.SYN_SENT:
            // A retransmitted SYN; a different ISN is a new attempt on the same tuple: restart the stream.
            if (seq !== this.m[(a) * 8 + 3]) this.initFromSyn(a, seq, win, wscale, len);
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
          if (!this.checkWindow(a, a + 1, seq, ack, len + 1)) return invalid(CT_INVALID.OUT_OF_WINDOW);
          this.noteAck(a, a + 1, ack, win);
          return CT_STATE.SYN_RECV;
        }
        if (state === CT_STATE.SYN_RECV) return TCP_IGNORE;
        return invalid(CT_INVALID.INVALID_STATE);
      default:
        if (state === CT_STATE.SYN_SENT) return invalid(CT_INVALID.INVALID_STATE); // nothing but SYN before the responder speaks
        if (state === CT_STATE.SYN_SENT2) return ev === TCP_EV.RST ? this.common(i, 0, state, ev, seq, ack, win, len, hasAck, fin) : invalid(CT_INVALID.INVALID_STATE);
        return this.common(i, 0, state, ev, seq, ack, win, len, hasAck, fin);
    }
  }

  /** The responder's handler (netfilter's REPLY half). */
  reply(i: number, state: number, ev: number, seq: number, ack: number, win: number, wscale: number, len: number, hasAck: boolean, fin: boolean): number {
    const a = i * 2;
    const b = a + 1;
    switch (ev) {
      case TCP_EV.SYN:
        switch (state) {
          case CT_STATE.SYN_SENT:
            // Simultaneous open (RFC 793 figure 8): both sides sent SYN.
            this.initFromSyn(b, seq, win, wscale, len);
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
            if (ack !== this.m[(a) * 8 + 0]) return invalid(CT_INVALID.OUT_OF_WINDOW);
            this.initFromSyn(b, seq, win, wscale, len);
            this.settleScale(i);
            this.noteAck(b, a, ack, win);
            return CT_STATE.SYN_RECV;
          case CT_STATE.SYN_SENT2:
            if (!this.checkWindow(b, a, seq, ack, len + 1)) return invalid(CT_INVALID.OUT_OF_WINDOW);
            this.noteAck(b, a, ack, win);
            return CT_STATE.SYN_RECV;
          case CT_STATE.SYN_RECV:
            return TCP_IGNORE; // retransmitted SYN-ACK (our ACK was lost)
          default:
            return TCP_IGNORE;
        }
      default:
        if (state === CT_STATE.SYN_SENT) {
          // A RST answering the SYN must acknowledge it (RFC 793 §3.4, "reset generation" case 1).
          if (ev === TCP_EV.RST) return hasAck && ack === this.m[(a) * 8 + 0] ? CT_STATE.CLOSE : invalid(CT_INVALID.OUT_OF_WINDOW);
          return invalid(CT_INVALID.INVALID_STATE);
        }
        if (state === CT_STATE.SYN_SENT2) return ev === TCP_EV.RST ? this.common(i, 1, state, ev, seq, ack, win, len, hasAck, fin) : TCP_IGNORE;
        return this.common(i, 1, state, ev, seq, ack, win, len, hasAck, fin);
    }
  }

  /**
   * FIN, ACK and RST once both sides are known: the same for both
   * directions, so it is shared; `d` is the sender's direction.
   */
  private common(i: number, d: number, state: number, ev: number, seq: number, ack: number, win: number, len: number, hasAck: boolean, fin: boolean): number {
    const s = i * 2 + d;
    const r = i * 2 + (d ^ 1);
    if (ev === TCP_EV.NONE) return invalid(CT_INVALID.BAD_FLAGS);
    const winScaled = win * (1 << this.m[(s) * 8 + 7]!);
    if (ev === TCP_EV.RST) {
      if ((this.m[(s) * 8 + 6]! | this.m[(r) * 8 + 6]!) & SF.LIBERAL) return CT_STATE.CLOSE;
      // RFC 5961 §3.2: only an exact RST resets; an in-window one gets a challenge ACK from the endpoint.
      if (seq === this.m[(s) * 8 + 0] || ((this.m[(r) * 8 + 6]! & SF.ACK_SEEN) !== 0 && seq === this.m[(r) * 8 + 5])) return CT_STATE.CLOSE;
      return this.checkWindow(s, r, seq, hasAck ? ack : this.m[(r) * 8 + 0]!, 0) ? TCP_IGNORE : invalid(CT_INVALID.OUT_OF_WINDOW);
    }
    if (state === CT_STATE.CLOSE) return CT_STATE.CLOSE; // after a reset, stragglers are let through unchanged
    const segLen = len + (fin ? 1 : 0);
    if (!((this.m[(s) * 8 + 6]! | this.m[(r) * 8 + 6]!) & SF.LIBERAL) && !this.checkWindow(s, r, seq, hasAck ? ack : this.m[(r) * 8 + 0]!, segLen)) {
      return invalid(CT_INVALID.OUT_OF_WINDOW);
    }
    // Accepted: update the sender's stream.
    const end = (seq + segLen) >>> 0;
    if (after(end, this.m[(s) * 8 + 0]!)) this.m[(s) * 8 + 0] = end;
    if (this.m[(s) * 8 + 1] !== 0 && after(end, this.m[(s) * 8 + 1]!)) this.m[(s) * 8 + 1] = end;
    if (winScaled > this.m[(s) * 8 + 2]!) this.m[(s) * 8 + 2] = winScaled;
    if (fin && !(this.m[(s) * 8 + 6]! & SF.FIN)) {
      this.m[(s) * 8 + 6] = this.m[(s) * 8 + 6]! | SF.FIN;
      this.m[(s) * 8 + 4] = end;
      if (this.firstFin[i] === 0) this.firstFin[i] = d + 1;
    }
    if (hasAck) this.noteAck(s, r, ack, winScaled);

    switch (state) {
      case CT_STATE.SYN_RECV:
        // The originator's ACK of the SYN-ACK completes the handshake (RFC 793 §3.4 figure 7, line 4).
        if (d === 0 && hasAck && ack === this.m[(r) * 8 + 0]) return fin ? this.closing(i) : CT_STATE.ESTABLISHED;
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
    const f0 = this.m[(i * 2) * 8 + 6]!;
    const f1 = this.m[(i * 2 + 1) * 8 + 6]!;
    const fins = ((f0 & SF.FIN) >> 2) + ((f1 & SF.FIN) >> 2);
    if (fins === 0) return CT_STATE.ESTABLISHED;
    const acked = ((f0 & SF.FIN_ACKED) >> 3) + ((f1 & SF.FIN_ACKED) >> 3);
    if (fins === 1) return acked === 1 ? CT_STATE.CLOSE_WAIT : CT_STATE.FIN_WAIT;
    return acked === 2 ? CT_STATE.TIME_WAIT : CT_STATE.LAST_ACK;
  }

  /**
   * netfilter's tcp_in_window() bounds, sender s → receiver r:
   *  I   seq <= s.maxEnd               (data starts inside what r allowed)
   *  II  end >= s.end - r.maxWin       (not older than one window)
   *  III ack <= r.end                  (no ACK for data r never sent)
   *  IV  ack >= r.end - max(s.maxWin, 66000)
   */
  private checkWindow(s: number, r: number, seq: number, ack: number, segLen: number): boolean {
    if (!(this.m[(r) * 8 + 6]! & SF.SEEN)) return true; // the receiver's stream is unknown yet
    const end = (seq + segLen) >>> 0;
    if (after(seq, this.m[(s) * 8 + 1]!)) return false;
    const rWin = this.m[(r) * 8 + 2]!;
    if (rWin !== 0 && before(end, (this.m[(s) * 8 + 0]! - rWin) >>> 0)) return false;
    if (after(ack, this.m[(r) * 8 + 0]!)) return false;
    const ackWin = Math.max(this.m[(s) * 8 + 2]!, MAX_ACK_WINDOW_FLOOR);
    if (before(ack, (this.m[(r) * 8 + 0]! - ackWin) >>> 0)) return false;
    return true;
  }
}
