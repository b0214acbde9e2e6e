// The interface: one Stack per Link, and the poll loop that drives it
// (smoltcp's iface). Time is an input: poll(now) does all the work that is
// due, pollAt() says when to call next, and nothing inside reads a clock
// (the clock given to the Stack only stamps sends that user code makes
// between polls).
//
// poll(now), batch-first:
//   1. fire due timers (ARP, reassembly, transports' timers) on the one wheel,
//      and expire conntrack entries (bounded per poll) when a table is attached;
//   2. recv() up to maxBurstsPerPoll bursts; each frame goes through
//      Ethernet -> ARP / IPv4 -> ICMP / transports, then back to the link:
//      freed (one free() per burst) or reused in place for a reply. Each
//      burst is bracketed for the transports (burstBegin/burstEnd): TCP
//      ACKs and hands data to the application once per connection per
//      burst, not per segment (Linux's GRO effect);
//   3. frames we sent to our own addresses (the loopback queue) go through
//      the same input path, as Linux's lo would carry them;
//   4. ONE send() of everything queued for transmission (a full tx burst is
//      flushed early, and so is what a full receive burst produced when
//      another burst follows), and unused pre-allocated frames go back.
// Frames owned by the stack between polls: those waiting on ARP, and those
// sent by user code since the last poll (tx queue, loopback queue, the small
// pre-allocated pool): framesHeld() counts them, close() returns them all.
//
// runStack() drives a Stack on the real event loop with one setTimeout for
// the whole stack; Sim (sim.ts) drives stacks on a virtual clock.
import { Burst, type Link } from '../link/types.js';
import { monotonicClock, type Clock } from '../util/clock.js';
import { InvalidArgumentError } from '../util/errors.js';
import { Prng } from '../util/prng.js';
import { ArpCache, type ArpOptions } from './arp.js';
import { Icmp, type IcmpOptions } from './icmp.js';
import { Ipv4, type ConntrackHook, type Ipv4Options } from './ipv4.js';
import { ip4FromString, type TransportDispatcher } from './registration.js';
import { RouteTable, prefixMask } from './route.js';
import { DROP, StackStats } from './stats.js';
import { TimerWheel } from './timers.js';
import { UdpLayer, type RemoteInfo, type UdpSocket } from './udp.js';
import { ICMP_TYPE, ICMP_UNREACH } from './wire/icmp.js';
import { ETH, ETHERTYPE, ethEmit, ethHeaderLen, ethIsBroadcast, ethType, ethVlanId, macEquals } from './wire/ethernet.js';

/** What the layers (arp, ipv4, icmp) use of the Stack. */
export interface StackCore {
  readonly mem: Uint8Array;
  readonly mac: Uint8Array;
  readonly stats: StackStats;
  readonly timers: TimerWheel;
  readonly routes: RouteTable;
  readonly addrs: readonly number[];
  readonly arp: ArpCache;
  /** Link header length of our frames (14, or 18 with a VLAN tag). */
  readonly l2Len: number;
  readonly frameSize: number;
  /** IP MTU of the interface. */
  readonly mtu: number;
  /** The `now` of the current (or last) poll. */
  readonly now: number;
  /** Offset of the frame being processed. */
  readonly currentFrame: number;
  /** True while processing a looped-back frame (our own packet to ourselves). */
  readonly looping: boolean;
  random(): number;
  isLocal(addr: number): boolean;
  isBroadcast(addr: number): boolean;
  sourceFor(dst: number): number;
  /** An empty frame owned by the stack, or -1. */
  takeFrame(): number;
  /** Queues a frame the stack owns for transmission. */
  sendFrame(off: number, len: number): void;
  /** Returns a frame the stack owns to the link. */
  releaseFrame(off: number): void;
  /** Sends the frame being processed (modified in place) with length len. */
  reuseCurrentFrame(len: number): void;
  /** Queues a frame the stack owns for its own input (a packet to one of our addresses). */
  loopFrame(off: number, len: number): void;
  /** Tells the transport that sent the IPv4 packet in frame off that its next hop did not resolve. */
  hostUnreachable(off: number, len: number): void;
  /** Writes our link header (source MAC, tag, type) with destination dst. Returns its length. */
  writeL2(off: number, dst: Uint8Array, type: number): number;
}

export interface StackAddress { addr: string; prefixLen: number }

