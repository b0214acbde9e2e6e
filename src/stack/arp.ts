// ARP (RFC 826) with a neighbour cache shaped like Linux's (neighbour.c):
//
//   INCOMPLETE  resolving: broadcast requests every retransMs, up to
//               mcastProbes; packets wait in a bounded per-address queue
//               (when full the NEW packet is dropped, counted ARP_QUEUE_FULL;
//               Linux drops the oldest instead, we keep send order); after
//               the last probe the queue is dropped, counted ARP_FAILED, and
//               the entry removed.
//   REACHABLE   confirmed within reachableMs (a reply to us, or confirm()
//               from a transport that saw forward progress).
//   STALE       usable but unconfirmed; removed after gcStaleMs unused.
//   DELAY       used while STALE: wait delayFirstProbeMs for a confirmation,
//   PROBE       then unicast requests every retransMs, up to ucastProbes;
//               packets keep flowing to the old address meanwhile. No
//               answer removes the entry (the next packet resolves afresh).
//
// Requests addressed to us are answered (the frame is turned around in place)
// and their sender is learned (Linux creates a STALE entry). Any ARP from an
// address already in the cache updates it (RFC 826's merge flag); replies and
// gratuitous ARP for unknown addresses create nothing (Linux's arp_accept=0).
// announce() sends a gratuitous request for each of our addresses at start;
// an ARP from another host claiming one of them is counted (arpConflicts)
// and answered by a rate-limited defending announcement (RFC 5227 §2.4 (b)).
//
// Every timer is a Timer on the stack's one wheel, allocated once per entry.
import { Timer } from './timers.js';
import { DROP } from './stats.js';
import { ETHERTYPE, ETH_MIN_FRAME, MAC_BROADCAST, macCopy, macEquals, ethSwapMacs, ETH } from './wire/ethernet.js';
import { ARP, ARP_OP, arpCheck, arpEmit, arpOper, arpSpa, arpTpa, arpTurnToReply } from './wire/arp.js';
import type { StackCore } from './iface.js';
import { ip4ToString } from './registration.js';
import { macToString } from './wire/ethernet.js';

export const NUD = { INCOMPLETE: 1, REACHABLE: 2, STALE: 3, DELAY: 4, PROBE: 5, PERMANENT: 6 } as const;
export const NUD_NAMES: Record<number, string> = { 1: 'INCOMPLETE', 2: 'REACHABLE', 3: 'STALE', 4: 'DELAY', 5: 'PROBE', 6: 'PERMANENT' };

export interface ArpOptions {
  /** How long a confirmed entry stays REACHABLE, ms. Linux base_reachable_time: 30 s. */
  reachableMs?: number;
  /** Unused STALE entries are removed after this, ms. Linux gc_stale_time: 60 s. */
  gcStaleMs?: number;
  /** DELAY before probing a used STALE entry, ms. Linux delay_first_probe_time: 5 s. */
  delayFirstProbeMs?: number;
  /** Interval between requests, ms. Linux retrans_time: 1 s. */
  retransMs?: number;
  /** Broadcast requests while INCOMPLETE. Linux mcast_solicit: 3. */
  mcastProbes?: number;
  /** Unicast requests while PROBE. Linux ucast_solicit: 3. */
  ucastProbes?: number;
  /** Packets queued per unresolved address. */
  queueLen?: number;
  /** Cache size bound (Linux gc_thresh3: 1024). */
  maxEntries?: number;
  /** Gratuitous requests sent per address by announce(). */
  announce?: number;
  /** At most one defending announcement per this many ms when another host claims our address. RFC 5227 DEFEND_INTERVAL: 10 s. */
  defendIntervalMs?: number;
}

export class ArpEntry {
  state: number = NUD.INCOMPLETE;
  readonly mac = new Uint8Array(6);
  probes = 0;
  /** Last confirmation time, ms. */
  confirmed = 0;
  /** Last use, ms. */
  used = 0;
  /** Pending frames: (offset, length) pairs in the link's memory, owned by the stack. */
  readonly queue: Int32Array;
  queued = 0;
  readonly timer: Timer;
  constructor(readonly ip: number, queueLen: number, fire: (e: ArpEntry, now: number) => void) {
    this.queue = new Int32Array(queueLen * 2);
    this.timer = new Timer((now) => fire(this, now));
  }
}

