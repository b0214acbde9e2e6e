// One TCP connection: the transmission control block and its state machine.
//
// Read first: RFC 9293 (TCP; §3.10.7 "SEGMENT ARRIVES" is the skeleton of
// process()), RFC 7323 (window scale, timestamps, PAWS), RFC 2018 (SACK),
// RFC 6298 (RTO), RFC 5681 + RFC 6582 (congestion control, NewReno),
// RFC 6675 (SACK loss recovery), RFC 5961 (blind attacks: challenge ACKs),
// RFC 1122 §4.2.3 (delayed ACK, SWS avoidance, keep-alive), RFC 9438 (CUBIC),
// RFC 9293 §3.8.5 with RFC 6093 (urgent data: pointer, signal, inline only).
//
// Contract: process() consumes one already validated segment (checksum and
// options checked by Tcp) and updates state; it never sends by itself. The
// replies it decides on (ACKs, RSTs, challenge ACKs, data) leave through
// output(now), which writes them straight into link frames through the
// NetworkWriter (tests capture them with a fake writer and assert on them).
// Every state change goes through setState(). Time is an input (`now`, ms).
//
// Where this follows Linux rather than the letter of an RFC it says so.
import { FLAG, TcpOptionsOut, tcpOptionsLen, writeTcpHeader, writeTcpOptions, wr16, TCP, type TcpOptions } from '../wire/tcp.js';
import { finish, pseudo4, sum16 } from '../wire/checksum.js';
import { Timer } from '../timers.js';
import { ByteRing } from './ring.js';
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, seqMax } from './seq.js';
import type { CcState, CongestionControl } from './congestion/types.js';
import { TcpError, type TcpErrorCode } from './errors.js';
import type { Tcp, TcpConfig } from './tcp.js';
import { TCP_LIMITED } from './limited.js';
import type { TcpListener } from './listener.js';

/** RFC 9293 state names, spelled as the RFC spells them. */
export type TcpState =
  | 'CLOSED' | 'LISTEN' | 'SYN-SENT' | 'SYN-RECEIVED' | 'ESTABLISHED' | 'FIN-WAIT-1' | 'FIN-WAIT-2'
  | 'CLOSE-WAIT' | 'CLOSING' | 'LAST-ACK' | 'TIME-WAIT';

/** The callback interface for L7's fast path (no stream overhead). */
export interface TcpHandler {
  /** The connection reached ESTABLISHED (active or passive open). */
  onConnect?(c: TcpConnection): void;
  /**
   * In-order bytes are readable: buf[off, off+len) is a view into the receive
   * ring, valid only during the call. Return how many bytes were consumed; a
   * short count pauses delivery (the rest stays buffered and the advertised
   * window closes) until resumeReading().
   */
  onData?(c: TcpConnection, buf: Uint8Array, off: number, len: number): number;
  /** The peer's FIN arrived and every byte before it was consumed. */
  onEnd?(c: TcpConnection): void;
  /** Send-buffer space opened after write() accepted less than asked. */
  onDrain?(c: TcpConnection): void;
  /** The connection is gone for the application (CLOSED or TIME-WAIT); err when it was aborted. */
  onClose?(c: TcpConnection, err: TcpError | null): void;
  /**
   * Urgent data is pending (RFC 9293 §3.8.5 MUST-32): called when the peer's
   * urgent pointer first points past what the application has read, and
   * again whenever it advances. `pending` is c.urgentPending at the call:
   * the bytes from the next one onData will offer up to the pointer, some of
   * which may not have arrived yet. The bytes themselves arrive inline, in
   * order, through onData like any others (RFC 6093 §5, SO_OOBINLINE).
   * Called just before onData, once per input burst however far the pointer
   * moved within it.
   */
  onUrgent?(c: TcpConnection, pending: number): void;
}

/** The segment being processed, re-pointed by Tcp for every segment (no allocation). */
export class Segment {
  seq = 0;
  ack = 0;
  flags = 0;
  wnd = 0;
  /** The urgent pointer field, meaningful only with FLAG.URG. */
  up = 0;
  buf: Uint8Array = new Uint8Array(0);
  dataOff = 0;
  dataLen = 0;
  opts!: TcpOptions;
  /** Sequence space the segment occupies: data + SYN + FIN. */
  get segLen(): number { return this.dataLen + (this.flags & FLAG.SYN ? 1 : 0) + (this.flags & FLAG.FIN ? 1 : 0); }
}

/** Facts about one connection for observability. */
export interface TcpInfo {
  state: TcpState;
  localAddress: number; localPort: number; remoteAddress: number; remotePort: number;
  srtt: number; rttvar: number; rto: number; cwnd: number; ssthresh: number; mss: number;
  sndWnd: number; rcvWnd: number; inFlight: number; sndBuffered: number; rcvBuffered: number;
  retransmits: number; fastRetransmits: number; rtoExpirations: number; outOfOrder: number; sackBlocksIn: number;
  zeroWindowStalls: number; zeroWindowProbes: number; dupAcksIn: number; bytesIn: number; bytesOut: number;
  segsIn: number; segsOut: number; cc: string; windowScale: [number, number]; sack: boolean; timestamps: boolean;
}

const MAX_OOO = 32; // out-of-order ranges kept; beyond that new islands are dropped and counted
/**
 * The receive window a connection starts with, bytes (Linux starts its
 * rcv_ssthresh near 64 KiB too). It grows by two bytes for each byte that
 * arrives in order, up to the receive buffer, so a peer earns a large window
 * by sending data, and a single segment far ahead of RCV.NXT cannot make the
 * receive ring grow to the whole buffer.
 */
const INITIAL_RCV_WINDOW = 65535;
const MAX_SB = 64; // SACK scoreboard ranges
const SYNCHRONIZED = 1;
/** RFC 6298 §5.7: the RTO data transmission starts with after a SYN or SYN-ACK timed out (Linux: TCP_TIMEOUT_FALLBACK). */
const RTO_SYN_FALLBACK = 3000;

let nextId = 1;
const optsOut = new TcpOptionsOut();

export class TcpConnection implements CcState {
  readonly id = nextId++;
  state: TcpState = 'CLOSED';
  handler: TcpHandler;
  /** Listener that spawned this connection while it waits to be accepted. */
  listener: TcpListener | null = null;
  /** Linked list for the Tcp demux table. */
  nextInBucket: TcpConnection | null = null;
  inTable = false;
  dirty = false;
  /** Queued by Tcp for its end-of-burst work (ACK, hand-off to the application). */
  inputPending = false;

  // --- send sequence space (RFC 9293 §3.3.1)
  iss = 0;
  sndUna = 0;
  sndNxt = 0;
  /** Highest sequence number sent (snd_nxt may be pulled back by an RTO: go-back-N). */
  sndMax = 0;
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  maxSndWnd = 0;
  sndWscale = 0;
  /** Sequence number of sndBuf's first byte. */
  sndBufSeq = 0;
  readonly sndBuf: ByteRing;
  finQueued = false;
  /**
   * SND.UP (RFC 9293 §3.3.1): the sequence number after the last urgent
   * byte queued by writeUrgent(). Urgent mode (sndUrgent) lasts until
   * SND.UNA reaches it, as Linux's tcp_urg_mode().
   */
  sndUp = 0;
  sndUrgent = false;
  // --- receive sequence space
  irs = 0;
  rcvNxt = 0;
  /** Right edge of the window last advertised (never moved left, RFC 9293 §3.8.6.2.2). */
  rcvAdv = 0;
  rcvWscale = 0;
  /** Largest window we may advertise now (Linux's rcv_ssthresh): grows with in-order data up to the buffer. */
  rcvWndClamp: number;
  /** In-order bytes received since the clamp last grew (it grows when a window is next advertised). */
  private rcvEarned = 0;
  readonly rcvBuf: ByteRing;
  /**
   * RCV.UP: the sequence number after the peer's last urgent byte (RFC 6093
   * §4 semantics). Meaningful while rcvUrgent, which is true from the first
   * pointer past the application's read point until the application has
   * read up to it; so RCV.UP never lags far enough behind for sequence
   * comparisons to wrap.
   */
  rcvUp = 0;
  private rcvUrgent = false;
  /** The pointer advanced since the application was last told (deliverToApp). */
  private urgNotify = false;
  private finRcvd = false;
  private finSeqRcvd = -1;
  private endDelivered = false;
  /** Out-of-order ranges [start, end) as sequence numbers, in arrival order for SACK (most recent first). */
  private readonly oooStart = new Uint32Array(MAX_OOO);
  private readonly oooEnd = new Uint32Array(MAX_OOO);
  private oooCount = 0;
  /** True while out-of-order data waits for a hole to fill (every segment is then ACKed at once). */
  get hasOutOfOrder(): boolean { return this.oooCount > 0; }
  // --- options
  mss = 536;
  advMss = 1460;
  tsOk = false;
  tsRecent = 0;
  tsRecentAge = 0;
  tsOffset = 0;
  sackOk = false;
  wscaleOk = false;
  lastAckSent = 0;
  /** When we last answered an invalid segment (RFC 5961 §7; Linux last_oow_ack_time); -Infinity: never. */
  private lastInvalidReply = -Infinity;
  // --- RTT / RTO (RFC 6298)
  srtt = 0;
  rttvar = 0;
  rto: number;
  private rttSeq = 0;
  private rttTime = -1;
  private retries = 0;
  /** The retransmission timer expired during the handshake (RFC 6298 §5.7). */
  private synTimedOut = false;
  // --- congestion
  cwnd = 0;
  ssthresh = 0x7fffffff;
  readonly cc: CongestionControl;
  private dupAcks = 0;
  private inRecovery = false;
  private recoveryPoint = 0;
  private highRxt = 0;
  private cwndLimited = false;
  // SACK scoreboard: sorted disjoint [start, end) ranges above snd_una.
  private readonly sbStart = new Uint32Array(MAX_SB);
  private readonly sbEnd = new Uint32Array(MAX_SB);
  private sbCount = 0;
  private sacked = 0;
  // --- ACK policy
  private ackNow = false;
  private ackPending = 0; // bytes received since the last ACK
  private persistBackoff = 0;
  private probesUnanswered = 0;
  private lastProbeAt = 0;
  private keepaliveProbes = 0;
  private lastRecv = 0;
  // --- application side
  noDelay = false;
  keepAlive = false;
  keepAliveIdle: number;
  keepAliveInterval: number;
  keepAliveCount: number;
  private readPaused = false;
  private wantDrain = false;
  /** The application let go (close/destroy): FIN-WAIT-2 then times out like Linux's orphans. */
  orphaned = false;
  error: TcpError | null = null;
  private closeNotified = false;
  private connectNotified = false;
  /** When the SYN was sent by us (active open), for SYN retries. */
  readonly active: boolean;
  userData: unknown = null;
  // --- timers: one per purpose, allocated once with the connection
  readonly rtxTimer: Timer;
  readonly persistTimer: Timer;
  readonly delackTimer: Timer;
  readonly keepaliveTimer: Timer;
  readonly waitTimer: Timer;
  // --- counters
  retransmits = 0;
  fastRetransmits = 0;
  rtoExpirations = 0;
  outOfOrder = 0;
  sackBlocksIn = 0;
  zeroWindowStalls = 0;
  zeroWindowProbes = 0;
  dupAcksIn = 0;
  bytesIn = 0;
  bytesOut = 0;
  segsIn = 0;
  segsOut = 0;

