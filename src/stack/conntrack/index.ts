// Connection tracking: the table (./table.ts), its TCP tracker (./tcp.ts),
// shared constants (./types.ts) and its metrics.

import type { Registry } from '../../obs/metrics.js';
import type { Conntrack } from './table.js';

export * from './types.js';
export { Conntrack, ConntrackStats, CtEntryView, conntrackNewEvents, conntrackEndEvents } from './table.js';
export type { ConntrackOptions, CtEntryInfo } from './table.js';
export { tcpEvent, tcpValidFlags, TCP_EV } from './tcp.js';
export { ctDenyPolicy, type CtDenyRule, type CtDenyPolicy } from './policy.js';

/**
 * Registers the table's counters and gauges (read at scrape time: nothing on
 * the packet path), labelled with the table's `metricLabels` option so
 * several tables (e.g. {table: "afxdp"}, {table: "tap"}) share one registry.
 */
export function registerConntrackMetrics(reg: Registry, ct: Conntrack): void {
  const labels = ct.metricLabels;
  const s = ct.stats;
  reg.gaugeFunc('strata_conntrack_entries', 'Entries in the conntrack table.', () => ct.size, labels);
  reg.gaugeFunc('strata_conntrack_max_entries', 'Bound on conntrack entries.', () => ct.maxEntries, labels);
  reg.counterFunc('strata_conntrack_packets_total', 'Packets offered to conntrack.', () => s.packets, labels);
  reg.counterFunc('strata_conntrack_lookups_total', 'Conntrack table lookups.', () => s.lookups, labels);
  reg.counterFunc('strata_conntrack_hits_total', 'Conntrack lookups that found an entry.', () => s.hits, labels);
  reg.counterFunc('strata_conntrack_misses_total', 'Conntrack lookups that found none.', () => s.misses, labels);
  reg.counterFunc('strata_conntrack_inserts_total', 'Conntrack entries created.', () => s.inserts, labels);
  reg.counterFunc('strata_conntrack_deletes_total', 'Conntrack entries removed on request.', () => s.deletes, labels);
  reg.counterFunc('strata_conntrack_evictions_total', 'Live conntrack entries evicted because the table was full.', () => s.evictions, labels);
  reg.counterFunc('strata_conntrack_expirations_total', 'Conntrack entries removed after their timeout.', () => s.expirations, labels);
  reg.counterFunc('strata_conntrack_unreplied_expirations_total', 'Conntrack entries that timed out without ever seeing a reply.', () => s.unrepliedExpirations, labels);
  reg.counterFunc('strata_conntrack_reopened_total', 'Conntrack entries replaced by a new connection on the same tuple.', () => s.reopened, labels);
  reg.counterFunc('strata_conntrack_untracked_total', 'Packets conntrack passed without an entry.', () => s.untracked, labels);
  reg.counterFunc('strata_conntrack_dropped_total', 'Packets conntrack told the caller to drop.', () => s.dropped, labels);
  reg.counterFunc('strata_conntrack_related_total', 'ICMP errors related to a tracked flow.', () => s.related, labels);
  reg.register(ct.invalid);
}
