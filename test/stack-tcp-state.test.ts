// TCP state-machine tests in the packetimpact/smoltcp style: the stack under
// test is one Tcp endpoint whose NetworkWriter records every segment it sends;
// the test plays the peer with template segments. Each test reads as a
// packet trace: send(...) what the peer sends, recv() what the stack answers,
// recvNothing() when it must stay silent. Grouped by state.
import { describe, expect, it } from 'vitest';
import { Tcp, type TcpConfig } from '../src/stack/tcp/tcp.js';
import type { TcpConnection, TcpHandler } from '../src/stack/tcp/connection.js';
import { CaptureWriter, buildSegment, type SegmentSpec, type SegmentView } from '../src/stack/tcp/testing.js';
import { FLAG } from '../src/stack/wire/tcp.js';
import { TcpError } from '../src/stack/tcp/errors.js';

const LOCAL = 0x0a000002; // the stack
const REMOTE = 0x0a000001; // the peer the test plays
const LPORT = 80;
const RPORT = 40000;
const PEER_ISN = 1000;
const { SYN, ACK, FIN, RST, PSH, URG } = FLAG;

class Fixture {
  readonly w = new CaptureWriter(LOCAL);
  readonly tcp: Tcp;
  now = 0;
  /** The peer's next sequence number and the timestamp it sends. */
  seq = PEER_ISN;
  tsVal = 100;
  /** What the stack's last segment told us. */
  iss = 0;
  ack = 0;
  stackTs = 0;
  conn: TcpConnection | null = null;
  received: Uint8Array[] = [];
  /** The pending counts onUrgent was called with. */
  urgents: number[] = [];
  ended = false;
  closeErr: TcpError | null | undefined = undefined;
  connected = false;
  pauseReading = false;
  sport = RPORT;

  constructor(cfg: Partial<TcpConfig> = {}) {
    this.tcp = new Tcp(this.w, { seed: 42, config: { timeWaitMs: 60_000, ...cfg } });
  }

  handler(): TcpHandler {
    return {
      onConnect: () => { this.connected = true; },
      onData: (_c, buf, off, len) => {
        if (this.pauseReading) return 0;
        this.received.push(buf.slice(off, off + len));
        return len;
      },
      onEnd: () => { this.ended = true; },
      onClose: (_c, err) => { this.closeErr = err; },
      onUrgent: (_c, pending) => { this.urgents.push(pending); },
    };
  }

  /** The peer sends one segment (defaults from the running peer state). */
  send(s: Partial<SegmentSpec> & { flags: number }): void {
    const bytes = buildSegment({
      src: REMOTE, dst: LOCAL, sport: this.sport, dport: LPORT, seq: this.seq, ack: this.ack, wnd: 65535,
      ts: [this.tsVal, this.stackTs], ...s,
    });
    this.tcp.deliver(REMOTE, LOCAL, bytes, 0, bytes.length, this.now);
  }

  /** The single segment the stack sent since the last call. */
  recv(): SegmentView {
    const got = this.w.take();
    expect(got.length, `expected exactly one segment, got ${got.map((g) => g.f).join(' ')}`).toBe(1);
    const s = got[0]!;
    if (s.ts) this.stackTs = s.ts[0];
    return s;
  }

  recvAll(): SegmentView[] {
    const got = this.w.take();
    for (const s of got) if (s.ts) this.stackTs = s.ts[0];
    return got;
  }

  recvNothing(): void {
    const got = this.w.take();
    expect(got.map((g) => `${g.f} seq=${g.seq} ack=${g.ack}`)).toEqual([]);
  }

  advance(ms: number): void {
    this.now += ms;
    this.tcp.poll(this.now);
  }

  get data(): string { return Buffer.concat(this.received).toString(); }
}

const SYN_OPTS = { mss: 1460, wscale: 7, sackPermitted: true } as const;

/** LISTEN on LPORT; accepted connections get the fixture's handler. */
function socketListen(cfg: Partial<TcpConfig> = {}): Fixture {
  const f = new Fixture(cfg);
  const l = f.tcp.listen(LPORT);
  l.onAcceptable = () => { f.conn = l.accept(f.handler()); };
  return f;
}

/** SYN-RECEIVED: the peer's SYN arrived and the SYN-ACK was checked. */
function socketSynReceived(cfg: Partial<TcpConfig> = {}): Fixture {
  const f = socketListen(cfg);
  f.send({ flags: SYN, ...SYN_OPTS, ts: [f.tsVal, 0] });
  const synack = f.recv();
  expect(synack.f).toBe('S.');
  f.iss = synack.seq;
  f.ack = synack.seq + 1;
  f.seq = PEER_ISN + 1;
  return f;
}

/** ESTABLISHED (passive side). */
function socketEstablished(cfg: Partial<TcpConfig> = {}): Fixture {
  const f = socketSynReceived(cfg);
  f.tsVal++;
  f.send({ flags: ACK });
  f.recvNothing();
  expect(f.conn).not.toBeNull();
  expect(f.conn!.state).toBe('ESTABLISHED');
  return f;
}

/** SYN-SENT: the stack connected to the peer and its SYN was checked. */
function socketSynSent(cfg: Partial<TcpConfig> = {}): Fixture {
  const f = new Fixture(cfg);
  f.conn = f.tcp.connect(REMOTE, RPORT, { handler: f.handler(), localPort: LPORT }, f.now);
  const syn = f.recv();
  expect(syn.f).toBe('S');
  f.iss = syn.seq;
  f.ack = syn.seq + 1;
  return f;
}

/** The peer's data segment with payload text. */
function data(f: Fixture, text: string, extra: Partial<SegmentSpec> = {}): void {
  f.send({ flags: ACK | PSH, payload: Buffer.from(text), ...extra });
  if (extra.seq === undefined) f.seq += text.length;
}

/** The peer sends n bytes in MSS-sized segments (to fill a small receive buffer). */
function fill(f: Fixture, n: number): void {
  const mss = f.conn!.mss;
  for (let sent = 0; sent < n;) { const k = Math.min(mss, n - sent); data(f, 'z'.repeat(k)); sent += k; }
}

describe('LISTEN', () => {
  it('answers a SYN with a SYN-ACK carrying MSS, window scale, SACK-permitted and echoed timestamps', () => {
    const f = socketListen({ recvBuffer: 256 * 1024 });
    f.send({ flags: SYN, ...SYN_OPTS, ts: [12345, 0] });
    const s = f.recv();
    expect(s.f).toBe('S.');
    expect(s.ack).toBe(PEER_ISN + 1);
    expect(s.mss).toBe(1460);
    expect(s.wscale).toBe(3); // 256 KiB needs a shift of 3 to fit 16 bits
    expect(s.sackPermitted).toBe(true);
    expect(s.ts![1]).toBe(12345);
    expect(s.wnd).toBe(65535); // the SYN-ACK's window is never scaled
    expect(f.tcp.counters.passiveOpens).toBe(1);
  });

  it('leaves out options the SYN did not offer', () => {
    const f = socketListen();
    f.send({ flags: SYN, mss: 1200, ts: undefined });
    const s = f.recv();
    expect(s.mss).toBe(1460);
    expect(s.wscale).toBe(-1);
    expect(s.sackPermitted).toBe(false);
    expect(s.ts).toBeNull();
  });

  it('resets a bare ACK (no cookie matches) and ignores an RST', () => {
    const f = socketListen();
    f.send({ flags: ACK, seq: 5, ack: 777 });
    const r = f.recv();
    expect(r.f).toBe('R');
    expect(r.seq).toBe(777);
    f.send({ flags: RST, seq: 5 });
    f.recvNothing();
  });
});

