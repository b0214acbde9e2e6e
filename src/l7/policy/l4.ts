// The L3/L4 half of policy, for enforcement before L7: the XDP deny map on
// the AF_XDP path (LPM trie keyed by source prefix, with an optional
// destination port) and conntrack on the others.
//
// Only ingressDeny rules are pure L3/L4 denies. Their CIDR peers become
// entries; fromCIDRSet `except` is folded in by splitting the prefix into
// the smallest set of prefixes that leaves the exceptions out, since an LPM
// map has no "except". A deny rule without any peer denies every source
// (0.0.0.0/0 and ::/0). A deny rule with identity peers only cannot be
// decided before the TLS handshake, so it yields nothing here and stays in
// ListenerPolicy.evaluate()/admitConnection().
//
// Ports: a deny rule with toPorts gives one entry per port. Without toPorts
// it covers every port of the listeners it selects: pass the listeners
// (name and port) to get one entry per listener port; without them the entry
// has no port and would deny the source on every port.
//
// Allow rules are deliberately not turned into early denies: default deny
// depends on the identity and the request, which only L7 sees.
import { subtractPrefixes, parsePrefix, type Prefix } from './cidr.js';
import type { PolicySet } from './compile.js';
import type { L4DenyEntry } from './types.js';

const ALL_V4 = parsePrefix('0.0.0.0/0') as Prefix;
const ALL_V6 = parsePrefix('::/0') as Prefix;

export interface ListenerPort { name: string; port: number }

export function l4DenyEntries(set: PolicySet, listeners?: readonly ListenerPort[]): L4DenyEntry[] {
  const out: L4DenyEntry[] = [];
  const seen = new Set<string>();
  const add = (p: Prefix, port: number | undefined, protocol: 'TCP' | 'ANY', source: string) => {
    const key = `${p.text}|${port ?? '*'}|${protocol}`;
    if (seen.has(key)) return;
    seen.add(key);
    const e: L4DenyEntry = { prefix: p.text, family: p.family, prefixLen: p.len, protocol, source };
    if (port !== undefined) e.port = port;
    out.push(e);
  };
  for (const policy of set.compiled) {
    for (const rule of policy.deny) {
      const hasIds = rule.peers.ids.length > 0;
      const hasCidrs = rule.peers.cidrs.length > 0;
      if (hasIds && !hasCidrs) continue;
      const prefixes: Prefix[] = rule.peers.any ? [ALL_V4, ALL_V6] : rule.peers.cidrs.flatMap((c) => subtractPrefixes(c.p, c.except));
      let targets: { port?: number; protocol: 'TCP' | 'ANY' }[];
      if (rule.ports !== null && rule.ports.length > 0) {
        targets = rule.ports.map((port, i) => ({ port, protocol: rule.protocols![i]! }));
      } else if (listeners) {
        targets = listeners
          .filter((l) => policy.listeners === null || policy.listeners.includes(l.name))
          .map((l) => ({ port: l.port, protocol: 'TCP' as const }));
      } else {
        targets = [{ protocol: 'TCP' }];
      }
      for (const p of prefixes) for (const t of targets) add(p, t.port, t.protocol, `${policy.name}/${rule.path}`);
    }
  }
  return out;
}