export interface StackOptions {
  link: Link;
  addrs: readonly StackAddress[];
  /** Default gateway (dotted quad). */
  gateway?: string;
  /** IP MTU. Default: the link's (its L2 MTU minus the link header), capped by its frame size. */
  mtu?: number;
  /** Stamps sends made by user code between polls. Default: the monotonic clock. */
  clock?: Clock;
  /** 802.1Q VLAN id to send and accept; untagged by default. */
  vlan?: number;
  /** Frames per recv(). Default 64. */
  burst?: number;
  /** recv() calls per poll at most (the rest waits for the next poll). Default 4. */
  maxBurstsPerPoll?: number;
  /** Seeds the stack's PRNG (IP ids, ephemeral ports). */
  seed?: number;
  /** Send gratuitous ARP at the first poll. Default true. */
  announce?: boolean;
  /** The timer wheel to use (shared with transports); one is made otherwise. */
  timers?: TimerWheel;
  arp?: ArpOptions;
  ipv4?: Ipv4Options;
  icmp?: IcmpOptions;
  /** Connection tracking for every datagram in and out; its expiry is driven by poll(). */
  conntrack?: ConntrackHook;
  /** Conntrack entries expired per poll at most. Default 1024. */
  conntrackExpireBudget?: number;
}

export class Stack implements StackCore {
  readonly link: Link;
  readonly mem: Uint8Array;
  readonly mac: Uint8Array;
  readonly stats = new StackStats();
  readonly timers: TimerWheel;
  readonly routes = new RouteTable();
  readonly addrs: number[] = [];
  readonly prefixLens: number[] = [];
  readonly arp: ArpCache;
  readonly ipv4: Ipv4;
  readonly icmp: Icmp;
  readonly udp: UdpLayer;
  readonly clock: Clock;
  readonly l2Len: number;
  readonly vlan: number;
  readonly frameSize: number;
  readonly mtu: number;
  now = 0;
  currentFrame = -1;
  /** Called when work was queued outside poll() (a driver schedules a poll). */
  onWork: (() => void) | null = null;

  private readonly rng: Prng;
  private readonly rx: Burst;
  private readonly tx: Burst;
  private readonly freeB: Burst;
  private readonly pool: Burst;
  /** Frames to our own addresses, processed as received by the next poll. */
  private loop: Burst;
  private loopNext: Burst;
  looping = false;
  private readonly maxBursts: number;
  private readonly ctExpireBudget: number;
  private readonly bcasts: number[] = [];
  private consumed = false;
  private inPoll = false;
  private started = false;
  private more = false;
  private readonly announceAtStart: boolean;
  private closed = false;
  /** True after close(). */
  get isClosed(): boolean { return this.closed; }

  constructor(opts: StackOptions) {
    const link = opts.link;
    this.link = link;
    this.mem = link.mem;
    this.mac = link.mac;
    this.stats.label = link.name;
    this.clock = opts.clock ?? monotonicClock;
    this.timers = opts.timers ?? new TimerWheel();
    this.vlan = opts.vlan ?? -1;
    if (this.vlan !== -1 && !(Number.isInteger(this.vlan) && this.vlan >= 0 && this.vlan < 4095)) throw new InvalidArgumentError('vlan must be 0..4094');
    this.l2Len = this.vlan >= 0 ? ETH.HLEN + ETH.TAG_LEN : ETH.HLEN;
    this.frameSize = link.frameSize;
    const linkMtu = Math.min(link.mtu, link.frameSize) - this.l2Len;
    this.mtu = Math.min(opts.mtu ?? linkMtu, linkMtu);
    if (!(this.mtu >= 68)) throw new InvalidArgumentError(`IPv4 needs an MTU of at least 68 (got ${this.mtu})`);
    this.rng = new Prng(opts.seed ?? ((Date.now() ^ (process.pid << 16)) >>> 0));
    const burst = opts.burst ?? 64;
    this.rx = new Burst(burst);
    this.freeB = new Burst(burst);
    this.tx = new Burst(Math.max(256, burst * 4));
    this.pool = new Burst(32);
    this.loop = new Burst(256);
    this.loopNext = new Burst(256);
    this.maxBursts = opts.maxBurstsPerPoll ?? 4;
    this.ctExpireBudget = opts.conntrackExpireBudget ?? 1024;
    this.announceAtStart = opts.announce ?? true;
    if (opts.addrs.length === 0) throw new InvalidArgumentError('a stack needs at least one address');
    for (const a of opts.addrs) this.addAddress(a.addr, a.prefixLen);
    if (opts.gateway !== undefined) this.setGateway(opts.gateway);
    this.arp = new ArpCache(this, opts.arp);
    this.ipv4 = new Ipv4(this, opts.ipv4);
    this.icmp = new Icmp(this, this.ipv4, opts.icmp);
    this.ipv4.icmp = this.icmp;
    this.ipv4.conntrack = opts.conntrack ?? null;
    this.udp = new UdpLayer(this);
    this.ipv4.attach(this.udp);
  }