describe('CLOSED (no socket)', () => {
  it('answers a SYN to a closed port with RST,ACK (seq 0, ack SEG.SEQ+1)', () => {
    const f = new Fixture();
    f.send({ flags: SYN, seq: 5000, dport: 81 } as Partial<SegmentSpec> & { flags: number });
    const r = f.recv();
    expect(r.f).toBe('R.');
    expect(r.seq).toBe(0);
    expect(r.ack).toBe(5001);
    expect(f.tcp.counters.drop('NO_SOCKET')).toBe(1);
  });

  it('answers an ACK with <SEQ=SEG.ACK><RST> and never answers an RST', () => {
    const f = new Fixture();
    f.send({ flags: ACK, seq: 1, ack: 424242 });
    const r = f.recv();
    expect(r.f).toBe('R');
    expect(r.seq).toBe(424242);
    f.send({ flags: RST | ACK, seq: 1, ack: 2 });
    f.recvNothing();
  });

  it('ignores a segment with a bad checksum and counts it', () => {
    const f = socketListen();
    f.send({ flags: SYN, ...SYN_OPTS, badChecksum: true });
    f.recvNothing();
    expect(f.tcp.counters.drop('BAD_CHECKSUM')).toBe(1);
    expect(f.tcp.counters.connections).toBe(0);
  });
});

describe('SYN-SENT', () => {
  it('sends a SYN with options, and completes on SYN-ACK', () => {
    const f = new Fixture();
    f.conn = f.tcp.connect(REMOTE, RPORT, { handler: f.handler(), localPort: LPORT }, 0);
    const syn = f.recv();
    expect(syn.f).toBe('S');
    expect(syn.mss).toBe(1460);
    expect(syn.wscale).toBeGreaterThanOrEqual(0);
    expect(syn.sackPermitted).toBe(true);
    expect(syn.ts![1]).toBe(0);
    f.ack = syn.seq + 1;
    f.send({ flags: SYN | ACK, seq: PEER_ISN, ...SYN_OPTS, ts: [500, syn.ts![0]] });
    const a = f.recv();
    expect(a.f).toBe('.');
    expect(a.seq).toBe(syn.seq + 1);
    expect(a.ack).toBe(PEER_ISN + 1);
    expect(f.conn.state).toBe('ESTABLISHED');
    expect(f.connected).toBe(true);
  });

  it('simultaneous open: SYN in SYN-SENT -> SYN-RECEIVED with the same ISS, then ESTABLISHED', () => {
    const f = socketSynSent();
    f.send({ flags: SYN, seq: PEER_ISN, ack: 0, ...SYN_OPTS, ts: [200, 0] });
    const sa = f.recv();
    expect(sa.f).toBe('S.');
    expect(sa.seq).toBe(f.iss);
    expect(sa.ack).toBe(PEER_ISN + 1);
    expect(f.conn!.state).toBe('SYN-RECEIVED');
    f.seq = PEER_ISN + 1;
    f.send({ flags: SYN | ACK, seq: PEER_ISN, ack: f.iss + 1, ...SYN_OPTS, ts: [201, sa.ts![0]] });
    // Our SYN-ACK crossed theirs: their SYN-ACK is a retransmitted SYN left of the window.
    const again = f.recvAll();
    expect(again.length).toBeGreaterThan(0);
    f.send({ flags: ACK, ack: f.iss + 1, ts: [202, sa.ts![0]] });
    expect(f.conn!.state).toBe('ESTABLISHED');
  });

  it('an RST acknowledging the SYN refuses the connection', () => {
    const f = socketSynSent();
    f.send({ flags: RST | ACK, seq: 0, ack: f.iss + 1 });
    expect(f.conn!.state).toBe('CLOSED');
    expect(f.closeErr?.code).toBe('ECONNREFUSED');
  });

  it('an unacceptable ACK gets a reset and changes nothing', () => {
    const f = socketSynSent();
    f.send({ flags: SYN | ACK, seq: PEER_ISN, ack: f.iss + 99 });
    const r = f.recv();
    expect(r.f).toBe('R');
    expect(r.seq).toBe(f.iss + 99);
    expect(f.conn!.state).toBe('SYN-SENT');
  });

  it('retransmits the SYN with exponential backoff and gives up with ETIMEDOUT', () => {
    const f = socketSynSent({ synRetries: 2, rtoInitial: 1000 });
    f.advance(999);
    f.recvNothing();
    f.advance(1);
    expect(f.recv().f).toBe('S');
    f.advance(1999);
    f.recvNothing(); // the second wait is twice as long
    f.advance(1);
    expect(f.recv().f).toBe('S');
    f.advance(4000);
    f.recvNothing();
    expect(f.conn!.state).toBe('CLOSED');
    expect(f.closeErr?.code).toBe('ETIMEDOUT');
  });
});

describe('SYN-RECEIVED', () => {
  it('retransmits the SYN-ACK when the SYN is retransmitted', () => {
    const f = socketSynReceived();
    f.send({ flags: SYN, seq: PEER_ISN, ...SYN_OPTS, ts: [f.tsVal, 0] });
    const s = f.recv();
    expect(s.f).toBe('S.');
    expect(s.seq).toBe(f.iss);
  });

  it('resets an ACK that does not acknowledge the SYN-ACK', () => {
    const f = socketSynReceived();
    f.send({ flags: ACK, ack: f.iss + 50 });
    const r = f.recv();
    expect(r.f).toBe('R');
    expect(r.seq).toBe(f.iss + 50);
  });

  it('accepts data on the ACK that completes the handshake', () => {
    const f = socketSynReceived();
    data(f, 'hello');
    expect(f.conn!.state).toBe('ESTABLISHED');
    expect(f.data).toBe('hello');
  });
});

