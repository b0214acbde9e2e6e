// The TCP endpoint table: protocol 6 for the network layer (a
// TransportDispatcher), demultiplexing segments to connections and
// listeners, and everything that lives outside one connection:
//   - validation (length, checksum, options), each drop counted by reason;
//   - resets for segments to closed ports (RFC 9293 §3.10.7.1);
//   - listeners with SYN and accept queues, and SYN cookies (Linux's
//     syncookies.c encoding: MSS index + minute counter in the ISN, window
//     scale and SACK in the low 6 bits of TSval);
//   - ISNs per RFC 6528: ISN = M + F(4-tuple, secret), M a 4 µs clock taken
//     from `now`, F a keyed hash (HalfSipHash) with a key chosen at construction;
//   - TIME-WAIT reuse like Linux: a SYN with a newer timestamp (or, without
//     timestamps, a higher sequence number) reopens the 4-tuple (RFC 6191);
//   - RFC 5961 §7 rate limits on answers to invalid segments: one per
//     invalidRateLimitMs per connection (Linux tcp_invalid_ratelimit) and a
//     stack-wide per-second budget (Linux tcp_challenge_ack_limit), drawn at
//     random each second so it cannot serve as a side channel
//     (CVE-2016-5696); resets to closed ports have a budget of their own;
//   - no TCP to or from broadcast or multicast addresses (RFC 1122 §4.2.3.10);
//   - one timer wheel for every connection timer.
// Time is an input: deliver(…, now), poll(now), pollAt().
import { randomFillSync } from 'node:crypto';
import diagnostics_channel from 'node:diagnostics_channel';
import type { NetworkWriter, TransportDispatcher } from '../registration.js';
import { Timer, TimerWheel } from '../timers.js';
import type { Clock } from '../../util/clock.js';
import type { Stack } from '../iface.js';
import { finish, pseudo4, sum16 } from '../wire/checksum.js';
import {
  FLAG, TCP, TcpOptions, TcpOptionsOut, parseTcpOptions, tcpAck, tcpDstPort, tcpFlags, tcpHeaderLen, tcpHeaderOk,
  tcpOptionsLen, tcpSeq, tcpSrcPort, tcpUrgent, tcpWindow, wr16, writeTcpHeader, writeTcpOptions, rd16, rd32,
} from '../wire/tcp.js';
import { Prng } from '../../util/prng.js';
import { InvalidArgumentError } from '../../util/errors.js';
import { Segment, TcpConnection, type TcpHandler, type TcpState } from './connection.js';
import { TcpListener } from './listener.js';
import { hsiphash4 } from './hash.js';
import { makeCongestionControl, type CongestionControl, type CongestionControlName } from './congestion/index.js';
import { seqAdd, seqGt, seqGe, seqLe } from './seq.js';
import { TcpError } from './errors.js';
import { SecondBudget, TCP_LIMITED, type TcpLimitedReason } from './limited.js';

export { TCP_LIMITED, type TcpLimitedReason };

export interface TcpConfig {
  /** Send buffer per connection, bytes. */
  sendBuffer: number;
  /** Receive buffer per connection, bytes (the largest window advertised). */
  recvBuffer: number;
  /** Upper bound on the MSS we announce (the path MTU bounds it too). */
  mss: number;
  /** RTO bounds, ms. rtoMin is 200 ms like Linux by default (RFC 6298 says 1 s; set 1000 to follow it). */
  rtoMin: number;
  rtoMax: number;
  rtoInitial: number;
  /** Data retransmissions before the connection is aborted with ETIMEDOUT (Linux tcp_retries2 = 15). */
  maxRetries: number;
  synRetries: number;
  synAckRetries: number;
  /** TIME-WAIT duration, ms: 2·MSL. Linux uses 60 s. */
  timeWaitMs: number;
  /** How long an orphaned connection may sit in FIN-WAIT-2, ms (Linux tcp_fin_timeout). */
  finWait2Timeout: number;
  /** Delayed-ACK timeout, ms (RFC 1122: at most 500; Linux 40). */
  delayedAckMs: number;
  dupThresh: number;
  noDelay: boolean;
  keepAlive: boolean;
  keepAliveIdle: number;
  keepAliveInterval: number;
  keepAliveCount: number;
  windowScaling: boolean;
  sack: boolean;
  timestamps: boolean;
  congestionControl: CongestionControlName;
  initialCwndSegments: number;
  /** SYN-queue bound per listener, and whether SYN cookies take over when it is full. */
  synBacklog: number;
  synCookies: boolean;
  /**
   * Answers to invalid segments (challenge ACKs, ACKs to out-of-window or
   * PAWS-failed segments) allowed per second, stack-wide (RFC 5961 §7,
   * Linux tcp_challenge_ack_limit). Each second's budget is drawn at random
   * from [limit/2, limit*1.5) as Linux does, so an off-path attacker cannot
   * count it (CVE-2016-5696).
   */
  challengeAckLimit: number;
  /**
   * Least time between two answers to invalid segments on one connection, ms
   * (Linux tcp_invalid_ratelimit, 500). Covers out-of-window and PAWS ACKs,
   * challenge ACKs, SYN-ACK retransmissions for repeated SYNs and resets a
   * connection sends in reply. Segments carrying data or FIN (and no SYN) are
   * answered regardless, as Linux does: they are not an ACK loop. 0 disables.
   */
  invalidRateLimitMs: number;
  /**
   * Resets per second, stack-wide, in answer to segments for no connection
   * (closed ports, bad cookies); randomised like challengeAckLimit. Default
   * 1000 (FreeBSD limits them with icmplim, 200).
   */
  rstLimit: number;
  ephemeralLow: number;
  ephemeralHigh: number;
}

