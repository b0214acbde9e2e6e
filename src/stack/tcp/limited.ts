// Rate limits on what TCP sends in answer to invalid segments (RFC 5961 §7):
// the reasons a suppressed answer is counted under, and the stack-wide
// per-second budget. The per-connection limit (Linux tcp_invalid_ratelimit)
// lives in connection.ts; the budgets in tcp.ts.
import type { Prng } from '../../util/prng.js';

/**
 * Answers to invalid segments that a rate limit suppressed, by what the
 * answer would have been (Linux's TCPACKSkipped* counters). Stable numbers:
 * the index into TcpCounters.limited.
 */
export const TCP_LIMITED = {
  /** ACK to an out-of-window segment (RFC 9293 §3.10.7.4; Linux TCPACKSkippedSeq). */
  OUT_OF_WINDOW_ACK: 0,
  /** ACK to a segment failing PAWS (RFC 7323 §5.3; TCPACKSkippedPAWS). */
  PAWS_ACK: 1,
  /** RFC 5961 challenge ACK (TCPACKSkippedChallenge). */
  CHALLENGE_ACK: 2,
  /** SYN-ACK resent for a repeated SYN in SYN-RECEIVED (TCPACKSkippedSynRecv). */
  SYN_ACK: 3,
  /** Reset a connection sends in answer to an unacceptable ACK. */
  RST: 4,
  /** Reset for a segment with no connection (closed port, bad cookie). */
  RST_NO_SOCKET: 5,
} as const;
export type TcpLimitedReason = keyof typeof TCP_LIMITED;

/**
 * A per-second budget drawn at random each second from [limit/2, limit*1.5)
 * (Linux's challenge-ACK limit since CVE-2016-5696): a shared counter an
 * attacker could probe no longer tells him how many others used it.
 */
export class SecondBudget {
  private second = -1;
  private left = 0;
  constructor(private readonly limit: number, private readonly prng: Prng) {}
  take(now: number): boolean {
    const sec = Math.floor(now / 1000);
    if (sec !== this.second) { this.second = sec; this.left = ((this.limit + 1) >>> 1) + this.prng.int(this.limit); }
    if (this.left <= 0) return false;
    this.left--;
    return true;
  }
}