describe('ESTABLISHED', () => {
  it('delays the ACK for one segment (40 ms), ACKs every second full segment at once', () => {
    const f = socketEstablished();
    data(f, 'x'.repeat(100));
    f.recvNothing();
    f.advance(39);
    f.recvNothing();
    f.advance(1);
    const a = f.recv();
    expect(a.ack).toBe(f.seq);
    // Two full-sized segments: the second is ACKed immediately.
    const mss = f.conn!.mss;
    data(f, 'a'.repeat(mss));
    f.recvNothing();
    data(f, 'b'.repeat(mss));
    expect(f.recv().ack).toBe(f.seq);
  });

  it('ACKs data outside the window and drops it', () => {
    const f = socketEstablished();
    data(f, 'far', { seq: f.seq + 10_000_000 });
    const a = f.recv();
    expect(a.f).toBe('.');
    expect(a.ack).toBe(f.seq);
    expect(f.received.length).toBe(0);
    expect(f.tcp.counters.drop('OUT_OF_WINDOW')).toBe(1);
  });

  it('sends duplicate ACKs with SACK blocks for out-of-order data, most recent block first', () => {
    const f = socketEstablished();
    const base = f.seq;
    data(f, 'BBBB', { seq: base + 4 });
    let a = f.recv();
    expect(a.ack).toBe(base);
    expect(a.sack).toEqual([[base + 4, base + 8]]);
    data(f, 'DDDD', { seq: base + 12 });
    a = f.recv();
    expect(a.ack).toBe(base);
    expect(a.sack).toEqual([[base + 12, base + 16], [base + 4, base + 8]]);
    data(f, 'CCCC', { seq: base + 8 });
    a = f.recv();
    expect(a.sack).toEqual([[base + 4, base + 16]]);
    data(f, 'AAAA', { seq: base });
    a = f.recv(); // the hole is filled: immediate cumulative ACK, no SACK
    expect(a.ack).toBe(base + 16);
    expect(a.sack).toEqual([]);
    expect(f.data).toBe('AAAABBBBCCCCDDDD');
    expect(f.conn!.info().outOfOrder).toBe(3);
  });

  it('answers an in-window RST that is not exact with a challenge ACK (RFC 5961)', () => {
    const f = socketEstablished();
    f.send({ flags: RST, seq: f.seq + 100 });
    const a = f.recv();
    expect(a.f).toBe('.');
    expect(a.ack).toBe(f.seq);
    expect(f.conn!.state).toBe('ESTABLISHED');
    expect(f.tcp.counters.challengeAcks).toBe(1);
    // Outside the window: silently dropped.
    f.send({ flags: RST, seq: f.seq + 10_000_000 });
    f.recvNothing();
    // Exactly RCV.NXT: the connection is reset.
    f.send({ flags: RST, seq: f.seq });
    f.recvNothing();
    expect(f.conn!.state).toBe('CLOSED');
    expect(f.closeErr?.code).toBe('ECONNRESET');
  });

  it('answers a SYN with a challenge ACK, never a reset (RFC 5961 §4)', () => {
    const f = socketEstablished();
    f.send({ flags: SYN, seq: f.seq + 5 });
    const a = f.recv();
    expect(a.f).toBe('.');
    expect(a.ack).toBe(f.seq);
    expect(f.conn!.state).toBe('ESTABLISHED');
  });

  it('challenges an ACK for data never sent (RFC 5961 §5) and rate-limits challenges', () => {
    const f = socketEstablished();
    f.send({ flags: ACK, ack: f.ack + 5000 });
    expect(f.recv().f).toBe('.');
    // One answer per 500 ms per connection (Linux tcp_invalid_ratelimit);
    // the stack-wide budget is tested in stack-hostile.test.ts.
    f.send({ flags: ACK, ack: f.ack + 5000 });
    f.recvNothing();
    f.advance(500);
    f.send({ flags: ACK, ack: f.ack + 5000 });
    expect(f.recv().f).toBe('.');
    expect(f.tcp.counters.challengeAcksLimited).toBe(1);
    expect(f.tcp.counters.limitedPerConnection).toBe(1);
    expect(f.tcp.counters.drop('BAD_ACK')).toBe(3);
  });

  it('PAWS: drops a segment whose timestamp is older than TS.Recent and ACKs', () => {
    const f = socketEstablished();
    data(f, 'new', { ts: [f.tsVal + 10, f.stackTs] });
    f.advance(40);
    f.recv();
    data(f, 'old', { ts: [f.tsVal - 50, f.stackTs] });
    const a = f.recv();
    expect(a.ack).toBe(f.seq - 3);
    expect(f.data).toBe('new');
    expect(f.tcp.counters.drop('PAWS')).toBe(1);
  });

  it('RTO: retransmits with exponential backoff, then aborts with ETIMEDOUT', () => {
    const f = socketEstablished({ maxRetries: 3, rtoMin: 200 });
    f.conn!.write(Buffer.from('payload'));
    f.advance(0);
    const first = f.recv();
    expect(first.payload.length).toBe(7);
    const rto0 = f.conn!.info().rto;
    const times: number[] = [];
    for (let i = 0; i < 20_000 && f.conn!.state !== 'CLOSED'; i++) {
      f.advance(10);
      for (const s of f.recvAll()) if (s.payload.length === 7) { expect(s.seq).toBe(first.seq); times.push(f.now); }
    }
    expect(times.length).toBe(3);
    // Each wait is twice the one before (RFC 6298 §5.5), measured on the virtual clock.
    expect(times[1]! - times[0]!).toBeGreaterThan(1.5 * rto0);
    expect(times[2]! - times[1]!).toBeGreaterThan(1.5 * (times[1]! - times[0]!) - 20);
    expect(f.conn!.state).toBe('CLOSED');
    expect(f.closeErr?.code).toBe('ETIMEDOUT');
    expect(f.conn!.info().rtoExpirations).toBe(3);
  });

  it('fast retransmit on the third duplicate ACK with SACK', () => {
    const f = socketEstablished({ noDelay: true });
    const mss = f.conn!.mss;
    f.conn!.write(Buffer.alloc(5 * mss, 0x61));
    f.advance(0);
    const segs = f.recvAll();
    expect(segs.length).toBe(5);
    const s0 = segs[0]!.seq;
    // Segment 1 is lost; 2, 3, 4 arrive: three duplicate ACKs with growing SACK.
    for (let k = 2; k <= 4; k++) {
      f.send({ flags: ACK, ack: s0, sack: [[s0 + mss, s0 + k * mss]] });
    }
    const rx = f.recvAll();
    expect(rx.length).toBeGreaterThanOrEqual(1);
    expect(rx[0]!.seq).toBe(s0);
    expect(rx[0]!.payload.length).toBe(mss);
    expect(f.conn!.info().fastRetransmits).toBe(1);
    // The full ACK ends recovery.
    f.send({ flags: ACK, ack: s0 + 5 * mss });
    expect(f.conn!.info().inFlight).toBe(0);
  });

  it('Nagle holds a small segment while data is unacknowledged; noDelay sends it', () => {
    const f = socketEstablished();
    f.conn!.write(Buffer.from('a'));
    f.advance(0);
    expect(f.recv().payload.length).toBe(1);
    f.conn!.write(Buffer.from('b'));
    f.advance(0);
    f.recvNothing();
    f.send({ flags: ACK, ack: f.ack + 1 });
    expect(Buffer.from(f.recv().payload).toString()).toBe('b');
    f.conn!.setNoDelay(true);
    f.conn!.write(Buffer.from('c'));
    f.advance(0);
    f.conn!.write(Buffer.from('d'));
    f.advance(0);
    expect(f.recvAll().map((s) => Buffer.from(s.payload).toString())).toEqual(['c', 'd']);
  });

  it('zero window: probes with SND.UNA-1 on a backed-off persist timer, sends once the window opens', () => {
    const f = socketSynReceived();
    f.send({ flags: ACK, wnd: 0 });
    f.conn!.write(Buffer.from('blocked'));
    f.advance(0);
    f.recvNothing();
    expect(f.conn!.info().zeroWindowStalls).toBeGreaterThan(0);
    const probes: number[] = [];
    for (let i = 0; i < 700; i++) {
      f.advance(10);
      for (const s of f.recvAll()) { expect(s.payload.length).toBe(0); expect(s.seq).toBe(f.ack - 1); probes.push(f.now); f.send({ flags: ACK, wnd: 0 }); }
    }
    expect(probes.length).toBeGreaterThanOrEqual(3);
    expect(probes[2]! - probes[1]!).toBeGreaterThan(probes[1]! - probes[0]!);
    f.send({ flags: ACK, wnd: 1000 });
    const d = f.recvAll();
    expect(d.map((s) => Buffer.from(s.payload).toString())).toContain('blocked');
  });

  it('zero window as receiver: the window closes while the application does not read and reopens with an update', () => {
    const f = socketEstablished({ recvBuffer: 4096 });
    f.pauseReading = true;
    fill(f, 4096);
    f.advance(40);
    const acks = f.recvAll();
    const last = acks[acks.length - 1]!;
    expect(last.ack).toBe(f.seq);
    expect(last.wnd).toBe(0);
    // A zero-window probe gets an ACK still showing the zero window.
    f.send({ flags: ACK, seq: f.seq - 1 });
    const p = f.recv();
    expect(p.wnd).toBe(0);
    expect(p.ack).toBe(f.seq);
    f.pauseReading = false;
    f.conn!.resumeReading();
    f.advance(0);
    const upd = f.recv();
    expect(upd.wnd).toBeGreaterThan(0);
    expect(f.data.length).toBe(4096);
  });

  it('zero window as receiver: the ACK field of a probe is still processed (RFC 9293 §3.10.7.4)', () => {
    const f = socketEstablished({ recvBuffer: 4096, noDelay: true });
    f.pauseReading = true;
    f.conn!.write(Buffer.from('ours'));
    f.advance(0);
    const out = f.recv();
    fill(f, 4096);
    f.advance(40);
    f.recvAll();
    expect(f.conn!.info().rcvWnd).toBe(0);
    expect(f.conn!.info().inFlight).toBe(4);
    // The peer, blocked on our zero window, probes with SEQ = RCV.NXT-1 and acknowledges our data.
    f.send({ flags: ACK, seq: f.seq - 1, ack: out.seq + 4 });
    expect(f.recv().wnd).toBe(0);
    expect(f.conn!.info().inFlight).toBe(0);
  });

  it('keep-alive: probes after idle, resets the count on an answer, aborts after the count', () => {
    const f = socketEstablished();
    f.conn!.setKeepAlive(true, 1000, 500, 3);
    f.advance(999);
    f.recvNothing();
    f.advance(1);
    let p = f.recv();
    expect(p.seq).toBe(f.ack - 1);
    expect(p.payload.length).toBe(0);
    f.send({ flags: ACK });
    f.advance(500);
    f.recvNothing(); // answered: idle again
    f.advance(500);
    p = f.recv();
    for (let i = 0; i < 2; i++) { f.advance(500); expect(f.recv().seq).toBe(f.ack - 1); }
    f.advance(500);
    const rst = f.recv();
    expect(rst.f).toBe('R');
    expect(f.conn!.state).toBe('CLOSED');
    expect(f.closeErr?.code).toBe('ETIMEDOUT');
    expect(f.tcp.counters.keepAlivesSent).toBe(4);
  });

  it('FIN -> CLOSE-WAIT: ACKs at once, delivers end after the data', () => {
    const f = socketEstablished();
    data(f, 'bye');
    f.send({ flags: FIN | ACK });
    f.seq++;
    const a = f.recv();
    expect(a.ack).toBe(f.seq);
    expect(f.conn!.state).toBe('CLOSE-WAIT');
    expect(f.data).toBe('bye');
    expect(f.ended).toBe(true);
    // Half-close: we can still send.
    f.conn!.write(Buffer.from('still here'));
    f.advance(0);
    expect(Buffer.from(f.recv().payload).toString()).toBe('still here');
  });
});