  constructor(
    readonly tcp: Tcp,
    readonly cfg: TcpConfig,
    readonly localAddr: number,
    readonly localPort: number,
    readonly remoteAddr: number,
    readonly remotePort: number,
    active: boolean,
    handler: TcpHandler,
    cc: CongestionControl,
  ) {
    this.active = active;
    this.handler = handler;
    this.cc = cc;
    // Rings start at 4 KiB and grow with use up to the configured sizes, so
    // ten thousand idle connections cost tens of megabytes, not gigabytes.
    this.sndBuf = new ByteRing(cfg.sendBuffer, Math.min(cfg.sendBuffer, 4096));
    this.rcvBuf = new ByteRing(cfg.recvBuffer, Math.min(cfg.recvBuffer, 4096));
    this.rcvWndClamp = Math.min(cfg.recvBuffer, INITIAL_RCV_WINDOW);
    this.rto = cfg.rtoInitial;
    this.noDelay = cfg.noDelay;
    this.keepAlive = cfg.keepAlive;
    this.keepAliveIdle = cfg.keepAliveIdle;
    this.keepAliveInterval = cfg.keepAliveInterval;
    this.keepAliveCount = cfg.keepAliveCount;
    this.rtxTimer = new Timer((now) => this.onRtxTimer(now));
    this.persistTimer = new Timer((now) => this.onPersistTimer(now));
    this.delackTimer = new Timer((now) => { this.ackNow = true; this.output(now); });
    this.keepaliveTimer = new Timer((now) => this.onKeepaliveTimer(now));
    this.waitTimer = new Timer((now) => this.onWaitTimer(now));
    let ws = 0;
    while (ws < 14 && (cfg.recvBuffer >>> ws) > 65535) ws++;
    this.rcvWscale = cfg.windowScaling ? ws : 0;
  }

  get flight(): number { return seqDiff(this.sndMax, this.sndUna); }
  private get synchronized(): boolean { return STATE_FLAGS[this.state] === SYNCHRONIZED; }
  /** End of queued data in sequence space (the FIN, if queued, sits at this number). */
  private get dataEnd(): number { return seqAdd(this.sndBufSeq, this.sndBuf.length); }
  private get finSent(): boolean { return this.finQueued && seqGt(this.sndMax, this.dataEnd); }
  private get finAcked(): boolean { return this.finQueued && seqGt(this.sndUna, this.dataEnd); }

  // =====================================================================
  // State changes
  // =====================================================================

  setState(s: TcpState, now: number): void {
    const old = this.state;
    if (old === s) return;
    this.state = s;
    this.tcp.onStateChange(this, old, s, now);
    switch (s) {
      case 'ESTABLISHED':
        this.retries = 0;
        if (this.keepAlive) this.tcp.timers.arm(this.keepaliveTimer, now + this.keepAliveIdle);
        break;
      case 'TIME-WAIT':
        // RFC 9293 §3.10.7.4: wait 2·MSL. Buffers are released now: only the
        // sequence state is needed to answer a retransmitted FIN.
        this.cancelTimers();
        this.tcp.timers.arm(this.waitTimer, now + this.cfg.timeWaitMs);
        this.sndBuf.release();
        // Bytes before the FIN still go to the application; the receive
        // buffer is released and close reported once they have (deliverToApp).
        this.deliverToApp(now);
        break;
      case 'FIN-WAIT-2':
        if (this.orphaned) this.tcp.timers.arm(this.waitTimer, now + this.cfg.finWait2Timeout);
        break;
      case 'CLOSED':
        this.cancelTimers();
        this.tcp.timers.cancel(this.waitTimer);
        this.tcp.remove(this);
        this.notifyClose(this.error);
        break;
      default:
        break;
    }
  }

  private cancelTimers(): void {
    const w = this.tcp.timers;
    w.cancel(this.rtxTimer);
    w.cancel(this.persistTimer);
    w.cancel(this.delackTimer);
    w.cancel(this.keepaliveTimer);
  }

  private notifyClose(err: TcpError | null): void {
    if (this.closeNotified) return;
    this.closeNotified = true;
    this.handler.onClose?.(this, err);
  }

  /** Aborts with an error: RST to the peer when synchronized (RFC 9293 ABORT call), then CLOSED. */
  abort(now: number, code: TcpErrorCode = 'ECONNRESET', message = 'connection aborted', sendRst = true): void {
    if (this.state === 'CLOSED') return;
    if (sendRst && (this.synchronized || this.state === 'SYN-RECEIVED')) this.sendControl(this.sndMax, 0, FLAG.RST, now);
    this.error = code === 'ECONNABORTED' && !sendRst ? null : new TcpError(code, message);
    if (this.listener !== null) this.listener.forget(this);
    this.setState('CLOSED', now);
  }

  // =====================================================================
  // Opening
  // =====================================================================

  /** Active open (RFC 9293 OPEN call): sends the SYN. */
  openActive(iss: number, now: number): void {
    this.iss = iss;
    this.sndUna = iss;
    this.sndNxt = iss;
    this.sndMax = iss;
    this.sndBufSeq = seqAdd(iss, 1);
    this.advMss = this.tcp.mssFor(this.remoteAddr);
    this.mss = Math.min(536, this.advMss);
    this.tsOffset = this.tcp.tsOffsetFor(this);
    this.cc.init(this, now);
    this.setState('SYN-SENT', now);
    this.sendSyn(now);
  }

  /** Passive open from a listener's SYN (state SYN-RECEIVED) or from a validated SYN cookie (ESTABLISHED). */
  openPassive(seg: Segment, iss: number, now: number): void {
    this.iss = iss;
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.rcvAdv = this.rcvNxt;
    this.sndUna = iss;
    this.sndNxt = iss;
    this.sndMax = iss;
    this.sndBufSeq = seqAdd(iss, 1);
    this.advMss = this.tcp.mssFor(this.remoteAddr);
    this.tsOffset = this.tcp.tsOffsetFor(this);
    this.negotiate(seg.opts);
    this.sndWnd = seg.wnd; // window in a SYN is never scaled (RFC 7323 §2.2)
    this.maxSndWnd = this.sndWnd;
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
    this.cc.init(this, now);
    this.lastRecv = now;
    this.setState('SYN-RECEIVED', now);
    this.sendSyn(now);
  }

  /** Applies the options of the peer's SYN (RFC 7323 §2.2, §3.2; RFC 2018 §2). */
  negotiate(o: TcpOptions): void {
    this.mss = Math.max(64, Math.min(o.mss >= 0 ? o.mss : 536, this.advMss));
    this.wscaleOk = this.cfg.windowScaling && o.wscale >= 0;
    this.sndWscale = this.wscaleOk ? o.wscale : 0;
    if (!this.wscaleOk) this.rcvWscale = 0;
    this.sackOk = this.cfg.sack && o.sackPermitted;
    this.tsOk = this.cfg.timestamps && o.hasTimestamps;
    if (this.tsOk) { this.tsRecent = o.tsVal; }
    // RFC 6691: the MSS counts no options; leave room for the timestamps every segment carries.
    if (this.tsOk) this.mss -= 12;
  }

  /** A connection created from a valid SYN cookie: ESTABLISHED at once (Linux's cookie_v4_check). */
  openFromCookie(seg: Segment, iss: number, mss: number, wscale: number, sackOk: boolean, tsOk: boolean, now: number): void {
    this.iss = iss;
    this.irs = seqAdd(seg.seq, -1);
    this.rcvNxt = seg.seq;
    // The stateless SYN-ACK advertised an unscaled window of min(buffer, 65535).
    this.rcvAdv = seqAdd(this.rcvNxt, Math.min(this.rcvBuf.free, 65535));
    this.sndUna = seqAdd(iss, 1);
    this.sndNxt = this.sndUna;
    this.sndMax = this.sndUna;
    this.sndBufSeq = this.sndUna;
    this.advMss = this.tcp.mssFor(this.remoteAddr);
    this.mss = Math.min(mss, this.advMss);
    this.wscaleOk = this.cfg.windowScaling && wscale >= 0;
    this.sndWscale = this.wscaleOk ? wscale : 0;
    if (!this.wscaleOk) this.rcvWscale = 0;
    this.sackOk = this.cfg.sack && sackOk;
    this.tsOk = this.cfg.timestamps && tsOk;
    if (this.tsOk) this.mss -= 12;
    this.tsOffset = tsOk ? (seg.opts.tsEcr - this.tcp.tsClock(now)) | 0 : 0;
    if (this.tsOk) this.tsRecent = seg.opts.tsVal;
    this.sndWnd = seg.wnd << this.sndWscale;
    this.maxSndWnd = this.sndWnd;
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
    this.lastAckSent = this.rcvNxt;
    this.cc.init(this, now);
    this.lastRecv = now;
    this.setState('SYN-RECEIVED', now);
    this.setState('ESTABLISHED', now);
  }

  private sendSyn(now: number): void {
    const flags = this.state === 'SYN-SENT' ? FLAG.SYN : FLAG.SYN | FLAG.ACK;
    this.emit(this.iss, 0, flags, now);
    this.sndNxt = seqAdd(this.iss, 1);
    if (seqGt(this.sndNxt, this.sndMax)) this.sndMax = this.sndNxt;
    if (this.rttTime < 0 && this.retries === 0) { this.rttTime = now; this.rttSeq = this.iss; }
    this.tcp.timers.arm(this.rtxTimer, now + this.rto);
  }

  // =====================================================================
  // SEGMENT ARRIVES (RFC 9293 §3.10.7.3 and §3.10.7.4)
  // =====================================================================

