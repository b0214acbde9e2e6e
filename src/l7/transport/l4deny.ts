// L3/L4 policy enforced as early as each transport allows (issue 4: "L3/L4
// rules are enforced as early as possible: in the XDP deny map on the AF_XDP
// path, in conntrack otherwise"):
//   afxdp  -> the XDP program's deny maps: the packet never leaves the driver;
//   tap    -> the stack's conntrack policy: the flow is dropped at IP input;
//   kernel -> at accept(): the kernel already completed the handshake, so the
//             connection is closed before any byte is read (the earliest point
//             a node:net listener has).
// The entries come from the policy compiler (l4DenyEntries): pure source
// prefix (+ destination port) denies with no L7 part.
import type { L4DenyEntry } from '../policy/types.js';
import { parseAddrInto, parsePrefix, prefixContains, type Prefix } from '../policy/cidr.js';

export interface L4DenyReport {
  /** Where the rules are enforced on this transport. */
  where: 'xdp' | 'conntrack' | 'accept';
  /** Rules installed. */
  installed: number;
  /** Rules this layer cannot express (e.g. IPv6 in the IPv4 conntrack), with why. */
  skipped: { prefix: string; reason: string }[];
}

/** Matches (source address, destination port) against compiled deny entries; used at accept(). */
export class L4DenyMatcher {
  private readonly rules: { p: Prefix; port: number }[];
  private readonly scratch = new Uint32Array(4);
  /** Connections refused. */
  refused = 0;

  constructor(entries: readonly L4DenyEntry[]) {
    this.rules = [];
    for (const e of entries) {
      const p = parsePrefix(e.prefix);
      if (typeof p === 'string') continue; // the compiler produced it, so this cannot happen; never throw on the data path
      this.rules.push({ p, port: e.port ?? 0 });
    }
  }

  get size(): number { return this.rules.length; }

  /** True when a connection from srcAddr to local port dstPort is denied. */
  denies(srcAddr: string, dstPort: number): boolean {
    if (this.rules.length === 0) return false;
    const a = srcAddr.startsWith('::ffff:') && srcAddr.includes('.') ? srcAddr.slice(7) : srcAddr;
    const fam = parseAddrInto(a, this.scratch);
    if (fam === 0) return false;
    for (const r of this.rules) {
      if (r.port !== 0 && r.port !== dstPort) continue;
      if (prefixContains(r.p, fam, this.scratch)) return true;
    }
    return false;
  }
}