describe('RTO when data transmission begins (RFC 6298 §5.5-5.7)', () => {
  const NO_TS = { timestamps: false, rtoInitial: 1000, rtoMin: 200 } as const;
  const srttRto = (f: Fixture): [number, number] => [f.conn!.info().srtt, f.conn!.info().rto];

  /**
   * The stack writes `text`, the peer never ACKs it: the virtual times at
   * which a copy left, over `span` ms.
   */
  function lostData(f: Fixture, text: string, span: number): number[] {
    f.conn!.write(Buffer.from(text));
    f.advance(0);
    const first = f.recv();
    expect(first.payload.length).toBe(text.length);
    const times = [f.now];
    const end = f.now + span;
    while (f.now < end) {
      f.advance(1);
      for (const s of f.recvAll()) {
        expect([s.seq, s.payload.length]).toEqual([first.seq, text.length]);
        times.push(f.now);
      }
    }
    return times;
  }

  /** Active open whose first `lost` SYNs time out; the peer's SYN-ACK answers the last copy 50 ms after it left. */
  function activeOpen(cfg: Partial<TcpConfig>, lost: number, ts: boolean): Fixture {
    const f = socketSynSent(cfg);
    let last = f.recvAll();
    expect(last).toEqual([]);
    let lastTs = 0;
    for (let i = 0, wait = 1000; i < lost; i++, wait *= 2) {
      f.advance(wait - 1);
      f.recvNothing();
      f.advance(1);
      const syn = f.recv();
      expect([syn.f, syn.seq]).toEqual(['S', f.iss]);
      lastTs = syn.ts?.[0] ?? 0;
    }
    f.advance(50);
    f.send({ flags: SYN | ACK, seq: PEER_ISN, ack: f.iss + 1, ...SYN_OPTS, ts: ts ? [500, lastTs] : undefined });
    const a = f.recv();
    expect([a.f, a.ack]).toEqual(['.', PEER_ISN + 1]);
    expect(f.conn!.state).toBe('ESTABLISHED');
    f.seq = PEER_ISN + 1;
    return f;
  }

  it('active open, SYN lost: RTO is 3 s when data starts, so the first data retransmission fires 3 s later, then 6 s', () => {
    const f = activeOpen(NO_TS, 1, false);
    // Karn: the SYN-ACK answers a retransmitted SYN, so no RTT sample; the initial RTO (1 s) is below 3 s.
    expect(srttRto(f)).toEqual([0, 3000]);
    const t0 = f.now;
    expect(lostData(f, 'payload', 9000)).toEqual([t0, t0 + 3000, t0 + 9000]);
    expect(f.conn!.info().rto).toBe(12_000); // §5.5: doubled at each expiry
  });

  it('the 3 s (and any backoff) is kept until a new RTT sample, then the RTO is recomputed from it', () => {
    const f = activeOpen(NO_TS, 1, false);
    const t0 = f.now;
    expect(lostData(f, 'payload', 3000)).toEqual([t0, t0 + 3000]);
    // The retransmission arrives and is ACKed: Karn, no sample, the backed-off 6 s stays.
    f.advance(40);
    f.send({ flags: ACK, ack: f.iss + 1 + 7, ts: undefined });
    expect(srttRto(f)).toEqual([0, 6000]);
    // New data, ACKed 40 ms later: the first sample (SRTT 40, RTTVAR 20) gives 40 + 80 ms, clamped to rtoMin.
    f.conn!.write(Buffer.from('more'));
    f.advance(0);
    const d = f.recv();
    expect(d.payload.length).toBe(4);
    f.advance(40);
    f.send({ flags: ACK, ack: f.iss + 1 + 11, ts: undefined });
    expect(srttRto(f)).toEqual([40, 200]);
  });

  it('two SYNs lost: still 3 s, not the backed-off 4 s (the handshake\'s backoff is not carried into data)', () => {
    const f = activeOpen(NO_TS, 2, false);
    expect(f.conn!.info().rto).toBe(3000);
    const t0 = f.now;
    expect(lostData(f, 'x', 3000)).toEqual([t0, t0 + 3000]);
  });

  it('active open without a lost SYN: the RTO computed from the handshake sample applies', () => {
    const f = activeOpen(NO_TS, 0, false);
    // SYN-ACK 50 ms after the SYN: SRTT 50, RTTVAR 25, RTO = 50 + 100 ms, clamped to rtoMin 200.
    expect(srttRto(f)).toEqual([50, 200]);
    const t0 = f.now;
    expect(lostData(f, 'payload', 1400)).toEqual([t0, t0 + 200, t0 + 600, t0 + 1400]);
  });

  it('§5.7 does not lower a larger RTO', () => {
    const g = new Fixture({ ...NO_TS, rtoInitial: 4000 });
    g.conn = g.tcp.connect(REMOTE, RPORT, { handler: g.handler(), localPort: LPORT }, 0);
    const syn = g.recv();
    g.advance(4000);
    expect(g.recv().f).toBe('S');
    g.advance(50);
    g.send({ flags: SYN | ACK, seq: PEER_ISN, ack: syn.seq + 1, ...SYN_OPTS, ts: undefined });
    expect(g.conn.state).toBe('ESTABLISHED');
    expect(g.conn.info().rto).toBe(4000); // rtoInitial 4 s is not below 3 s
  });

  it('with timestamps the handshake gives a sample even after a lost SYN; the RTO is still 3 s until data gives one', () => {
    const f = activeOpen({ rtoInitial: 1000, rtoMin: 200 }, 1, true);
    const i = f.conn!.info();
    expect(i.timestamps).toBe(true);
    // The SYN-ACK echoed the retransmitted SYN's TSval 50 ms later: SRTT 50 (RFC 7323),
    // which alone would give 200 ms; §5.7 makes no exception, so 3 s (Linux would keep 200 ms).
    expect([i.srtt, i.rttvar, i.rto]).toEqual([50, 25, 3000]);
    const t0 = f.now;
    const times = lostData(f, 'payload', 3000);
    expect(times).toEqual([t0, t0 + 3000]);
    // The ACK of the retransmission echoes its TSval: a valid sample (40 ms), and the RTO collapses.
    f.advance(40);
    f.send({ flags: ACK, ack: f.iss + 1 + 7, ts: [501, f.stackTs] });
    const j = f.conn!.info();
    expect(j.srtt).toBeCloseTo(0.875 * 50 + 0.125 * 40, 9);
    expect(j.rto).toBe(200);
  });

  it('passive open, SYN-ACK lost: RTO is 3 s once the final ACK arrives; data retransmits 3 s later', () => {
    const f = socketSynReceived(NO_TS);
    f.advance(999);
    f.recvNothing();
    f.advance(1);
    const again = f.recv();
    expect([again.f, again.seq]).toEqual(['S.', f.iss]);
    f.advance(50);
    f.send({ flags: ACK, ts: undefined });
    f.recvNothing();
    expect(f.conn!.state).toBe('ESTABLISHED');
    expect(srttRto(f)).toEqual([0, 3000]);
    const t0 = f.now;
    expect(lostData(f, 'payload', 3000)).toEqual([t0, t0 + 3000]);
  });

  it('passive open without loss: the handshake sample sets the RTO', () => {
    const f = socketSynReceived(NO_TS);
    f.advance(30);
    f.send({ flags: ACK, ts: undefined });
    expect(srttRto(f)).toEqual([30, 200]);
    const t0 = f.now;
    expect(lostData(f, 'payload', 200)).toEqual([t0, t0 + 200]);
  });

  it('a SYN-ACK resent for a retransmitted SYN gives no RTT sample (Karn), and no timer expired: initial RTO', () => {
    const f = socketSynReceived(NO_TS);
    f.advance(400);
    f.send({ flags: SYN, seq: PEER_ISN, ...SYN_OPTS, ts: undefined });
    expect(f.recv().f).toBe('S.');
    f.advance(30);
    f.send({ flags: ACK, ts: undefined });
    expect(f.conn!.state).toBe('ESTABLISHED');
    expect(srttRto(f)).toEqual([0, 1000]);
  });
});