  process(seg: Segment, now: number): void {
    this.segsIn++;
    this.lastRecv = now;
    this.keepaliveProbes = 0;
    const f = seg.flags;
    const o = seg.opts;
    switch (this.state) {
      case 'CLOSED':
      case 'LISTEN':
        // No TCB here: Tcp answers CLOSED with a reset and LISTEN through its listener.
        return;

      case 'SYN-SENT': {
        // §3.10.7.3 first: check the ACK bit. An ACK outside (ISS, SND.NXT] is
        // unacceptable: reset it (unless it is a reset itself) and drop.
        if (f & FLAG.ACK) {
          if (seqLe(seg.ack, this.iss) || seqGt(seg.ack, this.sndMax)) {
            if (!(f & FLAG.RST) && this.answerInvalid(now, TCP_LIMITED.RST)) this.sendControl(seg.ack, 0, FLAG.RST, now);
            this.tcp.drop('BAD_ACK');
            return;
          }
        }
        // Second: the RST bit. Only an RST whose ACK acknowledges our SYN is
        // believed (RFC 5961 §3.2 keeps this rule for SYN-SENT).
        if (f & FLAG.RST) {
          if (f & FLAG.ACK) { this.error = new TcpError('ECONNREFUSED', 'connection refused'); this.setState('CLOSED', now); }
          else this.tcp.drop('RST_IGNORED');
          return;
        }
        // Fourth: the SYN bit.
        if (f & FLAG.SYN) {
          this.irs = seg.seq;
          this.rcvNxt = seqAdd(seg.seq, 1);
          this.rcvAdv = this.rcvNxt;
          this.negotiate(o);
          this.cc.init(this, now); // the initial window is counted in the negotiated MSS
          if (this.tsOk && o.hasTimestamps && (f & FLAG.ACK)) this.rttSampleTs(o.tsEcr, now);
          if (f & FLAG.ACK) {
            // SYN-ACK: our SYN is acknowledged -> ESTABLISHED, ACK it.
            this.sndUna = seg.ack;
            if (this.rttTime >= 0 && !this.tsOk && this.retries === 0) this.rttSample(now - this.rttTime);
            this.rttTime = -1;
            this.sndWnd = seg.wnd; // RFC 7323 §2.2: the window of a SYN is never scaled
            this.maxSndWnd = this.sndWnd;
            this.sndWl1 = seg.seq;
            this.sndWl2 = seg.ack;
            this.retries = 0;
            this.rto = this.rtoAtDataStart();
            this.tcp.timers.cancel(this.rtxTimer);
            this.ackNow = true;
            this.setState('ESTABLISHED', now);
            this.notifyConnect();
            // §3.10.7.3: other controls or text continue at the sixth step
            // (URG). The pointer counts from SEG.SEQ, the SYN's own number.
            if (f & FLAG.URG) this.receiveUrgent(seg.seq, seg.up);
            // Data carried on the SYN-ACK (rare) is processed like any text.
            if (seg.dataLen > 0 || (f & FLAG.FIN)) { seg.seq = seqAdd(seg.seq, 1); seg.flags &= ~FLAG.SYN; this.receiveText(seg, now); }
          } else {
            // Simultaneous open (§3.5 figure 7): SYN-RECEIVED, answer with
            // SYN,ACK reusing our ISS.
            this.sndWnd = seg.wnd;
            this.maxSndWnd = this.sndWnd;
            this.sndWl1 = seg.seq;
            this.setState('SYN-RECEIVED', now);
            this.sndNxt = this.iss;
            this.sendSyn(now);
          }
          return;
        }
        // Fifth: neither SYN nor RST: drop.
        this.tcp.drop('NO_SYN');
        return;
      }

      default:
        this.processSynchronized(seg, now);
    }
  }

  private processSynchronized(seg: Segment, now: number): void {
    const f = seg.flags;
    const o = seg.opts;

    // RFC 7323 §5.3 PAWS, before the sequence check: a timestamp older than
    // TS.Recent marks an old duplicate. RSTs are exempt (Linux does the same).
    if (this.tsOk && o.hasTimestamps && !(f & FLAG.RST) && this.state !== 'SYN-RECEIVED') {
      if (seqLt(o.tsVal, this.tsRecent) && !this.disorderedAck(seg)) {
        if (now - this.tsRecentAge > 24 * 86400_000) {
          this.tsRecent = o.tsVal; // §5.5: TS.Recent older than 24 days is invalid
        } else {
          this.tcp.drop('PAWS');
          if (this.mayAnswer(seg, now, TCP_LIMITED.PAWS_ACK)) this.ackNow = true;
          return;
        }
      }
    }

    if (this.state === 'TIME-WAIT') {
      this.processTimeWait(seg, now);
      return;
    }

    // First: sequence number check (§3.10.7.4 table).
    const wnd = Math.max(seqDiff(this.rcvAdv, this.rcvNxt), 0);
    const segLen = seg.segLen;
    let acceptable: boolean;
    if (segLen === 0) {
      acceptable = wnd === 0 ? seg.seq === this.rcvNxt : seqLe(this.rcvNxt, seg.seq) && seqLt(seg.seq, seqAdd(this.rcvNxt, wnd));
    } else if (wnd === 0) {
      acceptable = false;
    } else {
      const last = seqAdd(seg.seq, segLen - 1);
      const winEnd = seqAdd(this.rcvNxt, wnd);
      acceptable = (seqLe(this.rcvNxt, seg.seq) && seqLt(seg.seq, winEnd)) || (seqLe(this.rcvNxt, last) && seqLt(last, winEnd));
    }
    // A zero-window probe or keep-alive (seq = RCV.NXT-1) and retransmitted
    // old data are "unacceptable": the answer is an ACK (§3.10.7.4), which is
    // exactly what the probing peer wants.
    if (!acceptable) {
      // §3.10.7.4: "If the RCV.WND is zero, no segments will be acceptable,
      // but special allowance should be made to accept valid ACKs". A peer
      // blocked on our zero window only sends probes and edge data; ignoring
      // their ACK field would deadlock two peers that each wait for the other
      // (e.g. an echo whose send buffer waits on the peer's ACKs).
      // Linux's pure ACKs may carry a SEQ a little past our (rounded, scaled)
      // window edge, so the allowance covers the window probe (RCV.NXT-1) up
      // to the buffer's size; RFC 5961's ACK range check still applies.
      if ((f & FLAG.ACK) && !(f & (FLAG.RST | FLAG.SYN)) && this.state !== 'SYN-RECEIVED'
        && seqLe(seqAdd(this.rcvNxt, -1), seg.seq) && seqLe(seg.seq, seqAdd(this.rcvNxt, Math.max(wnd, this.rcvBuf.capacity)))) {
        if (this.processAck(seg, now)) {
          if (this.state === 'FIN-WAIT-1' && this.finAcked) this.setState('FIN-WAIT-2', now);
          else if (this.state === 'CLOSING' && this.finAcked) this.setState('TIME-WAIT', now);
          else if (this.state === 'LAST-ACK' && this.finAcked) { this.setState('CLOSED', now); return; }
        }
      }
      if (!(f & FLAG.RST)) {
        // Segments that overlap the left edge (old data plus new) were made
        // acceptable above; this is wholly outside the window. The answer is
        // rate-limited: two endpoints that disagree on the sequence space
        // (one accepted a spoofed segment) would otherwise ACK each other's
        // ACKs as fast as the path allows (RFC 5961 §7).
        // Still take a window update / ACK from a probe's answer? No: §3.10.7.4 drops it.
        if (this.state === 'SYN-RECEIVED' && (f & FLAG.SYN) && seg.seq === this.irs) {
          // Retransmitted SYN: resend our SYN,ACK. Its ACK may answer either
          // copy, so it gives no RTT sample (Karn, RFC 6298 §3); timestamps
          // still can. No timer expired, so this alone is not §5.7's case.
          if (this.answerInvalid(now, TCP_LIMITED.SYN_ACK)) {
            this.sndNxt = this.iss;
            this.sendSyn(now);
            this.rttTime = -1;
          }
        } else if (this.mayAnswer(seg, now, TCP_LIMITED.OUT_OF_WINDOW_ACK)) {
          this.ackNow = true;
        }
      }
      this.tcp.drop('OUT_OF_WINDOW');
      return;
    }

    // Second: the RST bit (RFC 5961 §3.2): only an exact RCV.NXT match resets;
    // any other in-window RST gets a challenge ACK.
    if (f & FLAG.RST) {
      if (seg.seq !== this.rcvNxt) {
        this.tcp.drop('RST_NOT_EXACT');
        this.challengeAck(now);
        return;
      }
      switch (this.state) {
        case 'SYN-RECEIVED':
          // §3.10.7.4: passive open -> back to LISTEN (the listener just forgets us);
          // active (simultaneous) open -> refused.
          this.error = this.active ? new TcpError('ECONNREFUSED', 'connection refused') : null;
          if (this.listener !== null) this.listener.forget(this);
          this.setState('CLOSED', now);
          return;
        case 'ESTABLISHED': case 'FIN-WAIT-1': case 'FIN-WAIT-2': case 'CLOSE-WAIT':
          this.error = new TcpError('ECONNRESET', 'connection reset by peer');
          this.setState('CLOSED', now);
          return;
        case 'CLOSING': case 'LAST-ACK':
          this.setState('CLOSED', now);
          return;
        default:
          return;
      }
    }

    // Third: security/precedence — not implemented (RFC 9293 made it optional).

    // Fourth: the SYN bit. RFC 5961 §4.2: any SYN in a synchronized state gets
    // a challenge ACK, never a reset. In SYN-RECEIVED a retransmitted SYN was
    // handled above (it is left of the window); other SYNs are challenged too.
    if (f & FLAG.SYN) {
      this.tcp.drop('SYN_IN_WINDOW');
      this.challengeAck(now);
      return;
    }

    // Fifth: the ACK field.
    if (!(f & FLAG.ACK)) {
      this.tcp.drop('NO_ACK');
      return;
    }

    // RFC 7323 §4.3: record the timestamp when the segment covers Last.ACK.sent.
    if (this.tsOk && o.hasTimestamps && seqLe(seg.seq, this.lastAckSent) && seqGe(o.tsVal, this.tsRecent)) {
      this.tsRecent = o.tsVal;
      this.tsRecentAge = now;
    }

    if (this.state === 'SYN-RECEIVED') {
      // §3.10.7.4: SND.UNA < SEG.ACK =< SND.NXT -> ESTABLISHED; else reset.
      if (seqLt(this.sndUna, seg.ack) && seqLe(seg.ack, this.sndMax)) {
        this.sndWnd = seg.wnd << this.sndWscale;
        this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
        this.sndWl1 = seg.seq;
        this.sndWl2 = seg.ack;
        if (this.tsOk && o.hasTimestamps && o.tsEcr !== 0) this.rttSampleTs(o.tsEcr, now);
        else if (this.rttTime >= 0 && this.retries === 0) this.rttSample(now - this.rttTime);
        this.rttTime = -1;
        this.sndUna = seg.ack;
        this.retries = 0;
        this.rto = this.rtoAtDataStart();
        this.tcp.timers.cancel(this.rtxTimer);
        // A FIN queued by close() during SYN-RECEIVED already moved us to FIN-WAIT-1.
        this.setState('ESTABLISHED', now);
        if (this.listener !== null) this.listener.established(this, now);
        if ((this.state as TcpState) === 'CLOSED') return; // the listener was closed meanwhile
        this.notifyConnect();
      } else {
        if (this.answerInvalid(now, TCP_LIMITED.RST)) this.sendControl(seg.ack, 0, FLAG.RST, now);
        this.tcp.drop('BAD_ACK');
        return;
      }
    } else if (!this.processAck(seg, now)) {
      return;
    }
    if (this.state === 'CLOSED') return;

    // State-specific ACK consequences (§3.10.7.4 fifth, per state).
    switch (this.state) {
      case 'FIN-WAIT-1':
        if (this.finAcked) this.setState('FIN-WAIT-2', now);
        break;
      case 'CLOSING':
        if (this.finAcked) { this.setState('TIME-WAIT', now); return; }
        break;
      case 'LAST-ACK':
        if (this.finAcked) { this.setState('CLOSED', now); return; }
        break;
      default:
        break;
    }

    // Sixth: the URG bit. Only acceptable segments get here, so a pointer
    // on an unacceptable one was ignored above. CLOSE-WAIT, CLOSING and
    // LAST-ACK ignore it: the peer's FIN came first (§3.10.7.4).
    if ((f & FLAG.URG) && (this.state === 'ESTABLISHED' || this.state === 'FIN-WAIT-1' || this.state === 'FIN-WAIT-2')) {
      this.receiveUrgent(seg.seq, seg.up);
    }
    // Seventh and eighth: segment text and FIN.
    this.receiveText(seg, now);
  }

