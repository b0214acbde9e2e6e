// The connection tracking table: every flow the dataplane sees, terminated
// or forwarded, keyed by its IPv4 5-tuple in both directions (original and
// reply tuples map to one entry), with TCP state tracking (./tcp.ts),
// per-direction packet and byte counters, first/last-seen times, Cilium's
// timeouts, a bounded size and a policy verdict cached per flow.
//
// Contract
// - track()/trackPacket() take `now` (ms) from the caller and never read a
//   clock. They return a CT_RESULT (registration.ts) or CT_UNTRACKED, and
//   leave the entry's index, id and the packet's direction in lastIndex /
//   lastId / lastDir. Nothing is allocated per packet, for hits or inserts:
//   every array is preallocated to maxEntries.
// - DROP is returned for packets of a denied flow (reason "policy") and, when
//   `dropInvalid` is set, for invalid ones. Otherwise invalid packets are
//   counted by reason and passed with no state change, no accounting and no
//   timeout refresh (netfilter's behaviour: an invalid packet cannot keep an
//   entry alive).
//
// Layout: entries are fixed 128-byte records in one preallocated
// ArrayBuffer (typed-array views, see the field table in the class), indexed
// 0..maxEntries-1 and reused through a free stack. Records rather than one
// array per field: a random lookup then costs ~3 cache misses (slot, record,
// TCP record) instead of one per field. The hash index is open addressing with linear
// probing over an Int32Array of (entry << 1 | dir) keys, at most half full,
// with backward-shift deletion (no tombstones, so churn cannot degrade it).
// The hash is simple tabulation hashing over the 13 key bytes with tables
// drawn from a random seed: 3-independent and keyed, so a remote sender who
// does not know the tables cannot aim flows at one probe chain.
//
// Expiry: no timer per entry. Every entry maps to one of five timeout
// classes (SYN, ESTABLISHED, CLOSING, OTHER by its state, and UNREPLIED for
// a TCP entry that has seen no reply yet and whose state's timeout is longer
// than tcpUnreplied), and each class keeps its entries in an intrusive list
// ordered by last-seen. Since all entries of a class share one timeout, that
// order is also expiry order: expire(now) pops heads until the head is live,
// exactly and in O(expired), and nextExpiry() is the minimum of the heads.
// Refreshing an entry on a packet moves it to its class's tail (a few
// typed-array writes), which is cheaper than re-arming a wheel timer per
// packet; a reply moves an UNREPLIED entry to its state's class the same
// way. Lookups also expire lazily: an expired entry found by a lookup is
// removed and the packet starts afresh. The poll loop arms one wheel timer
// at nextExpiry() and calls expire().
//
// Eviction when full: an expired entry first (counted as an expiration),
// else the live entry nearest to its expiry among the class heads (counted
// as an eviction). Within one class that is exactly the least recently seen
// entry; across classes it prefers half-open SYNs, unanswered pickups, UDP
// and closing flows over established ones, so a SYN, ACK or UDP flood cannot
// flush established flows (the aim of Linux's early_drop, which spares
// ASSURED entries). `evict: 'lru'` picks the least recently seen entry of
// any class instead.

import { randomBytes } from 'node:crypto';
import { CT_RESULT, IPPROTO } from '../registration.js';
import { InvalidArgumentError } from '../../util/errors.js';
import { ReasonCounter } from '../../obs/metrics.js';
import { EventPublisher } from '../../obs/events.js';
import { Prng } from '../../util/prng.js';
import {
  CT_CLASS, CT_CLASS_COUNT, CT_CLASS_NAMES, CT_END, CT_END_NAMES, CT_HOOK, CT_INVALID, CT_INVALID_NAMES, CT_STATE, CT_STATE_NAMES,
  CT_UNTRACKED, CtPacket, DEFAULT_TIMEOUTS, TCPF, type CtClassName, type CtInvalidReason, type CtStateName, type CtTimeouts,
} from './types.js';
import { TCP_EV, TCP_IGNORE, TCP_INVALID_BASE, TCP_REOPEN, TcpStreams, tcpEvent, tcpValidFlags } from './tcp.js';

export interface ConntrackOptions {
  /** Most entries held. Default 65536. */
  maxEntries?: number;
  /**
   * Idle timeouts in ms; missing ones take the defaults (DEFAULT_TIMEOUTS).
   * Each must be a finite number > 0; an unknown name is an error.
   */
  timeouts?: Partial<CtTimeouts>;
  /** Pick up TCP connections mid-stream from a bare ACK (netfilter's tcp_loose). Default true. */
  loose?: boolean;
  /** Skip TCP window checks (netfilter's tcp_be_liberal). Default false. */
  liberal?: boolean;
  /** Drop invalid packets instead of passing them untracked. Default false. */
  dropInvalid?: boolean;
  /** Eviction choice when full, see the module comment. Default 'nearest-expiry'. */
  evict?: 'nearest-expiry' | 'lru';
  /** Seed for the hash tables; default random. Fix it only in tests. */
  seed?: number;
  /**
   * L3/L4 policy, asked once per new flow with its first packet: false denies
   * the flow. A denied flow is kept (so later packets drop at lookup cost)
   * and every packet of it is dropped with reason "policy".
   */
  policy?: (p: Readonly<CtPacket>, hook: number) => boolean;
  /** Constant labels on this table's metrics, e.g. { table: 'afxdp' }. */
  metricLabels?: Readonly<Record<string, string>>;
  /** Called with a view of an entry just before it leaves the table (cause: CT_END). */
  onRemove?: (e: CtEntryView, cause: number) => void;
}

