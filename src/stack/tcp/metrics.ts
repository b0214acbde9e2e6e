// TCP's counters on /metrics, in the manner of Linux's /proc/net/snmp Tcp:
// and netstat TcpExt: lines (the names follow the RFC 4022 MIB where one
// exists: ActiveOpens, PassiveOpens, AttemptFails, EstabResets, CurrEstab,
// InSegs, OutSegs, RetransSegs, OutRsts), plus SYN cookies, RFC 5961
// challenge ACKs and every drop by reason. Values are read from the
// TcpCounters at scrape time: nothing is added to the packet path.
import { registerDropsByReason, type MetricsRegistryLike } from '../stats.js';
import { TCP_DROP, TCP_LIMITED, type TcpCounters } from './tcp.js';

type CounterField = Exclude<{ [K in keyof TcpCounters]: TcpCounters[K] extends number ? K : never }[keyof TcpCounters], 'currEstab' | 'connections'>;

const COUNTERS: readonly [CounterField, string, string][] = [
  ['segsIn', 'strata_tcp_segments_received_total', 'TCP segments received (InSegs), including those dropped.'],
  ['segsOut', 'strata_tcp_segments_sent_total', 'TCP segments sent (OutSegs), retransmissions included.'],
  ['retransSegs', 'strata_tcp_retransmitted_segments_total', 'TCP segments retransmitted (RetransSegs).'],
  ['rstsSent', 'strata_tcp_resets_sent_total', 'RST segments sent (OutRsts).'],
  ['activeOpens', 'strata_tcp_active_opens_total', 'Connections opened by us (ActiveOpens).'],
  ['passiveOpens', 'strata_tcp_passive_opens_total', 'Connections accepted (PassiveOpens).'],
  ['attemptFails', 'strata_tcp_attempt_fails_total', 'Opens that failed from SYN-SENT or SYN-RECEIVED (AttemptFails).'],
  ['estabResets', 'strata_tcp_established_resets_total', 'Resets from ESTABLISHED or CLOSE-WAIT (EstabResets).'],
  ['cookiesSent', 'strata_tcp_syn_cookies_sent_total', 'SYN-ACKs carrying a SYN cookie (the SYN queue was full).'],
  ['cookiesValidated', 'strata_tcp_syn_cookies_validated_total', 'ACKs that validated a SYN cookie.'],
  ['cookiesFailed', 'strata_tcp_syn_cookies_failed_total', 'ACKs whose SYN cookie did not validate.'],
  ['challengeAcks', 'strata_tcp_challenge_acks_total', 'RFC 5961 challenge ACKs sent.'],
  ['challengeAcksLimited', 'strata_tcp_challenge_acks_limited_total', 'RFC 5961 challenge ACKs suppressed by the rate limit.'],
  ['limitedPerConnection', 'strata_tcp_invalid_answers_limited_per_connection_total', 'Answers to invalid segments suppressed by the per-connection limit (invalidRateLimitMs).'],
  ['limitedPerStack', 'strata_tcp_invalid_answers_limited_per_stack_total', 'Answers to invalid segments suppressed by a stack-wide budget (challengeAckLimit, rstLimit).'],
  ['keepAlivesSent', 'strata_tcp_keepalives_sent_total', 'Keep-alive probes sent.'],
  ['zeroWindowAdvertised', 'strata_tcp_zero_window_advertised_total', 'Segments sent advertising a zero window.'],
  ['timeWaitReused', 'strata_tcp_time_wait_reused_total', 'TIME-WAIT connections reused by a new SYN.'],
  ['txNoFrame', 'strata_tcp_tx_no_frame_total', 'Segments not sent for want of a free frame.'],
  ['urgSegsIn', 'strata_tcp_urgent_segments_received_total', 'Segments received with an urgent pointer taken.'],
  ['urgSegsOut', 'strata_tcp_urgent_segments_sent_total', 'Segments sent with URG.'],
];

/** Reason names in index order (the drops and limited arrays'). */
const namesOf = (t: Readonly<Record<string, number>>): string[] => { const r: string[] = []; for (const [name, i] of Object.entries(t)) r[i] = name; return r; };
const DROP_REASONS = namesOf(TCP_DROP);
const LIMITED_REASONS = namesOf(TCP_LIMITED);

/** Registers one TCP's counters; `labels` (e.g. {transport: "afxdp"}) tell several stacks apart. */
export function registerTcpMetrics(reg: MetricsRegistryLike & { gaugeFunc(name: string, help: string, read: () => number, labels?: Readonly<Record<string, string>>): unknown },
  counters: TcpCounters, labels: Readonly<Record<string, string>> = {}): void {
  for (const [field, name, help] of COUNTERS) reg.counterFunc(name, help, () => counters[field], labels);
  reg.gaugeFunc('strata_tcp_established', 'Connections in ESTABLISHED or CLOSE-WAIT now (CurrEstab).', () => counters.currEstab, labels);
  reg.gaugeFunc('strata_tcp_connections', 'TCP connections in the table now, any state.', () => counters.connections, labels);
  registerDropsByReason(reg, 'strata_tcp_drops_total', 'TCP segments dropped, by reason.', DROP_REASONS, () => counters.drops, labels);
  registerDropsByReason(reg, 'strata_tcp_answers_limited_total', 'Answers to invalid segments suppressed by a rate limit (RFC 5961 §7), by what the answer was.',
    LIMITED_REASONS, () => counters.limited, labels);
}