  // ---- configuration ----

  addAddress(addr: string, prefixLen: number): void {
    const a = ip4FromString(addr);
    if (a < 0 || !(Number.isInteger(prefixLen) && prefixLen >= 0 && prefixLen <= 32)) throw new InvalidArgumentError(`bad address ${addr}/${prefixLen}`);
    if (this.addrs.includes(a)) return;
    this.addrs.push(a);
    this.prefixLens.push(prefixLen);
    const mask = prefixMask(prefixLen);
    if (prefixLen <= 30) this.bcasts.push((a | ~mask) >>> 0);
    this.routes.add({ prefix: a, prefixLen, src: a });
  }

  setGateway(gw: string, metric = 0): void {
    const g = ip4FromString(gw);
    if (g < 0) throw new InvalidArgumentError(`bad gateway ${gw}`);
    if (this.routes.lookup(g) < 0) throw new InvalidArgumentError(`gateway ${gw} is not on a connected network`);
    this.routes.add({ prefix: 0, prefixLen: 0, gateway: g, src: this.routes.src, metric });
  }

  /** Registers a transport (TCP …) with the IPv4 layer. */
  attach(t: TransportDispatcher): void { this.ipv4.attach(t); }

  /** The NetworkWriter transports write through. */
  get network(): Ipv4 { return this.ipv4; }

  /** A UDP socket, like dgram.createSocket('udp4', onMessage). */
  createUdpSocket(onMessage?: (msg: Buffer, rinfo: RemoteInfo) => void): UdpSocket {
    const s = this.udp.createSocket();
    if (onMessage) s.on('message', onMessage);
    return s;
  }

  /** Sends an ICMP echo request (ping). Replies arrive through icmp.onEchoReply. */
  ping(dst: string, id: number, seq: number, payload: Uint8Array, now = this.clock.now()): boolean {
    const d = ip4FromString(dst);
    if (d < 0) throw new InvalidArgumentError(`bad address ${dst}`);
    const ok = this.icmp.sendEcho(d, id, seq, payload, now);
    this.kick();
    return ok;
  }

  // ---- StackCore ----

  random(): number { return this.rng.u32(); }

  isLocal(addr: number): boolean {
    const a = this.addrs;
    for (let i = 0; i < a.length; i++) if (a[i] === addr) return true;
    return false;
  }

  isBroadcast(addr: number): boolean {
    if (addr === 0xffffffff) return true;
    const b = this.bcasts;
    for (let i = 0; i < b.length; i++) if (b[i] === addr) return true;
    return false;
  }

  sourceFor(dst: number): number { return this.routes.lookup(dst) < 0 ? -1 : this.routes.src; }

  takeFrame(): number {
    const p = this.pool;
    if (p.count === 0 && this.link.alloc(p, p.capacity) === 0) return -1;
    p.count--;
    return p.off(p.count);
  }

  sendFrame(off: number, len: number): void {
    if (this.tx.count === this.tx.capacity) this.flushTx();
    this.tx.push(off, len);
    this.stats.txFrames++;
    this.stats.txBytes += len;
    if (!this.inPoll) this.kick();
  }

  releaseFrame(off: number): void {
    this.freeB.push(off, 0);
    if (this.freeB.count === this.freeB.capacity || !this.inPoll) this.link.free(this.freeB);
  }

  reuseCurrentFrame(len: number): void {
    this.consumed = true;
    // A reply to a looped frame goes back to ourselves.
    if (this.looping) this.loopFrame(this.currentFrame, len);
    else this.sendFrame(this.currentFrame, len);
  }

  loopFrame(off: number, len: number): void {
    if (!this.loopNext.push(off, len)) { this.stats.drop(DROP.LOOPBACK_FULL); this.releaseFrame(off); return; }
    this.stats.loopedFrames++;
    if (!this.inPoll) this.kick();
  }