/** Counters; plain fields so the hot path bumps numbers. */
export class ConntrackStats {
  /** Packets offered to track(). */
  packets = 0;
  lookups = 0;
  hits = 0;
  misses = 0;
  inserts = 0;
  /** Entries removed by delete()/clear(). */
  deletes = 0;
  evictions = 0;
  expirations = 0;
  /** Of `expirations`: entries that never saw a packet in the reply direction (unanswered SYNs and pickups, one-way UDP). */
  unrepliedExpirations = 0;
  /** Entries replaced by a new connection on the same tuple (SYN in TIME_WAIT/CLOSE). */
  reopened = 0;
  /** Packets returned CT_UNTRACKED. */
  untracked = 0;
  /** Packets returned DROP. */
  dropped = 0;
  /** Packets related to a flow by an ICMP error quoting it. */
  related = 0;
}

/** A plain copy of one entry (get(), snapshot()). */
export interface CtEntryInfo {
  id: number;
  proto: number;
  src: number;
  dst: number;
  sport: number;
  dport: number;
  state: CtStateName;
  /** CT_RESULT the flow's current state maps to. */
  result: number;
  /** CT_HOOK of the packet that created the entry. */
  origin: number;
  /** A packet was accepted in the reply direction (netfilter's IPS_SEEN_REPLY). */
  replied: boolean;
  denied: boolean;
  pickedUp: boolean;
  firstSeen: number;
  lastSeen: number;
  expiresAt: number;
  /** The timeout class in force: 'unreplied' while a TCP entry's timeout is capped by tcpUnreplied. */
  timeoutClass: CtClassName;
  packets: [original: number, reply: number];
  bytes: [original: number, reply: number];
  flowId: number;
  /** The TCP side that sent the first FIN: 'original', 'reply' or null. */
  firstFin: 'original' | 'reply' | null;
}

const EF = { USED: 1, REPLIED: 2, DENIED: 4, PICKUP: 8, ORIGIN_OUT: 16 } as const;
const KEY_BYTES = 13;

/** Events on diagnostics_channel: built only when someone subscribes. */
export const conntrackNewEvents = new EventPublisher<CtEntryInfo>('strata:conntrack:new');
export const conntrackEndEvents = new EventPublisher<{ entry: CtEntryInfo; cause: (typeof CT_END_NAMES)[number] }>('strata:conntrack:end');

/**
 * A view over one entry, re-pointed rather than allocated: forEach() and
 * onRemove hand out one instance. Read it during the call; copy with
 * toInfo() to keep it.
 */
export class CtEntryView {
  index = -1;
  constructor(private readonly t: Conntrack) {}
  get id(): number { return this.t.idOf(this.index); }
  get proto(): number { return this.t.u8[this.index * 128 + 12]!; }
  get src(): number { return this.t.u32[this.index * 32 + 0]!; }
  get dst(): number { return this.t.u32[this.index * 32 + 1]!; }
  get sport(): number { return this.t.u16[this.index * 64 + 4]!; }
  get dport(): number { return this.t.u16[this.index * 64 + 5]!; }
  get state(): number { return this.t.u8[this.index * 128 + 13]!; }
  get stateName(): CtStateName { return CT_STATE_NAMES[this.t.u8[this.index * 128 + 13]!]!; }
  get result(): number { return this.t.resultOf(this.index); }
  get origin(): number { return this.t.u8[this.index * 128 + 14]! & EF.ORIGIN_OUT ? CT_HOOK.OUT : CT_HOOK.IN; }
  get replied(): boolean { return (this.t.u8[this.index * 128 + 14]! & EF.REPLIED) !== 0; }
  get denied(): boolean { return (this.t.u8[this.index * 128 + 14]! & EF.DENIED) !== 0; }
  get firstSeen(): number { return this.t.f64[this.index * 16 + 10]!; }
  get lastSeen(): number { return this.t.f64[this.index * 16 + 5]!; }
  get expiresAt(): number { return this.t.f64[this.index * 16 + 4]!; }
  get timeoutClass(): CtClassName { return CT_CLASS_NAMES[this.t.u8[this.index * 128 + 15]!]!; }
  packets(dir: number): number { return this.t.f64[this.index * 16 + 6 + dir]!; }
  bytes(dir: number): number { return this.t.f64[this.index * 16 + 8 + dir]!; }
  get flowId(): number { return this.t.f64[this.index * 16 + 12]!; }
  get user(): unknown { return this.t.eUser[this.index]; }
  toInfo(): CtEntryInfo { return this.t.infoOf(this.index); }
}

export class Conntrack {
  readonly maxEntries: number;
  readonly timeouts: Readonly<CtTimeouts>;
  readonly stats = new ConntrackStats();
  readonly invalid: ReasonCounter<CtInvalidReason>;
  readonly metricLabels: Readonly<Record<string, string>>;
  /** The reusable packet record for trackPacket() and track(). */
  readonly pkt = new CtPacket();
  /** Set by the last track(): entry index (-1 none), id (0 none) and the packet's CT_DIR. */
  lastIndex = -1;
  lastId = 0;
  lastDir = 0;

  private readonly loose: boolean;
  private readonly liberal: boolean;
  private readonly dropInvalid: boolean;
  private readonly evictLru: boolean;
  private policy: ConntrackOptions['policy'];
  private readonly onRemove: ConntrackOptions['onRemove'];
  private readonly classTimeout: Float64Array;

