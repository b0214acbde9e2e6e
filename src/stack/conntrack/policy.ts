// L3/L4 deny rules enforced by conntrack on the non-XDP paths (TAP, kernel
// sockets): the same entries the XDP deny map gets (src/l7/policy/l4.ts's
// L4DenyEntry fits structurally), turned into a Conntrack `policy` callback.
// The callback runs once per new flow, and the verdict is cached in the
// entry, so a denied flow costs a table hit per later packet.
//
// Semantics, as on the XDP path: an entry denies flows that arrive (hook IN)
// from a source inside its prefix, to its destination port if it has one,
// for TCP or for any protocol. Flows we originate (hook OUT) are never
// denied by ingress rules. Matching is a linear scan over typed arrays (no
// allocation); rule sets are small (tens to hundreds of prefixes) and the
// scan runs only for new flows.

import { IPPROTO, ip4FromString } from '../registration.js';
import { InvalidArgumentError } from '../../util/errors.js';
import { CT_HOOK, type CtPacket } from './types.js';

/** One deny rule (structurally an L4DenyEntry). */
export interface CtDenyRule {
  /** "a.b.c.d/len" (IPv6 rules are accepted and skipped: the table tracks IPv4). */
  prefix: string;
  family: 4 | 6;
  prefixLen: number;
  /** Destination port; absent = every port. */
  port?: number;
  protocol: 'TCP' | 'ANY';
}

export interface CtDenyPolicy {
  /** Pass as ConntrackOptions.policy or to Conntrack.setPolicy(). */
  readonly policy: (p: Readonly<CtPacket>, hook: number) => boolean;
  /** IPv4 rules in force. */
  readonly rules: number;
  /** IPv6 rules skipped. */
  readonly skipped: number;
}

export function ctDenyPolicy(rules: readonly CtDenyRule[]): CtDenyPolicy {
  const v4 = rules.filter((r) => r.family === 4);
  const n = v4.length;
  const net = new Uint32Array(n);
  const mask = new Uint32Array(n);
  const port = new Int32Array(n); // -1: any port
  const tcpOnly = new Uint8Array(n);
  v4.forEach((r, i) => {
    const [addr, len] = r.prefix.split('/');
    const a = ip4FromString(addr ?? '');
    const l = Number(len ?? r.prefixLen);
    if (a < 0 || !Number.isInteger(l) || l < 0 || l > 32) throw new InvalidArgumentError(`bad IPv4 deny prefix ${JSON.stringify(r.prefix)}`);
    if (r.port !== undefined && !(Number.isInteger(r.port) && r.port >= 0 && r.port <= 65535)) throw new InvalidArgumentError(`bad deny port ${r.port}`);
    const m = l === 0 ? 0 : (0xffffffff << (32 - l)) >>> 0;
    mask[i] = m;
    net[i] = (a & m) >>> 0;
    port[i] = r.port ?? -1;
    tcpOnly[i] = r.protocol === 'TCP' ? 1 : 0;
  });
  const policy = (p: Readonly<CtPacket>, hook: number): boolean => {
    if (hook !== CT_HOOK.IN) return true;
    const src = p.src;
    for (let i = 0; i < n; i++) {
      if (((src & mask[i]!) >>> 0) !== net[i]) continue;
      if (port[i] !== -1 && port[i] !== p.dport) continue;
      if (tcpOnly[i] === 1 && p.proto !== IPPROTO.TCP) continue;
      return false;
    }
    return true;
  };
  return { policy, rules: n, skipped: rules.length - n };
}