describe('closing states', () => {
  function finWait1(cfg: Partial<TcpConfig> = {}): Fixture {
    const f = socketEstablished(cfg);
    f.conn!.end();
    f.advance(0);
    const fin = f.recv();
    expect(fin.f).toBe('F.');
    expect(f.conn!.state).toBe('FIN-WAIT-1');
    return f;
  }

  it('FIN-WAIT-1 + FIN (ours unacknowledged) -> CLOSING: simultaneous close', () => {
    const f = finWait1();
    f.send({ flags: FIN | ACK });
    f.seq++;
    expect(f.recv().ack).toBe(f.seq);
    expect(f.conn!.state).toBe('CLOSING');
    f.send({ flags: ACK, ack: f.ack + 1 });
    expect(f.conn!.state).toBe('TIME-WAIT');
  });

  it('FIN-WAIT-1 + ACK of FIN -> FIN-WAIT-2; + FIN -> TIME-WAIT; 2·MSL later CLOSED', () => {
    const f = finWait1({ timeWaitMs: 5000 });
    f.send({ flags: ACK, ack: f.ack + 1 });
    expect(f.conn!.state).toBe('FIN-WAIT-2');
    f.recvNothing();
    f.send({ flags: FIN | ACK, ack: f.ack + 1 });
    f.seq++;
    expect(f.recv().ack).toBe(f.seq);
    expect(f.conn!.state).toBe('TIME-WAIT');
    // A retransmitted FIN in TIME-WAIT is ACKed again and restarts the timer.
    f.advance(4000);
    f.send({ flags: FIN | ACK, seq: f.seq - 1, ack: f.ack + 1 });
    expect(f.recv().ack).toBe(f.seq);
    f.advance(4000);
    expect(f.conn!.state).toBe('TIME-WAIT');
    f.advance(1000);
    expect(f.conn!.state).toBe('CLOSED');
    expect(f.tcp.counters.connections).toBe(0);
  });

  it('FIN+ACK of our FIN in FIN-WAIT-1 goes straight to TIME-WAIT', () => {
    const f = finWait1();
    f.send({ flags: FIN | ACK, ack: f.ack + 1 });
    f.seq++;
    f.recv();
    expect(f.conn!.state).toBe('TIME-WAIT');
  });

  it('CLOSE-WAIT -> LAST-ACK -> CLOSED; a retransmitted FIN in LAST-ACK is re-ACKed', () => {
    const f = socketEstablished();
    f.send({ flags: FIN | ACK });
    f.seq++;
    f.recv();
    f.conn!.end();
    f.advance(0);
    expect(f.recv().f).toBe('F.');
    expect(f.conn!.state).toBe('LAST-ACK');
    f.send({ flags: FIN | ACK, seq: f.seq - 1 });
    expect(f.recv().ack).toBe(f.seq);
    f.send({ flags: ACK, ack: f.ack + 1 });
    expect(f.conn!.state).toBe('CLOSED');
    expect(f.closeErr).toBeNull();
  });

  it('FIN on the ACK that completes the handshake: SYN-RECEIVED -> ESTABLISHED -> CLOSE-WAIT', () => {
    const f = socketSynReceived();
    f.send({ flags: FIN | ACK });
    f.seq++;
    expect(f.recv().ack).toBe(f.seq);
    expect(f.conn!.state).toBe('CLOSE-WAIT');
    expect(f.ended).toBe(true);
  });

  it('a retransmitted FIN in CLOSE-WAIT is ACKed again and changes nothing', () => {
    const f = socketEstablished();
    f.send({ flags: FIN | ACK });
    f.seq++;
    f.recv();
    f.send({ flags: FIN | ACK, seq: f.seq - 1 });
    expect(f.recv().ack).toBe(f.seq);
    expect(f.conn!.state).toBe('CLOSE-WAIT');
  });

  it('FIN-WAIT-2 still takes data before the peer FIN, then TIME-WAIT', () => {
    const f = finWait1();
    f.send({ flags: ACK, ack: f.ack + 1 });
    expect(f.conn!.state).toBe('FIN-WAIT-2');
    data(f, 'late data', { ack: f.ack + 1 });
    f.send({ flags: FIN | ACK, ack: f.ack + 1 });
    f.seq++;
    const acks = f.recvAll();
    expect(acks[acks.length - 1]!.ack).toBe(f.seq);
    expect(f.data).toBe('late data');
    expect(f.conn!.state).toBe('TIME-WAIT');
  });

  it('abortive close sends RST and frees the connection at once', () => {
    const f = socketEstablished();
    f.conn!.reset();
    const r = f.recv();
    expect(r.f).toBe('R');
    expect(r.seq).toBe(f.ack);
    expect(f.tcp.counters.connections).toBe(0);
  });

  it('close() with unread data resets instead of FIN (RFC 2525)', () => {
    const f = socketEstablished();
    f.pauseReading = true;
    data(f, 'unread');
    f.w.take();
    f.conn!.close();
    expect(f.recv().f).toBe('R');
  });
});

describe('TIME-WAIT reuse', () => {
  function timeWait(): Fixture {
    const f = socketEstablished();
    f.conn!.end();
    f.advance(0);
    f.recv();
    f.send({ flags: FIN | ACK, ack: f.ack + 1 });
    f.seq++;
    f.recv();
    expect(f.conn!.state).toBe('TIME-WAIT');
    return f;
  }

  it('a SYN with a newer timestamp reopens the 4-tuple with an ISN beyond the old one', () => {
    const f = timeWait();
    const old = f.conn!;
    f.send({ flags: SYN, seq: f.seq + 100_000, ...SYN_OPTS, ts: [f.tsVal + 1000, 0] });
    const s = f.recv();
    expect(s.f).toBe('S.');
    expect(s.ack).toBe(f.seq + 100_001);
    expect(((s.seq - old.sndNxt) | 0)).toBeGreaterThan(0);
    expect(old.state).toBe('CLOSED');
    expect(f.tcp.counters.timeWaitReused).toBe(1);
  });

  it('a SYN with an old timestamp does not: PAWS drops it and ACKs', () => {
    const f = timeWait();
    f.send({ flags: SYN, seq: f.seq + 100_000, ...SYN_OPTS, ts: [f.tsVal - 10, 0] });
    const a = f.recv();
    expect(a.f).toBe('.');
    expect(f.conn!.state).toBe('TIME-WAIT');
    expect(f.tcp.counters.timeWaitReused).toBe(0);
  });
});

