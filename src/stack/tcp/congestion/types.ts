// The congestion-control interface: the connection owns cwnd and ssthresh
// (bytes) and asks the algorithm how to move them. Loss detection and
// recovery (RFC 5681/6582/6675) stay in the connection; the algorithm only
// decides growth and the reduction on a congestion event, as Linux's
// tcp_congestion_ops does (cong_avoid / ssthresh / undo).

export interface CcState {
  cwnd: number;
  ssthresh: number;
  /** Sender MSS, bytes. */
  readonly mss: number;
  /** Smoothed RTT, ms (0 before the first sample). */
  readonly srtt: number;
  /** Bytes sent and not yet acknowledged (FlightSize). */
  readonly flight: number;
}

export interface CongestionControl {
  readonly name: string;
  /** Sets the initial window (RFC 6928 IW10 unless configured otherwise). */
  init(s: CcState, now: number): void;
  /** New data acknowledged outside recovery: grow cwnd (slow start or avoidance). rttMs is the latest sample or -1. */
  onAck(s: CcState, acked: number, rttMs: number, now: number): void;
  /** A congestion event (fast retransmit or RTO): returns the new ssthresh. */
  ssthresh(s: CcState, now: number): number;
  /** The retransmission timer fired (after ssthresh() was taken). */
  onRto(s: CcState, now: number): void;
  /** Fast recovery ended (full ACK). */
  onRecoveryExit(s: CcState, now: number): void;
}

export type CongestionControlName = 'newreno' | 'cubic';