export interface ArpEntryInfo { ip: string; mac: string; state: string; queued: number; probes: number }

export class ArpCache {
  private readonly entries = new Map<number, ArpEntry>();
  private readonly o: Required<ArpOptions>;
  private readonly onTimer = (e: ArpEntry, now: number): void => this.expire(e, now);
  private lastDefend = -Infinity;

  constructor(private readonly s: StackCore, opts: ArpOptions = {}) {
    this.o = {
      reachableMs: opts.reachableMs ?? 30_000, gcStaleMs: opts.gcStaleMs ?? 60_000, delayFirstProbeMs: opts.delayFirstProbeMs ?? 5_000,
      retransMs: opts.retransMs ?? 1_000, mcastProbes: opts.mcastProbes ?? 3, ucastProbes: opts.ucastProbes ?? 3,
      queueLen: opts.queueLen ?? 64, maxEntries: opts.maxEntries ?? 1024, announce: opts.announce ?? 1,
      defendIntervalMs: opts.defendIntervalMs ?? 10_000,
    };
  }

  get size(): number { return this.entries.size; }

  /** The entry for ip, if any (for tests and observability). */
  lookup(ip: number): ArpEntry | undefined { return this.entries.get(ip); }

  /** A plain snapshot of the cache. */
  list(): ArpEntryInfo[] {
    return [...this.entries.values()].map((e) => ({ ip: ip4ToString(e.ip), mac: macToString(e.mac), state: NUD_NAMES[e.state]!, queued: e.queued, probes: e.probes }));
  }

  /** Adds a permanent entry (never expires, never probed). */
  addStatic(ip: number, mac: Uint8Array): void {
    let e = this.entries.get(ip);
    if (e === undefined) { e = new ArpEntry(ip, this.o.queueLen, this.onTimer); this.entries.set(ip, e); }
    macCopy(e.mac, 0, mac, 0);
    this.s.timers.cancel(e.timer);
    e.state = NUD.PERMANENT;
    this.flush(e);
  }

  /** Removes ip's entry, dropping (and counting) anything queued for it. */
  delete(ip: number): boolean {
    const e = this.entries.get(ip);
    if (e === undefined) return false;
    this.remove(e, DROP.ARP_FAILED);
    return true;
  }

  /**
   * Upper-layer reachability confirmation (Linux's neigh_confirm / dst_confirm):
   * a transport saw forward progress towards ip, so no probe is needed.
   */
  confirm(ip: number, now: number): void {
    const e = this.entries.get(ip);
    if (e === undefined || e.state === NUD.INCOMPLETE || e.state === NUD.PERMANENT) return;
    this.setReachable(e, now);
  }

  /** Sends the gratuitous ARP requests announcing our addresses (RFC 5227 §3). */
  announce(): void {
    for (let k = 0; k < this.o.announce; k++) for (const a of this.s.addrs) this.sendRequest(a, a, null);
  }

  /**
   * Sends the frame at mem[off, off+len) (link header present except its
   * destination) to next hop ip. Ownership of the frame passes to the ARP
   * layer: it is sent now, queued until resolution, or released and counted.
   */
  output(off: number, len: number, ip: number, now: number): void {
    const s = this.s;
    if (s.isBroadcast(ip)) { macCopy(s.mem, off + ETH.DST, MAC_BROADCAST, 0); s.sendFrame(off, len); return; }
    if (s.isLocal(ip)) { macCopy(s.mem, off + ETH.DST, s.mac, 0); s.loopFrame(off, len); return; }
    let e = this.entries.get(ip);
    if (e === undefined) {
      e = this.create(ip, now);
      if (e === undefined) { s.stats.drop(DROP.ARP_TABLE_FULL); s.releaseFrame(off); return; }
      e.state = NUD.INCOMPLETE;
      e.probes = 1;
      this.sendRequest(s.sourceFor(ip), ip, null);
      s.timers.arm(e.timer, now + this.o.retransMs);
    }
    e.used = now;
    if (e.state === NUD.INCOMPLETE) {
      if (e.queued === this.o.queueLen) { s.stats.drop(DROP.ARP_QUEUE_FULL); s.releaseFrame(off); return; }
      e.queue[2 * e.queued] = off;
      e.queue[2 * e.queued + 1] = len;
      e.queued++;
      return;
    }
    if (e.state === NUD.STALE) {
      e.state = NUD.DELAY;
      s.timers.arm(e.timer, now + this.o.delayFirstProbeMs);
    }
    macCopy(s.mem, off + ETH.DST, e.mac, 0);
    s.sendFrame(off, len);
  }

