// Load balancing policies over a HostSet, after Envoy's: round robin,
// least request (power of two choices), random, ring hash (Ketama-style
// consistent hashing) and Maglev. Randomness is an input (a seeded Prng),
// so distributions are testable and reproducible.
//
// Hash policies take a request key (a header value or the client address);
// without one they fall back to random, as Envoy does. Ring and Maglev
// tables are rebuilt when the available set changes (HostSet.version), so an
// ejected host's keys move and nobody else's do (Maglev: very nearly).
import type { Prng } from '../../util/prng.js';
import { InvalidArgumentError } from '../../util/errors.js';
import { hash53, hash32 } from './hash.js';
import type { Host, HostSet } from './hosts.js';

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV';
export const LB_POLICIES: readonly LbPolicy[] = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'];

export interface LoadBalancer {
  readonly policy: LbPolicy;
  /** A host for the request, or null when the set is empty. `key` is the hash key for hash policies. */
  pick(key: string | null): Host | null;
}

export interface LbOptions {
  /** Ring hash: minimum ring entries (Envoy default 1024). */
  minRingSize?: number;
  /** Ring hash: maximum ring entries (Envoy default 8M). */
  maxRingSize?: number;
  /** Maglev: table size, a prime (Envoy default 65537). */
  maglevTableSize?: number;
  /** Least request: choices sampled (Envoy default 2). */
  choiceCount?: number;
}

export function createLoadBalancer(policy: LbPolicy, set: HostSet, rng: Prng, opts: LbOptions = {}): LoadBalancer {
  switch (policy) {
    case 'ROUND_ROBIN': return new RoundRobinLb(set);
    case 'LEAST_REQUEST': return new LeastRequestLb(set, rng, opts.choiceCount ?? 2);
    case 'RANDOM': return new RandomLb(set, rng);
    case 'RING_HASH': return new RingHashLb(set, rng, opts.minRingSize ?? 1024, opts.maxRingSize ?? 8 * 1024 * 1024);
    case 'MAGLEV': return new MaglevLb(set, rng, opts.maglevTableSize ?? 65537);
    default: throw new InvalidArgumentError(`unknown lb policy ${String(policy)}`);
  }
}

export class RoundRobinLb implements LoadBalancer {
  readonly policy = 'ROUND_ROBIN' as const;
  private next = 0;
  constructor(private readonly set: HostSet) {}
  pick(): Host | null {
    const a = this.set.available;
    if (a.length === 0) return null;
    if (this.next >= a.length) this.next = 0;
    return a[this.next++]!;
  }
}

export class RandomLb implements LoadBalancer {
  readonly policy = 'RANDOM' as const;
  constructor(private readonly set: HostSet, private readonly rng: Prng) {}
  pick(): Host | null {
    const a = this.set.available;
    return a.length === 0 ? null : a[this.rng.int(a.length)]!;
  }
}

/** P2C: sample `choices` hosts at random, keep the one with fewest requests in flight. */
export class LeastRequestLb implements LoadBalancer {
  readonly policy = 'LEAST_REQUEST' as const;
  constructor(private readonly set: HostSet, private readonly rng: Prng, private readonly choices: number) {}
  pick(): Host | null {
    const a = this.set.available;
    if (a.length === 0) return null;
    if (a.length === 1) return a[0]!;
    let best = a[this.rng.int(a.length)]!;
    for (let i = 1; i < this.choices; i++) {
      const c = a[this.rng.int(a.length)]!;
      if (c.active < best.active) best = c;
    }
    return best;
  }
}

/**
 * Ring hash: each host gets replicas in proportion to its weight so the ring
 * holds at least minRingSize entries; a key goes to the first entry clockwise
 * from its hash. Positions are 53-bit hashes of "address:port_i".
 */
export class RingHashLb implements LoadBalancer {
  readonly policy = 'RING_HASH' as const;
  private version = -1;
  private ring = new Float64Array(0);
  private owners: Host[] = [];
  constructor(private readonly set: HostSet, private readonly rng: Prng, private readonly minRingSize: number, private readonly maxRingSize: number) {}