export const DEFAULT_TCP_CONFIG: Readonly<TcpConfig> = Object.freeze({
  sendBuffer: 256 * 1024,
  // 1 MiB: at 256 KiB a Linux sender to the stack on AF_XDP was receive-window
  // limited ~45% of a bulk transfer (ss -tin rwnd_limited); the buffer grows
  // from 4 KiB only as unread data needs it (ByteRing), so idle connections
  // do not pay for it. Linux autotunes up to tcp_rmem's 6 MiB.
  recvBuffer: 1024 * 1024,
  mss: 65495,
  rtoMin: 200,
  rtoMax: 120_000,
  rtoInitial: 1000,
  maxRetries: 15,
  synRetries: 6,
  synAckRetries: 5,
  timeWaitMs: 60_000,
  finWait2Timeout: 60_000,
  delayedAckMs: 40,
  dupThresh: 3,
  noDelay: false,
  keepAlive: false,
  keepAliveIdle: 7_200_000,
  keepAliveInterval: 75_000,
  keepAliveCount: 9,
  windowScaling: true,
  sack: true,
  timestamps: true,
  congestionControl: 'cubic',
  initialCwndSegments: 10,
  synBacklog: 256,
  synCookies: true,
  challengeAckLimit: 1000,
  invalidRateLimitMs: 500,
  rstLimit: 1000,
  ephemeralLow: 32768,
  ephemeralHigh: 60999,
});

/** Drop reasons with stable numbers (the index into TcpCounters.drops). */
export const TCP_DROP = {
  MALFORMED: 0,
  BAD_CHECKSUM: 1,
  BAD_OPTIONS: 2,
  NO_SOCKET: 3,
  OUT_OF_WINDOW: 4,
  PAWS: 5,
  BAD_ACK: 6,
  ACCEPT_QUEUE_FULL: 7,
  SYN_QUEUE_FULL: 8,
  COOKIE_INVALID: 9,
  RST_NOT_EXACT: 10,
  RST_IGNORED: 11,
  SYN_IN_WINDOW: 12,
  NO_ACK: 13,
  NO_SYN: 14,
  DUPLICATE: 15,
  OOO_QUEUE_FULL: 16,
  DATA_AFTER_FIN: 17,
  BAD_ADDRESS: 18,
  LISTEN_NOT_SYN: 19,
  /** To a broadcast or multicast destination (IP or link level), RFC 1122 §4.2.3.10. */
  NOT_UNICAST: 20,
} as const;
export type TcpDropReason = keyof typeof TCP_DROP;
const DROP_NAMES = Object.keys(TCP_DROP) as TcpDropReason[];
const LIMITED_NAMES = Object.keys(TCP_LIMITED) as TcpLimitedReason[];

export class TcpCounters {
  segsIn = 0;
  segsOut = 0;
  retransSegs = 0;
  rstsSent = 0;
  activeOpens = 0;
  passiveOpens = 0;
  currEstab = 0;
  estabResets = 0;
  attemptFails = 0;
  cookiesSent = 0;
  cookiesValidated = 0;
  cookiesFailed = 0;
  challengeAcks = 0;
  challengeAcksLimited = 0;
  keepAlivesSent = 0;
  zeroWindowAdvertised = 0;
  timeWaitReused = 0;
  txNoFrame = 0;
  /** Acceptable segments with URG taken by the sixth step of §3.10.7.4 (RFC 9293 §3.8.5). */
  urgSegsIn = 0;
  /** Segments sent with URG (urgent mode, including retransmissions and probes). */
  urgSegsOut = 0;
  connections = 0;
  /** Answers to invalid segments suppressed by a connection's limit (invalidRateLimitMs). */
  limitedPerConnection = 0;
  /** … and by a stack-wide budget (challengeAckLimit, rstLimit). */
  limitedPerStack = 0;
  /** Dropped segments by reason (index = TCP_DROP value). */
  readonly drops = new Float64Array(DROP_NAMES.length);
  /** Suppressed answers by reason (index = TCP_LIMITED value). */
  readonly limited = new Float64Array(LIMITED_NAMES.length);
  drop(reason: TcpDropReason): number { return this.drops[TCP_DROP[reason]]!; }
  limitedOf(reason: TcpLimitedReason): number { return this.limited[TCP_LIMITED[reason]]!; }
  /** Non-zero suppressed-answer counters by name. */
  limitedByReason(): Record<string, number> {
    const r: Record<string, number> = {};
    for (let i = 0; i < LIMITED_NAMES.length; i++) if (this.limited[i]! > 0) r[LIMITED_NAMES[i]!] = this.limited[i]!;
    return r;
  }
  /** Non-zero drop counters by name. */
  dropsByReason(): Record<string, number> {
    const r: Record<string, number> = {};
    for (let i = 0; i < DROP_NAMES.length; i++) if (this.drops[i]! > 0) r[DROP_NAMES[i]!] = this.drops[i]!;
    return r;
  }
}

export interface TcpOptionsInit {
  config?: Partial<TcpConfig>;
  /**
   * Stamps calls the application makes between polls (connect, write, close)
   * — the Stack's clock. Without it they use the time of the last deliver/poll.
   */
  clock?: Clock;
  /** The stack's timer wheel; one is made when absent (then poll() advances it). */
  timers?: TimerWheel;
  /** Seed for ISN/cookie keys and ephemeral ports (deterministic simulations); crypto-random when absent. */
  seed?: number;
  /**
   * Makes the congestion controller for each new connection: plug in your
   * own algorithm here. Default: config.congestionControl ('newreno' | 'cubic').
   */
  congestionControl?: (cfg: TcpConfig) => CongestionControl;
}