  /** One received ARP packet at buf[off, off+len) of the current frame (link header at frameOff). */
  input(buf: Uint8Array, frameOff: number, off: number, len: number, now: number): void {
    const s = this.s;
    if (!arpCheck(buf, off, len)) { s.stats.drop(DROP.ARP_MALFORMED); return; }
    const op = arpOper(buf, off);
    const spa = arpSpa(buf, off);
    const tpa = arpTpa(buf, off);
    const forUs = s.isLocal(tpa);
    if (op === ARP_OP.REQUEST) s.stats.arpRequestsReceived++;
    else if (op === ARP_OP.REPLY) s.stats.arpRepliesReceived++;
    else { s.stats.drop(DROP.ARP_MALFORMED); return; }
    // Another host using one of our addresses (RFC 5227 §2.4): count it and
    // defend the address with one announcement per defendIntervalMs.
    if (s.isLocal(spa) && !macEquals(buf, off + ARP.SHA, s.mac, 0)) {
      s.stats.arpConflicts++;
      if (now - this.lastDefend >= this.o.defendIntervalMs) { this.lastDefend = now; this.sendRequest(spa, spa, null); }
    }
    // A sender claiming one of our addresses (or a martian) teaches nothing.
    const learnable = spa !== 0 && !s.isLocal(spa) && !s.isBroadcast(spa);
    let e = learnable ? this.entries.get(spa) : undefined;
    if (e !== undefined && e.state !== NUD.PERMANENT) {
      const changed = !macEquals(e.mac, 0, buf, off + ARP.SHA);
      macCopy(e.mac, 0, buf, off + ARP.SHA);
      if (forUs && op === ARP_OP.REPLY) this.setReachable(e, now);
      else if (e.state === NUD.INCOMPLETE || changed) this.setStale(e, now);
      this.flush(e);
    } else if (e === undefined && learnable && forUs && op === ARP_OP.REQUEST) {
      e = this.create(spa, now);
      if (e !== undefined) { macCopy(e.mac, 0, buf, off + ARP.SHA); this.setStale(e, now); }
    }
    if (!forUs) { s.stats.drop(DROP.ARP_NOT_FOR_US); return; }
    if (op === ARP_OP.REQUEST) {
      // Answer in place: the request frame becomes the reply.
      arpTurnToReply(buf, off, s.mac, 0);
      ethSwapMacs(buf, frameOff);
      macCopy(buf, frameOff + ETH.SRC, s.mac, 0);
      s.stats.arpRepliesSent++;
      // Pad to the Ethernet minimum with zeros: the frame's bytes past the
      // request are whatever the link's memory held before (other
      // connections' data: the Etherleak bug, CVE-2003-0001).
      const len = Math.max(off - frameOff + ARP.LEN, ETH_MIN_FRAME);
      s.mem.fill(0, off + ARP.LEN, frameOff + len);
      s.reuseCurrentFrame(len);
    }
  }

  private create(ip: number, now: number): ArpEntry | undefined {
    if (this.entries.size >= this.o.maxEntries && !this.evictOne()) return undefined;
    const e = new ArpEntry(ip, this.o.queueLen, this.onTimer);
    e.used = now;
    this.entries.set(ip, e);
    return e;
  }