  hostUnreachable(off: number, len: number): void {
    this.ipv4.localError(this.mem, off + this.l2Len, len - this.l2Len, ICMP_TYPE.DEST_UNREACHABLE, ICMP_UNREACH.HOST, this.now);
  }

  writeL2(off: number, dst: Uint8Array, type: number): number {
    return ethEmit(this.mem, off, dst, 0, this.mac, 0, type, this.vlan);
  }

  // ---- the poll loop ----

  /** Asks the driver for a poll soon (work was queued between polls). */
  kick(): void { if (!this.inPoll && this.onWork !== null) this.onWork(); }

  /**
   * Does everything due at `now`. Returns the number of frames received.
   * An exception from a user callback (a 'message' listener …) propagates,
   * but only after every frame of the burst has gone back to the link.
   */
  poll(now: number): number {
    if (this.closed) return 0;
    this.now = now;
    this.inPoll = true;
    this.stats.polls++;
    let received = 0;
    const rx = this.rx;
    let i = 0;
    let inInput = false;
    try {
      if (!this.started) {
        this.started = true;
        if (this.announceAtStart) this.arp.announce();
      }
      this.more = false;
      this.timers.advance(now);
      const ct = this.ipv4.conntrack;
      if (ct !== null && ct.expire !== undefined) {
        // A bounded budget keeps a mass expiry from stalling the packet path.
        if (ct.expire(now, this.ctExpireBudget) === this.ctExpireBudget) this.more = true;
      }
      for (let round = 0; round < this.maxBursts; round++) {
        const n = this.link.recv(rx);
        if (n === 0) break;
        received += n;
        this.ipv4.burstBegin();
        for (i = 0; i < rx.count; i++) {
          const off = rx.off(i);
          const len = rx.len(i);
          this.currentFrame = off;
          this.consumed = false;
          this.stats.rxFrames++;
          this.stats.rxBytes += len;
          inInput = true;
          this.input(off, len, now);
          inInput = false;
          if (!this.consumed) this.release(off);
        }
        rx.clear();
        this.currentFrame = -1;
        this.ipv4.burstEnd(now);
        if (n < rx.capacity) break;
        // More bursts follow: the ACKs of this one leave now, not after them
        // (a window-limited sender waits on them; Linux's NAPI sends them
        // as each poll's batch is processed).
        this.flushTx();
        if (round === this.maxBursts - 1) this.more = true;
      }
      if (this.loopNext.count > 0) this.runLoop(now);
    } finally {
      if (rx.count > 0) {
        // Thrown out of the middle of a burst: hand back what is still ours.
        if (inInput && !this.consumed) this.release(rx.off(i));
        for (let j = i + 1; j < rx.count; j++) this.release(rx.off(j));
        rx.clear();
        this.currentFrame = -1;
      }
      // Unwinding from an exception: deferred transport work waits for the next poll.
      this.ipv4.burstEnd(now, true);
      this.flushTx();
      if (this.freeB.count > 0) this.link.free(this.freeB);
      if (this.pool.count > 0) this.link.free(this.pool);
      this.inPoll = false;
    }
    return received;
  }

  /** Returns a received frame to the link (batched: one free() per burst). */
  private release(off: number): void {
    this.freeB.push(off, 0);
    if (this.freeB.count === this.freeB.capacity) this.link.free(this.freeB);
  }

  /** Processes the frames looped back before this poll; replies to them are looped for the next. */
  private runLoop(now: number): void {
    const l = this.loopNext;
    this.loopNext = this.loop;
    this.loop = l;
    this.looping = true;
    let i = 0;
    let inInput = false;
    this.ipv4.burstBegin();
    try {
      for (i = 0; i < l.count; i++) {
        const off = l.off(i);
        this.currentFrame = off;
        this.consumed = false;
        inInput = true;
        this.input(off, l.len(i), now);
        inInput = false;
        if (!this.consumed) this.release(off);
      }
      this.ipv4.burstEnd(now);
    } finally {
      this.ipv4.burstEnd(now, true);
      if (i < l.count) {
        if (inInput && !this.consumed) this.release(l.off(i));
        for (let j = i + 1; j < l.count; j++) this.release(l.off(j));
      }
      this.looping = false;
      this.currentFrame = -1;
      l.clear();
    }
  }

