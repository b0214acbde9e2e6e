// CUBIC (RFC 9438). Window in segments inside the algorithm, bytes outside.
//   W_cubic(t) = C·(t − K)³ + W_max,  K = ∛(W_max·(1 − β)/C)     (§4.2)
//   W_est grows like Reno with α = 3(1 − β)/(1 + β)                 (§4.3)
// with fast convergence (§4.7) and β = 0.7, C = 0.4. Slow start is
// standard (HyStart is not implemented). t is from `now`, never a clock read.
import type { CcState, CongestionControl } from './types.js';

const C = 0.4;
const BETA = 0.7;
const ALPHA = (3 * (1 - BETA)) / (1 + BETA);

export class Cubic implements CongestionControl {
  readonly name: string = 'cubic';
  private wMax = 0; // segments
  private wLastMax = 0;
  private k = 0; // seconds
  private epoch = -1; // ms, start of the current avoidance epoch
  private wEst = 0; // segments
  private cwndPrior = 0;

  constructor(private readonly initialSegments = 10) {}

  init(s: CcState): void {
    s.cwnd = Math.min(this.initialSegments * s.mss, Math.max(2 * s.mss, 14600 * Math.ceil(this.initialSegments / 10)));
    s.ssthresh = 0x7fffffff;
    this.epoch = -1;
    this.wMax = 0;
    this.wLastMax = 0;
  }

  onAck(s: CcState, acked: number, _rtt: number, now: number): void {
    if (s.cwnd < s.ssthresh) {
      s.cwnd += Math.min(acked, 2 * s.mss);
      return;
    }
    const mss = s.mss;
    const cwndSeg = s.cwnd / mss;
    if (this.epoch < 0) {
      // §4.2: a new congestion-avoidance epoch starts.
      this.epoch = now;
      if (cwndSeg < this.wMax) {
        this.k = Math.cbrt((this.wMax - cwndSeg) / C);
      } else {
        this.k = 0;
        this.wMax = cwndSeg;
      }
      this.wEst = cwndSeg;
    }
    const rtt = s.srtt > 0 ? s.srtt : 100;
    const t = (now - this.epoch + rtt) / 1000;
    const target0 = C * (t - this.k) ** 3 + this.wMax;
    // §4.2: the target is clamped to [cwnd, 1.5·cwnd].
    const target = Math.min(Math.max(target0, cwndSeg), 1.5 * cwndSeg);
    // §4.3: Reno-friendly estimate.
    this.wEst += (ALPHA * (acked / mss)) / cwndSeg;
    let inc: number;
    if (this.wEst > target0 && this.wEst > cwndSeg) {
      inc = ((this.wEst - cwndSeg) / cwndSeg) * (acked / mss);
    } else {
      inc = ((target - cwndSeg) / cwndSeg) * (acked / mss);
    }
    if (inc > 0) s.cwnd += Math.max(1, Math.floor(inc * mss));
  }

  ssthresh(s: CcState): number {
    const cwndSeg = s.cwnd / s.mss;
    this.cwndPrior = cwndSeg;
    // §4.7 fast convergence.
    if (cwndSeg < this.wLastMax) {
      this.wLastMax = cwndSeg;
      this.wMax = (cwndSeg * (1 + BETA)) / 2;
    } else {
      this.wLastMax = cwndSeg;
      this.wMax = cwndSeg;
    }
    this.epoch = -1;
    const flightSeg = Math.max(s.flight, s.mss) / s.mss;
    return Math.max(Math.floor(Math.min(cwndSeg, flightSeg) * BETA * s.mss), 2 * s.mss);
  }

  onRto(): void {
    // §4.8: after an RTO, restart the epoch; W_max keeps the pre-loss window.
    this.epoch = -1;
  }

  onRecoveryExit(): void {
    this.epoch = -1;
  }

  /** The window before the last reduction, in segments (for observability). */
  get priorWindow(): number { return this.cwndPrior; }
}