  /** Makes room by removing one STALE entry (Linux's forced GC), oldest use first. */
  private evictOne(): boolean {
    let victim: ArpEntry | undefined;
    for (const e of this.entries.values()) if (e.state === NUD.STALE && (victim === undefined || e.used < victim.used)) victim = e;
    if (victim === undefined) return false;
    this.remove(victim, DROP.ARP_FAILED);
    return true;
  }

  private setReachable(e: ArpEntry, now: number): void {
    e.state = NUD.REACHABLE;
    e.confirmed = now;
    e.probes = 0;
    this.s.timers.arm(e.timer, now + this.o.reachableMs);
  }

  private setStale(e: ArpEntry, now: number): void {
    e.state = NUD.STALE;
    e.probes = 0;
    this.s.timers.arm(e.timer, Math.max(now, e.used) + this.o.gcStaleMs);
  }

  private expire(e: ArpEntry, now: number): void {
    const s = this.s;
    switch (e.state) {
      case NUD.INCOMPLETE:
        if (e.probes < this.o.mcastProbes) {
          e.probes++;
          this.sendRequest(s.sourceFor(e.ip), e.ip, null);
          s.timers.arm(e.timer, now + this.o.retransMs);
        } else {
          this.remove(e, DROP.ARP_FAILED);
        }
        break;
      case NUD.REACHABLE:
        this.setStale(e, now);
        break;
      case NUD.STALE:
        if (now - e.used >= this.o.gcStaleMs) this.remove(e, DROP.ARP_FAILED);
        else s.timers.arm(e.timer, e.used + this.o.gcStaleMs);
        break;
      case NUD.DELAY:
        e.state = NUD.PROBE;
        e.probes = 1;
        this.sendRequest(s.sourceFor(e.ip), e.ip, e.mac);
        s.timers.arm(e.timer, now + this.o.retransMs);
        break;
      case NUD.PROBE:
        if (e.probes < this.o.ucastProbes) {
          e.probes++;
          this.sendRequest(s.sourceFor(e.ip), e.ip, e.mac);
          s.timers.arm(e.timer, now + this.o.retransMs);
        } else {
          this.remove(e, DROP.ARP_FAILED);
        }
        break;
      default:
        break;
    }
  }

  /** Sends queued frames once the address is known. */
  private flush(e: ArpEntry): void {
    const s = this.s;
    for (let i = 0; i < e.queued; i++) {
      const off = e.queue[2 * i]!;
      macCopy(s.mem, off + ETH.DST, e.mac, 0);
      s.sendFrame(off, e.queue[2 * i + 1]!);
    }
    e.queued = 0;
  }

  private remove(e: ArpEntry, reason: number): void {
    const s = this.s;
    for (let i = 0; i < e.queued; i++) {
      s.stats.drop(reason);
      const off = e.queue[2 * i]!;
      // Like Linux's arp_error_report: the sender learns the host is unreachable.
      if (reason === DROP.ARP_FAILED) s.hostUnreachable(off, e.queue[2 * i + 1]!);
      s.releaseFrame(off);
    }
    e.queued = 0;
    s.timers.cancel(e.timer);
    this.entries.delete(e.ip);
  }

  /** Sends a request for tpa from spa: broadcast, or unicast to `unicast` when probing. */
  private sendRequest(spa: number, tpa: number, unicast: Uint8Array | null): void {
    const s = this.s;
    if (spa < 0) return;
    const f = s.takeFrame();
    if (f < 0) { s.stats.drop(DROP.NO_FRAME); return; }
    const h = s.writeL2(f, unicast ?? MAC_BROADCAST, ETHERTYPE.ARP);
    arpEmit(s.mem, f + h, ARP_OP.REQUEST, s.mac, 0, spa, null, 0, tpa);
    s.stats.arpRequestsSent++;
    // Pad to the Ethernet minimum with zeros (never stale memory).
    const len = Math.max(h + ARP.LEN, ETH_MIN_FRAME);
    s.mem.fill(0, f + h + ARP.LEN, f + len);
    s.sendFrame(f, len);
  }

  /** Drops every queued frame and cancels every timer (stack shutdown). */
  clear(): void {
    for (const e of [...this.entries.values()]) this.remove(e, DROP.ARP_FAILED);
  }
}