describe('SYN cookies', () => {
  it('takes over when the SYN queue is full, validates the final ACK and restores window scale and SACK', () => {
    const f = socketListen({ synBacklog: 1 });
    f.send({ flags: SYN, ...SYN_OPTS, ts: [10, 0] });
    expect(f.recv().f).toBe('S.'); // queued normally
    f.sport = RPORT + 1;
    f.send({ flags: SYN, seq: 7000, ...SYN_OPTS, ts: [20, 0] });
    const c = f.recv();
    expect(c.f).toBe('S.');
    expect(c.wscale).toBeGreaterThanOrEqual(0);
    expect(f.tcp.counters.cookiesSent).toBe(1);
    expect(f.tcp.counters.connections).toBe(1); // no state kept for the cookie
    f.send({ flags: ACK | PSH, seq: 7001, ack: c.seq + 1, ts: [21, c.ts![0]], payload: Buffer.from('cookie!') });
    expect(f.tcp.counters.cookiesValidated).toBe(1);
    expect(f.conn).not.toBeNull();
    expect(f.conn!.state).toBe('ESTABLISHED');
    expect(f.conn!.sndWscale).toBe(7);
    expect(f.conn!.sackOk).toBe(true);
    expect(f.data).toBe('cookie!');
    f.recvAll(); // the window update that opens beyond the cookie SYN-ACK's unscaled window
    // A forged ACK fails validation and is reset.
    f.sport = RPORT + 2;
    f.send({ flags: ACK, seq: 9001, ack: 12345, ts: [30, 1] });
    expect(f.recv().f).toBe('R');
    expect(f.tcp.counters.cookiesFailed).toBe(1);
  });
});

describe('ICMP errors and configuration', () => {
  /** An ICMP error quoting our segment: the quoted TCP header starts with ports and SEQ. */
  function quoted(f: Fixture, seq: number): Uint8Array {
    return buildSegment({ src: LOCAL, dst: REMOTE, sport: LPORT, dport: RPORT, seq, flags: ACK });
  }

  it('port unreachable during SYN-SENT refuses the connection (RFC 1122 hard error)', () => {
    const f = socketSynSent();
    const q = quoted(f, f.iss);
    f.tcp.deliverError(3, 3, 0, LOCAL, REMOTE, q, 0, 8, f.now);
    expect(f.conn!.state).toBe('CLOSED');
    expect(f.closeErr?.code).toBe('ECONNREFUSED');
  });

  it('an ICMP error quoting a sequence number not in flight is ignored (RFC 5927)', () => {
    const f = socketSynSent();
    f.tcp.deliverError(3, 3, 0, LOCAL, REMOTE, quoted(f, f.iss + 100_000), 0, 8, f.now);
    expect(f.conn!.state).toBe('SYN-SENT');
  });

  it('fragmentation needed lowers the MSS and resends smaller segments', () => {
    const f = socketEstablished({ noDelay: true });
    const mss0 = f.conn!.mss;
    f.conn!.write(Buffer.alloc(mss0, 1));
    f.advance(0);
    const big = f.recv();
    expect(big.payload.length).toBe(mss0);
    f.tcp.deliverError(3, 4, 1000, LOCAL, REMOTE, quoted(f, big.seq), 0, 8, f.now);
    f.advance(0);
    const again = f.recvAll();
    expect(f.conn!.mss).toBe(1000 - 40 - 12);
    expect(again[0]!.seq).toBe(big.seq);
    expect(again[0]!.payload.length).toBe(1000 - 40 - 12);
  });

  it('rejects configurations that break RFC MUSTs', () => {
    expect(() => new Tcp(new CaptureWriter(LOCAL), { config: { delayedAckMs: 600 } })).toThrow(/RFC 1122/);
    expect(() => new Tcp(new CaptureWriter(LOCAL), { config: { rtoMin: 5000, rtoMax: 1000 } })).toThrow(/rtoMax/);
    expect(() => new Tcp(new CaptureWriter(LOCAL), { config: { recvBuffer: 0 } })).toThrow(/recvBuffer/);
  });
});

describe('persist timer', () => {
  it('gives up with ETIMEDOUT when zero-window probes go unanswered', () => {
    const f = socketSynReceived({ maxRetries: 3 });
    f.send({ flags: ACK, wnd: 0 });
    f.conn!.write(Buffer.from('blocked'));
    f.advance(0);
    let probes = 0;
    for (let i = 0; i < 2000 && f.conn!.state !== 'CLOSED'; i++) {
      f.advance(100);
      probes += f.recvAll().length; // the peer never answers
    }
    expect(probes).toBeGreaterThanOrEqual(3);
    expect(f.conn!.state).toBe('CLOSED');
    expect(f.closeErr?.code).toBe('ETIMEDOUT');
  });
});

describe('pluggable congestion control', () => {
  it('uses a caller-supplied algorithm for every connection', () => {
    const calls: string[] = [];
    const w = new CaptureWriter(LOCAL);
    const tcp = new Tcp(w, {
      seed: 1,
      congestionControl: () => ({
        name: 'fixed',
        init: (s) => { s.cwnd = 3 * s.mss; s.ssthresh = 3 * s.mss; calls.push('init'); },
        onAck: () => { calls.push('ack'); },
        ssthresh: (s) => s.cwnd,
        onRto: () => { calls.push('rto'); },
        onRecoveryExit: () => {},
      }),
    });
    const c = tcp.connect(REMOTE, RPORT, { localPort: LPORT }, 0);
    const syn = w.take()[0]!;
    const sa = buildSegment({ src: REMOTE, dst: LOCAL, sport: RPORT, dport: LPORT, seq: 1, ack: syn.seq + 1, flags: SYN | ACK, mss: 1000 });
    tcp.deliver(REMOTE, LOCAL, sa, 0, sa.length, 0);
    w.take();
    c.setNoDelay(true);
    c.write(Buffer.alloc(10_000));
    tcp.poll(0);
    expect(w.take().length).toBe(3); // the fixed window of 3 segments
    expect(c.info().cc).toBe('fixed');
    expect(calls[0]).toBe('init');
  });
});

describe('observability', () => {
  it('publishes every state change on strata:tcp:state and counts drops by reason', async () => {
    const { tcpStateChannel } = await import('../src/stack/tcp/tcp.js');
    const seen: string[] = [];
    const sub = (m: unknown): void => { const e = m as { from: string; to: string }; seen.push(`${e.from}>${e.to}`); };
    tcpStateChannel.subscribe(sub);
    try {
      const f = socketEstablished();
      f.send({ flags: RST, seq: f.seq });
      expect(seen).toEqual(['CLOSED>SYN-RECEIVED', 'SYN-RECEIVED>ESTABLISHED', 'ESTABLISHED>CLOSED']);
      const snap = f.tcp.snapshot();
      expect(snap.passiveOpens).toBe(1);
      expect(snap.estabResets).toBe(1);
      expect(snap.connections).toBe(0);
    } finally {
      tcpStateChannel.unsubscribe(sub);
    }
  });

  it('per-connection facts: RTT, RTO, cwnd, bytes, state', () => {
    const f = socketEstablished({ noDelay: true });
    f.conn!.write(Buffer.from('0123456789'));
    f.advance(0);
    const s = f.recv();
    f.advance(30);
    f.send({ flags: ACK, ack: s.seq + 10, ts: [f.tsVal, s.ts![0]] });
    const i = f.conn!.info();
    expect(i.state).toBe('ESTABLISHED');
    // RFC 6298: the handshake gave a first sample of ~0 (virtual time stood
    // still), then 30 ms: SRTT = 7/8·0.1 + 1/8·30, RTTVAR = 1/4·|0.1 − 30|.
    expect(i.srtt).toBeCloseTo(0.875 * 0.1 + 0.125 * 30, 6);
    expect(i.rttvar).toBeCloseTo(0.25 * 29.9, 6);
    expect(i.rto).toBe(200); // SRTT + 4·RTTVAR ≈ 34 ms, clamped to rtoMin
    expect(i.bytesOut).toBe(10);
    expect(i.cwnd).toBeGreaterThanOrEqual(10 * i.mss);
    expect(i.timestamps).toBe(true);
  });
});