  // Entries: one 128-byte record each in a single ArrayBuffer, seen through
  // four views, so the fields a packet touches share two cache lines rather
  // than one line per field array (struct-of-arrays cost ~25 cache misses per
  // random lookup at 100k entries). Record layout, by view index:
  //   u32 [i*32 + 0] src, [1] dst        u16 [i*64 + 4] sport, [5] dport
  //   u8  [i*128 + 12] proto, 13 state, 14 flags (EF), 15 timeout class
  //   i32 [i*32 + 4] class-list prev, [5] next
  //   f64 [i*16 + 4] expiresAt, 5 lastSeen, 6/7 packets orig/reply,
  //       8/9 bytes orig/reply, 10 firstSeen, 11 generation, 12 flowId
  // Public for CtEntryView; not API.
  /** @internal */ readonly u8: Uint8Array;
  /** @internal */ readonly u16: Uint16Array;
  /** @internal */ readonly u32: Uint32Array;
  /** @internal */ readonly i32: Int32Array;
  /** @internal */ readonly f64: Float64Array;
  /** @internal */ readonly eUser: unknown[];
  private readonly classHead = new Int32Array(CT_CLASS_COUNT).fill(-1);
  private readonly classTail = new Int32Array(CT_CLASS_COUNT).fill(-1);
  private readonly free: Int32Array;
  private freeTop: number;
  private count = 0;
  /** @internal */ readonly tcp: TcpStreams;

  // Hash index: slot p holds [2p] the key (entry << 1 | dir, -1 empty) and
  // [2p+1] its hash, so a probe compares hashes without another cache miss.
  private readonly slots: Int32Array;
  private readonly mask: number;
  private readonly keyHash: Int32Array;
  private readonly tab: Int32Array;

  private clock = -Infinity;
  private readonly view: CtEntryView;

  constructor(opts: ConntrackOptions = {}) {
    const max = opts.maxEntries ?? 65536;
    if (!Number.isInteger(max) || max < 1 || max > 1 << 24) throw new InvalidArgumentError('conntrack maxEntries must be an integer in [1, 2^24]');
    this.maxEntries = max;
    const t = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    for (const [k, v] of Object.entries(t)) {
      if (!Object.hasOwn(DEFAULT_TIMEOUTS, k)) throw new InvalidArgumentError(`unknown conntrack timeout ${JSON.stringify(k)} (known: ${Object.keys(DEFAULT_TIMEOUTS).join(', ')})`);
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new InvalidArgumentError(`conntrack timeout ${k} must be a finite number of ms > 0, got ${String(v)}`);
    }
    this.timeouts = Object.freeze(t);
    // Indexed by CT_CLASS.
    this.classTimeout = Float64Array.from([t.tcpSyn, t.tcpEstablished, t.tcpClosing, t.other, t.tcpUnreplied]);
    this.loose = opts.loose ?? true;
    this.liberal = opts.liberal ?? false;
    this.dropInvalid = opts.dropInvalid ?? false;
    this.evictLru = opts.evict === 'lru';
    this.policy = opts.policy;
    this.onRemove = opts.onRemove;
    this.metricLabels = Object.freeze({ ...opts.metricLabels });
    this.invalid = new ReasonCounter('strata_conntrack_invalid_total', 'Packets conntrack judged invalid, by reason.', CT_INVALID_NAMES, 'reason', this.metricLabels);

    const rec = new ArrayBuffer(max * 128);
    this.u8 = new Uint8Array(rec);
    this.u16 = new Uint16Array(rec);
    this.u32 = new Uint32Array(rec);
    this.i32 = new Int32Array(rec);
    this.f64 = new Float64Array(rec);
    this.eUser = new Array<unknown>(max).fill(undefined);
    this.free = new Int32Array(max);
    for (let i = 0; i < max; i++) this.free[i] = max - 1 - i;
    this.freeTop = max;
    this.tcp = new TcpStreams(max);

    let cap = 4;
    while (cap < max * 4) cap *= 2; // two keys per entry, load factor <= 1/2
    this.slots = new Int32Array(cap * 2).fill(-1);
    this.mask = cap - 1;
    this.keyHash = new Int32Array(max * 2);
    this.tab = new Int32Array(KEY_BYTES * 256);
    if (opts.seed !== undefined) {
      const rng = new Prng(opts.seed);
      for (let i = 0; i < this.tab.length; i++) this.tab[i] = rng.u32() | 0;
    } else {
      const b = randomBytes(this.tab.length * 4);
      for (let i = 0; i < this.tab.length; i++) this.tab[i] = b.readInt32LE(i * 4);
    }
    this.view = new CtEntryView(this);
  }

  /** Entries in the table. */
  get size(): number { return this.count; }

  // ---- hashing and the index ------------------------------------------------

  private hash(proto: number, src: number, dst: number, sport: number, dport: number): number {
    const t = this.tab;
    return t[src >>> 24]! ^ t[256 + ((src >>> 16) & 255)]! ^ t[512 + ((src >>> 8) & 255)]! ^ t[768 + (src & 255)]!
      ^ t[1024 + (dst >>> 24)]! ^ t[1280 + ((dst >>> 16) & 255)]! ^ t[1536 + ((dst >>> 8) & 255)]! ^ t[1792 + (dst & 255)]!
      ^ t[2048 + (sport >>> 8)]! ^ t[2304 + (sport & 255)]! ^ t[2560 + (dport >>> 8)]! ^ t[2816 + (dport & 255)]!
      ^ t[3072 + (proto & 255)]!;
  }