export interface ConnectOptions {
  localAddr?: number;
  localPort?: number;
  handler?: TcpHandler;
  config?: Partial<TcpConfig>;
}

/** Rejects configurations that break an RFC MUST or cannot work. */
export function validateConfig(c: TcpConfig): void {
  const bad = (m: string): never => { throw new InvalidArgumentError(`tcp config: ${m}`); };
  for (const k of ['sendBuffer', 'recvBuffer', 'mss', 'rtoMin', 'rtoMax', 'rtoInitial', 'timeWaitMs', 'delayedAckMs', 'dupThresh',
    'keepAliveIdle', 'keepAliveInterval', 'keepAliveCount', 'synBacklog', 'initialCwndSegments', 'challengeAckLimit', 'rstLimit'] as const) {
    if (!(Number.isFinite(c[k]) && c[k] > 0)) bad(`${k} must be a positive number`);
  }
  if (!(Number.isFinite(c.invalidRateLimitMs) && c.invalidRateLimitMs >= 0)) bad('invalidRateLimitMs must be a number >= 0');
  if (c.recvBuffer > (65535 << 14)) bad('recvBuffer exceeds what window scaling can advertise (2^30)');
  if (c.sendBuffer < 1024 || c.recvBuffer < 1024) bad('buffers must be at least 1024 bytes');
  if (c.delayedAckMs > 500) bad('delayedAckMs must be at most 500 (RFC 1122 §4.2.3.2)');
  if (c.rtoMin > c.rtoMax || c.rtoInitial > c.rtoMax) bad('rtoMin and rtoInitial must not exceed rtoMax');
  if (c.mss < 64) bad('mss must be at least 64');
  if (!(c.ephemeralLow >= 1 && c.ephemeralHigh <= 65535 && c.ephemeralLow <= c.ephemeralHigh)) bad('bad ephemeral port range');
  if (c.congestionControl !== 'newreno' && c.congestionControl !== 'cubic') bad(`unknown congestion control ${String(c.congestionControl)}`);
}

/**
 * State transitions are published here ({ conn, from, to, now }) — built
 * only when someone subscribes, so tracing costs nothing when off.
 */
export const tcpStateChannel = diagnostics_channel.channel('strata:tcp:state');

const COOKIE_MSS = [536, 1300, 1440, 1460] as const; // Linux msstab
const COOKIE_PERIOD_MS = 64_000; // Linux: the counter ticks every 64 s
const COOKIE_MAX_AGE = 2;
const TS_OPT_MASK = 0x3f;

export class Tcp implements TransportDispatcher {
  readonly protocol = 6;
  readonly timers: TimerWheel;
  readonly config: TcpConfig;
  readonly counters = new TcpCounters();
  /** Time of the latest deliver()/poll(), for application calls that carry no time. */
  lastNow = 0;
  /** Called when connections have work that only a poll() will do (the driver schedules one). */
  onWork: (() => void) | null = null;
  private readonly ownsTimers: boolean;
  private readonly listeners = new Map<number, TcpListener[]>();
  private dirtyList: TcpConnection[] = [];
  private spare: TcpConnection[] = [];
  /** Between deliverBegin() and deliverEnd(): connections whose ACK and hand-off wait for the burst's end. */
  private batching = false;
  private readonly batch: TcpConnection[] = [];
  private readonly seg = new Segment();
  private readonly opts = new TcpOptions();
  private readonly outOpts = new TcpOptionsOut();
  private readonly k0: number;
  private readonly k1: number;
  private readonly c0: number;
  private readonly c1: number;
  private readonly prng: Prng;
  private readonly invalidBudget: SecondBudget;
  private readonly rstBudget: SecondBudget;
  private readonly clock: Clock | null;
  private readonly makeCc: (cfg: TcpConfig) => CongestionControl;
  /**
   * Work queued by the application between polls (writes, reads, closes) is
   * flushed by this timer, armed "now" on the shared wheel: the Stack's
   * pollAt() then asks for an immediate poll, and the segments leave inside
   * it, batched with everything else.
   */
  private readonly flushTimer: Timer;

  constructor(readonly writer: NetworkWriter, init: TcpOptionsInit = {}) {
    this.config = { ...DEFAULT_TCP_CONFIG, ...init.config };
    validateConfig(this.config);
    this.ownsTimers = init.timers === undefined;
    this.clock = init.clock ?? null;
    this.makeCc = init.congestionControl ?? ((cfg) => makeCongestionControl(cfg.congestionControl, cfg.initialCwndSegments));
    this.flushTimer = new Timer((now) => this.flush(now));
    this.timers = init.timers ?? new TimerWheel();
    const key = new Uint32Array(5);
    if (init.seed !== undefined) {
      const p = new Prng(init.seed);
      for (let i = 0; i < 5; i++) key[i] = p.u32();
    } else {
      randomFillSync(key);
    }
    this.k0 = key[0]!; this.k1 = key[1]!; this.c0 = key[2]!; this.c1 = key[3]!;
    this.prng = new Prng(key[4]!);
    const limits = new Prng((key[4]! ^ 0x9e3779b9) >>> 0);
    this.invalidBudget = new SecondBudget(this.config.challengeAckLimit, limits);
    this.rstBudget = new SecondBudget(this.config.rstLimit, limits);
    this.seg.opts = this.opts;
  }

  // =====================================================================
  // TransportDispatcher
  // =====================================================================