describe('SYN cookies, late duplicates', () => {
  it('a late duplicate of a later ACK (equal bytes both ways) does not validate as a cookie', () => {
    const f = socketListen({ synBacklog: 1 });
    f.send({ flags: SYN, ...SYN_OPTS, ts: [10, 0] });
    f.recv();
    f.sport = RPORT + 1;
    f.send({ flags: SYN, seq: 7000, ...SYN_OPTS, ts: [20, 0] });
    const c = f.recv();
    // The genuine completing ACK validates ...
    f.send({ flags: ACK, seq: 7001, ack: c.seq + 1, ts: [21, c.ts![0]] });
    expect(f.tcp.counters.cookiesValidated).toBe(1);
    f.conn!.reset();
    f.recvAll();
    // ... but an ACK with SEQ and ACK both 5 further on (4 bytes + FIN each way) does not.
    f.send({ flags: ACK, seq: 7006, ack: c.seq + 6, ts: [22, c.ts![0]] });
    expect(f.tcp.counters.cookiesValidated).toBe(1);
    expect(f.tcp.counters.cookiesFailed).toBe(1);
    expect(f.recv().f).toBe('R');
  });
});

// Urgent data (RFC 9293 §3.8.5 and §3.10.7.4 sixth, RFC 6093): the pointer
// points to the octet after the urgent data; the bytes stay inline.

/** The peer's data segment with URG and pointer `up` (relative to its SEQ). */
function urgData(f: Fixture, text: string, up: number, extra: Partial<SegmentSpec> = {}): void {
  f.send({ flags: ACK | PSH | URG, urgent: up, payload: Buffer.from(text), ...extra });
  if (extra.seq === undefined) f.seq += text.length;
}

/** Reads n bytes the pull way (the fixture's onData is paused). */
function readN(f: Fixture, n: number): string {
  const b = Buffer.alloc(n);
  expect(f.conn!.read(b, 0, n)).toBe(n);
  return b.toString('latin1');
}

describe('urgent data: receiving (RFC 9293 §3.8.5, RFC 6093)', () => {
  it('URG data arrives inline and in order; the application is told the pending count, which drops as it reads', () => {
    const f = socketEstablished();
    f.pauseReading = true;
    data(f, 'normal');
    expect(f.urgents).toEqual([]);
    urgData(f, 'xyz!', 4); // RCV.UP = SEQ + 4: just past the '!'
    // Urgent data is everything unread up to RCV.UP, the six ordinary-looking bytes before it too.
    expect(f.urgents).toEqual([10]);
    expect(f.conn!.urgentPending).toBe(10);
    expect(readN(f, 6)).toBe('normal');
    expect(f.conn!.urgentPending).toBe(4);
    expect(readN(f, 3)).toBe('xyz');
    expect(f.conn!.urgentPending).toBe(1);
    expect(readN(f, 1)).toBe('!');
    expect(f.conn!.urgentPending).toBe(0);
    data(f, 'after');
    expect(f.conn!.urgentPending).toBe(0);
    expect(readN(f, 5)).toBe('after');
    expect(f.urgents).toEqual([10]);
    expect(f.tcp.counters.urgSegsIn).toBe(1);
  });

  it('the signal comes before the bytes, and inside onData the count starts at the chunk', () => {
    const f = socketEstablished();
    const log: string[] = [];
    f.conn!.handler = {
      onUrgent: (c, n) => { log.push(`urgent ${n} (pending ${c.urgentPending})`); },
      onData: (c, buf, off, len) => { log.push(`data ${Buffer.from(buf.subarray(off, off + len)).toString()} (pending ${c.urgentPending})`); return len; },
    };
    data(f, 'ab');
    urgData(f, 'cd', 1); // only the 'c' and what precedes it is urgent
    data(f, 'ef');
    expect(log).toEqual(['data ab (pending 0)', 'urgent 1 (pending 1)', 'data cd (pending 1)', 'data ef (pending 0)']);
  });

  it('a pointer that advances signals again; one that does not, does not', () => {
    const f = socketEstablished();
    f.pauseReading = true;
    const s0 = f.seq;
    urgData(f, 'ab', 2); // RCV.UP = s0+2
    expect(f.urgents).toEqual([2]);
    urgData(f, 'cd', 0); // s0+2 again: the same urgent data, no new signal
    expect(f.urgents).toEqual([2]);
    expect(f.conn!.urgentPending).toBe(2);
    // A pointer beyond the data (a sender's first segment of longer urgent data): counts bytes still to come.
    urgData(f, 'ef', 10); // s0+14
    expect(f.urgents).toEqual([2, 14]);
    urgData(f, 'ghijklmnop', 6, { seq: s0 + 6 }); // s0+12: behind RCV.UP, max() keeps s0+14
    f.seq = s0 + 16;
    expect(f.urgents).toEqual([2, 14]);
    expect(f.conn!.urgentPending).toBe(14);
    expect(readN(f, 16)).toBe('abcdefghijklmnop');
    expect(f.conn!.urgentPending).toBe(0);
    // Everything read: a pointer to the read point is no urgent data at all; one past it is new
    // (and makes the unread 'q' before it urgent too).
    urgData(f, 'q', 0);
    expect(f.urgents).toEqual([2, 14]);
    urgData(f, 'r', 1);
    expect(f.urgents).toEqual([2, 14, 2]);
    expect(readN(f, 2)).toBe('qr');
    expect(f.tcp.counters.urgSegsIn).toBe(6);
  });

  it('URG on an unacceptable segment (out of window, or an old duplicate) changes nothing', () => {
    const f = socketEstablished();
    f.pauseReading = true;
    urgData(f, 'far', 3, { seq: f.seq + 10_000_000 });
    const a = f.recv();
    expect(a.ack).toBe(f.seq);
    expect(a.flags & URG).toBe(0);
    data(f, 'abc');
    urgData(f, 'abc', 3, { seq: f.seq - 3 }); // wholly before RCV.NXT
    expect(f.recv().ack).toBe(f.seq);
    expect(f.urgents).toEqual([]);
    expect(f.conn!.urgentPending).toBe(0);
    expect(f.tcp.counters.urgSegsIn).toBe(0);
    expect(f.tcp.counters.drop('OUT_OF_WINDOW')).toBe(2);
    expect(readN(f, 3)).toBe('abc');
  });

  it('URG after the peer\'s FIN (CLOSE-WAIT) is ignored', () => {
    const f = socketEstablished();
    f.send({ flags: FIN | ACK });
    f.seq++;
    f.recv();
    expect(f.conn!.state).toBe('CLOSE-WAIT');
    f.send({ flags: ACK | URG, urgent: 5 });
    expect(f.urgents).toEqual([]);
    expect(f.conn!.urgentPending).toBe(0);
    expect(f.tcp.counters.urgSegsIn).toBe(0);
  });

  it('a zero-window probe at RCV.NXT still carries the pointer through a closed window', () => {
    const f = socketEstablished({ recvBuffer: 4096 });
    f.pauseReading = true;
    fill(f, 4096);
    f.advance(40);
    expect(f.recvAll().at(-1)!.wnd).toBe(0);
    f.send({ flags: ACK | URG, urgent: 9 }); // Linux's urgent probe (tcp_write_wakeup): SEQ = RCV.NXT, no data
    expect(f.urgents).toEqual([4096 + 9]);
    expect(f.conn!.urgentPending).toBe(4105);
  });

  it('sequence numbers wrap: RCV.UP and the pending count are taken modulo 2^32', () => {
    const isn = 0xfffffffa;
    const f = socketListen();
    f.seq = isn;
    f.send({ flags: SYN, ...SYN_OPTS, ts: [f.tsVal, 0] });
    const sa = f.recv();
    f.ack = sa.seq + 1;
    f.seq = isn + 1;
    f.tsVal++;
    f.send({ flags: ACK });
    expect(f.conn!.state).toBe('ESTABLISHED');
    f.pauseReading = true;
    data(f, 'abc'); // 0xfffffffb..0xfffffffd
    urgData(f, 'wxyz', 10); // SEQ 0xfffffffe, RCV.UP = 8 after the wrap
    expect(f.urgents).toEqual([13]);
    expect(readN(f, 3)).toBe('abc');
    expect(f.conn!.urgentPending).toBe(10);
    expect(readN(f, 4)).toBe('wxyz'); // the read point wraps to 2
    expect(f.conn!.urgentPending).toBe(6);
    urgData(f, 'A', 6); // SEQ 2 (masked), pointer 8: no advance
    expect(f.urgents).toEqual([13]);
    urgData(f, 'B', 6); // SEQ 3, pointer 9: advances
    expect(f.urgents).toEqual([13, 7]);
    expect(f.conn!.rcvUp).toBe(9);
  });
});