  /** The key (entry << 1 | dir) matching the tuple, or -1. */
  private find(proto: number, src: number, dst: number, sport: number, dport: number): number {
    const h = this.hash(proto, src, dst, sport, dport);
    const slots = this.slots;
    let pos = h & this.mask;
    for (;;) {
      const k = slots[pos * 2]!;
      if (k === -1) return -1;
      if (slots[pos * 2 + 1] === h) {
        const i = k >> 1;
        if (this.u8[i * 128 + 12] === proto) {
          if ((k & 1) === 0) {
            if (this.u32[i * 32 + 0] === src && this.u32[i * 32 + 1] === dst && this.u16[i * 64 + 4] === sport && this.u16[i * 64 + 5] === dport) return k;
          } else if (this.u32[i * 32 + 0] === dst && this.u32[i * 32 + 1] === src && this.u16[i * 64 + 4] === dport && this.u16[i * 64 + 5] === sport) return k;
        }
      }
      pos = (pos + 1) & this.mask;
    }
  }

  private insertKey(k: number, h: number): void {
    this.keyHash[k] = h;
    let pos = h & this.mask;
    while (this.slots[pos * 2] !== -1) pos = (pos + 1) & this.mask;
    this.slots[pos * 2] = k;
    this.slots[pos * 2 + 1] = h;
  }