  deliver(src: number, dst: number, buf: Uint8Array, off: number, len: number, now: number): void {
    this.lastNow = now;
    const c = this.counters;
    c.segsIn++;
    if (!tcpHeaderOk(buf, off, len)) { this.drop('MALFORMED'); return; }
    if (finish(sum16(buf, off, len, pseudo4(src, dst, 6, len))) !== 0) { this.drop('BAD_CHECKSUM'); return; }
    if (!parseTcpOptions(buf, off, this.opts)) { this.drop('BAD_OPTIONS'); return; }
    // RFC 1122 §4.2.3.10: no segments from broadcast or multicast sources.
    if (src === 0 || src >>> 28 === 0xe || src === 0xffffffff) { this.drop('BAD_ADDRESS'); return; }
    // Nor to them: TCP is unicast. A SYN to a broadcast address must not
    // open a connection (nor draw a SYN-ACK, or every host would answer).
    if (dst === 0 || dst >>> 28 === 0xe || dst === 0xffffffff || this.writer.curBroadcast === true) { this.drop('NOT_UNICAST'); return; }
    const hl = tcpHeaderLen(buf, off);
    const seg = this.seg;
    seg.seq = tcpSeq(buf, off);
    seg.ack = tcpAck(buf, off);
    seg.flags = tcpFlags(buf, off);
    seg.wnd = tcpWindow(buf, off);
    seg.up = tcpUrgent(buf, off);
    seg.buf = buf;
    seg.dataOff = off + hl;
    seg.dataLen = len - hl;
    const sport = tcpSrcPort(buf, off);
    const dport = tcpDstPort(buf, off);
    let conn = this.lookup(dst, dport, src, sport);
    let iss = -1;
    if (conn !== null && conn.state === 'TIME-WAIT' && (seg.flags & (FLAG.SYN | FLAG.ACK | FLAG.RST)) === FLAG.SYN) {
      // TIME-WAIT reuse (RFC 6191 with timestamps, RFC 1122 §4.2.2.13 without),
      // as Linux's tcp_timewait_state_process: the new incarnation's ISN
      // starts beyond anything the old one used.
      const o = this.opts;
      const newer = conn.tsOk && o.hasTimestamps ? seqGt(o.tsVal, conn.tsRecent) : seqGt(seg.seq, conn.rcvNxt);
      if (newer && this.findListener(dst, dport) !== null) {
        iss = seqAdd(conn.sndNxt, 65535 + 2);
        conn.setState('CLOSED', now);
        this.counters.timeWaitReused++;
        conn = null;
      }
    }
    if (conn !== null) {
      const hadOutOfOrder = conn.hasOutOfOrder;
      conn.process(seg, now);
      // In a burst, in-order input waits for the burst's end: one ACK and one
      // hand-off to the application per connection per burst, as Linux gets
      // from GRO. With out-of-order data queued every segment is answered at
      // once (duplicate ACKs with SACK, RFC 5681 §4.2), so loss recovery on
      // the peer sees what it would without batching; so does the segment
      // that fills the last hole (its ACK is due at once too).
      if (this.batching && !hadOutOfOrder && !conn.hasOutOfOrder && conn.state !== 'CLOSED') {
        if (!conn.inputPending) { conn.inputPending = true; this.batch.push(conn); }
      } else {
        this.afterInput(conn, now);
      }
      return;
    }
    const l = this.findListener(dst, dport);
    if (l !== null) { this.listenInput(l, src, dst, sport, dport, seg, iss, now); return; }
    this.drop('NO_SOCKET');
    this.sendReset(dst, dport, src, sport, seg, now);
  }

  deliverBegin(): void { this.batching = true; }

  deliverEnd(now: number, defer: boolean): void {
    this.batching = false;
    const b = this.batch;
    if (b.length === 0) return;
    this.lastNow = now;
    let i = 0;
    try {
      if (!defer) {
        for (; i < b.length; i++) {
          const c = b[i]!;
          c.inputPending = false;
          this.afterInput(c, now);
        }
      }
    } finally {
      // Unwinding (or an application callback threw): the next poll does the rest.
      for (let j = i; j < b.length; j++) {
        const c = b[j]!;
        c.inputPending = false;
        if (c.state !== 'CLOSED') this.markDirty(c);
      }
      b.length = 0;
    }
  }

  deliverError(type: number, code: number, mtu: number, src: number, dst: number, quoted: Uint8Array, off: number, len: number, now: number): void {
    this.lastNow = now;
    if (len < 8) return;
    const c = this.lookup(src, rd16(quoted, off), dst, rd16(quoted, off + 2));
    if (c === null) return;
    const seq = rd32(quoted, off + 4);
    // RFC 5927 §4.1: believe the error only if it quotes data in flight.
    if (!(seqGe(seq, c.sndUna) && seqLe(seq, c.sndMax))) return;
    if (type === 3 && code === 4) {
      // Fragmentation needed: lower the MSS to the path MTU and resend (RFC 1191).
      if (mtu >= 68) {
        const mss = Math.max(mtu - 40 - (c.tsOk ? 12 : 0), 48);
        if (mss < c.mss) { c.mss = mss; c.sndNxt = c.sndUna; this.markDirty(c); }
      }
      return;
    }
    // RFC 1122 §4.2.3.9: hard errors abort only a connection being opened
    // (Linux: ICMP port/protocol unreachable during SYN-SENT -> ECONNREFUSED).
    if (type === 3 && (code === 2 || code === 3) && c.state === 'SYN-SENT') {
      c.abort(now, 'ECONNREFUSED', 'connection refused (ICMP unreachable)', false);
      return;
    }
    if (type === 3 && c.state === 'SYN-SENT' && c.rtoExpirations >= 3) {
      c.abort(now, 'EHOSTUNREACH', 'host unreachable', false);
    }
  }