  private flushTx(): void {
    const n = this.tx.count;
    if (n === 0) return;
    const queued = this.link.send(this.tx);
    for (let k = queued; k < n; k++) this.stats.drop(DROP.TX_RING_FULL);
  }

  /** One received frame: Ethernet demux. */
  private input(off: number, len: number, now: number): void {
    const m = this.mem;
    const h = ethHeaderLen(m, off, len);
    if (h < 0) { this.stats.drop(DROP.ETH_SHORT); return; }
    const bcast = ethIsBroadcast(m, off);
    if (!bcast && !macEquals(m, off + ETH.DST, this.mac, 0)) { this.stats.drop(DROP.ETH_NOT_FOR_US); return; }
    if (ethVlanId(m, off, h) !== this.vlan || h > this.l2Len) { this.stats.drop(DROP.ETH_VLAN); return; }
    const type = ethType(m, off, h);
    if (type === ETHERTYPE.IPV4) this.ipv4.input(m, off + h, len - h, bcast, now);
    else if (type === ETHERTYPE.ARP) this.arp.input(m, off, off + h, len - h, now);
    else if (type === ETHERTYPE.IPV6) this.stats.drop(DROP.IPV6_UNSUPPORTED);
    else this.stats.drop(DROP.ETH_UNKNOWN_TYPE);
  }

  /**
   * When poll() should run next: `now` of the last poll when work is waiting
   * (frames to send, a receive burst cut short), else the earliest timer,
   * else undefined (wait for the link).
   */
  pollAt(): number | undefined {
    if (this.closed) return undefined;
    if (this.tx.count > 0 || this.more || this.loopNext.count > 0) return this.now;
    const t = this.timers.nextExpiry();
    const ct = this.ipv4.conntrack;
    const c = ct !== null && ct.nextExpiry !== undefined ? ct.nextExpiry() : undefined;
    if (c === undefined) return t;
    return t === undefined || c < t ? c : t;
  }

  /** Frames the stack holds between polls (waiting on ARP or in the pool): for leak checks. */
  framesHeld(): number {
    let n = this.pool.count + this.tx.count + this.loopNext.count;
    for (const e of this.arp.list()) n += e.queued;
    return n;
  }

  /** Drops queued frames and in-progress reassembly, returns every frame to the link. The link itself stays open. */
  close(): void {
    if (this.closed) return;
    this.arp.clear();
    this.ipv4.reasm.clear();
    if (this.tx.count > 0) this.link.free(this.tx);
    if (this.loopNext.count > 0) this.link.free(this.loopNext);
    if (this.pool.count > 0) this.link.free(this.pool);
    if (this.freeB.count > 0) this.link.free(this.freeB);
    this.closed = true;
    this.onWork = null;
  }
}

export interface StackDriver {
  /** Stops driving (the stack and link stay usable). */
  stop(): void;
}

/**
 * Runs a Stack on the event loop: the link's ready handler and work queued by
 * user code trigger poll(clock.now()), and ONE setTimeout (re-armed only when
 * the deadline moves earlier) covers pollAt().
 */
export function runStack(stack: Stack, clock: Clock = stack.clock): StackDriver {
  let timer: NodeJS.Timeout | null = null;
  let deadline = Infinity;
  let immediate: NodeJS.Immediate | null = null;
  let stopped = false;
  const pollNow = (): void => {
    if (stopped) return;
    stack.poll(clock.now());
    schedule();
  };
  const onTimer = (): void => { timer = null; deadline = Infinity; pollNow(); };
  const onImmediate = (): void => { immediate = null; pollNow(); };
  const soon = (): void => { if (immediate === null && !stopped) immediate = setImmediate(onImmediate); };
  const schedule = (): void => {
    const at = stack.pollAt();
    if (at === undefined) return;
    const delay = at - clock.now();
    if (delay <= 0) { soon(); return; }
    if (at >= deadline) return;
    if (timer !== null) clearTimeout(timer);
    deadline = at;
    timer = setTimeout(onTimer, Math.ceil(delay));
  };
  stack.link.setReadyHandler(pollNow);
  stack.onWork = soon;
  soon();
  return {
    stop(): void {
      stopped = true;
      stack.link.setReadyHandler(null);
      stack.onWork = null;
      if (timer !== null) clearTimeout(timer);
      if (immediate !== null) clearImmediate(immediate);
      timer = null; immediate = null;
    },
  };
}