describe('urgent data: sending (RFC 9293 §3.8.5, MUST-30/31)', () => {
  it('writeUrgent: every segment below SND.UP carries URG and SND.UP − SEG.SEQ, across segments; none at or after it', () => {
    const f = socketEstablished({ noDelay: true });
    const mss = f.conn!.mss;
    const base = f.ack;
    f.conn!.write(Buffer.from('pre'));
    expect(f.conn!.writeUrgent(Buffer.alloc(2 * mss + 100, 0x55))).toBe(2 * mss + 100);
    f.conn!.write(Buffer.from('post'));
    const up = base + 3 + 2 * mss + 100;
    expect(f.conn!.sndUp).toBe(up);
    f.advance(0);
    const segs = f.recvAll();
    expect(segs.map((s) => [s.seq - base, s.payload.length, s.flags & URG, s.urgent])).toEqual([
      [0, mss, URG, up - base],
      [mss, mss, URG, up - base - mss],
      [2 * mss, 107, URG, up - base - 2 * mss], // the pointer falls inside: 'post' follows it
    ]);
    // New data after SND.UP carries none, though urgent mode lasts until SND.UNA reaches SND.UP.
    f.conn!.write(Buffer.from('tail'));
    f.advance(0);
    const tail = f.recv();
    expect(tail.seq).toBe(base + 2 * mss + 107);
    expect(tail.flags & URG).toBe(0);
    expect(f.conn!.sndUrgent).toBe(true);
    // A partial ACK below SND.UP keeps urgent mode; acknowledging SND.UP ends it.
    f.send({ flags: ACK, ack: base + mss });
    expect(f.conn!.sndUrgent).toBe(true);
    f.send({ flags: ACK, ack: up });
    expect(f.conn!.sndUrgent).toBe(false);
    // Our ACK of the peer's data, and later data, carry no URG.
    data(f, 'x'.repeat(2 * mss));
    f.conn!.write(Buffer.from('later'));
    f.advance(0);
    const after = f.recvAll();
    expect(after.length).toBeGreaterThan(0);
    for (const s of after) { expect(s.flags & URG).toBe(0); expect(s.urgent).toBe(0); }
    expect(f.tcp.counters.urgSegsOut).toBe(3);
  });

  it('a retransmission of urgent data still carries URG and the same pointer', () => {
    const f = socketEstablished({ noDelay: true });
    f.conn!.writeUrgent(Buffer.from('!'));
    f.advance(0);
    const first = f.recv();
    expect([first.f, first.urgent]).toEqual(['PU.', 1]);
    let rtx: SegmentView | undefined;
    for (let i = 0; i < 500 && rtx === undefined; i++) { f.advance(10); rtx = f.recvAll()[0]; }
    expect(rtx).toBeDefined();
    expect(rtx!.seq).toBe(first.seq);
    expect(Buffer.from(rtx!.payload).toString()).toBe('!');
    expect([rtx!.flags & URG, rtx!.urgent]).toEqual([URG, 1]);
    expect(f.tcp.counters.retransSegs).toBe(1);
    expect(f.tcp.counters.urgSegsOut).toBe(2);
  });

  it('a pointer beyond 16 bits is clamped like Linux: 0xFFFF while it points past SND.NXT, else no URG', () => {
    const f = socketEstablished({ noDelay: true, initialCwndSegments: 64 });
    const mss = f.conn!.mss;
    const base = f.ack;
    const n = 80_000;
    f.conn!.writeUrgent(Buffer.alloc(n, 0x41));
    f.advance(0);
    const segs = f.recvAll();
    expect(segs.reduce((a, s) => a + s.payload.length, 0)).toBe(n);
    for (const s of segs) {
      const d = base + n - s.seq;
      expect(s.flags & URG).toBe(URG);
      expect(s.urgent).toBe(d >= 0x10000 ? 0xffff : d);
    }
    expect(segs.filter((s) => s.urgent === 0xffff).length).toBe(Math.floor((n - 0x10000) / mss) + 1);
    // The RTO resends the first segment with 80 000 bytes sent after it: 0xFFFF would mark a byte the
    // receiver already has, so Linux sends no URG at all, and neither do we.
    let rtx: SegmentView | undefined;
    for (let i = 0; i < 500 && rtx === undefined; i++) { f.advance(10); rtx = f.recvAll()[0]; }
    expect(rtx!.seq).toBe(base);
    expect(rtx!.flags & URG).toBe(0);
    // Once SND.UNA is within 16 bits of SND.UP, retransmissions carry the exact pointer.
    f.send({ flags: ACK, ack: base + 10 * mss });
    const after = f.recvAll().find((s) => s.seq === base + 10 * mss)!;
    expect([after.flags & URG, after.urgent]).toEqual([URG, n - 10 * mss]);
  });

  it('zero window: ACKs carry the pointer to unsent urgent data, and the persist timer probes at SND.UNA with it', () => {
    const f = socketSynReceived();
    f.send({ flags: ACK, wnd: 0 });
    const una = f.ack;
    f.conn!.writeUrgent(Buffer.from('interrupt'));
    f.advance(0);
    f.recvNothing();
    data(f, 'hi', { wnd: 0 });
    f.advance(40);
    const ack = f.recv();
    expect([ack.seq, ack.flags & URG, ack.urgent, ack.payload.length]).toEqual([una, URG, 9, 0]);
    let probes: SegmentView[] = [];
    for (let i = 0; i < 500 && probes.length === 0; i++) { f.advance(10); probes = f.recvAll(); }
    // As Linux's tcp_write_wakeup: first a probe at SND.UNA (acceptable to a zero window, so its URG
    // counts), then the usual one at SND.UNA − 1.
    expect(probes.map((s) => [(s.seq - una) | 0, s.flags & URG, s.urgent, s.payload.length])).toEqual([
      [0, URG, 9, 0],
      [-1, URG, 10, 0],
    ]);
    f.send({ flags: ACK, wnd: 65535 });
    const d = f.recv();
    expect([Buffer.from(d.payload).toString(), d.flags & URG, d.urgent]).toEqual(['interrupt', URG, 9]);
  });
});