  // =====================================================================
  // Driving
  // =====================================================================

  /** Runs due timers and flushes connections with pending work. */
  poll(now: number): void {
    this.lastNow = now;
    if (this.ownsTimers) this.timers.advance(now);
    this.flush(now);
  }

  /** Sends what connections queued since the last call (application writes, closes, reads). */
  flush(now: number): void {
    this.lastNow = now;
    for (let rounds = 0; rounds < 8 && this.dirtyList.length > 0; rounds++) {
      const list = this.dirtyList;
      this.dirtyList = this.spare;
      this.spare = list;
      for (let i = 0; i < list.length; i++) {
        const c = list[i]!;
        c.dirty = false;
        if (c.state === 'CLOSED') continue;
        c.deliverToApp(now);
        c.output(now);
      }
      list.length = 0;
    }
  }

  /** When poll() should run next (ms), or undefined when nothing is pending. */
  pollAt(): number | undefined {
    if (this.dirtyList.length > 0) return this.lastNow;
    return this.ownsTimers ? this.timers.nextExpiry() : undefined;
  }

  private afterInput(c: TcpConnection, now: number): void {
    if (c.state === 'CLOSED') return;
    c.deliverToApp(now);
    if ((c.state as TcpState) === 'CLOSED') return;
    c.output(now);
  }

  markDirty(c: TcpConnection): void {
    if (c.dirty) return;
    c.dirty = true;
    this.dirtyList.push(c);
    if (!this.flushTimer.armed) this.timers.arm(this.flushTimer, this.lastNow);
    this.onWork?.();
  }

  /** The time for calls made by the application between polls. */
  appNow(): number {
    if (this.clock !== null) {
      const t = this.clock.now();
      if (t > this.lastNow) this.lastNow = t;
    }
    return this.lastNow;
  }

  /**
   * Creates a Tcp on a Stack: it writes through the stack's IPv4 layer, shares
   * its timer wheel and clock, asks it for a poll when the application queues
   * work, and registers as protocol 6.
   */
  static attach(stack: Stack, init: Omit<TcpOptionsInit, 'timers' | 'clock'> = {}): Tcp {
    const tcp = new Tcp(stack.network, { ...init, timers: stack.timers, clock: stack.clock });
    tcp.onWork = () => stack.kick();
    stack.attach(tcp);
    return tcp;
  }

  markDrain(c: TcpConnection): void { this.markDirty(c); }

  // =====================================================================
  // Opening
  // =====================================================================

  /** Listens on (addr, port); addr 0 is any. Throws EADDRINUSE. */
  listen(port: number, addr = 0, backlog = 511): TcpListener {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError(`bad port ${port}`);
    if (port === 0) port = this.ephemeralListenPort();
    const list = this.listeners.get(port) ?? [];
    for (const l of list) if (l.localAddr === addr || l.localAddr === 0 || addr === 0) throw new TcpError('EADDRINUSE', `address in use: port ${port}`);
    const l = new TcpListener(this, addr, port, Math.max(1, backlog), this.config.synBacklog);
    list.push(l);
    this.listeners.set(port, list);
    return l;
  }

  unlisten(l: TcpListener): void {
    const list = this.listeners.get(l.localPort);
    if (list === undefined) return;
    const i = list.indexOf(l);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.listeners.delete(l.localPort);
  }

  /** Active open. Throws EHOSTUNREACH without a route, EADDRINUSE/EADDRNOTAVAIL for ports. */
  connect(remoteAddr: number, remotePort: number, opts: ConnectOptions = {}, now = this.appNow()): TcpConnection {
    this.lastNow = now;
    const local = opts.localAddr ?? this.writer.sourceFor(remoteAddr);
    if (local < 0) throw new TcpError('EHOSTUNREACH', 'no route to host');
    let port = opts.localPort ?? 0;
    if (port === 0) port = this.ephemeralPort(local, remoteAddr, remotePort);
    else if (this.lookup(local, port, remoteAddr, remotePort) !== null) throw new TcpError('EADDRINUSE', 'address in use');
    const cfg = opts.config ? { ...this.config, ...opts.config } : this.config;
    const c = new TcpConnection(this, cfg, local, port, remoteAddr, remotePort, true, opts.handler ?? {}, this.makeCc(cfg));
    this.insert(c);
    this.counters.activeOpens++;
    c.openActive(this.isn(local, port, remoteAddr, remotePort, now), now);
    return c;
  }

  private listenInput(l: TcpListener, src: number, dst: number, sport: number, dport: number, seg: Segment, iss: number, now: number): void {
    const f = seg.flags;
    // RFC 9293 §3.10.7.2 (LISTEN): first check for an RST (ignore), then an ACK (reset), then SYN.
    if (f & FLAG.RST) { this.drop('RST_IGNORED'); return; }
    if (f & FLAG.ACK) {
      if (!(f & FLAG.SYN) && this.config.synCookies) {
        if (this.cookieInput(l, src, dst, sport, dport, seg, now)) return;
      }
      this.drop(f & FLAG.SYN ? 'LISTEN_NOT_SYN' : 'COOKIE_INVALID');
      this.sendReset(dst, dport, src, sport, seg, now);
      return;
    }
    if (!(f & FLAG.SYN)) { this.drop('LISTEN_NOT_SYN'); return; }
    if (l.acceptFull) { this.drop('ACCEPT_QUEUE_FULL'); return; }
    if (l.synFull) {
      if (!this.config.synCookies) { this.drop('SYN_QUEUE_FULL'); return; }
      this.sendCookieSynAck(src, dst, sport, dport, seg, now);
      return;
    }
    const cfg = this.config;
    const c = new TcpConnection(this, cfg, dst, dport, src, sport, false, l.childHandler, this.makeCc(cfg));
    c.listener = l;
    l.synQueued++;
    this.insert(c);
    this.counters.passiveOpens++;
    c.openPassive(seg, iss >= 0 ? iss : this.isn(dst, dport, src, sport, now), now);
  }