  /**
   * Linux's tcp_disordered_ack(): a pure duplicate ACK that was merely
   * reordered behind a newer segment (same SEQ, same ACK, same window, a
   * timestamp less than one RTO old) is let through PAWS, so reordering on
   * the path does not turn duplicate ACKs into drops.
   */
  private disorderedAck(seg: Segment): boolean {
    return (seg.flags & (FLAG.SYN | FLAG.FIN | FLAG.RST)) === 0 && (seg.flags & FLAG.ACK) !== 0 && seg.dataLen === 0
      && seg.seq === this.rcvNxt && seg.ack === this.sndUna
      && (seg.wnd << this.sndWscale) === this.sndWnd
      && ((this.tsRecent - seg.opts.tsVal) | 0) <= this.rto;
  }

  /** TIME-WAIT (§3.10.7.4): only a retransmitted FIN is expected; ACK it and restart 2·MSL. */
  private processTimeWait(seg: Segment, now: number): void {
    const f = seg.flags;
    if (f & FLAG.RST) {
      // RFC 1337 TIME-WAIT assassination hazard: Linux ignores RSTs in
      // TIME-WAIT (net.ipv4.tcp_rfc1337=1 behaviour); so do we.
      this.tcp.drop('RST_IGNORED');
      return;
    }
    if (f & FLAG.SYN) {
      // A SYN that could not reopen the connection (Tcp checked) gets a challenge ACK.
      this.challengeAck(now);
      return;
    }
    if ((f & FLAG.FIN) && seqAdd(seg.seq, seg.dataLen) === seqAdd(this.rcvNxt, -1)) {
      this.ackNow = true;
      this.tcp.timers.arm(this.waitTimer, now + this.cfg.timeWaitMs);
      return;
    }
    if (seg.segLen > 0) this.ackNow = true;
  }

  /** RFC 5961 §7 rate-limited challenge ACK (§3.2 RST, §4.2 SYN, §5.2 ACK). */
  private challengeAck(now: number): void {
    if (!this.answerInvalid(now, TCP_LIMITED.CHALLENGE_ACK)) return;
    this.tcp.counters.challengeAcks++;
    this.ackNow = true;
  }

  /**
   * Whether to answer the unacceptable segment seg (Linux's
   * tcp_oow_rate_limited): a segment carrying data or FIN and no SYN is
   * always answered (it is not an ACK loop, and its sender's recovery needs
   * the ACK); anything else goes through answerInvalid().
   */
  private mayAnswer(seg: Segment, now: number, reason: number): boolean {
    if ((seg.dataLen > 0 || (seg.flags & FLAG.FIN) !== 0) && (seg.flags & FLAG.SYN) === 0) return true;
    return this.answerInvalid(now, reason);
  }

  /**
   * RFC 5961 §7: at most one answer to invalid segments per
   * invalidRateLimitMs on this connection (Linux tcp_invalid_ratelimit),
   * then the stack-wide budget. Suppressed answers are counted by reason
   * (a TCP_LIMITED value).
   */
  private answerInvalid(now: number, reason: number): boolean {
    const since = now - this.lastInvalidReply;
    if (since >= 0 && since < this.cfg.invalidRateLimitMs) { this.tcp.limited(reason, true); return false; }
    if (!this.tcp.allowInvalidReply(now, reason)) return false;
    this.lastInvalidReply = now;
    return true;
  }

  // =====================================================================
  // ACK processing (§3.10.7.4 fifth, ESTABLISHED arm) and loss recovery
  // =====================================================================

  /** Returns false when the segment must be dropped. */
  private processAck(seg: Segment, now: number): boolean {
    const ack = seg.ack;
    // RFC 5961 §5.2: the ACK must lie in [SND.UNA - MAX.SND.WND, SND.NXT];
    // otherwise it is an injection attempt or garbage: challenge ACK, drop.
    if (seqGt(ack, this.sndMax) || seqLt(ack, seqAdd(this.sndUna, -Math.max(this.maxSndWnd, 1)))) {
      this.tcp.drop('BAD_ACK');
      this.challengeAck(now);
      return false;
    }
    const o = seg.opts;
    // SACK blocks update the scoreboard (RFC 2018 §4).
    let sackNew = false;
    if (this.sackOk && o.sackCount > 0) {
      this.sackBlocksIn += o.sackCount;
      for (let k = 0; k < o.sackCount; k++) {
        const s = o.sack[2 * k]!, e = o.sack[2 * k + 1]!;
        if (seqLe(e, s) || seqLe(e, ack) || seqGt(e, this.sndMax)) continue; // D-SACK or bogus
        if (this.sbAdd(seqMax(s, ack), e)) sackNew = true;
      }
    }
    const oldWnd = this.sndWnd;
    // Window update (§3.10.7.4: SND.WL1/SND.WL2 rule).
    if (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLe(this.sndWl2, ack))) {
      this.sndWnd = seg.wnd << this.sndWscale;
      this.sndWl1 = seg.seq;
      this.sndWl2 = ack;
      if (this.sndWnd > this.maxSndWnd) this.maxSndWnd = this.sndWnd;
      if (this.sndWnd > 0 && this.persistTimer.armed) {
        this.tcp.timers.cancel(this.persistTimer);
        this.persistBackoff = 0;
      }
    }