  private build(): void {
    const a = this.set.available;
    this.version = this.set.version;
    if (a.length === 0) { this.ring = new Float64Array(0); this.owners = []; return; }
    // Replicas per unit of weight are sized on every host (ejected or not)
    // and rounded up to a power of two, so ejecting or removing a host rarely
    // changes anyone else's replicas: only the leaving host's keys move.
    let totalW = 0;
    for (const h of this.set.hosts) totalW += h.weight;
    const want = Math.max(this.minRingSize / Math.max(totalW, 1), 1);
    const scale = Math.min(2 ** Math.ceil(Math.log2(want)), Math.max(1, Math.floor(this.maxRingSize / Math.max(totalW, 1))));
    const entries: { k: number; h: Host }[] = [];
    for (const h of a) {
      const n = Math.max(1, Math.round(h.weight * scale));
      for (let i = 0; i < n; i++) entries.push({ k: hash53(`${h.id}_${i}`), h });
    }
    entries.sort((x, y) => x.k - y.k);
    this.ring = Float64Array.from(entries, (e) => e.k);
    this.owners = entries.map((e) => e.h);
  }

  pick(key: string | null): Host | null {
    if (this.version !== this.set.version) this.build();
    const n = this.ring.length;
    if (n === 0) return null;
    if (key === null) return this.owners[this.rng.int(n)]!;
    const k = hash53(key);
    let lo = 0, hi = n;
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (this.ring[mid]! < k) lo = mid + 1; else hi = mid; }
    return this.owners[lo === n ? 0 : lo]!;
  }
}

/**
 * Maglev (Eisenbud et al., NSDI 2016, §3.4): every host walks its own
 * permutation of the table (offset, skip from two hashes of its name) and
 * the hosts take turns claiming their next free slot, weighted by repeating
 * turns. Lookup is one table read.
 */
export class MaglevLb implements LoadBalancer {
  readonly policy = 'MAGLEV' as const;
  private version = -1;
  private table: Host[] = [];
  constructor(private readonly set: HostSet, private readonly rng: Prng, private readonly size: number) {
    if (!isPrime(size)) throw new InvalidArgumentError(`maglev table size must be prime: ${size}`);
  }

  private build(): void {
    const a = this.set.available;
    const M = this.size;
    this.version = this.set.version;
    this.table = new Array<Host>(M);
    if (a.length === 0) { this.table = []; return; }
    // Sorted by id so the table depends on the set, not on its order.
    const hosts = [...a].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    const offset = hosts.map((h) => hash32(h.id, 0x9e3779b9) % M);
    const skip = hosts.map((h) => (hash32(h.id, 0x7f4a7c15) % (M - 1)) + 1);
    const next = new Array<number>(hosts.length).fill(0);
    const maxW = Math.max(...hosts.map((h) => h.weight));
    // Envoy's weighting: host i claims a slot on iteration k while
    // k * weight_i keeps up with its target, which grows by maxW per claim.
    const target = new Array<number>(hosts.length).fill(0);
    const filled = new Uint8Array(M);
    let count = 0;
    for (let iter = 1; count < M; iter++) {
      for (let i = 0; i < hosts.length && count < M; i++) {
        if (iter * hosts[i]!.weight < target[i]!) continue;
        target[i]! += maxW;
        let c = (offset[i]! + next[i]! * skip[i]!) % M;
        while (filled[c] === 1) { next[i]!++; c = (offset[i]! + next[i]! * skip[i]!) % M; }
        filled[c] = 1;
        this.table[c] = hosts[i]!;
        next[i]!++;
        count++;
      }
    }
  }

  pick(key: string | null): Host | null {
    if (this.version !== this.set.version) this.build();
    if (this.table.length === 0) return null;
    if (key === null) return this.table[this.rng.int(this.table.length)]!;
    return this.table[hash32(key) % this.size]!;
  }
}

function isPrime(n: number): boolean {
  if (n < 2 || n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}