  // --- SYN cookies (after Linux net/ipv4/syncookies.c, one deliberate change)
  //
  // ISN = count<<24 | (F(4-tuple, client ISN, count) + mssIndex) mod 2^24,
  // with count a 64 s clock and F keyed HalfSipHash. Linux adds the client's
  // ISN to the cookie instead of hashing it, so ACK−1−(SEQ−1) is invariant
  // when both sequence numbers advance by the same amount: a late duplicate
  // of any later ACK of a closed cookie connection whose two directions
  // carried equal byte counts (an echo) validates and opens a ghost child.
  // Hashing the client ISN in means only SEQ = ISN+1 validates.

  private cookieHash(src: number, dst: number, sport: number, dport: number, count: number, sseq: number): number {
    return hsiphash4(this.c0, this.c1, src ^ Math.imul(count, 0x9e3779b9), dst, ((sport << 16) | dport) >>> 0, sseq);
  }

  private sendCookieSynAck(src: number, dst: number, sport: number, dport: number, seg: Segment, now: number): void {
    const o = this.opts;
    const peerMss = o.mss >= 0 ? o.mss : 536;
    let idx = COOKIE_MSS.length - 1;
    while (idx > 0 && COOKIE_MSS[idx]! > peerMss) idx--;
    const count = Math.floor(now / COOKIE_PERIOD_MS) & 0xff;
    const isn = (((count << 24) >>> 0) | ((this.cookieHash(src, dst, sport, dport, count, seg.seq) + idx) & 0xffffff)) >>> 0;
    const w = this.writer;
    const off = w.begin(src, 6, now);
    if (off < 0) { this.counters.txNoFrame++; return; }
    const out = this.outOpts;
    out.clear();
    out.mss = this.mssFor(src);
    const ws = this.rcvWscaleFor();
    if (this.config.windowScaling && o.wscale >= 0) out.wscale = ws;
    out.sackPermitted = this.config.sack && o.sackPermitted;
    if (this.config.timestamps && o.hasTimestamps) {
      // Options the cookie cannot hold ride in TSval's low 6 bits (Linux cookie_init_timestamp).
      const bits = (out.wscale >= 0 ? o.wscale : 0xf) | (out.sackPermitted ? 0x10 : 0);
      let ts = (this.tsClock(now) & ~TS_OPT_MASK) | bits;
      if (seqGt(ts >>> 0, this.tsClock(now))) ts -= TS_OPT_MASK + 1;
      out.timestamps = true;
      out.tsVal = ts >>> 0;
      out.tsEcr = o.tsVal;
    }
    const mem = w.mem;
    const optLen = writeTcpOptions(mem, off + TCP.HEADER_LEN, out);
    writeTcpHeader(mem, off, dport, sport, isn, seqAdd(seg.seq, 1), FLAG.SYN | FLAG.ACK, Math.min(this.config.recvBuffer, 65535), optLen);
    const total = TCP.HEADER_LEN + optLen;
    wr16(mem, off + TCP.CHECKSUM, finish(sum16(mem, off, total, pseudo4(w.src, src, 6, total))));
    this.counters.cookiesSent++;
    this.counters.segsOut++;
    w.commit(total, now);
  }

  /** Validates the ACK completing a cookie handshake; on success the child is ESTABLISHED. */
  private cookieInput(l: TcpListener, src: number, dst: number, sport: number, dport: number, seg: Segment, now: number): boolean {
    const o = this.opts;
    const cookie = seqAdd(seg.ack, -1);
    const sseq = seqAdd(seg.seq, -1);
    const count = Math.floor(now / COOKIE_PERIOD_MS) & 0xff;
    const sent = cookie >>> 24;
    const diff = (count - sent) & 0xff;
    if (diff >= COOKIE_MAX_AGE) { this.counters.cookiesFailed++; return false; }
    const idx = (cookie - this.cookieHash(src, dst, sport, dport, sent, sseq)) & 0xffffff;
    if (idx >= COOKIE_MSS.length) { this.counters.cookiesFailed++; return false; }
    if (l.acceptFull) { this.drop('ACCEPT_QUEUE_FULL'); this.counters.cookiesValidated++; return true; }
    let wscale = -1;
    let sackOk = false;
    let tsOk = false;
    if (o.hasTimestamps && o.tsEcr !== 0 && this.config.timestamps) {
      tsOk = true;
      const bits = o.tsEcr & TS_OPT_MASK;
      wscale = (bits & 0xf) === 0xf ? -1 : bits & 0xf;
      sackOk = (bits & 0x10) !== 0;
    }
    this.counters.cookiesValidated++;
    const cfg = this.config;
    const c = new TcpConnection(this, cfg, dst, dport, src, sport, false, l.childHandler, this.makeCc(cfg));
    c.listener = l;
    c.userData = 'queued';
    this.insert(c);
    this.counters.passiveOpens++;
    c.openFromCookie(seg, cookie, COOKIE_MSS[idx]!, wscale, sackOk, tsOk, now);
    l.enqueue(c);
    // The completing ACK may carry data: process it as the child's first segment.
    c.process(seg, now);
    this.afterInput(c, now);
    return true;
  }

