// NewReno congestion avoidance (RFC 5681 §3.1): slow start with appropriate
// byte counting (RFC 3465, L = 2·SMSS), then cwnd += SMSS·SMSS/cwnd per ACK;
// ssthresh = max(FlightSize/2, 2·SMSS) on loss. Recovery itself (RFC 6582)
// is in the connection.
import type { CcState, CongestionControl } from './types.js';

export class NewReno implements CongestionControl {
  readonly name: string = 'newreno';
  constructor(private readonly initialSegments = 10) {}

  init(s: CcState): void {
    s.cwnd = Math.min(this.initialSegments * s.mss, Math.max(2 * s.mss, 14600 * Math.ceil(this.initialSegments / 10)));
    s.ssthresh = 0x7fffffff;
  }

  onAck(s: CcState, acked: number): void {
    if (s.cwnd < s.ssthresh) {
      s.cwnd += Math.min(acked, 2 * s.mss);
    } else {
      s.cwnd += Math.max(1, Math.floor((s.mss * s.mss) / s.cwnd));
    }
  }

  ssthresh(s: CcState): number { return Math.max(Math.floor(s.flight / 2), 2 * s.mss); }
  onRto(): void { /* cwnd reset to 1 SMSS by the connection (RFC 5681 §3.1 eq. 5) */ }
  onRecoveryExit(): void { /* nothing to undo */ }
}
