// The compact one-line rendering of a flow record (`strata flows` default
// output), after `hubble observe`'s compact format, with the cross-layer
// facts appended: time, verdict, src -> dst, transport (and queue), the HTTP
// exchange (method, path, status, latency) or the L4 state, TCP retransmits
// and srtt, and the peer identity.
import type { FlowRecord } from './record.js';

function dur(ns: number | null | undefined): string {
  if (ns == null) return '-';
  if (ns < 1e6) return `${Math.round(ns / 1e3)}µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)}ms`;
  return `${(ns / 1e9).toFixed(2)}s`;
}

export function humanBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}K`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)}M`;
  return `${(n / 1024 ** 3).toFixed(2)}G`;
}

function clock(t: string): string {
  // "2026-11-25T14:40:18.123456Z" -> "14:40:18.123"
  const i = t.indexOf('T');
  return i < 0 ? t : t.slice(i + 1, i + 13);
}

export function formatFlowLine(r: FlowRecord): string {
  const parts: string[] = [clock(r.time), r.verdict.padEnd(9)];
  const tcp = r.l4?.TCP, udp = r.l4?.UDP;
  const sp = tcp?.source_port ?? udp?.source_port, dp = tcp?.destination_port ?? udp?.destination_port;
  const src = r.IP ? `${r.IP.source}${sp !== undefined ? `:${sp}` : ''}` : '?';
  const dst = r.IP ? `${r.IP.destination}${dp !== undefined ? `:${dp}` : ''}` : '?';
  parts.push(`${src} -> ${dst}`);
  const s = r.strata;
  parts.push(`${s.transport ?? '?'}${s.queue !== null ? `/q${s.queue}` : ''}`);
  if (r.l7 !== null) {
    const h = r.l7.http;
    parts.push(`${h.method} ${s.http?.path ?? h.url} ${h.code || '---'} ${dur(s.timings.total_ns ?? r.l7.latency_ns)}`);
    if (s.upstream) parts.push(`up=${s.upstream.cluster ?? '-'}/${s.upstream.endpoint ?? '-'}${s.upstream.retries ? ` retries=${s.upstream.retries}` : ''}`);
  } else {
    parts.push(`${tcp ? 'TCP' : udp ? 'UDP' : 'ICMP'} ${s.conntrack?.state ?? s.tcp?.state ?? ''}`.trimEnd());
    if (s.flow) parts.push(`pkts=${s.flow.packets.original}/${s.flow.packets.reply} bytes=${humanBytes(s.flow.bytes.original)}/${humanBytes(s.flow.bytes.reply)}`);
  }
  if (s.tcp) parts.push(`rtx=${s.tcp.retransmits} srtt=${dur(s.tcp.srtt_us * 1000)}`);
  if (s.xdp_verdict) parts.push(`xdp=${s.xdp_verdict}`);
  if (s.policy && s.policy.verdict === 'deny') parts.push(`policy=${s.policy.rule}`);
  else if (r.drop_reason_desc) parts.push(r.drop_reason_desc);
  const id = s.tls?.peer_spiffe_id;
  if (id) parts.push(id);
  return parts.join(' ');
}