  // =====================================================================
  // Helpers the connections use
  // =====================================================================

  /** RFC 6528 ISN: a 4 µs clock plus a keyed hash of the 4-tuple. */
  isn(local: number, lport: number, remote: number, rport: number, now: number): number {
    return (hsiphash4(this.k0, this.k1, local, remote, ((lport << 16) | rport) >>> 0, 0x5eed) + Math.floor(now * 250)) >>> 0;
  }

  /** The 1 ms timestamp clock (RFC 7323 §5.4: 1 ms to 1 s per tick). */
  tsClock(now: number): number { return Math.floor(now) >>> 0; }

  /** Per-connection timestamp offset (Linux randomises it per 4-tuple). */
  tsOffsetFor(c: TcpConnection): number {
    return hsiphash4(this.k1, this.k0, c.localAddr, c.remoteAddr, ((c.localPort << 16) | c.remotePort) >>> 0, 0x7573);
  }

  mssFor(remote: number): number {
    const mtu = this.writer.pathMtu(remote);
    return Math.max(Math.min(mtu - 40, this.config.mss), 64);
  }

  private rcvWscaleFor(): number {
    let ws = 0;
    while (ws < 14 && (this.config.recvBuffer >>> ws) > 65535) ws++;
    return this.config.windowScaling ? ws : 0;
  }

  /**
   * Takes one answer to an invalid segment from the stack-wide budget
   * (challengeAckLimit per second, randomised); counts it under `reason`
   * when the budget is spent. The connection checked its own limit first.
   */
  allowInvalidReply(now: number, reason: number): boolean {
    if (this.invalidBudget.take(now)) return true;
    this.limited(reason, false);
    return false;
  }

  /** Counts one suppressed answer (reason: a TCP_LIMITED value). */
  limited(reason: number, perConnection: boolean): void {
    const c = this.counters;
    c.limited[reason]!++;
    if (perConnection) c.limitedPerConnection++; else c.limitedPerStack++;
    if (reason === TCP_LIMITED.CHALLENGE_ACK) c.challengeAcksLimited++;
  }

  drop(reason: TcpDropReason): void { this.counters.drops[TCP_DROP[reason]]!++; }

  onStateChange(c: TcpConnection, from: TcpState, to: TcpState, now: number): void {
    if (tcpStateChannel.hasSubscribers) tcpStateChannel.publish({ conn: c, from, to, now });
    // CurrEstab as in RFC 4022 / Linux: ESTABLISHED or CLOSE-WAIT.
    const wasEstab = from === 'ESTABLISHED' || from === 'CLOSE-WAIT';
    const isEstab = to === 'ESTABLISHED' || to === 'CLOSE-WAIT';
    if (isEstab && !wasEstab) this.counters.currEstab++;
    if (wasEstab && !isEstab) { this.counters.currEstab--; if (to === 'CLOSED') this.counters.estabResets++; }
    if ((from === 'SYN-SENT' || from === 'SYN-RECEIVED') && to === 'CLOSED') this.counters.attemptFails++;
  }

  /**
   * RFC 9293 §3.10.7.1 reset generation for a segment with no connection:
   * ACK set -> <SEQ=SEG.ACK><CTL=RST>; else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
   * Never in answer to a reset.
   */
  private sendReset(local: number, lport: number, remote: number, rport: number, seg: Segment, now: number): void {
    if (seg.flags & FLAG.RST) return;
    if (!this.rstBudget.take(now)) { this.limited(TCP_LIMITED.RST_NO_SOCKET, false); return; }
    const w = this.writer;
    const off = w.begin(remote, 6, now);
    if (off < 0) { this.counters.txNoFrame++; return; }
    const mem = w.mem;
    if (seg.flags & FLAG.ACK) writeTcpHeader(mem, off, lport, rport, seg.ack, 0, FLAG.RST, 0, 0);
    else writeTcpHeader(mem, off, lport, rport, 0, seqAdd(seg.seq, seg.segLen), FLAG.RST | FLAG.ACK, 0, 0);
    wr16(mem, off + TCP.CHECKSUM, finish(sum16(mem, off, TCP.HEADER_LEN, pseudo4(w.src, remote, 6, TCP.HEADER_LEN))));
    this.counters.rstsSent++;
    this.counters.segsOut++;
    void local;
    w.commit(TCP.HEADER_LEN, now);
  }

  // --- the demux table: an open hash table of chains over the 4-tuple,
  // with integer hashing only (a Map keyed by a >31-bit number would box a
  // heap number on every lookup, i.e. allocate per segment). Doubles when
  // the load passes 1.

  private buckets: (TcpConnection | null)[] = new Array<TcpConnection | null>(256).fill(null);
  private bucketMask = 255;

  private static hash(local: number, lport: number, remote: number, rport: number): number {
    let h = Math.imul(remote ^ 0x2545f491, 0x9e3779b1);
    h = Math.imul(h ^ ((lport << 16) | rport) ^ (h >>> 15), 0x85ebca77);
    h = Math.imul(h ^ local ^ (h >>> 13), 0xc2b2ae3d);
    return (h ^ (h >>> 16)) >>> 0;
  }

  lookup(local: number, lport: number, remote: number, rport: number): TcpConnection | null {
    let c: TcpConnection | null = this.buckets[Tcp.hash(local, lport, remote, rport) & this.bucketMask]!;
    while (c !== null) {
      if (c.localPort === lport && c.remotePort === rport && c.remoteAddr === remote && c.localAddr === local) return c;
      c = c.nextInBucket;
    }
    return null;
  }