    if (seqGt(ack, this.sndUna)) {
      const acked = seqDiff(ack, this.sndUna);
      // RTT sample: timestamps (RFC 7323 §4) when on, else Karn's rule (RFC 6298 §3).
      let rtt = -1;
      if (this.tsOk && o.hasTimestamps && o.tsEcr !== 0) rtt = this.rttSampleTs(o.tsEcr, now);
      else if (this.rttTime >= 0 && seqGt(ack, this.rttSeq)) { rtt = now - this.rttTime; this.rttSample(rtt); }
      if (this.rttTime >= 0 && seqGt(ack, this.rttSeq)) this.rttTime = -1;
      // Release acknowledged data from the send buffer.
      const dataAcked = Math.min(Math.max(seqDiff(ack, this.sndBufSeq), 0), this.sndBuf.length);
      if (dataAcked > 0) {
        this.sndBuf.consume(dataAcked);
        this.sndBufSeq = seqAdd(this.sndBufSeq, dataAcked);
        this.bytesOut += dataAcked;
        if (this.wantDrain) this.tcp.markDrain(this);
      }
      this.sndUna = ack;
      // Urgent mode ends once SND.UNA reaches SND.UP (Linux: snd_up = snd_una in tcp_clean_rtx_queue).
      if (this.sndUrgent && seqGe(ack, this.sndUp)) this.sndUrgent = false;
      if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
      if (seqLt(this.highRxt, ack)) this.highRxt = ack;
      this.sbTrim();
      this.retries = 0;
      // RFC 6298 §2.3/§5: the RTO is recomputed from a new RTT measurement
      // only. An ACK without one (Karn: it covers retransmitted data) keeps
      // the backed-off RTO of §5.5 and the 3 s of §5.7 ("once a new RTT
      // measurement is obtained ... [the RTO may] collapse back down"), as
      // Linux does (icsk_rto changes only in tcp_set_rto() on a sample).
      if (rtt >= 0) this.rto = this.computeRto();
      this.dupAcks = 0;
      if (this.inRecovery) {
        if (seqGe(ack, this.recoveryPoint)) {
          // Full ACK: leave recovery (RFC 6582 §3.2 step 3; RFC 6675 §5).
          this.inRecovery = false;
          this.cwnd = this.sackOk ? this.ssthresh : Math.min(this.ssthresh, Math.max(this.flight, this.mss) + this.mss);
          this.cc.onRecoveryExit(this, now);
        } else if (!this.sackOk) {
          // Partial ACK (RFC 6582 §3.2 step 4): retransmit the first unacked
          // segment, deflate cwnd by the amount acked, add back one SMSS.
          this.retransmitAt(this.sndUna, this.mss, now);
          this.cwnd = Math.max(this.cwnd - acked + (acked >= this.mss ? this.mss : 0), this.mss);
        }
      } else if (this.cwndLimited) {
        this.cc.onAck(this, acked, rtt, now);
      }
      // RFC 6298 §5.2/5.3: all acked -> stop the timer, else restart it.
      if (this.sndUna === this.sndMax) this.tcp.timers.cancel(this.rtxTimer);
      else this.tcp.timers.arm(this.rtxTimer, now + this.rto);
    } else if (ack === this.sndUna && seg.dataLen === 0 && !(seg.flags & (FLAG.SYN | FLAG.FIN))
      && this.flight > 0 && (this.sndWnd === oldWnd || sackNew)) {
      // A duplicate ACK (RFC 5681 §2 definition; with SACK, new SACK info counts too).
      this.dupAcks++;
      this.dupAcksIn++;
      if (this.inRecovery) {
        if (!this.sackOk) this.cwnd += this.mss; // RFC 6582 §3.2 step 3: inflate
      } else if (this.dupAcks >= this.cfg.dupThresh || (this.sackOk && this.sacked >= this.cfg.dupThresh * this.mss)) {
        this.enterRecovery(now);
      }
    }
    if (!this.inRecovery && this.sackOk && this.sacked > 0 && this.sacked >= this.cfg.dupThresh * this.mss && this.flight > 0) {
      // RFC 6675 §5 (IsLost(SND.UNA)): enough SACKed above the hole.
      this.enterRecovery(now);
    }
    return true;
  }

  private enterRecovery(now: number): void {
    this.inRecovery = true;
    this.recoveryPoint = this.sndMax;
    this.ssthresh = this.cc.ssthresh(this, now);
    this.cwnd = this.sackOk ? this.ssthresh : this.ssthresh + this.cfg.dupThresh * this.mss;
    this.highRxt = this.sndUna;
    this.fastRetransmits++;
    this.rttTime = -1; // Karn
    this.retransmitAt(this.sndUna, this.mss, now);
    this.tcp.timers.arm(this.rtxTimer, now + this.rto);
  }

  // --- SACK scoreboard (RFC 6675 §3)

  private sbAdd(s: number, e: number): boolean {
    // Insert [s, e) and merge; returns true when new bytes were SACKed.
    let i = 0;
    while (i < this.sbCount && seqLt(this.sbEnd[i]!, s)) i++;
    let ns = s, ne = e, j = i;
    while (j < this.sbCount && seqLe(this.sbStart[j]!, ne)) {
      if (seqLt(this.sbStart[j]!, ns)) ns = this.sbStart[j]!;
      if (seqGt(this.sbEnd[j]!, ne)) ne = this.sbEnd[j]!;
      j++;
    }
    const merged = j - i;
    if (merged === 1 && this.sbStart[i] === ns && this.sbEnd[i] === ne) return false;
    if (merged === 0 && this.sbCount === MAX_SB) return false;
    // Replace entries [i, j) with the one range.
    const shift = 1 - merged;
    if (shift !== 0) {
      this.sbStart.copyWithin(i + 1, j, this.sbCount);
      this.sbEnd.copyWithin(i + 1, j, this.sbCount);
      this.sbCount += shift;
    }
    this.sbStart[i] = ns;
    this.sbEnd[i] = ne;
    this.sbRecount();
    return true;
  }

  private sbTrim(): void {
    if (this.sbCount === 0) return;
    let i = 0;
    while (i < this.sbCount && seqLe(this.sbEnd[i]!, this.sndUna)) i++;
    if (i > 0) {
      this.sbStart.copyWithin(0, i, this.sbCount);
      this.sbEnd.copyWithin(0, i, this.sbCount);
      this.sbCount -= i;
    }
    if (this.sbCount > 0 && seqLt(this.sbStart[0]!, this.sndUna)) this.sbStart[0] = this.sndUna;
    this.sbRecount();
  }

  private sbRecount(): void {
    let n = 0;
    for (let i = 0; i < this.sbCount; i++) n += seqDiff(this.sbEnd[i]!, this.sbStart[i]!);
    this.sacked = n;
  }

  /** If seq lies in a SACKed range, the range's end; else -1. */
  private sbCovers(seq: number): number {
    for (let i = 0; i < this.sbCount; i++) {
      if (seqLe(this.sbStart[i]!, seq) && seqLt(seq, this.sbEnd[i]!)) return this.sbEnd[i]!;
      if (seqGt(this.sbStart[i]!, seq)) break;
    }
    return -1;
  }

  /** The start of the first SACKed range above seq, or -1. */
  private sbNextStart(seq: number): number {
    for (let i = 0; i < this.sbCount; i++) if (seqGt(this.sbStart[i]!, seq)) return this.sbStart[i]!;
    return -1;
  }

  /**
   * RFC 6675 §4 pipe, in bytes: outstanding minus SACKed minus the holes
   * below the highest SACK not yet retransmitted (deemed lost).
   */
  private pipe(): number {
    const out = seqDiff(this.sndMax, this.sndUna) - this.sacked;
    if (this.sbCount === 0) return out;
    const high = this.sbEnd[this.sbCount - 1]!;
    const from = seqMax(this.highRxt, this.sndUna);
    if (seqGe(from, high)) return out;
    let sackedAbove = 0;
    for (let i = 0; i < this.sbCount; i++) {
      const s = seqMax(this.sbStart[i]!, from);
      if (seqLt(s, this.sbEnd[i]!)) sackedAbove += seqDiff(this.sbEnd[i]!, s);
    }
    const lost = seqDiff(high, from) - sackedAbove;
    return Math.max(out - lost, 0);
  }

  // =====================================================================
  // Urgent data (§3.8.5, §3.10.7.4 sixth; RFC 6093)
  // =====================================================================
  //
  // The urgent pointer points to the octet after the urgent data (RFC 6093
  // §4, adopted by RFC 9293 §3.1): urgent data is everything the application
  // has not read up to RCV.UP. We deliver it inline, in order, with the rest
  // of the stream, as RFC 6093 §5 recommends (SO_OOBINLINE semantics): the
  // stream is never altered, and the application learns where the urgent
  // data ends through onUrgent/urgentPending (MUST-32, MUST-33).
  //
  // Linux differs by default (tcp_check_urg/tcp_urg, without SO_OOBINLINE):
  // it takes the byte before the pointer out of the stream as one byte of
  // "out-of-band" data for recv(MSG_OOB), so that byte never appears inline;
  // a later pointer replaces an unread one, and its byte is lost. It reads a
  // pointer of 0 as SEG.SEQ itself (the decrement is skipped), where RFC 6093
  // means "urgent data ended before this segment". It ignores pointers to
  // data already read, as we do.

  /** §3.10.7.4 sixth: RCV.UP <- max(RCV.UP, SEG.SEQ + SEG.UP); signal when it moves past the read point. */
  private receiveUrgent(segSeq: number, up: number): void {
    this.tcp.counters.urgSegsIn++;
    const ptr = seqAdd(segSeq, up);
    // Without pending urgent data the floor is the read point: a pointer to
    // bytes already read (a retransmitted URG segment) is old news.
    const floor = this.rcvUrgent ? this.rcvUp : this.readSeq;
    if (!seqGt(ptr, floor)) return; // not an advance: MUST-32 asks for no new signal
    this.rcvUp = ptr;
    this.rcvUrgent = true;
    this.urgNotify = true;
  }

  /** The sequence number of the next byte the application will read. */
  private get readSeq(): number {
    return seqAdd(this.rcvNxt, -(this.rcvBuf.length + (this.finRcvd ? 1 : 0)));
  }

  /**
   * Urgent bytes not yet read by the application (MUST-33): RCV.UP minus the
   * next byte it will read, 0 when none. Inside onData the count starts at
   * the chunk's first byte: buf[off, off + min(len, urgentPending)) is urgent.
   */
  get urgentPending(): number {
    if (!this.rcvUrgent) return 0;
    const d = seqDiff(this.rcvUp, this.readSeq);
    return d > 0 ? d : 0;
  }

  /** After the application read: urgent mode ends once it has read up to RCV.UP. */
  private urgentRead(): void {
    if (this.rcvUrgent && seqLe(this.rcvUp, this.readSeq)) this.rcvUrgent = false;
  }

  // =====================================================================
  // Receiving text and FIN (§3.10.7.4 seventh and eighth)
  // =====================================================================

  private receiveText(seg: Segment, now: number): void {
    const f = seg.flags;
    const canReceive = this.state === 'ESTABLISHED' || this.state === 'FIN-WAIT-1' || this.state === 'FIN-WAIT-2';
    if (seg.dataLen > 0) {
      if (!canReceive) {
        // CLOSE-WAIT, CLOSING, LAST-ACK: the peer already sent FIN; ignore (§3.10.7.4 seventh).
        this.tcp.drop('DATA_AFTER_FIN');
      } else {
        this.receiveData(seg, now);
      }
    }
    if (f & FLAG.FIN) {
      const finSeq = seqAdd(seg.seq, seg.dataLen);
      if (seqLt(finSeq, this.rcvNxt)) {
        this.ackNow = true; // retransmitted FIN
      } else if (seqDiff(finSeq, this.rcvNxt) < this.rcvBuf.free) {
        this.finSeqRcvd = finSeq;
      }
    }
    if (this.finSeqRcvd >= 0 && this.finSeqRcvd === this.rcvNxt && !this.finRcvd) this.processFin(now);
  }

  private receiveData(seg: Segment, now: number): void {
    let seq = seg.seq;
    let off = seg.dataOff;
    let len = seg.dataLen;
    // Trim what we already have (left edge) and what does not fit (right edge).
    const dup = seqDiff(this.rcvNxt, seq);
    if (dup > 0) {
      if (dup >= len) { this.ackNow = true; this.tcp.drop('DUPLICATE'); return; }
      seq = this.rcvNxt; off += dup; len -= dup;
      this.ackNow = true; // partial duplicate: ACK at once (the peer retransmitted)
    }
    // The right edge is the window we advertised (rcvAdv, plus what rounding
    // to the window scale may have added), not the buffer: data beyond it is
    // trimmed (§3.10.7.4), so the ring never holds more than we offered.
    const room = Math.min(this.rcvBuf.free, Math.max(seqDiff(this.rcvAdv, this.rcvNxt), 0) + (1 << this.rcvWscale) - 1);
    const at = seqDiff(seq, this.rcvNxt);
    if (at + len > room) {
      len = room - at;
      seg.flags &= ~FLAG.FIN;
      if (len <= 0) { this.ackNow = true; this.tcp.drop('OUT_OF_WINDOW'); return; }
    }
    this.bytesIn += len;
    const base = this.rcvBuf.length;
    this.rcvBuf.writeAt(base + at, seg.buf, off, len);
    const end = seqAdd(seq, len);
    if (at === 0) {
      let adv = len;
      let newNxt = end;
      // Holes filled: pull in the out-of-order ranges that now touch.
      let merged = true;
      const hadOoo = this.oooCount > 0;
      while (merged && this.oooCount > 0) {
        merged = false;
        for (let i = 0; i < this.oooCount; i++) {
          if (seqLe(this.oooStart[i]!, newNxt)) {
            if (seqGt(this.oooEnd[i]!, newNxt)) { adv += seqDiff(this.oooEnd[i]!, newNxt); newNxt = this.oooEnd[i]!; }
            this.oooRemove(i);
            merged = true;
            break;
          }
        }
      }
      this.rcvBuf.commit(adv);
      this.rcvNxt = newNxt;
      this.ackPending += adv;
      this.rcvEarned += adv;
      // RFC 5681 §4.2: ACK at once when a segment fills a hole; RFC 1122:
      // at least every second full-sized segment (Linux: > 1 rcv_mss pending).
      if (hadOoo || this.ackPending >= 2 * this.mss) this.ackNow = true;
      else if (!this.delackTimer.armed) this.tcp.timers.arm(this.delackTimer, now + this.cfg.delayedAckMs);
    } else {
      // Out of order: keep it in place and ACK at once with SACK (RFC 5681 §4.2, RFC 2018 §4).
      this.outOfOrder++;
      if (!this.oooAdd(seq, end)) { this.tcp.drop('OOO_QUEUE_FULL'); }
      this.ackNow = true;
    }
  }

  private oooAdd(s: number, e: number): boolean {
    // Merge with overlapping ranges; the result goes first (most recent, RFC 2018 §4).
    for (let i = 0; i < this.oooCount; i++) {
      if (seqLe(this.oooStart[i]!, e) && seqLe(s, this.oooEnd[i]!)) {
        if (seqLt(this.oooStart[i]!, s)) s = this.oooStart[i]!;
        if (seqGt(this.oooEnd[i]!, e)) e = this.oooEnd[i]!;
        this.oooRemove(i);
        i = -1;
      }
    }
    if (this.oooCount === MAX_OOO) return false;
    this.oooStart.copyWithin(1, 0, this.oooCount);
    this.oooEnd.copyWithin(1, 0, this.oooCount);
    this.oooStart[0] = s;
    this.oooEnd[0] = e;
    this.oooCount++;
    return true;
  }

  private oooRemove(i: number): void {
    this.oooStart.copyWithin(i, i + 1, this.oooCount);
    this.oooEnd.copyWithin(i, i + 1, this.oooCount);
    this.oooCount--;
  }

  private processFin(now: number): void {
    this.finRcvd = true;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.ackNow = true;
    switch (this.state) {
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
        this.setState('CLOSE-WAIT', now);
        break;
      case 'FIN-WAIT-1':
        // Our FIN not yet acknowledged: simultaneous close (§3.6 figure 13).
        this.setState(this.finAcked ? 'TIME-WAIT' : 'CLOSING', now);
        break;
      case 'FIN-WAIT-2':
        this.setState('TIME-WAIT', now);
        break;
      default:
        break;
    }
  }

  // =====================================================================
  // Application side
  // =====================================================================

  /** Queues bytes for sending; returns how many fit in the send buffer (0..len). */
  write(buf: Uint8Array, off = 0, len = buf.length - off): number {
    if (this.finQueued || !(this.state === 'ESTABLISHED' || this.state === 'CLOSE-WAIT' || this.state === 'SYN-SENT' || this.state === 'SYN-RECEIVED')) return 0;
    const n = this.sndBuf.write(buf, off, len);
    if (n < len) this.wantDrain = true;
    if (n > 0) this.tcp.markDirty(this);
    return n;
  }

  /**
   * SEND with the URGENT flag (RFC 9293 §3.10.2; §3.8.5 MUST-30, MUST-31):
   * queues like write() and moves SND.UP to the end of what was queued, so
   * every byte up to there is urgent, however many segments it spans. Until
   * SND.UNA reaches SND.UP, every segment whose SEG.SEQ is below SND.UP
   * carries URG and SND.UP - SEG.SEQ, retransmissions included (emit()).
   * Returns how many bytes fit, like write(); a later call with the rest
   * moves SND.UP on. RFC 6093 §5 advises new applications not to use it.
   */
  writeUrgent(buf: Uint8Array, off = 0, len = buf.length - off): number {
    const n = this.write(buf, off, len);
    if (n > 0) {
      this.sndUp = this.dataEnd;
      this.sndUrgent = true;
    }
    return n;
  }

  /** Free space in the send buffer. */
  get writable(): number { return this.sndBuf.free; }
  /** Bytes queued and not yet acknowledged. */
  get sendQueued(): number { return this.sndBuf.length; }

  /** Half-close (RFC 9293 CLOSE call): FIN after every queued byte. */
  end(now?: number): void {
    switch (this.state) {
      case 'SYN-SENT':
        // §3.10.4: delete the TCB (nothing was ever synchronized).
        this.error = null;
        this.setState('CLOSED', now ?? this.tcp.appNow());
        return;
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
        this.finQueued = true;
        this.setState('FIN-WAIT-1', now ?? this.tcp.appNow());
        break;
      case 'CLOSE-WAIT':
        this.finQueued = true;
        this.setState('LAST-ACK', now ?? this.tcp.appNow());
        break;
      default:
        return;
    }
    this.tcp.markDirty(this);
  }

  /**
   * Full close by the application. Like Linux's close(): unread received
   * data turns it into an abortive close (RST, RFC 2525 §2.17); else FIN.
   */
  close(now?: number): void {
    this.orphaned = true;
    this.handler = NO_HANDLER;
    const t = now ?? this.tcp.appNow();
    if (this.rcvBuf.length > 0 && this.synchronized) { this.abort(t, 'ECONNABORTED', 'closed with unread data'); return; }
    this.end(t);
    if (this.state === 'FIN-WAIT-2') this.tcp.timers.arm(this.waitTimer, t + this.cfg.finWait2Timeout);
  }

  /** SO_LINGER 0 close: RST now, drop everything. */
  reset(now?: number): void {
    this.abort(now ?? this.tcp.appNow(), 'ECONNABORTED', 'reset by application', true);
    this.error = null;
  }

  /** Resumes delivery after onData consumed less than offered. */
  resumeReading(): void {
    if (!this.readPaused) return;
    this.readPaused = false;
    this.tcp.markDirty(this);
  }

  /** Bytes buffered for the application. */
  get readable(): number { return this.rcvBuf.length; }

  /** Reads up to len buffered bytes into dst (pull-style alternative to onData). */
  read(dst: Uint8Array, off = 0, len = dst.length - off): number {
    const n = Math.min(len, this.rcvBuf.length);
    this.rcvBuf.readAt(0, dst, off, n);
    this.rcvBuf.consume(n);
    if (n > 0) { this.urgentRead(); this.tcp.markDirty(this); }
    return n;
  }

  setNoDelay(on = true): void { this.noDelay = on; if (on) this.tcp.markDirty(this); }

  setKeepAlive(on: boolean, idleMs?: number, intervalMs?: number, count?: number): void {
    this.keepAlive = on;
    if (idleMs !== undefined && idleMs > 0) this.keepAliveIdle = idleMs;
    if (intervalMs !== undefined && intervalMs > 0) this.keepAliveInterval = intervalMs;
    if (count !== undefined && count > 0) this.keepAliveCount = count;
    if (!on) this.tcp.timers.cancel(this.keepaliveTimer);
    else if (this.state === 'ESTABLISHED' || this.state === 'CLOSE-WAIT') this.tcp.timers.arm(this.keepaliveTimer, this.lastRecv + this.keepAliveIdle);
  }

  private notifyConnect(): void {
    if (this.connectNotified) return;
    this.connectNotified = true;
    this.handler.onConnect?.(this);
  }

  /** Hands buffered bytes to the application and sends window updates. Called after input and on poll. */
  deliverToApp(now: number): void {
    if (this.urgNotify) {
      // MUST-32: tell the application asynchronously, before the bytes.
      this.urgNotify = false;
      const pending = this.urgentPending;
      if (pending > 0) this.handler.onUrgent?.(this, pending);
      if (this.state === 'CLOSED') return;
    }
    const h = this.handler;
    if (this.rcvBuf.length > 0 && h.onData !== undefined) {
      const before = seqAdd(this.rcvNxt, this.rcvBuf.free);
      while (!this.readPaused && this.rcvBuf.length > 0 && this.state !== 'CLOSED') {
        const n = this.rcvBuf.contiguous();
        const head = this.rcvBuf.head;
        const took = h.onData(this, this.rcvBuf.buf, head, n);
        const k = Math.max(0, Math.min(took, n));
        this.rcvBuf.consume(k);
        if (k < n) this.readPaused = true;
      }
      this.urgentRead();
      if (this.state === 'CLOSED') return;
      if (this.state !== 'TIME-WAIT') this.maybeWindowUpdate(before);
    }
    if (this.finRcvd && this.rcvBuf.length === 0 && !this.endDelivered && !this.readPaused) {
      this.endDelivered = true;
      h.onEnd?.(this);
    }
    if (this.state === 'TIME-WAIT' && this.endDelivered && !this.closeNotified) {
      this.rcvBuf.release();
      this.notifyClose(null);
    }
  }

  private maybeWindowUpdate(_before: number): void {
    // Receiver SWS avoidance (RFC 9293 §3.8.6.2.2): announce a larger window
    // only when it grew by min(buffer/2, MSS); Linux ACKs at once when the
    // window can grow by at least 2·MSS after the application read.
    const edge = seqAdd(this.rcvNxt, Math.min(this.rcvBuf.free, this.rcvWndClamp));
    const grow = seqDiff(edge, this.rcvAdv);
    if (grow >= Math.min(this.rcvBuf.capacity >>> 1, 2 * this.advMss)) this.ackNow = true;
  }

  /** Fires drain if the application waits for send-buffer room. */
  drainIfWanted(): void {
    if (this.wantDrain && this.sndBuf.free > 0 && !this.finQueued) {
      this.wantDrain = false;
      this.handler.onDrain?.(this);
    }
  }

  // =====================================================================
  // Output
  // =====================================================================

  /** The window to advertise, unscaled bytes; moves rcvAdv (never left). */
  private selectWindow(): number {
    // The clamp grows here, when a window is advertised, not per segment:
    // an application read still opens the window exactly as before, and
    // only then may an ACK go out early (maybeWindowUpdate).
    if (this.rcvEarned > 0) {
      this.rcvWndClamp = Math.min(this.rcvBuf.capacity, this.rcvWndClamp + 2 * this.rcvEarned);
      this.rcvEarned = 0;
    }
    const free = Math.min(this.rcvBuf.free, this.rcvWndClamp);
    const maxWin = 65535 << this.rcvWscale;
    const edge = seqAdd(this.rcvNxt, Math.min(free, maxWin));
    const grow = seqDiff(edge, this.rcvAdv);
    if (grow >= Math.min(this.rcvBuf.capacity >>> 1, this.advMss) || seqDiff(this.rcvAdv, this.rcvNxt) <= 0 && grow > 0 && free >= this.advMss) {
      this.rcvAdv = edge;
    }
    if (seqLt(this.rcvAdv, this.rcvNxt)) this.rcvAdv = this.rcvNxt;
    const w = seqDiff(this.rcvAdv, this.rcvNxt);
    return w;
  }

  /** Sends what the state, windows and policies allow; then a pure ACK if one is owed. */
  output(now: number): void {
    this.dirty = false;
    if (this.state === 'CLOSED' || this.state === 'LISTEN') return;
    if (this.state === 'SYN-SENT' || this.state === 'SYN-RECEIVED') {
      if (this.ackNow) this.sendAck(now);
      return;
    }
    if (this.state === 'TIME-WAIT') { if (this.ackNow) this.sendAck(now); return; }
    let sent = false;
    if (this.inRecovery && this.sackOk) sent = this.outputSackRecovery(now);
    sent = this.outputData(now) || sent;
    if (this.ackNow && !sent) this.sendAck(now);
    this.drainIfWanted();
  }

  private outputData(now: number): boolean {
    let sent = false;
    const dataEnd = this.dataEnd;
    this.cwndLimited = false;
    for (;;) {
      // Go-back-N after an RTO skips what the peer already SACKed.
      if (seqLt(this.sndNxt, this.sndMax) && this.sbCount > 0) {
        const e = this.sbCovers(this.sndNxt);
        if (e !== -1) { this.sndNxt = e; continue; }
      }
      const wndEdge = seqAdd(this.sndUna, this.sndWnd);
      const cwndEdge = seqAdd(this.sndUna, this.cwnd);
      let avail = seqDiff(dataEnd, this.sndNxt);
      if (avail < 0) avail = 0;
      const finPending = this.finQueued && seqLe(this.sndNxt, dataEnd) && !(this.finAcked);
      if (avail === 0 && !(finPending && this.sndNxt === dataEnd)) break;
      let usable = Math.min(seqDiff(wndEdge, this.sndNxt), seqDiff(cwndEdge, this.sndNxt));
      if (this.inRecovery && this.sackOk) usable = Math.min(seqDiff(wndEdge, this.sndNxt), this.cwnd - this.pipe());
      let len = Math.min(avail, this.mss);
      if (seqLt(this.sndNxt, this.sndMax)) {
        // Retransmitting after an RTO: do not run past the next SACKed block.
        const ns = this.sbNextStart(this.sndNxt);
        if (ns !== -1) len = Math.min(len, seqDiff(ns, this.sndNxt));
      }
      if (len > 0 && usable < len) {
        if (seqDiff(cwndEdge, this.sndNxt) < len) this.cwndLimited = true;
        const idle = this.sndUna === this.sndMax;
        if (usable <= 0 || (usable < this.mss && usable < avail && !idle)) {
          // Zero window with nothing in flight: the persist timer probes it (RFC 9293 §3.8.6.1).
          if (this.sndWnd === 0 || seqDiff(wndEdge, this.sndNxt) <= 0) this.armPersist(now);
          break;
        }
        // Sender SWS avoidance (RFC 9293 §3.8.6.2.1) holds a sub-MSS piece
        // while data is in flight; with nothing in flight it is sent (the
        // override), or the connection would sit on a sliver of window forever.
        len = usable;
      }
      const isNew = seqGe(this.sndNxt, this.sndMax);
      // Nagle (RFC 896, RFC 9293 §3.7.4): hold a small new segment while data is in flight.
      if (len > 0 && len < this.mss && isNew && !this.noDelay && this.sndUna !== this.sndMax
        && !(this.finQueued && seqAdd(this.sndNxt, len) === dataEnd)) break;
      const withFin = finPending && seqAdd(this.sndNxt, len) === dataEnd;
      if (len === 0 && !withFin) break;
      if (len === 0 && withFin && seqDiff(wndEdge, this.sndNxt) < 0 && this.sndWnd > 0) break;
      const flags = FLAG.ACK | (withFin ? FLAG.FIN : 0) | (len > 0 && seqAdd(this.sndNxt, len) === dataEnd ? FLAG.PSH : 0);
      const used = this.emit(this.sndNxt, len, flags, now);
      if (used < 0) break;
      sent = true;
      if (!isNew) this.retransmits++;
      if (isNew && this.rttTime < 0) { this.rttTime = now; this.rttSeq = this.sndNxt; }
      this.sndNxt = seqAdd(this.sndNxt, used);
      if (seqGt(this.sndNxt, this.sndMax)) this.sndMax = this.sndNxt;
      if (!this.rtxTimer.armed) this.tcp.timers.arm(this.rtxTimer, now + this.rto);
      if (this.persistTimer.armed) { this.tcp.timers.cancel(this.persistTimer); this.persistBackoff = 0; }
      if (withFin && used === len + 1) break;
    }
    return sent;
  }

  /** RFC 6675 §5 step (C): while pipe allows, retransmit lost holes (NextSeg rule 1). New data is left to outputData. */
  private outputSackRecovery(now: number): boolean {
    let sent = false;
    const high = this.sbCount > 0 ? this.sbEnd[this.sbCount - 1]! : this.sndUna;
    for (let guard = 0; guard < 64; guard++) {
      if (this.cwnd - this.pipe() < this.mss) break;
      let s = seqMax(this.highRxt, this.sndUna);
      const e = this.sbCovers(s);
      if (e !== -1) s = e;
      if (seqGe(s, high)) break;
      const ns = this.sbNextStart(s);
      let len = this.mss;
      if (ns !== -1) len = Math.min(len, seqDiff(ns, s));
      if (len <= 0) break;
      const used = this.retransmitAt(s, len, now);
      if (used === 0) break;
      this.highRxt = seqAdd(s, used);
      sent = true;
    }
    return sent;
  }

  /** Retransmits up to len bytes from seq (with the FIN if it falls there); returns the sequence space sent, 0 when nothing. */
  private retransmitAt(seq: number, len: number, now: number): number {
    const dataEnd = this.dataEnd;
    let n = Math.min(len, Math.max(seqDiff(dataEnd, seq), 0));
    n = Math.min(n, this.mss);
    const withFin = this.finSent && seqAdd(seq, n) === dataEnd;
    if (n === 0 && !withFin) return 0;
    const flags = FLAG.ACK | (withFin ? FLAG.FIN : 0) | (n > 0 && seqAdd(seq, n) === dataEnd ? FLAG.PSH : 0);
    const used = this.emit(seq, n, flags, now);
    if (used <= 0) return 0;
    this.retransmits++;
    return used;
  }

  sendAck(now: number): void {
    // SND.NXT in the RFC's sense: the highest sequence sent. Ours may be
    // pulled back for go-back-N after an RTO; an ACK carrying that older
    // number would look like an old duplicate to the peer (and two such
    // peers would ACK each other's ACKs forever).
    this.emit(this.sndMax, 0, FLAG.ACK, now);
  }

  /** A control segment outside the data flow (RST, probe): seq given, no payload. */
  sendControl(seq: number, ack: number, flags: number, now: number): void {
    this.emit(seq, 0, flags, now, ack);
  }

  /**
   * Builds one segment straight into a link frame: header, options and
   * payload copied once from the send ring. Returns false without a frame.
   */
  private emit(seq: number, len: number, flags: number, now: number, ackOverride = -1): number {
    const w = this.tcp.writer;
    const off = w.begin(this.remoteAddr, 6, now);
    if (off < 0) { this.tcp.counters.txNoFrame++; return -1; }
    const mem = w.mem;
    const o = optsOut;
    o.clear();
    const syn = (flags & FLAG.SYN) !== 0;
    const rst = (flags & FLAG.RST) !== 0;
    if (syn) {
      o.mss = this.advMss;
      const offerWs = this.cfg.windowScaling && (this.state === 'SYN-SENT' || this.wscaleOk);
      if (offerWs) o.wscale = this.rcvWscale;
      o.sackPermitted = this.cfg.sack && (this.state === 'SYN-SENT' || this.sackOk);
      o.timestamps = this.cfg.timestamps && (this.state === 'SYN-SENT' || this.tsOk);
    } else if (!rst) {
      o.timestamps = this.tsOk;
      if (this.sackOk && this.oooCount > 0 && (flags & FLAG.ACK)) {
        const maxBlocks = o.timestamps ? 3 : 4;
        const n = Math.min(this.oooCount, maxBlocks);
        for (let k = 0; k < n; k++) { o.sack[2 * k] = this.oooStart[k]!; o.sack[2 * k + 1] = this.oooEnd[k]!; }
        o.sackCount = n;
      }
    }
    if (o.timestamps) {
      o.tsVal = (this.tcp.tsClock(now) + this.tsOffset) >>> 0;
      o.tsEcr = (flags & FLAG.ACK) ? this.tsRecent : 0;
    }
    const optLen = tcpOptionsLen(o);
    const hl = TCP.HEADER_LEN + optLen;
    if (len > w.room - hl) {
      // SACK blocks or a smaller path MTU left less room: send less, and the FIN later.
      len = Math.max(0, w.room - hl);
      flags &= ~(FLAG.FIN | FLAG.PSH);
    }
    writeTcpOptions(mem, off + TCP.HEADER_LEN, o);
    if (len > 0) this.sndBuf.readAt(seqDiff(seq, this.sndBufSeq), mem, off + hl, len);
    let win = 0;
    let ack = 0;
    if (flags & FLAG.ACK) {
      win = rst ? 0 : this.selectWindow();
      ack = ackOverride >= 0 ? ackOverride : this.rcvNxt;
      if (win === 0 && !rst) this.tcp.counters.zeroWindowAdvertised++;
      // The SYN's own window is never scaled (RFC 7323 §2.2).
      win = syn ? Math.min(win, 65535) : Math.min(win >>> this.rcvWscale, 65535);
      if (!syn && (win << this.rcvWscale) < seqDiff(this.rcvAdv, this.rcvNxt)) {
        // Rounding down must not move the advertised edge left: round up instead.
        win = Math.min(Math.ceil(seqDiff(this.rcvAdv, this.rcvNxt) / (1 << this.rcvWscale)), 65535);
      }
      this.lastAckSent = this.rcvNxt;
      this.ackNow = false;
      this.ackPending = 0;
      if (this.delackTimer.armed) this.tcp.timers.cancel(this.delackTimer);
    } else if (syn) {
      win = Math.min(this.rcvBuf.free, 65535);
      this.rcvAdv = seqAdd(this.rcvNxt, win);
    }
    let urp = 0;
    if (this.sndUrgent && !syn && !rst && seqLt(seq, this.sndUp)) {
      // Urgent mode (RFC 9293 §3.8.5): URG and SND.UP - SEG.SEQ on every
      // segment below SND.UP, pure ACKs and retransmissions too. A pointer
      // beyond 16 bits is clamped as Linux's __tcp_transmit_skb does: 0xFFFF
      // while that still points past everything sent (the receiver learns
      // urgent data is coming), else no URG at all: a pointer landing inside
      // data already sent would make a receiver that takes the byte before
      // the pointer out of band (Linux by default) pull it from mid-stream.
      const d = seqDiff(this.sndUp, seq);
      if (d < 0x10000) urp = d;
      else if (seqGt(seqAdd(seq, 0xffff), this.sndMax)) urp = 0xffff;
      if (urp > 0) { flags |= FLAG.URG; this.tcp.counters.urgSegsOut++; }
    }
    writeTcpHeader(mem, off, this.localPort, this.remotePort, seq, ack, flags, win, optLen, urp);
    const total = hl + len;
    const ck = finish(sum16(mem, off, total, pseudo4(w.src, this.remoteAddr, 6, total)));
    wr16(mem, off + TCP.CHECKSUM, ck);
    this.segsOut++;
    this.tcp.counters.segsOut++;
    if (len > 0 && seqLt(seq, this.sndMax)) this.tcp.counters.retransSegs++;
    w.commit(total, now);
    const used = len + (flags & FLAG.FIN ? 1 : 0);
    // Anything sent (a retransmission may carry more than the original when
    // options shrank it the first time) extends the highest sequence sent.
    if (used > 0 && seqGt(seqAdd(seq, used), this.sndMax)) this.sndMax = seqAdd(seq, used);
    return used;
  }

  // =====================================================================
  // Timers
  // =====================================================================

  /** RFC 6298 §2.3: SRTT/RTTVAR update with a new sample (ms). */
  private rttSample(r: number): void {
    if (r < 0) return;
    if (this.srtt === 0) {
      this.srtt = Math.max(r, 0.1);
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
  }

  private rttSampleTs(tsEcr: number, now: number): number {
    const r = ((this.tcp.tsClock(now) + this.tsOffset) >>> 0) - tsEcr;
    const rr = (r | 0);
    if (rr < 0 || rr > 600_000) return -1;
    this.rttSample(rr);
    return rr;
  }

  private computeRto(): number {
    if (this.srtt === 0) return this.cfg.rtoInitial;
    // RFC 6298 §2.3: RTO = SRTT + max(G, 4·RTTVAR), clamped to [min, max];
    // G = 1 ms (our clock granularity). Min is configurable (200 ms like Linux by default).
    const r = this.srtt + Math.max(1, 4 * this.rttvar);
    return Math.min(Math.max(r, this.cfg.rtoMin), this.cfg.rtoMax);
  }

  /**
   * The RTO data transmission begins with, when the handshake completes.
   *
   * RFC 6298 §5.7: if the timer expired while we awaited the ACK of our SYN
   * (active open) or SYN-ACK (passive open), and the RTO in use is below
   * 3 s, the RTO MUST be re-initialised to 3 s when data transmission
   * begins. The 1 s initial RTO of §2.1 relies on this fallback: a path
   * whose RTT exceeds 1 s shows up as a "lost" SYN, and its data must not
   * then be retransmitted every second. The RTO in use is the one computed
   * here, from the handshake's RTT sample if there is one, else rtoInitial;
   * the handshake's backoff is not carried into data transmission.
   *
   * RTT samples: under Karn's rule (§3) an ACK of a retransmitted SYN gives
   * none, so without timestamps the RTO here is rtoInitial (1 s) and 3 s
   * applies. With timestamps the SYN-ACK (or final ACK) echoes the TSval of
   * the copy it answers, so the handshake does give a valid sample (RFC
   * 6298 §3, RFC 7323 §4). It seeds SRTT and RTTVAR, but §5.7 makes no
   * exception for it, so the RTO is raised to 3 s all the same. The first
   * RTT sample from data recomputes the RTO (processAck()): the fallback
   * lasts until data is first acknowledged, longer only if that is lost.
   *
   * Linux differs (tcp_init_transfer() -> tcp_init_metrics(),
   * net/ipv4/tcp_metrics.c): it keys on the sample, not on the timer. When
   * the handshake completes with srtt still 0 it sets icsk_rto to
   * TCP_TIMEOUT_FALLBACK (3 s), replacing even a larger backed-off or
   * initial RTO; with a timestamp sample it keeps the computed RTO after a
   * lost SYN; and it falls back where no timer expired but no sample exists
   * (SYN cookies, a SYN-ACK resent for a retransmitted SYN). Here those last
   * cases start with rtoInitial.
   */
  private rtoAtDataStart(): number {
    const r = this.computeRto();
    if (!this.synTimedOut || r >= RTO_SYN_FALLBACK) return r;
    return Math.min(RTO_SYN_FALLBACK, this.cfg.rtoMax);
  }

  private onRtxTimer(now: number): void {
    switch (this.state) {
      case 'SYN-SENT':
      case 'SYN-RECEIVED': {
        const limit = this.state === 'SYN-SENT' ? this.cfg.synRetries : this.cfg.synAckRetries;
        if (this.retries >= limit) {
          if (this.state === 'SYN-RECEIVED' && this.listener !== null) { this.listener.forget(this); this.error = null; this.setState('CLOSED', now); return; }
          this.abort(now, 'ETIMEDOUT', 'connection timed out', false);
          return;
        }
        this.retries++;
        this.rtoExpirations++;
        this.retransmits++;
        this.rttTime = -1; // Karn: the retransmitted SYN is not timed
        // RFC 6298 §5.5-5.6: back off, and sendSyn() restarts the timer with
        // the doubled RTO. §5.7 then applies when the handshake completes
        // (rtoAtDataStart()).
        this.synTimedOut = true;
        this.rto = Math.min(this.rto * 2, this.cfg.rtoMax);
        this.sndNxt = this.iss;
        this.sendSyn(now);
        return;
      }
      case 'CLOSED': case 'LISTEN': case 'TIME-WAIT':
        return;
      default:
        break;
    }
    if (this.sndUna === this.sndMax) return;
    if (this.retries >= this.cfg.maxRetries) {
      // RFC 9293 §3.8.3 R2: give up and tell the user (Linux: tcp_retries2, no RST sent).
      this.abort(now, 'ETIMEDOUT', 'connection timed out (retransmissions exhausted)', false);
      return;
    }
    this.retries++;
    this.rtoExpirations++;
    // RFC 5681 §3.1 eq. 4 and 5; RFC 6298 §5.5 backoff; go-back-N from SND.UNA.
    this.ssthresh = this.inRecovery ? this.ssthresh : this.cc.ssthresh(this, now);
    this.cwnd = this.mss;
    this.cc.onRto(this, now);
    this.inRecovery = false;
    this.dupAcks = 0;
    this.rttTime = -1;
    this.rto = Math.min(this.rto * 2, this.cfg.rtoMax);
    this.sndNxt = this.sndUna;
    this.highRxt = this.sndUna;
    // The first segment goes out regardless of the window (a zero window is the persist timer's job).
    const used = this.retransmitAt(this.sndUna, this.mss, now);
    if (used === 0) this.outputData(now);
    else this.sndNxt = seqAdd(this.sndUna, used);
    this.tcp.timers.arm(this.rtxTimer, now + this.rto);
  }

  private armPersist(now: number): void {
    if (this.persistTimer.armed || this.rtxTimer.armed && this.sndUna !== this.sndMax) return;
    this.zeroWindowStalls++;
    const t = Math.min(Math.max(this.computeRto(), this.cfg.rtoMin) * (1 << Math.min(this.persistBackoff, 16)), this.cfg.rtoMax);
    this.tcp.timers.arm(this.persistTimer, now + t);
  }

  private onPersistTimer(now: number): void {
    if (!(this.state === 'ESTABLISHED' || this.state === 'CLOSE-WAIT' || this.state === 'FIN-WAIT-1' || this.state === 'LAST-ACK' || this.state === 'CLOSING')) return;
    if (this.sndWnd > 0) { this.output(now); return; }
    // A peer that stops answering probes is dead, not just busy: give up
    // after maxRetries unanswered probes (Linux tcp_probe_timer). A peer that
    // answers with a zero window is probed forever (RFC 9293 §3.8.6.1).
    if (this.zeroWindowProbes > 0 && this.lastRecv < this.lastProbeAt) {
      if (++this.probesUnanswered >= this.cfg.maxRetries) {
        this.abort(now, 'ETIMEDOUT', 'zero-window probes unanswered', false);
        return;
      }
    } else {
      this.probesUnanswered = 0;
    }
    this.lastProbeAt = now;
    // In urgent mode Linux (tcp_write_wakeup) first sends a probe at SND.UNA
    // itself: with no data it is acceptable even to a zero window, so its
    // URG reaches the receiver, which would ignore it on the old-sequence
    // probe below. The pointer must fit 16 bits from SND.UNA.
    if (this.sndUrgent && seqGt(this.sndUp, this.sndUna) && seqLe(this.sndUp, seqAdd(this.sndUna, 0xffff))) {
      this.sendControl(this.sndUna, this.rcvNxt, FLAG.ACK, now);
    }
    // Zero-window probe as Linux sends it: an old sequence number (SND.UNA-1),
    // no data, which any receiver answers with an ACK carrying its window.
    this.zeroWindowProbes++;
    this.sendControl(seqAdd(this.sndUna, -1), this.rcvNxt, FLAG.ACK, now);
    this.persistBackoff++;
    const t = Math.min(Math.max(this.computeRto(), this.cfg.rtoMin) * (1 << Math.min(this.persistBackoff, 16)), this.cfg.rtoMax);
    this.tcp.timers.arm(this.persistTimer, now + t);
  }

  private onKeepaliveTimer(now: number): void {
    if (!this.keepAlive) return;
    if (!(this.state === 'ESTABLISHED' || this.state === 'CLOSE-WAIT' || this.state === 'FIN-WAIT-2')) return;
    const idle = now - this.lastRecv;
    if (this.keepaliveProbes === 0 && idle < this.keepAliveIdle) {
      this.tcp.timers.arm(this.keepaliveTimer, this.lastRecv + this.keepAliveIdle);
      return;
    }
    if (this.keepaliveProbes >= this.keepAliveCount) {
      this.abort(now, 'ETIMEDOUT', 'keep-alive timed out', true);
      return;
    }
    // RFC 1122 §4.2.3.6: a probe is SEG.SEQ = SND.NXT-1 with no data.
    this.keepaliveProbes++;
    this.tcp.counters.keepAlivesSent++;
    this.sendControl(seqAdd(this.sndMax, -1), this.rcvNxt, FLAG.ACK, now);
    this.tcp.timers.arm(this.keepaliveTimer, now + this.keepAliveInterval);
  }

  private onWaitTimer(now: number): void {
    // TIME-WAIT's 2·MSL elapsed, or an orphan's FIN-WAIT-2 timed out (Linux tcp_fin_timeout).
    if (this.state === 'TIME-WAIT' || this.state === 'FIN-WAIT-2') this.setState('CLOSED', now);
  }

  info(): TcpInfo {
    return {
      state: this.state,
      localAddress: this.localAddr, localPort: this.localPort, remoteAddress: this.remoteAddr, remotePort: this.remotePort,
      srtt: this.srtt, rttvar: this.rttvar, rto: this.rto, cwnd: this.cwnd, ssthresh: this.ssthresh, mss: this.mss,
      sndWnd: this.sndWnd, rcvWnd: Math.max(seqDiff(this.rcvAdv, this.rcvNxt), 0), inFlight: this.flight,
      sndBuffered: this.sndBuf.length, rcvBuffered: this.rcvBuf.length,
      retransmits: this.retransmits, fastRetransmits: this.fastRetransmits, rtoExpirations: this.rtoExpirations,
      outOfOrder: this.outOfOrder, sackBlocksIn: this.sackBlocksIn, zeroWindowStalls: this.zeroWindowStalls,
      zeroWindowProbes: this.zeroWindowProbes, dupAcksIn: this.dupAcksIn, bytesIn: this.bytesIn, bytesOut: this.bytesOut,
      segsIn: this.segsIn, segsOut: this.segsOut, cc: this.cc.name, windowScale: [this.sndWscale, this.rcvWscale],
      sack: this.sackOk, timestamps: this.tsOk,
    };
  }
}

const NO_HANDLER: TcpHandler = {};

const STATE_FLAGS: Record<TcpState, number> = {
  'CLOSED': 0, 'LISTEN': 0, 'SYN-SENT': 0, 'SYN-RECEIVED': 0,
  'ESTABLISHED': SYNCHRONIZED, 'FIN-WAIT-1': SYNCHRONIZED, 'FIN-WAIT-2': SYNCHRONIZED, 'CLOSE-WAIT': SYNCHRONIZED,
  'CLOSING': SYNCHRONIZED, 'LAST-ACK': SYNCHRONIZED, 'TIME-WAIT': SYNCHRONIZED,
};