  /** Backward-shift deletion (Knuth 6.4 algorithm R). */
  private removeKey(k: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let i = this.keyHash[k]! & mask;
    while (slots[i * 2] !== k) i = (i + 1) & mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const v = slots[j * 2]!;
      if (v === -1) break;
      const home = slots[j * 2 + 1]! & mask;
      // v may move into the hole at i unless its home lies cyclically in (i, j].
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      slots[i * 2] = v;
      slots[i * 2 + 1] = slots[j * 2 + 1]!;
      i = j;
    }
    slots[i * 2] = -1;
  }

  // ---- timeout classes -------------------------------------------------------

  private classOf(i: number): number {
    const st = this.u8[i * 128 + 13]!;
    if (this.u8[i * 128 + 12] !== IPPROTO.TCP) return CT_CLASS.OTHER;
    const c = st === CT_STATE.ESTABLISHED ? CT_CLASS.ESTABLISHED
      : st === CT_STATE.SYN_SENT || st === CT_STATE.SYN_RECV || st === CT_STATE.SYN_SENT2 ? CT_CLASS.SYN
        : CT_CLASS.CLOSING;
    // Until a reply is seen, the timeout is min(state's, tcpUnreplied): see
    // CtTimeouts.tcpUnreplied for why and where the rule comes from. The
    // reply that sets EF.REPLIED is followed by refresh(), which moves the
    // entry back to its state's class.
    if (!(this.u8[i * 128 + 14]! & EF.REPLIED) && this.classTimeout[c]! > this.classTimeout[CT_CLASS.UNREPLIED]!) return CT_CLASS.UNREPLIED;
    return c;
  }

  private unlinkClass(i: number): void {
    const c = this.u8[i * 128 + 15]!;
    const p = this.i32[i * 32 + 4]!;
    const n = this.i32[i * 32 + 5]!;
    if (p >= 0) this.i32[p * 32 + 5] = n; else this.classHead[c] = n;
    if (n >= 0) this.i32[n * 32 + 4] = p; else this.classTail[c] = p;
    this.i32[i * 32 + 4] = this.i32[i * 32 + 5] = -1;
  }

  private appendClass(i: number, c: number): void {
    this.u8[i * 128 + 15] = c;
    const t = this.classTail[c]!;
    this.i32[i * 32 + 4] = t;
    this.i32[i * 32 + 5] = -1;
    if (t >= 0) this.i32[t * 32 + 5] = i; else this.classHead[c] = i;
    this.classTail[c] = i;
  }

  /** Refreshes the entry's timeout from now and its state's class. */
  private refresh(i: number): void {
    const now = this.clock;
    const c = this.classOf(i);
    this.f64[i * 16 + 5] = now;
    this.f64[i * 16 + 4] = now + this.classTimeout[c]!;
    if (this.u8[i * 128 + 15] === c && this.classTail[c] === i) return;
    this.unlinkClass(i);
    this.appendClass(i, c);
  }

  // ---- entries ---------------------------------------------------------------

  /** @internal */
  idOf(i: number): number { return this.f64[i * 16 + 11]! * this.maxEntries + i + 1; }

  /** Entry index for an id, or -1 when the id is stale or unknown. */
  indexOf(id: number): number {
    if (!Number.isInteger(id) || id < 1) return -1;
    const i = (id - 1) % this.maxEntries;
    if (!(this.u8[i * 128 + 14]! & EF.USED) || this.f64[i * 16 + 11] !== Math.floor((id - 1) / this.maxEntries)) return -1;
    return i;
  }

  /** @internal */
  resultOf(i: number): number {
    if (this.u8[i * 128 + 14]! & EF.DENIED) return CT_RESULT.DROP;
    switch (this.u8[i * 128 + 13]!) {
      case CT_STATE.SYN_SENT: case CT_STATE.SYN_RECV: case CT_STATE.SYN_SENT2: case CT_STATE.NEW:
        return CT_RESULT.CONNECTING;
      case CT_STATE.CLOSE:
        return CT_RESULT.RESET;
      case CT_STATE.TIME_WAIT:
        return this.tcp.firstFin[i] === 2 ? CT_RESULT.CLOSED_BY_RESPONDER : CT_RESULT.CLOSED_BY_ORIGINATOR;
      default:
        return CT_RESULT.ALIVE;
    }
  }

  private allocate(): number {
    const now = this.clock;
    if (this.freeTop === 0) {
      let best = -1;
      let bestKey = Infinity;
      for (let c = 0; c < CT_CLASS_COUNT; c++) {
        const h = this.classHead[c]!;
        if (h >= 0 && this.f64[h * 16 + 4]! < bestKey) { best = h; bestKey = this.f64[h * 16 + 4]!; }
      }
      if (bestKey <= now) {
        this.expireEntry(best);
      } else {
        if (this.evictLru) {
          bestKey = Infinity;
          for (let c = 0; c < CT_CLASS_COUNT; c++) {
            const h = this.classHead[c]!;
            if (h >= 0 && this.f64[h * 16 + 5]! < bestKey) { best = h; bestKey = this.f64[h * 16 + 5]!; }
          }
        }
        this.stats.evictions++;
        this.remove(best, CT_END.EVICTED);
      }
    }
    return this.free[--this.freeTop]!;
  }

  /** Removes entry i, which is past its timeout, and counts it. */
  private expireEntry(i: number): void {
    this.stats.expirations++;
    if (!(this.u8[i * 128 + 14]! & EF.REPLIED)) this.stats.unrepliedExpirations++;
    this.remove(i, CT_END.EXPIRED);
  }

  private remove(i: number, cause: number): void {
    try {
      if (this.onRemove !== undefined) {
        this.view.index = i;
        this.onRemove(this.view, cause);
      }
      if (conntrackEndEvents.active) conntrackEndEvents.publish({ entry: this.infoOf(i), cause: CT_END_NAMES[cause]! });
    } finally {
      this.unlinkEntry(i);
    }
  }

  /** Takes entry i out of the index, its class list and use; its slot goes back to the free stack. */
  private unlinkEntry(i: number): void {
    this.removeKey(i << 1);
    this.removeKey((i << 1) | 1);
    this.unlinkClass(i);
    this.u8[i * 128 + 14] = 0;
    this.eUser[i] = undefined;
    this.f64[i * 16 + 12] = 0;
    this.f64[i * 16 + 11]!++;
    this.free[this.freeTop++] = i;
    this.count--;
    if (this.lastIndex === i) { this.lastIndex = -1; this.lastId = 0; }
  }

  // ---- the packet path -------------------------------------------------------

  /**
   * Tracks one IPv4 packet: buf[ipOff…] is the IP header, already validated
   * by the IPv4 layer (version, header length and total length against the
   * frame); conntrack re-checks only what it reads. `hook` is CT_HOOK: IN for
   * a received packet, OUT for a sent one.
   */
  track(buf: Uint8Array, ipOff: number, hook: number, now: number): number {
    const p = this.pkt;
    const avail = buf.length - ipOff;
    if (avail < 20 || buf[ipOff]! >> 4 !== 4) return this.untracked(CT_INVALID.MALFORMED);
    const ihl = (buf[ipOff]! & 15) * 4;
    const total = (buf[ipOff + 2]! << 8) | buf[ipOff + 3]!;
    if (ihl < 20 || total < ihl || total > avail) return this.untracked(CT_INVALID.MALFORMED);
    const frag = ((buf[ipOff + 6]! << 8) | buf[ipOff + 7]!) & 0x1fff;
    if (frag !== 0) return this.untracked(CT_INVALID.FRAGMENT); // reassembly comes first; later fragments carry no ports
    p.proto = buf[ipOff + 9]!;
    p.src = ((buf[ipOff + 12]! << 24) | (buf[ipOff + 13]! << 16) | (buf[ipOff + 14]! << 8) | buf[ipOff + 15]!) >>> 0;
    p.dst = ((buf[ipOff + 16]! << 24) | (buf[ipOff + 17]! << 16) | (buf[ipOff + 18]! << 8) | buf[ipOff + 19]!) >>> 0;
    p.ipLen = total;
    p.related = false;
    p.icmpType = -1;
    p.flags = p.seq = p.ack = p.win = p.payloadLen = 0;
    p.wscale = -1;
    const l4 = ipOff + ihl;
    const l4len = total - ihl;
    switch (p.proto) {
      case IPPROTO.TCP: {
        if (l4len < 20) return this.untracked(CT_INVALID.MALFORMED);
        const doff = (buf[l4 + 12]! >> 4) * 4;
        if (doff < 20 || doff > l4len) return this.untracked(CT_INVALID.MALFORMED);
        p.sport = (buf[l4]! << 8) | buf[l4 + 1]!;
        p.dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
        p.seq = ((buf[l4 + 4]! << 24) | (buf[l4 + 5]! << 16) | (buf[l4 + 6]! << 8) | buf[l4 + 7]!) >>> 0;
        p.ack = ((buf[l4 + 8]! << 24) | (buf[l4 + 9]! << 16) | (buf[l4 + 10]! << 8) | buf[l4 + 11]!) >>> 0;
        p.flags = buf[l4 + 13]!;
        p.win = (buf[l4 + 14]! << 8) | buf[l4 + 15]!;
        p.payloadLen = l4len - doff;
        if (p.flags & TCPF.SYN) p.wscale = windowScaleOption(buf, l4 + 20, l4 + doff);
        break;
      }
      case IPPROTO.UDP:
        if (l4len < 8) return this.untracked(CT_INVALID.MALFORMED);
        p.sport = (buf[l4]! << 8) | buf[l4 + 1]!;
        p.dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
        break;
      case IPPROTO.ICMP: {
        if (l4len < 8) return this.untracked(CT_INVALID.MALFORMED);
        const type = buf[l4]!;
        p.icmpType = type;
        if (type === 8 || type === 0) {
          p.sport = p.dport = (buf[l4 + 4]! << 8) | buf[l4 + 5]!;
        } else if (type === 3 || type === 4 || type === 5 || type === 11 || type === 12) {
          // An error quoting a packet of a flow: relate it to that flow (RFC 792; netfilter's RELATED).
          const q = l4 + 8;
          const qavail = total - ihl - 8;
          if (qavail < 20 || buf[q]! >> 4 !== 4) return this.untracked(CT_INVALID.MALFORMED);
          const qihl = (buf[q]! & 15) * 4;
          if (qihl < 20 || qavail < qihl + 8) return this.untracked(CT_INVALID.MALFORMED);
          p.related = true;
          p.proto = buf[q + 9]!;
          p.src = ((buf[q + 12]! << 24) | (buf[q + 13]! << 16) | (buf[q + 14]! << 8) | buf[q + 15]!) >>> 0;
          p.dst = ((buf[q + 16]! << 24) | (buf[q + 17]! << 16) | (buf[q + 18]! << 8) | buf[q + 19]!) >>> 0;
          const qt = q + qihl;
          if (p.proto === IPPROTO.ICMP) p.sport = p.dport = (buf[qt + 4]! << 8) | buf[qt + 5]!;
          else { p.sport = (buf[qt]! << 8) | buf[qt + 1]!; p.dport = (buf[qt + 2]! << 8) | buf[qt + 3]!; }
        } else {
          p.sport = p.dport = 0; // other ICMP (timestamps, router adverts…) is not tracked
        }
        break;
      }
      default:
        p.sport = p.dport = 0;
    }
    return this.trackPacket(p, hook, now);
  }

  /** Tracks a packet whose fields the caller filled in (usually `this.pkt`). */
  trackPacket(p: CtPacket, hook: number, now: number): number {
    if (now < this.clock) now = this.clock; // time never runs backwards inside the table
    else this.clock = now;
    this.stats.packets++;
    if (p.related) return this.trackRelated(p);
    const proto = p.proto;
    if (proto !== IPPROTO.TCP && proto !== IPPROTO.UDP && !(proto === IPPROTO.ICMP && (p.icmpType === 8 || p.icmpType === 0))) {
      this.lastIndex = -1; this.lastId = 0;
      this.stats.untracked++;
      return CT_UNTRACKED;
    }
    this.stats.lookups++;
    let k = this.find(proto, p.src, p.dst, p.sport, p.dport);
    if (k >= 0 && this.f64[(k >> 1) * 16 + 4]! <= now) {
      this.expireEntry(k >> 1);
      k = -1;
    }
    if (k < 0) {
      this.stats.misses++;
      return this.create(p, hook);
    }
    this.stats.hits++;
    const i = k >> 1;
    const dir = k & 1;
    this.lastIndex = i;
    this.lastId = this.idOf(i);
    this.lastDir = dir;
    if (this.u8[i * 128 + 14]! & EF.DENIED) {
      this.invalid.counts[CT_INVALID.POLICY]!++;
      this.stats.dropped++;
      this.refresh(i); // the cached verdict stays while the flow keeps sending
      return CT_RESULT.DROP;
    }
    if (proto === IPPROTO.TCP) {
      const ns = this.tcpStep(i, dir, p);
      if (ns < 0) {
        if (ns === TCP_REOPEN) {
          this.stats.reopened++;
          this.remove(i, CT_END.REPLACED);
          return this.create(p, hook);
        }
        if (ns === TCP_IGNORE) return this.resultOf(i);
        return this.invalidPacket(TCP_INVALID_BASE - ns, i);
      }
      this.u8[i * 128 + 13] = ns;
    } else if (dir === 1 && this.u8[i * 128 + 13] === CT_STATE.NEW) {
      this.u8[i * 128 + 13] = CT_STATE.REPLIED;
    } else if (proto === IPPROTO.ICMP && dir === 0 && p.icmpType === 0) {
      return this.invalidPacket(CT_INVALID.INVALID_STATE, i); // an echo reply travelling like the request
    }
    if (dir === 1) this.u8[i * 128 + 14]! |= EF.REPLIED;
    this.f64[i * 16 + 6 + dir]!++;
    this.f64[i * 16 + 8 + dir]! += p.ipLen;
    this.refresh(i);
    return this.resultOf(i);
  }

  private tcpStep(i: number, dir: number, p: CtPacket): number {
    if (!tcpValidFlags(p.flags)) return TCP_INVALID_BASE - CT_INVALID.BAD_FLAGS;
    const ev = tcpEvent(p.flags);
    const st = this.u8[i * 128 + 13]!;
    return dir === 0 ? this.tcp.original(i, st, ev, p) : this.tcp.reply(i, st, ev, p);
  }

  private create(p: CtPacket, hook: number): number {
    const now = this.clock;
    const proto = p.proto;
    let state: number = CT_STATE.NEW;
    if (proto === IPPROTO.TCP) {
      if (!tcpValidFlags(p.flags)) return this.untracked(CT_INVALID.BAD_FLAGS);
      const ev = tcpEvent(p.flags);
      if (ev !== TCP_EV.SYN && !(ev === TCP_EV.ACK && this.loose)) {
        return this.untracked(ev === TCP_EV.ACK ? CT_INVALID.NO_ENTRY : CT_INVALID.INVALID_STATE);
      }
    } else if (proto === IPPROTO.ICMP && p.icmpType !== 8) {
      return this.untracked(CT_INVALID.NO_ENTRY); // an echo reply with no request
    }
    const denied = this.policy !== undefined && !this.policy(p, hook);
    const i = this.allocate();
    if (proto === IPPROTO.TCP) {
      state = this.tcp.open(i, tcpEvent(p.flags), p, this.loose, this.liberal);
    }
    this.u8[i * 128 + 12] = proto;
    this.u32[i * 32 + 0] = p.src;
    this.u32[i * 32 + 1] = p.dst;
    this.u16[i * 64 + 4] = p.sport;
    this.u16[i * 64 + 5] = p.dport;
    this.u8[i * 128 + 13] = state;
    this.u8[i * 128 + 14] = EF.USED | (hook === CT_HOOK.OUT ? EF.ORIGIN_OUT : 0) | (denied ? EF.DENIED : 0)
      | (state === CT_STATE.ESTABLISHED ? EF.PICKUP : 0);
    this.f64[i * 16 + 10] = now;
    this.f64[i * 16 + 6] = this.f64[i * 16 + 6 + 1] = 0;
    this.f64[i * 16 + 8] = this.f64[i * 16 + 8 + 1] = 0;
    this.f64[i * 16 + 12] = 0;
    this.insertKey(i << 1, this.hash(proto, p.src, p.dst, p.sport, p.dport));
    this.insertKey((i << 1) | 1, this.hash(proto, p.dst, p.src, p.dport, p.sport));
    this.appendClass(i, this.classOf(i));
    this.count++;
    this.stats.inserts++;
    this.lastIndex = i;
    this.lastId = this.idOf(i);
    this.lastDir = 0;
    if (denied) {
      this.refresh(i);
      this.invalid.counts[CT_INVALID.POLICY]!++;
      this.stats.dropped++;
      if (conntrackNewEvents.active) conntrackNewEvents.publish(this.infoOf(i));
      return CT_RESULT.DROP;
    }
    this.f64[i * 16 + 6] = 1;
    this.f64[i * 16 + 8] = p.ipLen;
    this.refresh(i);
    if (conntrackNewEvents.active) conntrackNewEvents.publish(this.infoOf(i));
    return this.resultOf(i);
  }

  private trackRelated(p: CtPacket): number {
    this.stats.lookups++;
    const k = this.find(p.proto, p.src, p.dst, p.sport, p.dport);
    if (k < 0 || this.f64[(k >> 1) * 16 + 4]! <= this.clock) {
      this.stats.misses++;
      return this.untracked(CT_INVALID.NO_ENTRY);
    }
    this.stats.hits++;
    this.stats.related++;
    const i = k >> 1;
    const dir = (k & 1) ^ 1; // the error travels against the packet it quotes
    this.lastIndex = i;
    this.lastId = this.idOf(i);
    this.lastDir = dir;
    if (this.u8[i * 128 + 14]! & EF.DENIED) {
      this.invalid.counts[CT_INVALID.POLICY]!++;
      this.stats.dropped++;
      return CT_RESULT.DROP;
    }
    this.f64[i * 16 + 6 + dir]!++;
    this.f64[i * 16 + 8 + dir]! += p.ipLen;
    return this.resultOf(i); // an error does not refresh or change the flow: the endpoint decides
  }

  private untracked(reason: number): number {
    this.invalid.counts[reason]!++;
    this.lastIndex = -1;
    this.lastId = 0;
    if (this.dropInvalid) { this.stats.dropped++; return CT_RESULT.DROP; }
    this.stats.untracked++;
    return CT_UNTRACKED;
  }

  private invalidPacket(reason: number, i: number): number {
    this.invalid.counts[reason]!++;
    if (this.dropInvalid) { this.stats.dropped++; return CT_RESULT.DROP; }
    return this.resultOf(i);
  }

  // ---- time ------------------------------------------------------------------

  /** Removes entries idle past their timeout; at most `budget` of them. Returns how many. */
  expire(now: number, budget = Infinity): number {
    if (now > this.clock) this.clock = now;
    let n = 0;
    for (let c = 0; c < CT_CLASS_COUNT; c++) {
      for (let h = this.classHead[c]!; h >= 0 && this.f64[h * 16 + 4]! <= now && n < budget; h = this.classHead[c]!) {
        this.expireEntry(h);
        n++;
      }
    }
    return n;
  }

  /** When the next entry expires (ms), or undefined when the table is empty. */
  nextExpiry(): number | undefined {
    let best = Infinity;
    for (let c = 0; c < CT_CLASS_COUNT; c++) {
      const h = this.classHead[c]!;
      if (h >= 0 && this.f64[h * 16 + 4]! < best) best = this.f64[h * 16 + 4]!;
    }
    return best === Infinity ? undefined : best;
  }

  // ---- lookups, policy and hooks by id ----------------------------------------

  /**
   * The id of the live entry holding this tuple (either direction), or 0.
   * Changes no state (an entry past its timeout counts as absent but stays
   * until expire() or a packet removes it), judged at `now` (default: the
   * latest time the table has seen); sets lastDir.
   */
  lookup(proto: number, src: number, dst: number, sport: number, dport: number, now: number = this.clock): number {
    this.stats.lookups++;
    const k = this.find(proto, src, dst, sport, dport);
    if (k < 0 || this.f64[(k >> 1) * 16 + 4]! <= Math.max(now, this.clock)) { this.stats.misses++; return 0; }
    this.stats.hits++;
    this.lastDir = k & 1;
    return this.idOf(k >> 1);
  }

  /** A copy of the entry, or undefined when the id is unknown or gone. */
  get(id: number): CtEntryInfo | undefined {
    const i = this.indexOf(id);
    return i < 0 ? undefined : this.infoOf(i);
  }

  /**
   * Replaces the policy (e.g. on a config reload) and re-judges every entry
   * with it, as if each flow's first packet arrived again: flows it now
   * denies drop from their next packet, flows it now allows pass (a deny()
   * made by hand is judged again too). Returns
   * how many entries are denied afterwards.
   */
  setPolicy(policy: ConntrackOptions['policy']): number {
    this.policy = policy;
    const p = new CtPacket();
    let denied = 0;
    for (let c = 0; c < CT_CLASS_COUNT; c++) {
      for (let i = this.classHead[c]!; i >= 0; i = this.i32[i * 32 + 5]!) {
        p.proto = this.u8[i * 128 + 12]!;
        p.src = this.u32[i * 32 + 0]!;
        p.dst = this.u32[i * 32 + 1]!;
        p.sport = this.u16[i * 64 + 4]!;
        p.dport = this.u16[i * 64 + 5]!;
        p.icmpType = p.proto === IPPROTO.ICMP ? 8 : -1;
        const hook = this.u8[i * 128 + 14]! & EF.ORIGIN_OUT ? CT_HOOK.OUT : CT_HOOK.IN;
        if (policy !== undefined && !policy(p, hook)) { this.u8[i * 128 + 14]! |= EF.DENIED; denied++; }
        else this.u8[i * 128 + 14]! &= ~EF.DENIED;
      }
    }
    return denied;
  }

  /** Marks the flow denied: its later packets drop with reason "policy". */
  deny(id: number): boolean {
    const i = this.indexOf(id);
    if (i < 0) return false;
    this.u8[i * 128 + 14]! |= EF.DENIED;
    return true;
  }

  /** Lifts a deny. */
  allow(id: number): boolean {
    const i = this.indexOf(id);
    if (i < 0) return false;
    this.u8[i * 128 + 14]! &= ~EF.DENIED;
    return true;
  }

  /** Attaches a flow-record id (issue 5) to the entry. */
  setFlowId(id: number, flowId: number): boolean {
    const i = this.indexOf(id);
    if (i < 0) return false;
    this.f64[i * 16 + 12] = flowId;
    return true;
  }

  /** Attaches any object to the entry (cleared when it leaves the table). */
  setUser(id: number, value: unknown): boolean {
    const i = this.indexOf(id);
    if (i < 0) return false;
    this.eUser[i] = value;
    return true;
  }

  user(id: number): unknown {
    const i = this.indexOf(id);
    return i < 0 ? undefined : this.eUser[i];
  }

  /** Removes an entry now (e.g. a socket closed and its flow should go). */
  delete(id: number): boolean {
    const i = this.indexOf(id);
    if (i < 0) return false;
    this.stats.deletes++;
    this.remove(i, CT_END.DELETED);
    return true;
  }

  /** Removes every entry. */
  clear(): void {
    for (let c = 0; c < CT_CLASS_COUNT; c++) {
      for (let h = this.classHead[c]!; h >= 0; h = this.classHead[c]!) { this.stats.deletes++; this.remove(h, CT_END.CLEARED); }
    }
  }

  // ---- snapshot ----------------------------------------------------------------

  /**
   * Calls fn with one re-pointed view per entry, without copying the table.
   * Order: by timeout class, then least recently seen first. fn must not
   * track packets or remove entries while iterating.
   */
  forEach(fn: (e: CtEntryView) => void): void {
    const v = new CtEntryView(this);
    for (let c = 0; c < CT_CLASS_COUNT; c++) {
      for (let h = this.classHead[c]!; h >= 0; h = this.i32[h * 32 + 5]!) { v.index = h; fn(v); }
    }
  }

  /** Iterates entries as one re-pointed view (see forEach). */
  *entries(): IterableIterator<CtEntryView> {
    const v = new CtEntryView(this);
    for (let c = 0; c < CT_CLASS_COUNT; c++) {
      for (let h = this.classHead[c]!; h >= 0; h = this.i32[h * 32 + 5]!) { v.index = h; yield v; }
    }
  }

  /** Copies of every entry (for the CLI and tests; observability paths should use forEach). */
  snapshot(): CtEntryInfo[] {
    const out: CtEntryInfo[] = [];
    this.forEach((e) => { out.push(e.toInfo()); });
    return out;
  }

  /** @internal */
  infoOf(i: number): CtEntryInfo {
    const ff = this.tcp.firstFin[i]!;
    const f = this.u8[i * 128 + 14]!;
    return {
      id: this.idOf(i),
      proto: this.u8[i * 128 + 12]!,
      src: this.u32[i * 32 + 0]!,
      dst: this.u32[i * 32 + 1]!,
      sport: this.u16[i * 64 + 4]!,
      dport: this.u16[i * 64 + 5]!,
      state: CT_STATE_NAMES[this.u8[i * 128 + 13]!]!,
      result: this.resultOf(i),
      origin: f & EF.ORIGIN_OUT ? CT_HOOK.OUT : CT_HOOK.IN,
      replied: (f & EF.REPLIED) !== 0,
      denied: (f & EF.DENIED) !== 0,
      pickedUp: (f & EF.PICKUP) !== 0,
      firstSeen: this.f64[i * 16 + 10]!,
      lastSeen: this.f64[i * 16 + 5]!,
      expiresAt: this.f64[i * 16 + 4]!,
      timeoutClass: CT_CLASS_NAMES[this.u8[i * 128 + 15]!]!,
      packets: [this.f64[i * 16 + 6]!, this.f64[i * 16 + 6 + 1]!],
      bytes: [this.f64[i * 16 + 8]!, this.f64[i * 16 + 8 + 1]!],
      flowId: this.f64[i * 16 + 12]!,
      firstFin: ff === 1 ? 'original' : ff === 2 ? 'reply' : null,
    };
  }
}

/** The window scale option's shift in TCP options [off, end), or -1 (RFC 7323 §2.2). */
function windowScaleOption(buf: Uint8Array, off: number, end: number): number {
  let i = off;
  while (i < end) {
    const kind = buf[i]!;
    if (kind === 0) return -1;
    if (kind === 1) { i++; continue; }
    if (i + 1 >= end) return -1;
    const len = buf[i + 1]!;
    if (len < 2 || i + len > end) return -1;
    if (kind === 3 && len === 3) return buf[i + 2]!;
    i += len;
  }
  return -1;
}