  private insert(c: TcpConnection): void {
    if (this.counters.connections >= this.buckets.length) this.rehash(this.buckets.length * 2);
    const i = Tcp.hash(c.localAddr, c.localPort, c.remoteAddr, c.remotePort) & this.bucketMask;
    c.nextInBucket = this.buckets[i]!;
    this.buckets[i] = c;
    c.inTable = true;
    this.counters.connections++;
  }

  private rehash(size: number): void {
    const old = this.buckets;
    this.buckets = new Array<TcpConnection | null>(size).fill(null);
    this.bucketMask = size - 1;
    for (let i = 0; i < old.length; i++) {
      let c: TcpConnection | null = old[i]!;
      while (c !== null) {
        const nx: TcpConnection | null = c.nextInBucket;
        const j = Tcp.hash(c.localAddr, c.localPort, c.remoteAddr, c.remotePort) & this.bucketMask;
        c.nextInBucket = this.buckets[j]!;
        this.buckets[j] = c;
        c = nx;
      }
    }
  }

  /** Unlinks a CLOSED connection (called from its setState). */
  remove(c: TcpConnection): void {
    if (!c.inTable) return;
    c.inTable = false;
    this.counters.connections--;
    const i = Tcp.hash(c.localAddr, c.localPort, c.remoteAddr, c.remotePort) & this.bucketMask;
    let p: TcpConnection | null = this.buckets[i]!;
    if (p === c) {
      this.buckets[i] = c.nextInBucket;
    } else {
      while (p !== null && p.nextInBucket !== c) p = p.nextInBucket;
      if (p !== null) p.nextInBucket = c.nextInBucket;
    }
    c.nextInBucket = null;
    if (c.listener !== null) c.listener.forget(c);
  }

  findListener(addr: number, port: number): TcpListener | null {
    const list = this.listeners.get(port);
    if (list === undefined) return null;
    let any: TcpListener | null = null;
    for (const l of list) {
      if (l.localAddr === addr) return l;
      if (l.localAddr === 0) any = l;
    }
    return any;
  }

  private ephemeralPort(local: number, remote: number, rport: number): number {
    const lo = this.config.ephemeralLow, span = this.config.ephemeralHigh - lo + 1;
    const start = this.prng.int(span);
    for (let i = 0; i < span; i++) {
      const p = lo + ((start + i) % span);
      if (this.lookup(local, p, remote, rport) === null && !this.listeners.has(p)) return p;
    }
    throw new TcpError('EADDRNOTAVAIL', 'no ephemeral port available');
  }

  private ephemeralListenPort(): number {
    const lo = this.config.ephemeralLow, span = this.config.ephemeralHigh - lo + 1;
    const start = this.prng.int(span);
    for (let i = 0; i < span; i++) {
      const p = lo + ((start + i) % span);
      if (!this.listeners.has(p)) return p;
    }
    throw new TcpError('EADDRNOTAVAIL', 'no port available');
  }

  /** Counters and drops by reason as a plain object (for metrics; allocates). */
  snapshot(): Record<string, number | Record<string, number>> {
    const k = this.counters;
    return {
      segsIn: k.segsIn, segsOut: k.segsOut, retransSegs: k.retransSegs, rstsSent: k.rstsSent, activeOpens: k.activeOpens,
      passiveOpens: k.passiveOpens, currEstab: k.currEstab, estabResets: k.estabResets, attemptFails: k.attemptFails,
      cookiesSent: k.cookiesSent, cookiesValidated: k.cookiesValidated, cookiesFailed: k.cookiesFailed,
      challengeAcks: k.challengeAcks, challengeAcksLimited: k.challengeAcksLimited, keepAlivesSent: k.keepAlivesSent,
      zeroWindowAdvertised: k.zeroWindowAdvertised, timeWaitReused: k.timeWaitReused, txNoFrame: k.txNoFrame,
      urgSegsIn: k.urgSegsIn, urgSegsOut: k.urgSegsOut, connections: k.connections,
      limitedPerConnection: k.limitedPerConnection, limitedPerStack: k.limitedPerStack, drops: k.dropsByReason(), limited: k.limitedByReason(),
    };
  }

  /**
   * Connections finishing a close the application asked for (FIN-WAIT-1,
   * FIN-WAIT-2, CLOSING, LAST-ACK): the ones that end by themselves within
   * a round trip or two. A stack being shut down polls until none is left
   * or its linger time runs out, then abortAll().
   */
  closing(): number {
    let n = 0;
    for (const head of this.buckets) {
      for (let c: TcpConnection | null = head; c !== null; c = c.nextInBucket) {
        const st = c.state;
        if (st === 'FIN-WAIT-1' || st === 'FIN-WAIT-2' || st === 'CLOSING' || st === 'LAST-ACK') n++;
      }
    }
    return n;
  }

  /**
   * Shutdown: RST to every connection that is not over (RFC 9293 ABORT),
   * so no peer keeps a connection nobody will answer (a pooled upstream
   * keep-alive would otherwise retransmit or keep-alive for minutes). Their
   * owners hear ECONNABORTED. The RSTs leave with the next flush.
   */
  abortAll(now: number): number {
    let n = 0;
    for (const c of this.connections()) {
      if (c.state === 'CLOSED' || c.state === 'TIME-WAIT') continue;
      c.abort(now, 'ECONNABORTED', 'stack shut down');
      n++;
    }
    return n;
  }

  /** Every connection in the table (for observability; allocates). */
  connections(): TcpConnection[] {
    const r: TcpConnection[] = [];
    for (const head of this.buckets) for (let c: TcpConnection | null = head; c !== null; c = c.nextInBucket) r.push(c);
    return r;
  }
}

export { TcpConnection, TcpListener };
